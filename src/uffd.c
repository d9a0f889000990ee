/* SPDX-License-Identifier: MIT */
/* uffd.c - opening userfaultfd (full, user-mode-only, /dev/userfaultfd),
 * the feature handshake, and the ioctls the engines use. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "sanitizer.h"
#include "uffd.h"

static struct uf__uffd_caps g_caps;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int raw_open(int flags)
{
#ifdef SYS_userfaultfd
	int fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd >= 0)
		return fd;
	int e = errno;
	/* /dev/userfaultfd grants access by file permission instead of
	 * vm.unprivileged_userfaultfd / CAP_SYS_PTRACE (6.1+). */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		close(dev);
		if (fd >= 0)
			return fd;
	}
	return -e;
#else
	(void)flags;
	return -ENOSYS;
#endif
}

static void probe(void)
{
	/* Valgrind refuses the userfaultfd system call (ENOSYS) but passes
	 * /dev/userfaultfd's ioctls through unread: the engines would run,
	 * with every page UFFDIO_COPY installs and every PAGEMAP_SCAN result
	 * uninitialised to memcheck (false reports on each load and sync).
	 * Under valgrind the userfaultfd engines are unavailable, as for the
	 * system call: AUTO takes the signal engine, which it can check. */
	if (uf__on_valgrind()) {
		g_caps.err = -ENOSYS;
		return;
	}
	int base = O_CLOEXEC | O_NONBLOCK;
	int fd = raw_open(base);
	if (fd < 0 && (fd == -EPERM || fd == -EACCES)) {
		/* Unprivileged with vm.unprivileged_userfaultfd=0: user-mode-only
		 * descriptors still work; faults from the kernel then fail (EFAULT),
		 * which the in-thread engine has anyway. */
		fd = raw_open(base | UFFD_USER_MODE_ONLY);
		if (fd >= 0)
			g_caps.user_only = true;
	}
	if (fd < 0) {
		g_caps.err = fd;
		return;
	}
	struct uffdio_api api = {.api = UFFD_API, .features = 0};
	if (ioctl(fd, UFFDIO_API, &api)) {
		g_caps.err = -errno;
	} else {
		g_caps.features = api.features;
	}
	close(fd);
}

const struct uf__uffd_caps *uf__uffd_caps(void)
{
	pthread_once(&g_once, probe);
	return &g_caps;
}

int uf__uffd_open(uint64_t features, int flags)
{
	const struct uf__uffd_caps *c = uf__uffd_caps();
	if (c->err)
		return c->err;
	int fd = raw_open(O_CLOEXEC | flags | (c->user_only ? UFFD_USER_MODE_ONLY : 0));
	if (fd < 0)
		return fd;
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int uf__uffd_register(int fd, uintptr_t start, size_t len, uint64_t mode, uint64_t *ioctls)
{
	struct uffdio_register reg = {.range = {.start = start, .len = len}, .mode = mode};
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

/* UFFDIO_COPY and UFFDIO_MOVE take the same {dst, src, len, mode, done}
 * layout; one loop serves both. EAGAIN means the mm changed part way: go
 * on after what was done. */
_Static_assert(sizeof(struct uffdio_copy) == sizeof(struct uffdio_move) &&
		       offsetof(struct uffdio_copy, copy) == offsetof(struct uffdio_move, move),
	       "uffdio_copy and uffdio_move differ");

/* Whether the page at a is mapped (anonymous memory: present, or in swap). */
UF_SIGCTX static bool page_mapped(uintptr_t a)
{
	unsigned char v = 0;
	size_t ps = uf__page_size();
	return mincore((void *)uf__align_down(a, ps), ps, &v) == 0 && (v & 1);
}

/*
 * UFFDIO_MOVE can move a page and still report it as not moved. In the
 * kernel's move_pages() loop (6.18 here) a transient -EAGAIN from
 * move_pages_ptes() (the source PTE changed under it, for instance a
 * write by another thread cleared its uffd-wp bit under WP_ASYNC) is never
 * cleared: the retry moves the page, the stale -EAGAIN sends the
 * loop round again without advancing, and the next pass finds the
 * destination full: -EEXIST, with the page already moved. Emptying the
 * destination and retrying, as for a real EEXIST, would destroy the only
 * copy of the data (tests/test_engine_sync_race caught exactly that).
 * Recognise it: the source is now empty and the destination mapped, which
 * no real EEXIST from our callers looks like (they move into a destination
 * they emptied, from a source they mapped). Count the page and go on.
 */
UF_SIGCTX static bool move_happened(uintptr_t dst, uintptr_t src)
{
	return !page_mapped(src) && page_mapped(dst);
}

UF_SIGCTX static int fill_range(int fd, unsigned long req, uintptr_t dst, uintptr_t src, size_t len,
				uint64_t mode, size_t *done)
{
	size_t left = len;
	while (left) {
		struct uffdio_move a = {.dst = dst, .src = src, .len = left, .mode = mode};
		if (ioctl(fd, req, &a) == 0)
			break;
		int e = errno;
		if (e == EEXIST && req == UFFDIO_MOVE && move_happened(dst, src)) {
			size_t ps = uf__page_size();
			dst += ps;
			src += ps;
			left -= ps < left ? ps : left;
			continue;
		}
		if (a.move > 0) {
			dst += (uint64_t)a.move;
			src += (uint64_t)a.move;
			left -= (size_t)a.move;
		}
		if (e != EAGAIN) {
			if (done)
				*done = len - left;
			return -e;
		}
	}
	if (done)
		*done = len;
	return 0;
}

UF_SIGCTX int uf__uffd_copy(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode)
{
	return fill_range(fd, UFFDIO_COPY, dst, src, len, mode, NULL);
}

UF_SIGCTX int uf__uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode)
{
	return fill_range(fd, UFFDIO_MOVE, dst, src, len, mode, NULL);
}

UF_SIGCTX int uf__uffd_move_part(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode,
				 size_t *done)
{
	return fill_range(fd, UFFDIO_MOVE, dst, src, len, mode, done);
}

UF_SIGCTX int uf__uffd_wp(int fd, uintptr_t start, size_t len, uint64_t mode)
{
	struct uffdio_writeprotect w = {.range = {.start = start, .len = len}, .mode = mode};
	return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

/* /proc/self/pagemap, for PAGEMAP_SCAN; opened by the first region that
 * needs it, before any of its faults. The descriptor names the address
 * space of the process that opened it, not of whoever uses it: a fork
 * child that scanned through the parent's would read and write-protect the
 * parent's pages (losing the parent's writes, and its own). So the child
 * drops it (uf__pagemap_after_fork) and opens its own. */
#define PM_UNOPENED (-2)
static _Atomic int g_pagemap = PM_UNOPENED;

int uf__pagemap_fd(void)
{
	int fd = atomic_load_explicit(&g_pagemap, memory_order_acquire);
	if (fd != PM_UNOPENED)
		return fd;
	int nfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		nfd = -1;
	if (atomic_compare_exchange_strong(&g_pagemap, &fd, nfd))
		return nfd;
	if (nfd >= 0)
		close(nfd); /* another thread opened it first */
	return fd;
}

void uf__pagemap_after_fork(void)
{
	int fd = atomic_exchange(&g_pagemap, PM_UNOPENED);
	if (fd >= 0)
		close(fd);
}

UF_SIGCTX long uf__pagemap_written(uintptr_t start, uintptr_t end, bool reprotect,
				   struct page_region *vec, size_t vlen, uintptr_t *walk_end)
{
	struct pm_scan_arg a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = reprotect ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0;
	a.start = start;
	a.end = end;
	a.vec = (uintptr_t)vec;
	a.vec_len = vlen;
	/* Holes count as "written" (no write-protect bit): present pages only. */
	a.category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT;
	a.return_mask = PAGE_IS_WRITTEN;
	long n = ioctl(atomic_load_explicit(&g_pagemap, memory_order_relaxed), PAGEMAP_SCAN, &a);
	if (n < 0)
		return -errno;
	*walk_end = (uintptr_t)a.walk_end;
	return n;
}

UF_SIGCTX bool uf__pagemap_huge(uintptr_t start, uintptr_t end)
{
	struct page_region v[2];
	struct pm_scan_arg a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.start = start;
	a.end = end;
	a.vec = (uintptr_t)v;
	a.vec_len = 2;
	a.category_mask = PAGE_IS_HUGE;
	a.return_mask = PAGE_IS_HUGE;
	long n = ioctl(atomic_load_explicit(&g_pagemap, memory_order_relaxed), PAGEMAP_SCAN, &a);
	return n == 1 && v[0].start == start && v[0].end == end;
}

unsigned uf_engine_features(void)
{
	const struct uf__uffd_caps *c = uf__uffd_caps();
	if (c->err)
		return 0;
	unsigned f = UF_FEATURE_UFFD;
	f |= c->user_only ? UF_FEATURE_UFFD_USER_ONLY : 0;
	f |= (c->features & UFFD_FEATURE_SIGBUS) ? UF_FEATURE_SIGBUS : 0;
	f |= (c->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) ? UF_FEATURE_WP : 0;
	f |= (c->features & UFFD_FEATURE_WP_ASYNC) && uf__pagemap_fd() >= 0 ? UF_FEATURE_WP_ASYNC : 0;
	f |= (c->features & UFFD_FEATURE_MOVE) ? UF_FEATURE_MOVE : 0;
	f |= (c->features & UFFD_FEATURE_POISON) ? UF_FEATURE_POISON : 0;
	return f;
}

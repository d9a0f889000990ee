/*
 * ufbench_copy.c - "the copy design": the smallest userfaultfd pager a
 * programmer would write by hand, as the baseline userfault's in-thread
 * engine must match. The region is registered with userfaultfd in SIGBUS
 * mode (UFFD_FEATURE_SIGBUS); the SIGBUS handler reads the faulting unit
 * from the store into a per-thread staging buffer and installs it with one
 * UFFDIO_COPY. No block table, no read-ahead, no write tracking; under a
 * budget it evicts first-in first-out with MADV_DONTNEED.
 *
 * The store is the same private buffer userfault's uf_store_mem reads, so
 * the store read is the same memcpy (regions with no buffer: the pattern
 * function). Not part of the library: it uses only the kernel.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "ufbench.h"

struct ufb_copy {
	char *base;
	size_t len, unit;
	int uffd;
	const char *store; /* NULL: the pattern function */
	size_t cap;        /* budget in units, 0 = none */
	uint64_t *fifo;    /* resident units, oldest first (budget only) */
	size_t head, count;
	atomic_flag lock;  /* fifo; never held across a fault */
	_Atomic uint64_t faults, evictions;
	void *map;
	size_t maplen;
};

static struct ufb_copy *volatile g_copy;
static struct sigaction g_prev;
static __thread char *t_stage; /* this thread's staging buffer (unit bytes) */
static __thread size_t t_stage_len;

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Signal context: not ours; hand it to whoever handled SIGBUS before. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (g_prev.sa_flags & SA_SIGINFO) {
		g_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
		g_prev.sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL); /* returning re-raises the fault: default death */
}

/* Signal context. */
static void copy_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct ufb_copy *c = g_copy;
	uintptr_t a = (uintptr_t)si->si_addr;
	if (!c || si->si_code <= 0 || a < (uintptr_t)c->base || a >= (uintptr_t)c->base + c->len) {
		chain(sig, si, uc);
		return;
	}
	int saved = errno;
	uint64_t idx = (a - (uintptr_t)c->base) / c->unit;
	size_t off = idx * c->unit, n = c->len - off < c->unit ? c->len - off : c->unit;
	if (t_stage_len < c->unit) {
		if (t_stage)
			munmap(t_stage, t_stage_len);
		t_stage = map_anon(c->unit);
		t_stage_len = t_stage ? c->unit : 0;
		if (!t_stage)
			_exit(111);
	}
	if (c->cap) {
		while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
			;
		if (c->count == c->cap) {
			uint64_t v = c->fifo[c->head];
			c->head = (c->head + 1) % c->cap;
			c->count--;
			madvise(c->base + v * c->unit, c->unit, MADV_DONTNEED);
			atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
		}
		c->fifo[(c->head + c->count) % c->cap] = idx;
		c->count++;
		atomic_flag_clear_explicit(&c->lock, memory_order_release);
	}
	if (c->store)
		memcpy(t_stage, c->store + off, n);
	else
		ufb_fill(off, t_stage, n);
	struct uffdio_copy cp = {.dst = (uintptr_t)c->base + off, .src = (uintptr_t)t_stage, .len = n};
	/* EEXIST: another thread installed it first. */
	if (ioctl(c->uffd, UFFDIO_COPY, &cp) && errno != EEXIST)
		_exit(112);
	atomic_fetch_add_explicit(&c->faults, 1, memory_order_relaxed);
	errno = saved;
}

int ufb_copy_open(struct ufb_region *r, const struct ufb_src *src, const struct ufb_region_opts *o,
		  struct ufb_result *res)
{
	if (o->track_writes) {
		ufb_msg(res, "the copy design tracks no writes", "", -1, "");
		return UFB_UNAVAILABLE;
	}
	if (g_copy) {
		ufb_msg(res, "one copy-design region at a time", "", -1, "");
		return UFB_FAILED;
	}
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) /* unprivileged: faults from the kernel are not ours anyway */
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		ufb_msg(res, "userfaultfd: ", strerror(errno), -1, "");
		return UFB_UNAVAILABLE;
	}
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_SIGBUS};
	if (ioctl(fd, UFFDIO_API, &api)) {
		ufb_msg(res, "UFFDIO_API (SIGBUS mode): ", strerror(errno), -1, "");
		close(fd);
		return UFB_UNAVAILABLE;
	}
	size_t ps = ufb_page_size();
	size_t unit = o->block_size > ps ? o->block_size : ps;
	struct ufb_copy *c = map_anon(sizeof(*c));
	if (!c) {
		close(fd);
		goto nomem;
	}
	memset(c, 0, sizeof(*c));
	atomic_flag_clear(&c->lock);
	c->uffd = fd;
	c->unit = unit;
	c->len = r->len;
	c->store = src->buf;
	r->cc = c;
	if (o->budget) {
		c->cap = o->budget / unit ? o->budget / unit : 1;
		if (!(c->fifo = map_anon(c->cap * sizeof(uint64_t))))
			goto nomem;
	}
	c->maplen = r->len + unit;
	c->map = mmap(NULL, c->maplen, o->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		goto nomem;
	}
	madvise(c->map, c->maplen, MADV_NOHUGEPAGE);
	c->base = (char *)(((uintptr_t)c->map + unit - 1) & ~(uintptr_t)(unit - 1));
	struct uffdio_register reg = {.range = {(uintptr_t)c->base, r->len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		ufb_msg(res, "UFFDIO_REGISTER: ", strerror(errno), -1, "");
		ufb_region_close(r);
		return UFB_FAILED;
	}
	static bool installed;
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = copy_on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &g_prev)) {
			ufb_msg(res, "sigaction: ", strerror(errno), -1, "");
			ufb_region_close(r);
			return UFB_FAILED;
		}
		installed = true;
	}
	r->addr = c->base;
	g_copy = c;
	return UFB_OK;
nomem:
	ufb_msg(res, "copy design: mmap failed", "", -1, "");
	if (c)
		ufb_region_close(r);
	return UFB_FAILED;
}

void ufb_copy_stats(struct ufb_region *r, struct ufb_result *res)
{
	struct ufb_copy *c = r->cc;
	res->faults = res->loads = atomic_load(&c->faults);
	res->evictions = atomic_load(&c->evictions);
}

void ufb_copy_close(struct ufb_region *r)
{
	struct ufb_copy *c = r->cc;
	if (g_copy == c)
		g_copy = NULL;
	if (c->map)
		munmap(c->map, c->maplen);
	if (c->fifo)
		munmap(c->fifo, c->cap * sizeof(uint64_t));
	close(c->uffd);
	munmap(c, sizeof(*c));
	r->cc = NULL;
}

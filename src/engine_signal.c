/* SPDX-License-Identifier: MIT */
/*
 * engine_signal.c - the portable engine: SIGSEGV + mprotect, no userfaultfd.
 *
 * The region's bytes live in a sparse memfd the size of the region, mapped
 * twice: the region itself (MAP_SHARED, PROT_NONE until a block is
 * installed) and a private alias (read-write) through which the pager fills
 * and saves blocks. A block is filled through the alias first and only then
 * opened in the region with mprotect, so no thread ever sees a half-filled
 * page. Faults arrive as SIGSEGV/SEGV_ACCERR and go through fault.c to the
 * pager like any other. Releasing a frame punches a hole in the memfd, which
 * gives the RAM back.
 *
 * The cost is VMA splitting: every run of blocks with a protection different
 * from its neighbours is a VMA of its own, and the kernel refuses mprotect
 * (ENOMEM) past vm.max_map_count. A resident block splits at most two more
 * VMAs off the region, so attach caps the frame budget at what fits next to
 * the VMAs the process already has (see vma_budget()); if not even a small
 * budget fits, uf_map fails with -ENOMEM. A failed mprotect is never retried
 * in a loop: it becomes the fault's error (SIGBUS or the error callback).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "region.h"
#include "sanitizer.h"

/* VMAs left for the rest of the process (allocator arenas, thread stacks,
 * libraries loaded later): a fixed floor plus 1/64 of the limit. */
#define VMA_MARGIN_MIN 256
/* Per region besides the 2-per-frame splits: the region, the alias, and
 * one to spare because mprotect checks the limit before splitting. */
#define VMA_PER_REGION 4
/* Refuse rather than run with fewer frames than this (or than asked). */
#define MIN_FRAMES 16

struct sig_priv {
	int memfd;
	uint64_t vmas; /* VMAs promised to this region (in g_vma_reserved) */
};

/* VMAs promised to live signal-engine regions, so two regions do not both
 * count on the same headroom. Under g_vma_lock. */
static uint64_t g_vma_reserved;
static pthread_mutex_t g_vma_lock = PTHREAD_MUTEX_INITIALIZER;

static int signal_probe(void)
{
	return 0; /* mprotect and signals are always there */
}

static long read_long_file(const char *path, long dflt)
{
	char buf[32];
	if (uf__read_small_file(path, buf, sizeof(buf)) < 0)
		return dflt;
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf || v <= 0 ? dflt : v;
}

/* The process's VMA limit. USERFAULT_MAX_MAP_COUNT (a testing/debug knob,
 * documented in docs/ENGINES.md) replaces vm.max_map_count when it is lower,
 * so tests can exercise the limit without changing a global sysctl. */
static long max_map_count(void)
{
	long lim = read_long_file("/proc/sys/vm/max_map_count", 65530);
	unsigned long v;
	if (uf__getenv_num("USERFAULT_MAX_MAP_COUNT", 1, &v) && v < (unsigned long)lim)
		lim = (long)v;
	return lim;
}

/* The process's current number of VMAs: lines of /proc/self/maps. */
static long count_vmas(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[8192];
	long lines = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	}
	close(fd);
	return lines;
}

/* Lowers r->nframes to what the VMA limit allows and reserves the VMAs.
 * -ENOMEM if fewer than MIN_FRAMES (or the frames asked for, if fewer) fit. */
static int vma_budget(struct uf_region *r, struct sig_priv *p)
{
	long lim = max_map_count(), cur = count_vmas();
	if (cur < 0)
		return (int)cur;
	pthread_mutex_lock(&g_vma_lock);
	int64_t avail = (int64_t)lim - cur - (VMA_MARGIN_MIN + lim / 64) - (int64_t)g_vma_reserved -
			VMA_PER_REGION;
	int64_t fit = avail > 0 ? avail / 2 : 0;
	uint32_t need = r->nframes < MIN_FRAMES ? r->nframes : MIN_FRAMES;
	if (fit < need) {
		pthread_mutex_unlock(&g_vma_lock);
		return -ENOMEM;
	}
	if (fit < r->nframes)
		r->nframes = (uint32_t)fit;
	p->vmas = 2ull * r->nframes + VMA_PER_REGION;
	g_vma_reserved += p->vmas;
	pthread_mutex_unlock(&g_vma_lock);
	return 0;
}

static void signal_detach(struct uf_region *r)
{
	struct sig_priv *p = r->eng_priv;
	if (r->base)
		munmap((void *)r->base, r->len);
	if (r->pool)
		munmap(r->pool, r->len);
	r->base = 0;
	r->pool = NULL;
	if (!p)
		return;
	if (p->memfd >= 0)
		close(p->memfd);
	pthread_mutex_lock(&g_vma_lock);
	g_vma_reserved -= p->vmas;
	pthread_mutex_unlock(&g_vma_lock);
	free(p);
	r->eng_priv = NULL;
}

static int signal_attach(struct uf_region *r)
{
	struct sig_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->memfd = -1;
	int e = vma_budget(r, p);
	if (e) {
		free(p);
		return e;
	}
	r->eng_priv = p;
	p->memfd = memfd_create("userfault", MFD_CLOEXEC);
	if (p->memfd < 0 || ftruncate(p->memfd, (off_t)r->len))
		goto fail;
	/* MAP_NORESERVE: the memfd is sparse; only filled blocks cost RAM. */
	void *base = mmap(NULL, r->len, PROT_NONE, MAP_SHARED | MAP_NORESERVE, p->memfd, 0);
	if (base == MAP_FAILED)
		goto fail;
	r->base = (uintptr_t)base;
	uf__vg_served(base, r->len);
	void *alias = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			   p->memfd, 0);
	if (alias == MAP_FAILED)
		goto fail;
	r->pool = alias;
	/* A child must not inherit the mappings: it has no pager behind them
	 * (fork semantics are the region layer's business). */
	if (madvise(base, r->len, MADV_DONTFORK) || madvise(alias, r->len, MADV_DONTFORK))
		goto fail;
	return 0;
fail:
	e = -errno;
	signal_detach(r);
	return e ? e : -ENOMEM;
}

UF_SIGCTX static void *signal_frame_buf(struct uf_region *r, uint32_t f, uint64_t blk)
{
	(void)f; /* the memfd is indexed by block, not by frame */
	return (unsigned char *)r->pool + (blk << r->bshift);
}

static inline int prot_of(const struct uf_region *r, bool writable)
{
	return writable ? r->prot : (r->prot & ~PROT_WRITE);
}

/* The block was filled through the alias; opening it publishes the bytes
 * to every thread at once. ENOMEM here is the VMA limit. */
UF_SIGCTX static int signal_install(struct uf_region *r, uint32_t f, uint64_t blk, size_t len,
				    bool writable)
{
	(void)f;
	return mprotect(uf__blk_addr(r, blk), len, prot_of(r, writable)) ? -errno : 0;
}

/* Closing the block keeps its bytes in the memfd, readable via the alias.
 * mprotect returns after the TLB shootdown, so no write lands later. */
UF_SIGCTX static int signal_park(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	(void)f;
	return mprotect(uf__blk_addr(r, blk), len, PROT_NONE) ? -errno : 0;
}

UF_SIGCTX static void signal_release(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	(void)f;
	struct sig_priv *p = r->eng_priv;
	/* Frees the pages (and unmaps them from both views). Failure only
	 * means the RAM stays until the block is filled again. */
	fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(blk << r->bshift),
		  (off_t)len);
}

UF_SIGCTX static int signal_protect(struct uf_region *r, uint64_t blk, size_t len, bool on)
{
	return mprotect(uf__blk_addr(r, blk), len, prot_of(r, !on)) ? -errno : 0;
}

const struct uf__engine_ops uf__engine_signal = {
	.name = "signal",
	.id = UF_ENGINE_SIGNAL,
	.probe = signal_probe,
	.attach = signal_attach,
	.detach = signal_detach,
	.frame_buf = signal_frame_buf,
	.install = signal_install,
	.park = signal_park,
	.release = signal_release,
	.protect = signal_protect,
};

/* SPDX-License-Identifier: MIT */
/*
 * engine_uffd.c - userfaultfd engines' shared operations, and the in-thread
 * engine: the region is registered with UFFD_FEATURE_SIGBUS, so a missing
 * page (or a write to a write-protected one) raises SIGBUS in the faulting
 * thread itself, whose handler loads the block and installs it. No helper
 * thread, no wake-up across CPUs.
 *
 * Frames live in a pool mapping beside the region, one slot each. A dirty
 * block is read into its frame's slot and moved into place with
 * UFFDIO_MOVE (page tables only, no copy); parking moves a block back.
 * Clean blocks must arrive write-protected, which only UFFDIO_COPY does in
 * one step: a read-ahead window is read into a staging slot and copied in
 * with one call. Under a budget a window of a writable region usually
 * lands in frames that still hold their victims' pages (a scan evicts in
 * frame order): it is read into those and moved in, then protected
 * (install_frames), and the pager checks the bytes for a write that came
 * in between. Where MOVE is unavailable (kernel < 6.8, read-only regions
 * of the handler-thread engine, which maps them read-only) everything is
 * copied.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"
#include "store.h"
#include "uffd.h"

static inline uintptr_t slot(const struct uf_region *r, uint32_t f)
{
	return (uintptr_t)r->pool + ((uintptr_t)f << r->bshift);
}

/* Staging slots after the frames: a batch of clean blocks is read into one
 * and copied in with a single UFFDIO_COPY. They stay populated (hot), so a
 * load neither faults on nor zeroes a fresh page. A slot holds a read-ahead
 * batch or one block, whichever is larger: blocks above the batch size
 * (up to 2 MiB and beyond) take the same path, instead of filling the
 * frame's slot, which would cost a fresh zeroed page per 4 KiB (65,536
 * minor faults per 256 MiB at 2 MiB blocks). Six: the pager's up to four
 * background read-ahead windows (pager.c, RA_JOBS) and two faulting
 * threads' loads (a Redis scan: 0.62x pipelined GET with three windows
 * and four slots, 0.85x with four and six; docs/PERFORMANCE.md). A
 * thread that finds none loads block by block through its frame. */
#define STAGE_SLOTS 6

static inline size_t frames_len(const struct uf_region *r) { return (size_t)r->nframes << r->bshift; }
static inline size_t stage_len(const struct uf_region *r)
{
	return r->bs > UF__RA_MAX_BYTES ? r->bs : UF__RA_MAX_BYTES;
}
static inline size_t pool_len(const struct uf_region *r)
{
	return frames_len(r) + STAGE_SLOTS * stage_len(r);
}

static inline uint64_t nowake(const struct uf_region *r, uint64_t flag)
{
	return (r->eng_flags & UF__UFFD_NOWAKE) ? flag : 0;
}

/* The transparent huge page size where the kernel gives anonymous memory
 * huge pages on request (MADV_HUGEPAGE), else 0; read once. */
static size_t thp_size(void)
{
	static _Atomic size_t cached = 1; /* 1: not read yet */
	size_t hs = atomic_load_explicit(&cached, memory_order_relaxed);
	if (hs != 1)
		return hs;
	hs = 0;
	char buf[128];
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = 0;
		if (!strstr(buf, "[never]")) {
			fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", O_RDONLY | O_CLOEXEC);
			n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (n > 0) {
				buf[n] = 0;
				hs = (size_t)strtoull(buf, NULL, 10);
			}
		}
	}
	if (!uf__is_pow2(hs) || hs <= uf__page_size())
		hs = 0;
	atomic_store_explicit(&cached, hs, memory_order_relaxed);
	return hs;
}

/* Huge-page windows (pager.c, load_huge): for read-only regions of the
 * in-thread engine, with MOVE, whose budget holds the whole region, which
 * read ahead, over a store whose calls run in the faulting thread. The
 * huge page size, or 0. */
static size_t huge_size(const struct uf_region *r, bool inthread, bool move)
{
	if (!inthread || !move || r->writable || r->nframes < r->nblocks ||
	    (r->flags & UF_MAP_NO_READAHEAD) || r->store->pool || uf__getenv_off("USERFAULT_THP") ||
	    uf__pagemap_fd() < 0)
		return 0;
	size_t hs = thp_size();
	return hs && hs <= ((size_t)2 << 20) && r->len >= hs && r->bs <= hs ? hs : 0;
}

/* An anonymous mapping of len bytes aligned to align (a power of two; 0:
 * any), or MAP_FAILED. */
static void *map_aligned(size_t len, size_t align, int prot)
{
	const int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (!align)
		return mmap(NULL, len, prot, fl, -1, 0);
	char *p = mmap(NULL, len + align, prot, fl, -1, 0);
	if (p == MAP_FAILED)
		return p;
	char *a = (char *)uf__align_up((uintptr_t)p, align);
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + len, (size_t)(p + align - a));
	return a;
}

/* The staging buffers of huge-page windows: one huge page, MOVE-compatible
 * with the region (same protection, registered with its uffd), and one of
 * plain pages that keeps the window's bytes for the check after the move
 * (where the store's own bytes cannot be read in place). Failing, the
 * region just has no huge-page windows. */
static void huge_stage(struct uf_region *r, size_t hs, int prot)
{
	void *p = map_aligned(hs, hs, prot);
	if (p == MAP_FAILED)
		return;
	void *ref = mmap(NULL, hs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	if (ref != MAP_FAILED)
		(void)madvise(ref, hs, MADV_NOHUGEPAGE); /* plain pages: it is only read and written */
	if (ref == MAP_FAILED || madvise(ref, hs, MADV_DONTFORK) || madvise(p, hs, MADV_HUGEPAGE) ||
	    madvise(p, hs, MADV_DONTFORK) || madvise((void *)r->base, r->len, MADV_HUGEPAGE) ||
	    uf__uffd_register(r->uffd, (uintptr_t)p, hs, UFFDIO_REGISTER_MODE_WP, NULL)) {
		munmap(p, hs);
		if (ref != MAP_FAILED)
			munmap(ref, hs);
		return;
	}
	uint64_t nslots = (r->len + hs - 1) / hs;
	r->htouched = calloc((nslots + 63) / 64, sizeof(*r->htouched));
	if (!r->htouched) {
		munmap(p, hs);
		munmap(ref, hs);
		return;
	}
	r->hstage = p;
	r->href = ref;
	r->hsize = hs;
}

int uf__uffd_attach(struct uf_region *r, uint64_t features)
{
	const struct uf__uffd_caps *c = uf__uffd_caps();
	if (c->err)
		return c->err;
	/* Write-protect tracks writes to writable regions. Read-only regions
	 * are write-protected too where the kernel can, and mapped writable
	 * underneath: every installed page is protected (so a write still
	 * faults and becomes SIGSEGV), and MOVE, which needs writable
	 * mappings, can park their blocks without a copy. */
	bool wp = c->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	if (r->writable && !wp)
		return -ENOTSUP; /* write tracking needs uffd-wp (5.7+) */
	/* Only in SIGBUS mode can such a write reach the program as SIGSEGV; a
	 * handler thread could only leave the writer blocked. */
	bool inthread = features & UFFD_FEATURE_SIGBUS;
	if (!r->writable && !inthread)
		wp = false;
	bool move = wp && (c->features & UFFD_FEATURE_MOVE);
	/* Where the kernel has WP_ASYNC and PAGEMAP_SCAN, first writes to
	 * writable regions are resolved by the kernel (no fault, ~0.8 us
	 * instead of ~3.3 us) and collected with PAGEMAP_SCAN at sync and
	 * eviction. USERFAULT_WP_ASYNC=0 keeps one synchronous write-protect
	 * fault per first write instead (make check runs both), as does
	 * UF_MAP_WP_FAULTS for one region. Never for read-only regions: there
	 * a write must still fault. */
	bool async = r->writable && move && inthread && !(r->flags & UF_MAP_WP_FAULTS) &&
		     (c->features & UFFD_FEATURE_WP_ASYNC) && !uf__getenv_off("USERFAULT_WP_ASYNC") &&
		     uf__pagemap_fd() >= 0;
	if (async) {
		features |= UFFD_FEATURE_WP_ASYNC;
		r->eng_flags |= UF__UFFD_ASYNC;
		r->async_wp = true;
	}
	int prot = wp ? r->prot | PROT_WRITE : r->prot;
	features |= (wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0) | (move ? UFFD_FEATURE_MOVE : 0);
	if ((c->features & features) != features)
		return -ENOTSUP;

	int fd = uf__uffd_open(features, O_NONBLOCK);
	if (fd < 0)
		return fd;
	r->uffd = fd;
	r->eng_flags |= (move ? UF__UFFD_MOVE : 0) | (wp ? UF__UFFD_WP : 0);
	int e = -ENOMEM;
	/* Huge-page windows need the region aligned to the huge page size. */
	size_t hs = huge_size(r, inthread, move);
	void *base = map_aligned(r->len, hs, prot);
	if (base == MAP_FAILED && hs) /* the slack did not fit (RLIMIT_AS): no huge pages */
		base = map_aligned(r->len, hs = 0, prot);
	if (base == MAP_FAILED)
		goto fail;
	r->base = (uintptr_t)base;
	/* MOVE wants both ends anonymous with equal access flags, and its
	 * destination registered with this uffd: the pool gets the region's
	 * protection and a WP-only registration (missing pages in it are
	 * filled by the kernel as usual). */
	size_t plen = pool_len(r);
	void *pool = mmap(NULL, plen, move ? prot : PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pool == MAP_FAILED)
		goto fail;
	r->pool = pool;
	/* A fork child gets neither mapping: its accesses fault loudly instead
	 * of reading zeros (the child has no userfaultfd registration). */
	if (madvise(base, r->len, MADV_DONTFORK) || madvise(pool, plen, MADV_DONTFORK)) {
		e = -errno;
		goto fail;
	}
	/* No transparent huge pages where we do not ask for them (huge_stage
	 * does; the region below), also where the system gives them to every
	 * mapping: a write
	 * fault on a missing page of a huge-page-eligible range allocates and
	 * zeroes a whole huge page before the kernel sees it is ours to
	 * serve, and then frees it (measured: twice the time of a first write
	 * there); and a huge page in the pool would refuse the moves that
	 * park blocks in it. Advisory: a kernel without THP refuses it. */
	(void)madvise(pool, plen, MADV_NOHUGEPAGE);

	uint64_t ioctls = 0;
	uint64_t mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0);
	e = uf__uffd_register(fd, r->base, r->len, mode, &ioctls);
	if (e)
		goto fail;
	uint64_t need = (1ull << _UFFDIO_COPY) | (wp ? 1ull << _UFFDIO_WRITEPROTECT : 0);
	e = -ENOTSUP;
	if ((ioctls & need) != need)
		goto fail;
	if (move) {
		if (uf__uffd_register(fd, (uintptr_t)pool, plen, UFFDIO_REGISTER_MODE_WP, NULL) ||
		    !(ioctls & (1ull << _UFFDIO_MOVE)))
			r->eng_flags &= ~UF__UFFD_MOVE;
	}
	if (hs && (r->eng_flags & UF__UFFD_MOVE))
		huge_stage(r, hs, prot);
	if (!r->hsize)
		(void)madvise(base, r->len, MADV_NOHUGEPAGE);
	return 0;
fail:
	uf__uffd_detach(r);
	return e;
}

void uf__uffd_detach(struct uf_region *r)
{
	/* The region goes first: closing the userfaultfd first would leave it
	 * mapped but unregistered for a moment, and a thread still touching
	 * it would read zero-filled pages (test_engine_unmap_race). Unmapped,
	 * a touch is SIGSEGV; threads waiting in a fault are woken by the
	 * close and then see the same. */
	if (r->base)
		munmap((void *)r->base, r->len);
	if (r->uffd >= 0)
		close(r->uffd); /* unregisters everything it covered */
	r->uffd = -1;
	if (r->pool)
		munmap(r->pool, pool_len(r));
	if (r->hstage) {
		munmap(r->hstage, r->hsize);
		munmap(r->href, r->hsize);
		free(r->htouched);
	}
	r->base = 0;
	r->pool = NULL;
	r->hstage = r->href = NULL;
	r->htouched = NULL;
	r->hsize = 0;
}

UF_SIGCTX void *uf__uffd_frame_buf(struct uf_region *r, uint32_t f, uint64_t blk)
{
	(void)blk;
	return (void *)slot(r, f);
}

UF_SIGCTX int uf__uffd_install(struct uf_region *r, uint32_t f, uint64_t blk, size_t len,
			       bool writable)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	uintptr_t dst = (uintptr_t)uf__blk_addr(r, blk), src = slot(r, f);
	bool wp = !writable && (r->eng_flags & UF__UFFD_WP);
	/* A moved page arrives writable, and protecting it afterwards leaves a
	 * window in which another thread's write would go unnoticed (the block
	 * would be evicted as clean, losing it). So MOVE only blocks that are
	 * dirty anyway; clean ones are copied in already write-protected. */
	if (!wp && (r->eng_flags & UF__UFFD_MOVE)) {
		int e = uf__uffd_move(r->uffd, dst, src, len, nowake(r, UFFDIO_MOVE_MODE_DONTWAKE));
		if (e != -EBUSY)
			return e;
		/* EBUSY: the page is shared (after fork) or pinned; copy instead. */
	}
	int e = uf__uffd_copy(r->uffd, dst, src, len,
			      (wp ? UFFDIO_COPY_MODE_WP : 0) | nowake(r, UFFDIO_COPY_MODE_DONTWAKE));
	/* The block now has a page of its own: give the slot's back, or the
	 * region would hold two pages per frame against its budget. */
	if (e == 0)
		madvise((void *)src, len, MADV_DONTNEED);
	return e;
}

UF_SIGCTX int uf__uffd_park(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	uintptr_t a = (uintptr_t)uf__blk_addr(r, blk), s = slot(r, f);
	if (r->eng_flags & UF__UFFD_MOVE) {
		uint64_t mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES | nowake(r, UFFDIO_MOVE_MODE_DONTWAKE);
		int e = uf__uffd_move(r->uffd, s, a, len, mode);
		if (e == -EEXIST) {
			/* The slot still holds a page from a COPY install: drop it. */
			madvise((void *)s, len, MADV_DONTNEED);
			e = uf__uffd_move(r->uffd, s, a, len, mode);
		}
		if (e != -EBUSY)
			return e;
	}
	/* Copy out, then unmap. Writers must not slip in between. */
	if (r->eng_flags & UF__UFFD_WP) {
		int e = uf__uffd_wp(r->uffd, a, len, UFFDIO_WRITEPROTECT_MODE_WP);
		if (e)
			return e;
	}
	memcpy((void *)s, (const void *)a, len);
	return madvise((void *)a, len, MADV_DONTNEED) ? -errno : 0;
}

/* Parks the mapped blocks from b0 (len bytes, whole pages) into the slots
 * of frames f0, f0 + 1, ... with one UFFDIO_MOVE (without MOVE: one copy
 * and one unmap, as uf__uffd_park does). On failure *done bytes from the
 * start were parked; the caller parks the rest block by block
 * (uf__uffd_park, which also copes with what the move could not do). */
UF_SIGCTX int uf__uffd_park_run(struct uf_region *r, uint32_t f0, uint64_t b0, size_t len, size_t *done)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, b0), len);
	uintptr_t a = (uintptr_t)uf__blk_addr(r, b0), s = slot(r, f0);
	*done = 0;
	if (r->eng_flags & UF__UFFD_MOVE) {
		uint64_t mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES | nowake(r, UFFDIO_MOVE_MODE_DONTWAKE);
		return uf__uffd_move_part(r->uffd, s, a, len, mode, done);
	}
	if (r->eng_flags & UF__UFFD_WP) {
		int e = uf__uffd_wp(r->uffd, a, len, UFFDIO_WRITEPROTECT_MODE_WP);
		if (e)
			return e;
	}
	memcpy((void *)s, (const void *)a, len);
	if (madvise((void *)a, len, MADV_DONTNEED))
		return -errno;
	*done = len;
	return 0;
}

/* Gives back the slots of frames f0 .. f0 + n - 1 with one call. */
UF_SIGCTX void uf__uffd_release_run(struct uf_region *r, uint32_t f0, unsigned n)
{
	madvise((void *)slot(r, f0), (size_t)n << r->bshift, MADV_DONTNEED);
}

/* The frame's slot held the block while it was parked (or being filled):
 * give the page back so the frame owns no RAM while it holds no block. */
UF_SIGCTX void uf__uffd_release(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	(void)blk;
	madvise((void *)slot(r, f), len, MADV_DONTNEED);
}

/* Forgets a clean mapped block: nothing to keep, one call. */
UF_SIGCTX int uf__uffd_zap(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	(void)f;
	return madvise(uf__blk_addr(r, blk), len, MADV_DONTNEED) ? -errno : 0;
}

UF_SIGCTX int uf__uffd_protect(struct uf_region *r, uint64_t blk, size_t len, bool on)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	if (!(r->eng_flags & UF__UFFD_WP))
		return 0;
	/* The kernel refuses WP together with DONTWAKE (protecting wakes no
	 * one). Opening wakes unless nobody can sleep in the kernel. */
	uint64_t mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : nowake(r, UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
	return uf__uffd_wp(r->uffd, (uintptr_t)uf__blk_addr(r, blk), len, mode);
}

UF_SIGCTX void *uf__uffd_stage_get(struct uf_region *r, size_t len, unsigned *token)
{
	if (len > stage_len(r))
		return NULL;
	uint32_t busy = atomic_load_explicit(&r->stage_busy, memory_order_relaxed);
	for (;;) {
		unsigned i = (unsigned)__builtin_ctz(~busy);
		if (i >= STAGE_SLOTS)
			return NULL;
		if (atomic_compare_exchange_weak_explicit(&r->stage_busy, &busy, busy | (1u << i),
							  memory_order_acquire, memory_order_relaxed)) {
			*token = i;
			return (char *)r->pool + frames_len(r) + i * stage_len(r);
		}
	}
}

UF_SIGCTX void uf__uffd_stage_put(struct uf_region *r, unsigned token)
{
	atomic_fetch_and_explicit(&r->stage_busy, ~(1u << token), memory_order_release);
}

UF_SIGCTX int uf__uffd_install_clean(struct uf_region *r, uint64_t blk, size_t len, const void *src)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	uint64_t mode = ((r->eng_flags & UF__UFFD_WP) ? UFFDIO_COPY_MODE_WP : 0) |
			nowake(r, UFFDIO_COPY_MODE_DONTWAKE);
	return uf__uffd_copy(r->uffd, (uintptr_t)uf__blk_addr(r, blk), (uintptr_t)src, len, mode);
}

UF_SIGCTX int uf__uffd_install_frames(struct uf_region *r, uint32_t f0, uint64_t blk, size_t len,
				      size_t *done)
{
	uf__huge_touch(r, (uintptr_t)uf__blk_addr(r, blk), len);
	uintptr_t dst = (uintptr_t)uf__blk_addr(r, blk), src = slot(r, f0);
	size_t moved = 0;
	*done = 0;
	if (r->eng_flags & UF__UFFD_MOVE) {
		int e = uf__uffd_move_part(r->uffd, dst, src, len, nowake(r, UFFDIO_MOVE_MODE_DONTWAKE),
					   &moved);
		/* The moved pages are writable until this returns; the pager's
		 * content check covers a write that landed before it. */
		*done = moved;
		if (moved && (r->eng_flags & UF__UFFD_WP)) {
			int w = uf__uffd_wp(r->uffd, dst, moved, UFFDIO_WRITEPROTECT_MODE_WP);
			if (w)
				return w;
		}
		if (e != -EBUSY)
			return e;
		/* EBUSY: a page is shared or pinned; copy the rest. */
	}
	int e = uf__uffd_install_clean(r, blk + (moved >> r->bshift), len - moved,
				       (const void *)(src + moved));
	if (e)
		return e;
	madvise((void *)(src + moved), len - moved, MADV_DONTNEED);
	*done = len;
	return 0;
}

UF_SIGCTX int uf__uffd_install_huge(struct uf_region *r, uint64_t blk)
{
	uintptr_t dst = (uintptr_t)uf__blk_addr(r, blk), src = (uintptr_t)r->hstage;
	size_t len = r->hsize, moved = 0;
	if (uf__pagemap_huge(src, src + len)) {
		/* The region's page table has no entry there (its faults took
		 * the huge path, which allocates none): one PMD moves. */
		int e = uf__uffd_move_part(r->uffd, dst, src, len, nowake(r, UFFDIO_MOVE_MODE_DONTWAKE),
					   &moved);
		if (moved) {
			int w = uf__uffd_wp(r->uffd, dst, moved, UFFDIO_WRITEPROTECT_MODE_WP);
			if (w)
				return w;
		}
		if (!e)
			return 1;
		if (e != -EBUSY)
			return e;
	}
	/* No huge page (memory too fragmented for one, or THP taken away
	 * since): a plain copy, and no more huge windows for this region. */
	atomic_store_explicit(&r->hon, false, memory_order_relaxed);
	int e = uf__uffd_install_clean(r, blk + (moved >> r->bshift), len - moved,
				       (const void *)(src + moved));
	madvise((void *)src, len, MADV_DONTNEED);
	return e ? e : moved ? 1 : 0;
}

UF_SIGCTX int uf__uffd_written(struct uf_region *r, uint64_t blk, size_t len)
{
	struct page_region v[1];
	uintptr_t a = (uintptr_t)uf__blk_addr(r, blk), walk_end;
	long n = uf__pagemap_written(a, a + len, true, v, 1, &walk_end);
	return n < 0 ? (int)n : n > 0;
}

long uf__uffd_written_scan(struct uf_region *r, uint64_t b0, uint64_t b1, bool protect, uint64_t *out,
			   size_t max)
{
	enum { VLEN = 256 };
	struct page_region v[VLEN];
	uintptr_t start = (uintptr_t)uf__blk_addr(r, b0), end = (uintptr_t)uf__blk_addr(r, b1);
	if (end > r->base + r->len)
		end = r->base + r->len;
	size_t k = 0;
	while (start < end && k < max) {
		uintptr_t walk_end;
		long n = uf__pagemap_written(start, end, protect, v, VLEN, &walk_end);
		if (n < 0)
			return n;
		for (long i = 0; i < n && k < max; i++) {
			uint64_t first = (v[i].start - r->base) >> r->bshift;
			uint64_t last = (v[i].end - 1 - r->base) >> r->bshift;
			for (uint64_t b = first; b <= last && k < max; b++)
				if (k == 0 || out[k - 1] != b)
					out[k++] = b;
		}
		/* A full vector means more may follow. walk_end can be stale on
		 * this kernel once many ranges were produced: continue after the
		 * last range returned instead. */
		if (n < VLEN)
			break;
		start = v[VLEN - 1].end;
	}
	return (long)k;
}

/* ---- the in-thread (SIGBUS) engine ---- */

static int inthread_probe(void)
{
	const struct uf__uffd_caps *c = uf__uffd_caps();
	if (c->err)
		return c->err;
	return (c->features & UFFD_FEATURE_SIGBUS) ? 0 : -ENOTSUP;
}

static int inthread_attach(struct uf_region *r)
{
	r->eng_flags = UF__UFFD_NOWAKE;
	return uf__uffd_attach(r, UFFD_FEATURE_SIGBUS);
}

const struct uf__engine_ops uf__engine_uffd = {
	.name = "uffd",
	.id = UF_ENGINE_UFFD,
	.probe = inthread_probe,
	.attach = inthread_attach,
	.detach = uf__uffd_detach,
	.frame_buf = uf__uffd_frame_buf,
	.install = uf__uffd_install,
	.park = uf__uffd_park,
	.release = uf__uffd_release,
	.park_run = uf__uffd_park_run,
	.release_run = uf__uffd_release_run,
	.zap = uf__uffd_zap,
	.protect = uf__uffd_protect,
	.stage_get = uf__uffd_stage_get,
	.stage_put = uf__uffd_stage_put,
	.install_clean = uf__uffd_install_clean,
	.install_frames = uf__uffd_install_frames,
	.written = uf__uffd_written,
	.written_scan = uf__uffd_written_scan,
	.install_huge = uf__uffd_install_huge,
};

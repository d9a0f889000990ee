/* SPDX-License-Identifier: MIT */
/*
 * region.h - a mapped region, its pager state, and the engine interface.
 *
 * Layers: region.c (public API, engine choice) -> pager.c (block table,
 * budget, eviction, write-back) -> an engine (how bytes become visible and
 * how writes are noticed). The pager speaks to engines only through
 * struct uf__engine_ops.
 */
#ifndef UF_REGION_H
#define UF_REGION_H

#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"
#include "store.h"

/* ---- frames: one per block of RAM budget ---- */

/* Frame state word: kind in the low byte, flags above. Transitions happen
 * under the region lock, except that the owner of a LOADING or BUSY frame
 * publishes the next state with an exchange and wakes waiters. */
enum {
	F_FREE = 0,
	F_LOADING = 1, /* owner is reading the store into the frame */
	F_ACTIVE = 2,  /* mapped at its block */
	F_PARKED = 3,  /* unmapped, data kept in the frame (inactive list) */
	F_BUSY = 4,    /* owner is evicting / writing back / changing protection */
	F_KIND = 0xff,
	F_DIRTY = 1u << 8,   /* changed since last written back; set (also on a
			      * LOADING or BUSY frame) before the block is
			      * mapped writable, so a sync never misses a write
			      * another thread already saw complete */
	F_RA = 1u << 9,      /* PARKED by background read-ahead, never mapped:
			      * its first access is no reactivation (pager.c) */
	F_MOVED = 1u << 10,  /* LOADING, and its page moved in: writable for a
			      * moment with no write tracked, so a sync waits
			      * for its content check (pager.c, load_recycled) */
	F_WAITERS = 1u << 31 /* someone sleeps on the futex: wake on change */
};

enum { L_NONE = 0, L_ACTIVE = 1, L_INACTIVE = 2 };

struct uf__frame {
	_Atomic uint32_t state;
	uint32_t prev, next; /* list links (frame indices), under the lock */
	uint8_t list;        /* L_* */
	_Atomic uint16_t gen; /* bumped by every state change (pager.c: publish) */
	uint64_t block;      /* the block held (not FREE) */
	uint64_t clean_hash; /* hash of what the store holds for the block
			      * (asynchronous write tracking) */
};

/* A slot of the block table: key and value side by side, so a lookup or
 * an insert touches one cache line (a random fault's block is a cache and
 * TLB miss; separate key and value arrays cost two). */
struct uf__hslot {
	uint64_t key; /* block + 1; 0 = empty slot */
	uint32_t val; /* frame index */
	uint32_t pad;
};

struct uf__list {
	uint32_t head, tail, count;
};

#define UF__NIL UINT32_MAX

/* The fewest frames a region gets, whatever its budget (capped at its
 * blocks), and the fewest it keeps mapped (not parked): what one
 * instruction may need at once. x86's movs reads one operand and writes
 * another, each possibly across a block boundary; code run from the region
 * adds the two blocks its bytes span. */
static inline uint32_t uf__frames_floor(int prot) { return prot & PROT_EXEC ? 6 : 4; }

struct uf_region;
struct uf__range;

/*
 * The engine interface. "frame" f is a unit of RAM; blk the block index.
 * Functions marked UF_SIGCTX may run in the faulting thread's signal handler
 * and must not allocate or lock.
 */
struct uf__engine_ops {
	const char *name;
	int id; /* enum uf_engine */
	/* 0 if this process may use the engine, else -errno (why not). */
	int (*probe)(void);
	/* Reserve the address range (r->base, r->len), set up the frame pool for
	 * r->nframes frames, register for faults. May lower r->nframes if the
	 * engine cannot hold that many (the pager is set up after attach). On
	 * failure, leave nothing behind. */
	int (*attach)(struct uf_region *r);
	void (*detach)(struct uf_region *r);
	/* Where the pager writes a block's bytes before install, and where a
	 * parked block's bytes can be read. */
	UF_SIGCTX void *(*frame_buf)(struct uf_region *r, uint32_t f, uint64_t blk);
	/* Make the frame's bytes visible at blk, atomically for every thread.
	 * writable=false: installed write-protected (writes fault). */
	UF_SIGCTX int (*install)(struct uf_region *r, uint32_t f, uint64_t blk, size_t len,
				 bool writable);
	/* Unmap blk, keeping its bytes at frame_buf(f). */
	UF_SIGCTX int (*park)(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
	/* Optional: forget a mapped clean block outright (cheaper than park +
	 * release). */
	UF_SIGCTX int (*zap)(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
	/* The frame no longer holds blk (may release RAM). Optional. */
	UF_SIGCTX void (*release)(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
	/* Optional, for blocks of one page, in batches (a read-ahead window's
	 * evictions): park the mapped run of len bytes from b0 into frames
	 * f0, f0 + 1, ... with one call (on failure *done bytes were parked),
	 * and release the frames f0 .. f0 + n - 1 of evicted victims with one
	 * call (as release would each, for a block that is not being faulted
	 * in). */
	UF_SIGCTX int (*park_run)(struct uf_region *r, uint32_t f0, uint64_t b0, size_t len,
				  size_t *done);
	UF_SIGCTX void (*release_run)(struct uf_region *r, uint32_t f0, unsigned n);
	/* Write-protect (on) or open (off) a mapped block. */
	UF_SIGCTX int (*protect)(struct uf_region *r, uint64_t blk, size_t len, bool on);
	/* Optional, for batched loads of clean blocks (read-ahead): a staging
	 * buffer of len bytes (NULL if none is free now), and an install of
	 * the len bytes there at blk, write-protected, with one call. */
	UF_SIGCTX void *(*stage_get)(struct uf_region *r, size_t len, unsigned *token);
	UF_SIGCTX void (*stage_put)(struct uf_region *r, unsigned token);
	UF_SIGCTX int (*install_clean)(struct uf_region *r, uint64_t blk, size_t len, const void *src);
	/* Optional, for a window of clean one-page blocks in adjacent frames
	 * f0, f0 + 1, ... whose slots (frame_buf) the pager filled: installs
	 * the len bytes there at blk with one call, moving the slots' pages
	 * in (no allocation, no copy) where the engine can, copying them
	 * write-protected where it cannot; the slots are empty after it. A
	 * moved page arrives writable and is write-protected right after the
	 * move: a write that lands in between leaves no trace but the bytes,
	 * so the pager compares each block with its content hash afterwards.
	 * *done: bytes installed from the start (len on success); on a
	 * failure those may be unprotected and count as written. */
	UF_SIGCTX int (*install_frames)(struct uf_region *r, uint32_t f0, uint64_t blk, size_t len,
					size_t *done);
	/* Asynchronous write tracking (the engine sets r->async_wp): writes to
	 * protected blocks are not faults, so the pager asks. written(): was a
	 * page of the mapped block written since it was protected? Protects
	 * those pages again in the same step; 1, 0 or -errno. Called by the
	 * block's owner. written_scan(): the blocks of [b0, b1) with written
	 * pages (up to max, ascending); with protect, protects those pages
	 * again in the same step (one pass for a whole sync). Count or -errno. */
	UF_SIGCTX int (*written)(struct uf_region *r, uint64_t blk, size_t len);
	/* Optional: a SIGBUS in a region of an engine that does not raise one
	 * for missing pages (the handler-thread engine poisons a page to hand a
	 * failed load to the faulting thread). Takes over the reference on rg;
	 * returns as uf__region_fault does. */
	UF_SIGCTX int (*sigbus)(const struct uf__range *rg, siginfo_t *si, void *uc);
	long (*written_scan)(struct uf_region *r, uint64_t b0, uint64_t b1, bool protect,
			     uint64_t *out, size_t max);
	/* Optional, where attach set r->hsize (huge-page windows, pager.c
	 * load_huge): installs the r->hsize bytes the pager wrote at r->hstage
	 * at the huge-aligned blk, write-protected. 1: moved in as one huge
	 * page, writable until it was protected (the pager compares the bytes
	 * afterwards); 0: copied (the stage got no huge page; r->hon is then
	 * cleared, later windows take the normal path); -errno: failed, with
	 * any part of the range possibly mapped (the caller unmaps it). */
	UF_SIGCTX int (*install_huge)(struct uf_region *r, uint64_t blk);
};

/* Read-ahead bounds: blocks per batch, bytes per batch. */
#define UF__RA_MAX 64
#define UF__RA_MAX_BYTES ((size_t)256 << 10)

extern const struct uf__engine_ops uf__engine_uffd;
extern const struct uf__engine_ops uf__engine_uffd_thread;
extern const struct uf__engine_ops uf__engine_signal;

struct uf_region {
	/* geometry (immutable after uf_map) */
	uintptr_t base;
	size_t len;        /* mapped bytes, page aligned */
	size_t bs;         /* block size */
	unsigned bshift;
	uint64_t nblocks;
	uint64_t soff;     /* store offset of the first byte */
	uint64_t data_len; /* bytes of the region backed by the store */
	uintptr_t data_end;/* base + data_len rounded up to a page: SIGBUS past it */
	int prot;
	bool writable;
	bool async_wp; /* writes are tracked without faults (engine: written()) */
	bool direct;   /* clean blocks installed straight from the store's bytes
			* (uf__store_peek), not from a staging copy */
	unsigned flags;
	uf_store *store;
	uf_error_fn on_error;
	void *error_arg;
	unsigned writeback_ms; /* background write-back period, 0 = none */

	/* the list of live regions (region.c: exit and background write-back) */
	struct uf_region *lnext, *lprev;
	uint64_t wb_due;   /* CLOCK_MONOTONIC ns of the next background pass */
	int wb_busy;       /* a background pass is running (list lock) */
	pid_t pid;         /* the process that mapped it (fork children may not use it) */

	/* engine */
	const struct uf__engine_ops *eng;
	int uffd;          /* userfaultfd engines */
	void *pool;        /* frame pool (engine-defined) */
	unsigned eng_flags;/* engine-private */
	void *eng_priv;

	_Atomic long refs; /* fault handlers inside the pager (registry.h) */
	/* Serialises uf_sync/uf_unmap write-back under asynchronous tracking:
	 * a sync's scan clears the written marks it then owes the store, so a
	 * second sync must not return before the first has written them. */
	pthread_mutex_t sync_lock;

	/* read-ahead: the block a sequential run would miss next, its window */
	_Atomic uint64_t ra_next;
	_Atomic unsigned ra_win;
	unsigned ra_max;
	_Atomic uint32_t stage_busy; /* engine staging slots in use (bitmap) */
	/* Background read-ahead, for stores with store threads (pager.c): the
	 * job records (NULL: none), which are in use (bitmap), and the first
	 * block of the window a job loads last (UINT64_MAX: none). */
	struct uf__ra_job *ra_jobs;
	unsigned ra_depth; /* windows read ahead at most */
	_Atomic uint32_t ra_busy;
	_Atomic uint64_t ra_mark;
	/* Huge-page windows (pager.c, load_huge): the huge page size where the
	 * engine set the region up for them (0: not), its staging buffers, the
	 * frames of the window being loaded (hbusy: in use), and whether the
	 * pager takes the path (cleared where it stops paying). */
	size_t hsize;
	void *hstage;
	void *href;    /* a copy of the window's bytes, for stores we cannot peek */
	/* A bit per huge-page slot of the region that may have a page table
	 * (a block was installed there other than as a huge page, or a huge
	 * page there was split): a huge page moved there would be split. */
	_Atomic uint64_t *htouched;
	bool hpeek;    /* the store's bytes can be read in place (uf__store_peek) */
	uint32_t *hframes;
	_Atomic bool hbusy, hon;

	/* pager: everything below is guarded by lock */
	uf__spinlock lock;
	struct uf__frame *frames;
	uint32_t nframes;
	uint32_t fresh;     /* frames [fresh, nframes) were never used */
	uint32_t free_head; /* free list through frame.next */
	struct uf__list active, inactive;
	uint32_t inactive_target;
	struct uf__hslot *htab; /* block -> frame, open addressing */
	uint64_t hmask;     /* capacity - 1: grows with the frames used (pager.c) */
	uint64_t hmax;      /* the capacity both tables are reserved for */
	struct uf__hslot *htab_alt; /* the other table: the next doubling rehashes into it */
	uint32_t *dmap;     /* or, where it is no larger: frame + 1 per block,
			     * 0 = not resident (lazily zeroed) */

	/* statistics (relaxed atomics) */
	_Atomic uint64_t st_faults, st_loads, st_evictions, st_writebacks, st_write_faults,
		st_reactivations, st_dirty, st_resident, st_resident_peak;
};

/* pager.c */
int uf__pager_init(struct uf_region *r);
void uf__pager_fini(struct uf_region *r);
/* The pager's own verdicts on a fault, below the errno range: a store may
 * fail with any errno (-EACCES, -EFAULT too), and its error must reach the
 * program as a failed load, never be mistaken for one of these. */
#define UF__E_PROT (-4096 - 1)     /* the program broke the region's protection */
#define UF__E_PAST_END (-4096 - 2) /* past the end of the store */
/* Serves a fault at addr. 0: retry the access. UF__E_PROT: a protection
 * violation the program made itself (not ours). UF__E_PAST_END: past the end
 * of the store. Other: the store's error while loading (a negative errno). */
UF_SIGCTX int uf__pager_fault(struct uf_region *r, uintptr_t addr, int access);
/* Turns a failed fault into the documented error: the region's callback or
 * SIGBUS. Returns 0 to retry, or after delivering SIGBUS. */
UF_SIGCTX void uf__pager_fault_error(struct uf_region *r, uintptr_t addr, int err, void *uc);
int uf__pager_sync(struct uf_region *r, uint64_t b0, uint64_t b1);
/* A background write-back pass: the whole region, flushed only if the
 * store was written since its last flush. */
int uf__pager_sync_pass(struct uf_region *r);
int uf__pager_drop(struct uf_region *r, uint64_t b0, uint64_t b1, bool writeback);
int uf__pager_prefetch(struct uf_region *r, uint64_t b0, uint64_t b1);
uint64_t uf__pager_dirty(struct uf_region *r);

/* Huge-page slots (r->htouched): mark [addr, addr + len) as touched, and
 * ask whether the slot holding addr is. */
UF_SIGCTX static inline void uf__huge_touch(struct uf_region *r, uintptr_t addr, size_t len)
{
	if (!r->htouched || !len)
		return;
	uint64_t s0 = (addr - r->base) / r->hsize, s1 = (addr + len - 1 - r->base) / r->hsize;
	for (uint64_t s = s0; s <= s1; s++)
		atomic_fetch_or_explicit(&r->htouched[s / 64], 1ull << (s % 64), memory_order_relaxed);
}
UF_SIGCTX static inline bool uf__huge_touched(const struct uf_region *r, uintptr_t addr)
{
	uint64_t s = (addr - r->base) / r->hsize;
	return atomic_load_explicit(&r->htouched[s / 64], memory_order_relaxed) >> (s % 64) & 1;
}

/* Block geometry helpers. */
static inline size_t uf__blk_install_len(const struct uf_region *r, uint64_t blk)
{
	uintptr_t a = r->base + (blk << r->bshift);
	uintptr_t e = a + r->bs < r->data_end ? a + r->bs : r->data_end;
	return e > a ? (size_t)(e - a) : 0;
}
static inline size_t uf__blk_data_len(const struct uf_region *r, uint64_t blk)
{
	uint64_t o = blk << r->bshift;
	if (o >= r->data_len)
		return 0;
	return r->data_len - o < r->bs ? (size_t)(r->data_len - o) : r->bs;
}
static inline void *uf__blk_addr(const struct uf_region *r, uint64_t blk)
{
	return (void *)(r->base + (blk << r->bshift));
}

/* engine.c */
const struct uf__engine_ops *uf__engine_pick(int want, int *err);
const struct uf__engine_ops *uf__engine_next(const struct uf__engine_ops *e);

#endif

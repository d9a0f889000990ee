/* SPDX-License-Identifier: MIT */
/*
 * pager.c - the block table of a region: which block sits in which frame,
 * the RAM budget, eviction, write-back and discard.
 *
 * Every frame is one block's worth of RAM. A hash table maps resident blocks
 * to frames. Resident frames sit on one of two lists, as in the kernel's
 * page reclaim: the active list (mapped blocks) and the inactive list
 * (blocks unmapped but kept, "parked"). A fault on a parked block maps it
 * again without a store read and moves it to the active list; a frame is
 * reused from the tail of the inactive list. This keeps recently re-used
 * blocks resident without any access bits (userfaultfd gives none after a
 * page is mapped), and does much better than FIFO on skewed access.
 *
 * Locking: one spinlock per region guards the table, lists and frame state
 * changes, and is held for a few instructions only: never across a store
 * call, an engine call (system call) or an access to region memory. A frame
 * that is being loaded or changed is marked LOADING/BUSY; its owner works
 * without the lock and publishes the next state with an atomic exchange,
 * waking waiters through a futex on the state word. Everyone who waited
 * looks the block up again after waking.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arch/arch.h"
#include "fault.h"
#include "region.h"
#include "registry.h"
#include "safe_access.h"
#include "sanitizer.h"

/* M_UNKNOWN: the hardware did not say (qemu-user gives no ESR): load as a
 * read; a fault on the mapped block then is a read that raced with its
 * load, or a write (see unknown_on_mapped). */
enum { M_READ, M_WRITE, M_PREFETCH, M_UNKNOWN };

/* ------------------------------------------------------------------ */
/* hash table block -> frame, open addressing, under r->lock           */

static inline uint64_t hhome(const struct uf_region *r, uint64_t key)
{
	key *= 0x9E3779B97F4A7C15ull;
	return (key ^ (key >> 29)) & r->hmask;
}

/* Regions whose blocks are few next to the table a hash would need (every
 * region without a budget, most with one) index a plain array instead:
 * smaller (4 bytes a block against 64 a frame), so it mostly stays in the
 * cache, and a lookup is one load. A random fault's hash probe was a cache
 * and TLB miss, 0.28 us of the 0.5 us of the library's own code per fault
 * (perf, ufbench rand-read). */
UF_SIGCTX static uint32_t hfind(const struct uf_region *r, uint64_t blk)
{
	if (r->dmap) {
		uint32_t v = r->dmap[blk];
		return v ? v - 1 : UF__NIL;
	}
	uint64_t key = blk + 1;
	for (uint64_t i = hhome(r, key);; i = (i + 1) & r->hmask) {
		const struct uf__hslot *s = &r->htab[i];
		if (s->key == key)
			return s->val;
		if (s->key == 0)
			return UF__NIL;
	}
}

UF_SIGCTX static void hinsert(struct uf_region *r, uint64_t blk, uint32_t f)
{
	if (r->dmap) {
		uf__assert(r->dmap[blk] == 0);
		r->dmap[blk] = f + 1;
		return;
	}
	uint64_t key = blk + 1, i = hhome(r, key);
	while (r->htab[i].key != 0)
		i = (i + 1) & r->hmask;
	r->htab[i].key = key;
	r->htab[i].val = f;
}

UF_SIGCTX static void hremove_hashed(struct uf_region *r, uint64_t blk)
{
	uint64_t key = blk + 1, i = hhome(r, key);
	while (r->htab[i].key != key) {
		uf__assert(r->htab[i].key != 0);
		i = (i + 1) & r->hmask;
	}
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (uint64_t j = i;;) {
		j = (j + 1) & r->hmask;
		if (r->htab[j].key == 0)
			break;
		uint64_t k = hhome(r, r->htab[j].key);
		bool move = (j > i) ? (k <= i || k > j) : (k <= i && k > j);
		if (move) {
			r->htab[i] = r->htab[j];
			i = j;
		}
	}
	r->htab[i].key = 0;
}

UF_SIGCTX static void hremove(struct uf_region *r, uint64_t blk)
{
	if (!r->dmap) {
		hremove_hashed(r, blk);
		return;
	}
	uf__assert(r->dmap[blk] != 0);
	r->dmap[blk] = 0;
}

/* The table starts small and doubles as frames come into use, so its
 * memory follows what is resident, not the budget: sized from the budget
 * (capped at RAM), a 1 TiB budget over a 64 GiB region gave a 384 MiB
 * table whose random slots cost 270 MiB of RSS for 256 MiB of data. Both
 * tables are reserved at the largest capacity (untouched pages cost
 * nothing); a doubling rehashes into the other one and releases the
 * pages of the old one (regions small enough for the plain array, dmap,
 * never grow). It runs under the lock, from take_free, when the
 * frames in use reach a quarter of the capacity (the load stays at most
 * half: up to two keys a frame): at most log2(hmax / H_MIN) times in a
 * region's life, each costing about 10 ns per slot, a few times the
 * cost of the loads that filled it. */
enum { H_MIN = 1024 };

UF_SIGCTX static void hgrow(struct uf_region *r)
{
	struct uf__hslot *old = r->htab;
	uint64_t ocap = r->hmask + 1;
	r->htab = r->htab_alt;
	r->htab_alt = old;
	r->hmask = 2 * ocap - 1;
	for (uint64_t i = 0; i < ocap; i++)
		if (old[i].key)
			hinsert(r, old[i].key - 1, old[i].val);
	/* The next doubling rehashes into this one: it must read as zeros. */
	if (madvise(old, ocap * sizeof(*old), MADV_DONTNEED))
		memset(old, 0, ocap * sizeof(*old));
}

/* ------------------------------------------------------------------ */
/* lists and frame states, under r->lock                               */

static inline struct uf__list *list_of(struct uf_region *r, int which)
{
	return which == L_ACTIVE ? &r->active : &r->inactive;
}

UF_SIGCTX static void list_push_head(struct uf_region *r, int which, uint32_t f)
{
	struct uf__list *l = list_of(r, which);
	struct uf__frame *fr = &r->frames[f];
	uf__assert(fr->list == L_NONE);
	fr->list = (uint8_t)which;
	fr->prev = UF__NIL;
	fr->next = l->head;
	if (l->head != UF__NIL)
		r->frames[l->head].prev = f;
	else
		l->tail = f;
	l->head = f;
	l->count++;
}

UF_SIGCTX static void list_remove(struct uf_region *r, uint32_t f)
{
	struct uf__frame *fr = &r->frames[f];
	if (fr->list == L_NONE)
		return;
	struct uf__list *l = list_of(r, fr->list);
	if (fr->prev != UF__NIL)
		r->frames[fr->prev].next = fr->next;
	else
		l->head = fr->next;
	if (fr->next != UF__NIL)
		r->frames[fr->next].prev = fr->prev;
	else
		l->tail = fr->prev;
	l->count--;
	fr->list = L_NONE;
}

/* Publishes a frame's next state; wakes whoever waits for the old one. */
UF_SIGCTX static void publish(struct uf__frame *fr, uint32_t st)
{
	/* Only the frame's owner publishes: no read-modify-write needed. */
	atomic_store_explicit(&fr->gen, atomic_load_explicit(&fr->gen, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	uint32_t old = atomic_exchange_explicit(&fr->state, st, memory_order_acq_rel);
	if (old & F_WAITERS)
		uf__futex_wake_all(&fr->state);
}

/* Called with the lock held; drops it and sleeps until st changes. */
UF_SIGCTX static void wait_unlock(struct uf_region *r, struct uf__frame *fr, uint32_t st)
{
	atomic_fetch_or_explicit(&fr->state, F_WAITERS, memory_order_relaxed);
	uf__spin_unlock(&r->lock);
	uf__futex_wait(&fr->state, st | F_WAITERS);
}

static inline bool idle(uint32_t st)
{
	uint32_t k = st & F_KIND;
	return k == F_ACTIVE || k == F_PARKED;
}

UF_SIGCTX static uint32_t take_free(struct uf_region *r)
{
	uint32_t f = r->free_head;
	if (f != UF__NIL) {
		r->free_head = r->frames[f].next;
		return f;
	}
	if (r->fresh < r->nframes) {
		if (r->htab && 4ull * (r->fresh + 1) > r->hmask + 1 && r->hmask + 1 < r->hmax)
			hgrow(r);
		return r->fresh++;
	}
	return UF__NIL;
}

/*
 * Frees the owned frame f, under the lock: its state becomes F_FREE before
 * it is on the free list, since from then on another thread may take it
 * (take_free) and make it LOADING. Publishing FREE after the unlock, as
 * this once did, could overwrite that owner's LOADING: a lookup of its new
 * block then found a frame in no known state and reactivated it as parked
 * while it was being loaded (two installs of one block; pages left mapped
 * for a block the pager no longer held, whose writes were never written
 * back; test_engine_stress, minutes into a run, on every engine). Returns
 * whether someone waits on the old state: call free_wake() after the
 * unlock then.
 */
UF_SIGCTX static bool put_free(struct uf_region *r, uint32_t f)
{
	uint32_t old = atomic_exchange_explicit(&r->frames[f].state, F_FREE, memory_order_acq_rel);
	r->frames[f].next = r->free_head;
	r->free_head = f;
	return old & F_WAITERS;
}

/* Wakes the waiters of a frame freed by put_free (spurious for whoever
 * owns it by now: waiters look again). */
UF_SIGCTX static void free_wake(struct uf__frame *fr) { uf__futex_wake_all(&fr->state); }

/* An idle frame from the tail of a list (least recently brought in), removed
 * from the list. Busy frames stay where they are and are skipped, and so
 * are the nskip frames in skip (victims that just failed to be evicted). */
UF_SIGCTX static uint32_t take_tail_skip(struct uf_region *r, int which, const uint32_t *skip,
					 unsigned nskip)
{
	for (uint32_t f = list_of(r, which)->tail; f != UF__NIL; f = r->frames[f].prev) {
		if (!idle(atomic_load_explicit(&r->frames[f].state, memory_order_relaxed)))
			continue;
		bool skipped = false;
		for (unsigned i = 0; i < nskip && !skipped; i++)
			skipped = skip[i] == f;
		if (skipped)
			continue;
		list_remove(r, f);
		return f;
	}
	return UF__NIL;
}

UF_SIGCTX static uint32_t take_tail(struct uf_region *r, int which)
{
	return take_tail_skip(r, which, NULL, 0);
}

UF_SIGCTX static inline void stat_add(_Atomic uint64_t *c, int64_t v)
{
	atomic_fetch_add_explicit(c, (uint64_t)v, memory_order_relaxed);
}

UF_SIGCTX static void resident_add(struct uf_region *r, int64_t v)
{
	uint64_t now = atomic_fetch_add_explicit(&r->st_resident, (uint64_t)v, memory_order_relaxed) + (uint64_t)v;
	uint64_t peak = atomic_load_explicit(&r->st_resident_peak, memory_order_relaxed);
	while (now > peak && !atomic_compare_exchange_weak_explicit(&r->st_resident_peak, &peak, now,
								   memory_order_relaxed, memory_order_relaxed))
		;
}

/* ------------------------------------------------------------------ */
/* store calls                                                          */

/* The region whose store this thread is calling now (the innermost). A
 * store callback that touches its own region faults while the thread owns
 * a frame of it (the block being loaded, a victim being written): waiting
 * for a frame then may mean waiting for itself, so such a nested fault
 * fails with -EDEADLK instead (SIGBUS, or -EFAULT from uf_try_read). */
static __thread struct uf_region *t_in_store __attribute__((tls_model("initial-exec")));

UF_SIGCTX static int store_read(struct uf_region *r, uint64_t blk, void *buf, size_t len)
{
	struct uf_region *outer = t_in_store;
	t_in_store = r;
	int e = uf__store_read(r->store, r->soff + (blk << r->bshift), buf, len);
	t_in_store = outer;
	return e;
}

UF_SIGCTX static int store_write(struct uf_region *r, uint64_t blk, const void *buf, size_t len)
{
	struct uf_region *outer = t_in_store;
	t_in_store = r;
	int e = uf__store_write(r->store, r->soff + (blk << r->bshift), buf, len);
	t_in_store = outer;
	return e;
}

/* A fault of unknown access on a mapped block of a read-only region: a
 * read that raced with the block's load (it faulted before the mapping,
 * we looked after), or a write. A read of the mapped block cannot fault
 * again, so the first such fault retries, and a second one by the same
 * thread on the same frame, with no state change between, is a write
 * (UF__E_PROT). Per thread: each faulting thread has its own retry. */
static __thread struct {
	const struct uf_region *r;
	uint64_t blk;
	uint32_t f;
	uint16_t gen;
} t_unknown __attribute__((tls_model("initial-exec")));

UF_SIGCTX static int unknown_on_mapped(const struct uf_region *r, uint64_t blk, uint32_t f)
{
	uint16_t gen = atomic_load_explicit(&r->frames[f].gen, memory_order_relaxed);
	bool again = t_unknown.r == r && t_unknown.blk == blk && t_unknown.f == f &&
		     t_unknown.gen == gen;
	t_unknown.r = again ? NULL : r;
	t_unknown.blk = blk;
	t_unknown.f = f;
	t_unknown.gen = gen;
	return again ? UF__E_PROT : 0;
}

/* Whether this thread may sleep until a frame of r changes: not inside
 * r's store (above), nor on one of its store threads, where the block
 * waited for may be loading through that very thread (the faulting
 * thread's hand-off) or through store threads all waiting the same way. */
UF_SIGCTX static inline bool may_sleep(const struct uf_region *r)
{
	return t_in_store != r && !uf__store_own_thread(r->store);
}

/* ------------------------------------------------------------------ */
/* moving frames between states (lock not held; caller owns the frame)  */

static inline uint64_t rotl(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

/* A 64-bit content hash (4 lanes of multiply-rotate; ~0.2 us per 4 KiB). */
UF_SIGCTX static uint64_t block_hash(const void *p, size_t len)
{
	const uint64_t *w = p;
	const uint64_t k = 0x9E3779B97F4A7C15ull;
	uint64_t a = len, b = ~len, c = k, d = 0;
	size_t n = len / 8, i = 0;
	for (; i + 4 <= n; i += 4) {
		a = rotl(a ^ (w[i] * k), 29) * 5;
		b = rotl(b ^ (w[i + 1] * k), 31) * 7;
		c = rotl(c ^ (w[i + 2] * k), 27) * 9;
		d = rotl(d ^ (w[i + 3] * k), 33) * 11;
	}
	for (; i < n; i++)
		a = rotl(a ^ (w[i] * k), 29) * 5;
	uint64_t h = a ^ rotl(b, 17) ^ rotl(c, 41) ^
		     rotl(d, 53);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 29);
}

/*
 * Parks the mapped block blk of the owned frame f, settling its F_DIRTY bit
 * in *st. Under asynchronous write tracking a write leaves no fault and
 * cannot be held off: the scan before the move finds the writes made before
 * it (and protects the pages again), and the content check after it (the
 * parked bytes, which nobody can change any more, against the hash of what
 * the store holds) finds one that slipped in between, or whose mark a
 * sync's scan took. A scan error counts as written. The scan's answer is
 * kept even if the move fails: the marks it cleared are gone.
 */
UF_SIGCTX static int park_settled(struct uf_region *r, uint32_t f, uint64_t blk, uint32_t *st)
{
	size_t ilen = uf__blk_install_len(r, blk);
	bool check = r->async_wp && !(*st & F_DIRTY);
	bool written = check && r->eng->written(r, blk, ilen) != 0;
	int e = r->eng->park(r, f, blk, ilen);
	if (!e && check && !written)
		written = block_hash(r->eng->frame_buf(r, f, blk), ilen) != r->frames[f].clean_hash;
	if (written) {
		*st |= F_DIRTY;
		stat_add(&r->st_dirty, 1);
	}
	return e;
}

/* Keeps the inactive list at its target by parking the coldest active
 * block. Called after a block was made active. */
UF_SIGCTX static bool balance1(struct uf_region *r);

/* After n blocks were made active: park up to n + 1. The inactive list
 * must keep up with batched loads, and must also grow to its target: each
 * load takes a victim from it, so parking only as many as were loaded would
 * keep it at whatever size it had when the budget filled up (often one),
 * and hot blocks would be evicted straight from the FIFO-ordered active
 * list. balance1 stops at the target. */
UF_SIGCTX static unsigned balance_run(struct uf_region *r, unsigned n);

UF_SIGCTX static void balance(struct uf_region *r, unsigned n)
{
	unsigned i = 0;
	if (n > 1 && r->eng->park_run && r->bs == uf__page_size())
		i = balance_run(r, n);
	for (; i <= n; i++)
		if (!balance1(r))
			break;
}

/* Whether one more active block may be parked, k already taken off the
 * active list for parking (lock held). Only under pressure: a budget that
 * holds every block touched so far is not exceeded even when every frame
 * is in use, and parking then costs a fault for nothing (every park would
 * be undone by a reactivation, which parks the next block: a budget the
 * size of the region faulted each block twice). Pressure starts with the
 * first eviction: from then on a load needs a victim, and the inactive
 * list gives it a second chance. */
UF_SIGCTX static bool may_park(const struct uf_region *r, unsigned k)
{
	bool full = r->free_head == UF__NIL && r->fresh >= r->nframes;
	bool pressure = full && atomic_load_explicit(&r->st_evictions, memory_order_relaxed) != 0;
	return pressure && r->inactive.count + k < r->inactive_target && r->active.count > 1;
}

/* Parks the coldest active block if the inactive list is below its
 * target; false if there was nothing to do. */
UF_SIGCTX static bool balance1(struct uf_region *r)
{
	/* No eviction yet: no pressure (below), known without the lock. */
	if (atomic_load_explicit(&r->st_evictions, memory_order_relaxed) == 0)
		return false;
	uf__spin_lock(&r->lock);
	if (!may_park(r, 0)) {
		uf__spin_unlock(&r->lock);
		return false;
	}
	uint32_t p = take_tail(r, L_ACTIVE);
	if (p == UF__NIL) {
		uf__spin_unlock(&r->lock);
		return false;
	}
	struct uf__frame *fr = &r->frames[p];
	uint32_t st = atomic_load(&fr->state);
	uint64_t blk = fr->block;
	atomic_store(&fr->state, F_BUSY | (st & (F_DIRTY | F_WAITERS)));
	uf__spin_unlock(&r->lock);

	int e = park_settled(r, p, blk, &st);
	uf__spin_lock(&r->lock);
	list_push_head(r, e ? L_ACTIVE : L_INACTIVE, p);
	uf__spin_unlock(&r->lock);
	publish(fr, (e ? F_ACTIVE : F_PARKED) | (st & F_DIRTY));
	return !e;
}

/* Under pressure with the inactive list below its target: takes the
 * coldest whole page blocks (up to n + 1) off the active list in one lock
 * round, for callers that made n blocks active. */
UF_SIGCTX static unsigned take_coldest(struct uf_region *r, unsigned n, uint32_t *fs, uint32_t *sts)
{
	unsigned k = 0;
	if (atomic_load_explicit(&r->st_evictions, memory_order_relaxed) == 0)
		return 0;
	uf__spin_lock(&r->lock);
	while (k <= n && may_park(r, k)) {
		uint32_t p = take_tail(r, L_ACTIVE);
		if (p == UF__NIL)
			break;
		struct uf__frame *fr = &r->frames[p];
		uint32_t st = atomic_load(&fr->state);
		atomic_store(&fr->state, F_BUSY | (st & (F_DIRTY | F_WAITERS)));
		fs[k] = p;
		sts[k++] = st;
	}
	uf__spin_unlock(&r->lock);
	return k;
}

/*
 * Parks the owned mapped blocks of frames fs[0..m) (frame fs[0] + i holds
 * block b0 + i) as park_settled would each, with one move for the run and,
 * under asynchronous write tracking, one scan for its writes. What the
 * move did not do is parked block by block. Errors land in es[].
 */
UF_SIGCTX static void park_run_settled(struct uf_region *r, const uint32_t *fs, uint32_t *sts,
				       int *es, unsigned m)
{
	uint32_t f0 = fs[0];
	uint64_t b0 = r->frames[f0].block;
	size_t ps = uf__page_size(), done = 0;
	/* Written blocks (the scan protects them again, as park_settled's
	 * does). A full answer may have left some unreported, with their
	 * marks taken: count every block from the last reported on as
	 * written (a spurious write-back at worst). */
	enum { NW = 16 };
	uint64_t w[NW];
	long nw = 0;
	uint64_t written_from = b0 + m;
	if (r->async_wp) {
		nw = r->eng->written_scan(r, b0, b0 + m, true, w, NW);
		if (nw < 0)
			written_from = b0; /* a scan error counts as written */
		else if (nw == NW)
			written_from = w[NW - 1];
	}
	int e = r->eng->park_run(r, f0, b0, (size_t)m * ps, &done);
	size_t moved = e ? done / ps : m;
	long wi = 0;
	for (unsigned i = 0; i < m; i++) {
		uint64_t blk = b0 + i;
		es[i] = 0;
		if (!r->async_wp || (sts[i] & F_DIRTY)) {
			if (i >= moved)
				es[i] = park_settled(r, fs[i], blk, &sts[i]);
			continue;
		}
		while (wi < nw && w[wi] < blk)
			wi++;
		bool written = blk >= written_from || (wi < nw && w[wi] == blk);
		if (written) {
			sts[i] |= F_DIRTY;
			stat_add(&r->st_dirty, 1);
		}
		if (i >= moved) {
			/* Not moved: park it alone (dirty now if the scan said so;
			 * otherwise its own scan and content check settle it). */
			es[i] = park_settled(r, fs[i], blk, &sts[i]);
		} else if (!written && block_hash(r->eng->frame_buf(r, fs[i], blk), ps) !=
						r->frames[fs[i]].clean_hash) {
			sts[i] |= F_DIRTY;
			stat_add(&r->st_dirty, 1);
		}
	}
}

/* balance() for a batch: parks up to n + 1 coldest blocks, adjacent ones
 * (both blocks and frames in a row, as a scan leaves them) with one call.
 * How many it parked; fewer than n + 1 means the list is at its target. */
UF_SIGCTX static unsigned balance_run(struct uf_region *r, unsigned n)
{
	uint32_t fs[UF__RA_MAX + 1], sts[UF__RA_MAX + 1];
	int es[UF__RA_MAX + 1];
	if (n > UF__RA_MAX)
		n = UF__RA_MAX;
	unsigned k = take_coldest(r, n, fs, sts);
	if (!k)
		return 0;
	/* In block order (the active tail gives a window last block first). */
	for (unsigned i = 1; i < k; i++)
		for (unsigned j = i; j > 0 && r->frames[fs[j]].block < r->frames[fs[j - 1]].block; j--) {
			uint32_t t = fs[j], u = sts[j];
			fs[j] = fs[j - 1];
			sts[j] = sts[j - 1];
			fs[j - 1] = t;
			sts[j - 1] = u;
		}
	for (unsigned i = 0, j; i < k; i = j) {
		for (j = i + 1; j < k && fs[j] == fs[j - 1] + 1 &&
				r->frames[fs[j]].block == r->frames[fs[j - 1]].block + 1;
		     j++)
			;
		if (j - i > 1) {
			park_run_settled(r, fs + i, sts + i, es + i, j - i);
		} else {
			es[i] = park_settled(r, fs[i], r->frames[fs[i]].block, &sts[i]);
		}
	}
	/* The lowest block nearest the tail: the victims of the next window
	 * then come in frame order too, and that window parks as a run. */
	uf__spin_lock(&r->lock);
	for (unsigned i = 0; i < k; i++)
		list_push_head(r, es[i] ? L_ACTIVE : L_INACTIVE, fs[i]);
	uf__spin_unlock(&r->lock);
	unsigned parked = 0;
	for (unsigned i = 0; i < k; i++) {
		publish(&r->frames[fs[i]], (es[i] ? F_ACTIVE : F_PARKED) | (sts[i] & F_DIRTY));
		parked += !es[i];
	}
	return k < n + 1 ? n + 1 : parked;
}

/* Frees the frame f (BUSY, owned) of victim block vblk so it can hold
 * another block. Dirty data is written back first; if that fails the victim
 * stays resident and the error is returned, with *parked telling whether it
 * is still mapped (false) or kept unmapped in its frame (true). defer (may
 * be NULL): on entry, whether the frame's release may be left to the caller
 * (who then gives back a run of frames with one call, release_run); on
 * return, whether it was. */
UF_SIGCTX static int evict_frame(struct uf_region *r, uint32_t f, uint64_t vblk, uint32_t *vstp,
				 bool *parked, bool *defer)
{
	bool may_defer = defer && *defer && r->eng->release_run && r->bs == uf__page_size();
	if (defer)
		*defer = false;
	size_t ilen = uf__blk_install_len(r, vblk);
	int e = 0;
	uint32_t vst = *vstp;
	*parked = (vst & F_KIND) == F_PARKED;
	if (!*parked && !(vst & F_DIRTY) && r->eng->zap && !r->async_wp) {
		e = r->eng->zap(r, f, vblk, ilen);
		if (e)
			return e;
		stat_add(&r->st_evictions, 1);
		return 0;
	}
	if (!*parked) {
		e = park_settled(r, f, vblk, vstp);
		vst = *vstp;
		if (e)
			return e;
		*parked = true;
	}
	if (vst & F_DIRTY) {
		e = store_write(r, vblk, r->eng->frame_buf(r, f, vblk), uf__blk_data_len(r, vblk));
		if (e)
			return e;
		stat_add(&r->st_writebacks, 1);
		stat_add(&r->st_dirty, -1);
	}
	if (may_defer)
		*defer = true;
	else if (r->eng->release)
		r->eng->release(r, f, vblk, ilen);
	stat_add(&r->st_evictions, 1);
	return 0;
}

UF_SIGCTX static void unreserve(struct uf_region *r, uint32_t f, uint64_t blk);

/* Reads block blk into frame f (LOADING, owned, in the table) and maps it. */
UF_SIGCTX static int load(struct uf_region *r, uint32_t f, uint64_t blk, int mode)
{
	struct uf__frame *fr = &r->frames[f];
	size_t ilen = uf__blk_install_len(r, blk), dlen = uf__blk_data_len(r, blk);
	unsigned char *buf = r->eng->frame_buf(r, f, blk);
	int e = store_read(r, blk, buf, dlen);
	if (!e) {
		if (dlen < ilen)
			memset(buf + dlen, 0, ilen - dlen); /* the page holding the store's end */
		stat_add(&r->st_loads, 1);
		bool dirty = mode == M_WRITE && r->writable;
		/* Dirty before it is mapped writable: another thread may write
		 * it and see its write done before we publish, and a uf_sync it
		 * then calls must find the block (see F_DIRTY). */
		if (dirty)
			atomic_fetch_or(&fr->state, F_DIRTY);
		if (!dirty && r->async_wp)
			fr->clean_hash = block_hash(buf, ilen);
		e = r->eng->install(r, f, blk, ilen, dirty);
		if (!e) {
			if (dirty) {
				stat_add(&r->st_dirty, 1);
				/* Under asynchronous tracking no write ever faults: a
				 * first write to a block not yet loaded is a load. */
				if (!r->async_wp)
					stat_add(&r->st_write_faults, 1);
			}
			uf__spin_lock(&r->lock);
			list_push_head(r, L_ACTIVE, f);
			uf__spin_unlock(&r->lock);
			publish(fr, F_ACTIVE | (dirty ? F_DIRTY : 0));
			balance(r, 1);
			return 0;
		}
	}
	if (r->eng->release)
		r->eng->release(r, f, blk, ilen);
	unreserve(r, f, blk);
	return e;
}

/* Under the lock, blk not in the table: a free frame for blk, LOADING and
 * in the table, with the lock released; or UF__NIL, the lock still held. */
UF_SIGCTX static uint32_t reserve_free_locked(struct uf_region *r, uint64_t blk)
{
	uint32_t f = take_free(r);
	if (f == UF__NIL)
		return UF__NIL;
	struct uf__frame *fr = &r->frames[f];
	fr->block = blk;
	fr->list = L_NONE;
	atomic_store(&fr->state, F_LOADING);
	hinsert(r, blk, f);
	uf__spin_unlock(&r->lock);
	resident_add(r, 1);
	return f;
}

/* Takes a frame for block blk, which was not resident: a free one, or the
 * coldest idle one after evicting its block. Returns the frame LOADING and
 * entered in the table, or UF__NIL if blk became resident meanwhile (*err
 * 0) or no frame could be freed (*err set; only when may_wait). Without
 * may_wait (read-ahead) it gives up at once instead of waiting or retrying.
 * defer: as for evict_frame (NULL: release now); the caller must release
 * a deferred frame before anything is written into it. */
UF_SIGCTX static uint32_t reserve_defer(struct uf_region *r, uint64_t blk, bool may_wait, int *err,
					bool *defer)
{
	bool may_defer = defer && *defer;
	if (defer)
		*defer = false;
	unsigned failures = 0;
	uint32_t failed[8]; /* victims that could not be evicted */
	int last_err = 0;
	*err = 0;
	for (;;) {
		uf__spin_lock(&r->lock);
		if (hfind(r, blk) != UF__NIL) {
			uf__spin_unlock(&r->lock);
			return UF__NIL;
		}
		uint32_t f = reserve_free_locked(r, blk);
		if (f != UF__NIL)
			return f;
		/* A victim that failed to be evicted (its write-back failed, or
		 * its store cannot take writes) is not tried again here: the
		 * next coldest frame may be clean. */
		f = take_tail_skip(r, L_INACTIVE, failed, failures);
		if (f == UF__NIL)
			f = take_tail_skip(r, L_ACTIVE, failed, failures);
		if (f == UF__NIL && failures) {
			uf__spin_unlock(&r->lock);
			*err = last_err;
			return UF__NIL;
		}
		if (f == UF__NIL) {
			if (!may_wait) {
				uf__spin_unlock(&r->lock);
				return UF__NIL;
			}
			/* Every frame is being loaded or changed by another thread (the
			 * budget is smaller than the number of faulting threads): sleep
			 * until one of them (the oldest busy one we can name) changes. */
			uint32_t b = r->active.tail != UF__NIL ? r->active.tail : r->inactive.tail;
			if (b == UF__NIL)
				b = 0; /* frames in flight are on no list: any will do */
			struct uf__frame *bf = &r->frames[b];
			uint32_t bst = atomic_load(&bf->state);
			if (idle(bst) || (bst & F_KIND) == F_FREE) {
				uf__spin_unlock(&r->lock);
				continue;
			}
			if (!may_sleep(r)) {
				uf__spin_unlock(&r->lock);
				*err = -EDEADLK;
				return UF__NIL;
			}
			wait_unlock(r, bf, bst);
			continue;
		}
		struct uf__frame *fr = &r->frames[f];
		uint32_t vst = atomic_load(&fr->state);
		uint64_t vblk = fr->block;
		atomic_store(&fr->state, F_BUSY | (vst & (F_DIRTY | F_WAITERS)));
		hinsert(r, blk, f); /* faults on blk now wait for this frame */
		uf__spin_unlock(&r->lock);

		bool parked, deferred = may_defer;
		int e = evict_frame(r, f, vblk, &vst, &parked, &deferred);
		if (defer)
			*defer = deferred;
		uf__spin_lock(&r->lock);
		if (e == 0) {
			hremove(r, vblk);
			fr->block = blk;
			uf__spin_unlock(&r->lock);
			publish(fr, F_LOADING);
			return f;
		}
		/* The victim could not be released: keep it, try another. */
		hremove(r, blk);
		list_push_head(r, parked ? L_INACTIVE : L_ACTIVE, f);
		uf__spin_unlock(&r->lock);
		publish(fr, (parked ? F_PARKED : F_ACTIVE) | (vst & F_DIRTY));
		failed[failures] = f;
		last_err = e;
		if (!may_wait || ++failures >= 8 || failures >= r->nframes) {
			*err = e;
			return UF__NIL;
		}
	}
}

UF_SIGCTX static uint32_t reserve(struct uf_region *r, uint64_t blk, bool may_wait, int *err)
{
	return reserve_defer(r, blk, may_wait, err, NULL);
}

/* Gives a reserved (LOADING) frame back after a failed load. */
UF_SIGCTX static void unreserve(struct uf_region *r, uint32_t f, uint64_t blk)
{
	uf__spin_lock(&r->lock);
	hremove(r, blk);
	bool waiters = put_free(r, f);
	uf__spin_unlock(&r->lock);
	resident_add(r, -1);
	if (waiters)
		free_wake(&r->frames[f]);
}

/* How many blocks to load for a read miss at blk: 1 for random access; for
 * a sequential run a window that doubles up to UF__RA_MAX_BYTES. */
UF_SIGCTX static unsigned readahead(struct uf_region *r, uint64_t blk)
{
	if (r->ra_max <= 1) {
		/* Blocks too large for a window (above 128 KiB) still form
		 * the sequential runs that huge-page windows start on. */
		if (atomic_load_explicit(&r->hon, memory_order_relaxed))
			atomic_store_explicit(&r->ra_next, blk + 1, memory_order_relaxed);
		return 1;
	}
	uint64_t expect = atomic_load_explicit(&r->ra_next, memory_order_relaxed);
	unsigned win = atomic_load_explicit(&r->ra_win, memory_order_relaxed);
	win = blk == expect ? (win * 2 > r->ra_max ? r->ra_max : win * 2) : 1;
	/* Huge-page windows: a window ends where a huge page starts, so that
	 * the run's next miss is one (load_huge). */
	if (atomic_load_explicit(&r->hon, memory_order_relaxed)) {
		uint64_t nh = r->hsize >> r->bshift, lim = (blk | (nh - 1)) + 1 - blk;
		if (win > lim)
			win = (unsigned)lim;
	}
	uint64_t last = (r->data_end - r->base + r->bs - 1) >> r->bshift;
	if (blk + win > last)
		win = (unsigned)(last - blk);
	atomic_store_explicit(&r->ra_win, win, memory_order_relaxed);
	atomic_store_explicit(&r->ra_next, blk + win, memory_order_relaxed);
	return win ? win : 1;
}

/* A bit per block of a read-ahead window. */
#define RA_WORDS ((UF__RA_MAX + 63) / 64)
UF_SIGCTX static inline bool bit_get(const uint64_t *m, unsigned i)
{
	return m[i / 64] >> (i % 64) & 1;
}
UF_SIGCTX static inline void bit_set(uint64_t *m, unsigned i) { m[i / 64] |= 1ull << (i % 64); }

/* Reserves frames for the blocks blk + from .. blk + n - 1 into frames[],
 * without waiting; stops at the first one that is resident or has no
 * frame. How many frames[] now hold (from and up). Bit i of rel (NULL:
 * none) is set where the release of frames[i]'s slot was left to the
 * caller (release_frames): the slot still holds the page of the victim
 * it last held. */
UF_SIGCTX static unsigned reserve_run(struct uf_region *r, uint64_t blk, uint32_t *frames,
				      unsigned from, unsigned n, uint64_t *rel)
{
	unsigned got = from;
	for (; got < n; got++) {
		int e;
		bool deferred = rel != NULL;
		frames[got] = reserve_defer(r, blk + got, false, &e, &deferred);
		if (frames[got] == UF__NIL)
			break;
		if (deferred)
			bit_set(rel, got);
	}
	return got;
}

/* Gives back the slots reserve_run left to the caller among frames[from ..
 * to): adjacent frames (a scan evicts an older window in order) with one
 * call. */
UF_SIGCTX static void release_frames(struct uf_region *r, const uint32_t *frames, unsigned from,
				     unsigned to, const uint64_t *rel)
{
	unsigned lo = UINT32_MAX, hi = 0;
	for (unsigned i = from; i < to; i++) {
		if (!bit_get(rel, i))
			continue;
		uint32_t f = frames[i];
		if (lo != UINT32_MAX && f == hi + 1) {
			hi = f;
			continue;
		}
		if (lo != UINT32_MAX)
			r->eng->release_run(r, lo, hi - lo + 1);
		lo = hi = f;
	}
	if (lo != UINT32_MAX)
		r->eng->release_run(r, lo, hi - lo + 1);
}

/* Store bytes (*dlen) and mapped bytes (*ilen) of the n blocks from blk. */
UF_SIGCTX static void run_len(const struct uf_region *r, uint64_t blk, unsigned n, size_t *dlen,
			      size_t *ilen)
{
	*dlen = *ilen = 0;
	for (unsigned i = 0; i < n; i++) {
		*dlen += uf__blk_data_len(r, blk + i);
		*ilen += uf__blk_install_len(r, blk + i);
	}
}

/* Installs the clean run of n reserved blocks from blk with one call, from
 * their bytes at from (hashed first under asynchronous tracking). */
UF_SIGCTX static int install_run(struct uf_region *r, uint64_t blk, const uint32_t *frames,
				 unsigned n, size_t ilen, const unsigned char *from)
{
	if (r->async_wp)
		for (unsigned i = 0; i < n; i++)
			r->frames[frames[i]].clean_hash =
				block_hash(from + ((size_t)i << r->bshift), uf__blk_install_len(r, blk + i));
	return r->eng->install_clean(r, blk, ilen, from);
}

/* Makes an installed run resident: active (the first block the most
 * recent, read-ahead behind it), published, the lists balanced. */
UF_SIGCTX static void activate_run(struct uf_region *r, const uint32_t *frames, unsigned n,
				   const uint64_t *dirty)
{
	uf__spin_lock(&r->lock);
	for (unsigned i = n; i-- > 0;)
		list_push_head(r, L_ACTIVE, frames[i]);
	uf__spin_unlock(&r->lock);
	for (unsigned i = 0; i < n; i++)
		publish(&r->frames[frames[i]],
			F_ACTIVE | (dirty && bit_get(dirty, i) ? F_DIRTY : 0));
	balance(r, n);
}

/*
 * Background read-ahead, for stores with store threads (a network store's
 * read is a round trip, and its server would idle while we install): once
 * a sequential run reaches full windows, the next window is read by a
 * store thread while the faulting thread installs the current one, and
 * installed by that store thread. Its blocks stay LOADING meanwhile, so a
 * thread that gets there first waits for them (as for any load in
 * progress). Up to ra_depth windows are read ahead (4, as many as a store
 * has threads by default, where the budget holds 16 windows; fewer in
 * smaller budgets): the sequential miss that starts a run of them starts
 * them all, and the first thread to wait on the first block of the oldest
 * (ra_mark) starts one more after the last and moves the mark to the next
 * window, so the store always has windows to read while the program works
 * through the one it is in. A job that finishes before the program gets
 * there installs all but the window's first block, which it parks (F_RA):
 * the program's access to it is a fault, served by one install from the
 * frame (no store read, and no reactivation in the statistics), that
 * starts the next window just the same; without it a window read in time
 * would be entered without a fault, and the pipeline would drain. A job
 * that fails gives its frames back: the program's access then loads those
 * blocks itself and gets the real error. Each job holds a reference on the
 * region, which uf_unmap waits for.
 */
#define RA_JOBS 4
struct uf__ra_job {
	struct uf__store_req q; /* first: the store thread hands back &q */
	struct uf_region *r;
	uint64_t blk;
	unsigned n, tok, slot;
	size_t dlen, ilen;
	unsigned char *buf;
	uint32_t frames[UF__RA_MAX];
};

/* On a store thread, when a job's read is done. */
static void ra_done(struct uf__store_req *q)
{
	struct uf__ra_job *j = (struct uf__ra_job *)q;
	struct uf_region *r = j->r;
	int e = q->result;
	/* The first block is parked, the rest installed (a lone block is
	 * installed: nothing would follow its fault). */
	unsigned p = j->n > 1;
	size_t l0 = p ? uf__blk_install_len(r, j->blk) : 0;
	if (!e) {
		if (j->dlen < j->ilen)
			memset(j->buf + j->dlen, 0, j->ilen - j->dlen);
		e = install_run(r, j->blk + p, j->frames + p, j->n - p, j->ilen - l0, j->buf + l0);
	}
	if (!e && p) {
		struct uf__frame *f0 = &r->frames[j->frames[0]];
		if (r->async_wp)
			f0->clean_hash = block_hash(j->buf, l0);
		memcpy(r->eng->frame_buf(r, j->frames[0], j->blk), j->buf, l0);
	}
	r->eng->stage_put(r, j->tok);
	if (e) {
		for (unsigned i = 0; i < j->n; i++)
			unreserve(r, j->frames[i], j->blk + i);
	} else {
		stat_add(&r->st_loads, j->n);
		if (p) {
			uf__spin_lock(&r->lock);
			list_push_head(r, L_INACTIVE, j->frames[0]);
			uf__spin_unlock(&r->lock);
			publish(&r->frames[j->frames[0]], F_PARKED | F_RA);
		}
		activate_run(r, j->frames + p, j->n - p, NULL);
	}
	atomic_fetch_and_explicit(&r->ra_busy, ~(1u << j->slot), memory_order_release);
	atomic_fetch_sub_explicit(&r->refs, 1, memory_order_release); /* r may go now */
}

/* Starts a job for the window at b0, if a job record, a staging slot and
 * frames are free (it is only read-ahead: otherwise nothing happens). */
UF_SIGCTX static void ra_start(struct uf_region *r, uint64_t b0)
{
	uint64_t last = (r->data_end - r->base + r->bs - 1) >> r->bshift;
	if (!r->ra_jobs || b0 >= last)
		return;
	unsigned n = r->ra_max, i;
	if (b0 + n > last)
		n = (unsigned)(last - b0);
	uint32_t busy = atomic_load_explicit(&r->ra_busy, memory_order_relaxed);
	do {
		i = (unsigned)__builtin_ctz(~busy);
		if (i >= RA_JOBS)
			return;
	} while (!atomic_compare_exchange_weak_explicit(&r->ra_busy, &busy, busy | (1u << i),
							memory_order_acquire, memory_order_relaxed));
	struct uf__ra_job *j = &r->ra_jobs[i];
	uint64_t rel[RA_WORDS] = {0};
	unsigned got = reserve_run(r, b0, j->frames, 0, n, rel);
	release_frames(r, j->frames, 0, got, rel);
	if (got) {
		run_len(r, b0, got, &j->dlen, &j->ilen);
		j->buf = r->eng->stage_get(r, j->ilen, &j->tok);
		if (j->buf) {
			j->r = r;
			j->blk = b0;
			j->n = got;
			j->slot = i;
			atomic_fetch_add_explicit(&r->refs, 1, memory_order_acquire);
			atomic_store_explicit(&r->ra_next, b0 + got, memory_order_relaxed);
			uint64_t none = UINT64_MAX; /* the oldest window marks, if none does */
			bool marked = atomic_compare_exchange_strong(&r->ra_mark, &none, b0);
			if (uf__store_read_async(r->store, &j->q, r->soff + (b0 << r->bshift), j->buf,
						 j->dlen, ra_done))
				return;
			if (marked)
				atomic_store_explicit(&r->ra_mark, UINT64_MAX, memory_order_relaxed);
			atomic_fetch_sub_explicit(&r->refs, 1, memory_order_release);
			r->eng->stage_put(r, j->tok);
		}
		for (unsigned k = 0; k < got; k++)
			unreserve(r, j->frames[k], b0 + k);
	}
	atomic_fetch_and_explicit(&r->ra_busy, ~(1u << i), memory_order_release);
}

/* Called with the lock held, on an access to blk in a background window.
 * If blk is the mark, moves the mark on a window, drops the lock, starts
 * the window after the last one in flight and returns true (look again);
 * otherwise false, the lock still held. */
UF_SIGCTX static bool ra_trigger(struct uf_region *r, uint64_t blk)
{
	uint64_t m = blk, nx = atomic_load_explicit(&r->ra_next, memory_order_relaxed);
	if (nx <= blk || nx - blk > (uint64_t)r->ra_depth * r->ra_max ||
	    atomic_load_explicit(&r->ra_mark, memory_order_relaxed) != blk ||
	    !atomic_compare_exchange_strong(&r->ra_mark, &m,
					    r->ra_depth > 1 ? blk + r->ra_max : UINT64_MAX))
		return false;
	uf__spin_unlock(&r->lock);
	ra_start(r, nx);
	return true;
}

/* After the first window of a sequential run the program is the one to
 * wait for: store threads read the windows after it (ra_start). */
UF_SIGCTX static void ra_kick(struct uf_region *r, bool bg, unsigned got)
{
	if (!bg || got != r->ra_max || !r->ra_jobs)
		return;
	atomic_store_explicit(&r->ra_mark, UINT64_MAX, memory_order_relaxed);
	for (unsigned k = 0; k < r->ra_depth; k++)
		ra_start(r, atomic_load_explicit(&r->ra_next, memory_order_relaxed));
}

/* Windows shorter than this keep the copy: moving costs more per page in
 * short runs (docs/PERFORMANCE.md, "recycled frames"). */
#define RECYCLE_MIN 8
/* At most this many runs of adjacent frames per window, one store read and
 * one install each. */
#define RECYCLE_RUNS 4

/*
 * Whether a window suits install_frames: one-page blocks whose frames,
 * taken in block order, make at most RECYCLE_RUNS runs of adjacent frames,
 * all but the first frame (the fault's own) still holding the page of the
 * victim they were taken from, as a budgeted scan leaves them (it evicts an
 * older window in frame order, give or take the window's first frame).
 * The store's bytes then go into pages that exist, which move in with one
 * call a run: no allocation, no zeroing, no copy by the kernel. Frames
 * without a page would each allocate and zero one as they are filled, and
 * the move would then cost more than a copy. Writable regions only: in a
 * read-only one a write between the move and the protect would succeed
 * where it must fault.
 */
UF_SIGCTX static bool recyclable(const struct uf_region *r, const uint32_t *frames, unsigned got,
				 const uint64_t *rel)
{
	if (!r->eng->install_frames || !r->writable || got < RECYCLE_MIN || r->bs != uf__page_size())
		return false;
	unsigned runs = 1;
	for (unsigned i = 1; i < got; i++) {
		if (!bit_get(rel, i))
			return false;
		runs += frames[i] != frames[i - 1] + 1;
	}
	return runs <= RECYCLE_RUNS;
}

/*
 * Loads a recyclable window (above) through its frames' own pages, a run
 * of adjacent frames at a time: one store read into them, one
 * install_frames. The moved pages are writable until the engine protects
 * them, so another thread's write in between would be lost to write
 * tracking (the block would be evicted as clean). The protect makes every
 * later write tracked and every earlier one visible, so each block's bytes
 * are compared with the hash taken before the move: a block that differs
 * was written and is dirty (and, under write-protect faults, opened, as a
 * dirty block is). How many blocks from blk were installed; the rest are
 * unreserved, their slots given back.
 */
UF_SIGCTX static unsigned load_recycled(struct uf_region *r, uint64_t blk, const uint32_t *frames,
					unsigned got, bool bg, int *err)
{
	size_t ps = r->bs;
	uint64_t dirty[RA_WORDS] = {0};
	unsigned in = 0;
	int e = 0;
	while (in < got && !e) {
		unsigned n = 1;
		while (in + n < got && frames[in + n] == frames[in] + n)
			n++;
		size_t dlen, ilen, done = 0;
		run_len(r, blk + in, n, &dlen, &ilen);
		unsigned char *buf = r->eng->frame_buf(r, frames[in], blk + in);
		e = store_read(r, blk + in, buf, dlen);
		if (!e) {
			if (dlen < ilen)
				memset(buf + dlen, 0, ilen - dlen);
			if (!in)
				ra_kick(r, bg, got);
			for (unsigned i = 0; i < n; i++) {
				struct uf__frame *fr = &r->frames[frames[in + i]];
				fr->clean_hash = block_hash(buf + i * ps, ps);
				atomic_fetch_or(&fr->state, F_MOVED);
			}
			e = r->eng->install_frames(r, frames[in], blk + in, ilen, &done);
		}
		unsigned k = (unsigned)(done >> r->bshift);
		for (unsigned i = in; i < in + k; i++) {
			/* After a failed protect every installed page may be open. */
			uf__tsan_ignore_reads_begin();
			bool same = !e && block_hash(uf__blk_addr(r, blk + i), ps) ==
						  r->frames[frames[i]].clean_hash;
			uf__tsan_ignore_reads_end();
			if (same)
				continue;
			bit_set(dirty, i);
			stat_add(&r->st_dirty, 1);
			if (!r->async_wp)
				r->eng->protect(r, blk + i, ps, false);
		}
		in += k;
	}
	/* What was not installed gives its slots back and is free again. */
	for (unsigned i = in; i < got; i++) {
		r->eng->release_run(r, frames[i], 1);
		unreserve(r, frames[i], blk + i);
	}
	stat_add(&r->st_loads, in);
	if (in)
		activate_run(r, frames, in, dirty);
	*err = e;
	return in;
}

/* Loads the clean blocks blk.. (up to n, the first already reserved in f0)
 * with one store read and one install. Read-ahead blocks are reserved here
 * and the run stops at the first one that is resident or has no frame.
 * bg: a program's access (not uf_prefetch), which may start background
 * read-ahead. */
UF_SIGCTX static int load_clean(struct uf_region *r, uint64_t blk, uint32_t f0, unsigned n, bool bg)
{
	uint32_t frames[UF__RA_MAX];
	uint64_t rel[RA_WORDS] = {0};
	frames[0] = f0;
	unsigned got = reserve_run(r, blk, frames, 1, n, rel);
	if (got < n) /* the next sequential miss is right after what we got */
		atomic_store_explicit(&r->ra_next, blk + got, memory_order_relaxed);
	int e = -ENOMEM;
	bool staged = false;
	if (recyclable(r, frames, got, rel)) {
		if (load_recycled(r, blk, frames, got, bg, &e))
			return 0;
		goto alone;
	}
	release_frames(r, frames, 1, got, rel);
	size_t dlen, ilen;
	run_len(r, blk, got, &dlen, &ilen);
	unsigned tok;
	unsigned char *buf = NULL;
	/* A memory store: install from its bytes where they are, one 4 KiB
	 * copy a page less (the kernel's copy reads them, not a staging
	 * copy). Not for the store's last, partial page (zeros follow it).
	 * Nor for a window under asynchronous tracking: the content hash
	 * reads every byte first, and hashing a cold run in place costs more
	 * than copying it into the (hot) staging slot and hashing it there
	 * (seq-read of a writable region: 2030 against 2670 ns a page,
	 * docs/PERFORMANCE.md); a single block costs less in place. */
	bool direct = r->direct && dlen == ilen && !(r->async_wp && got > 1);
	const unsigned char *src =
		direct ? uf__store_peek(r->store, r->soff + (blk << r->bshift), dlen) : NULL;
	const unsigned char *from = src;
	if (!src && (buf = r->eng->stage_get(r, ilen, &tok))) {
		e = store_read(r, blk, buf, dlen);
		if (!e) {
			if (dlen < ilen)
				memset(buf + dlen, 0, ilen - dlen);
			from = buf;
			ra_kick(r, bg, got);
		}
	}
	if (from) {
		stat_add(&r->st_loads, got);
		e = install_run(r, blk, frames, got, ilen, from);
	}
	if (buf)
		r->eng->stage_put(r, tok);
	if (!e) {
		activate_run(r, frames, got, NULL);
		return 0;
	}
	if (src)
		stat_add(&r->st_loads, -(int64_t)got);
	for (unsigned i = 0; i < got; i++)
		unreserve(r, frames[i], blk + i);
	staged = buf || src;
alone:
	/* A failing block fails alone: a batch whose store read failed may
	 * fail only for a read-ahead block, so the faulting block is loaded
	 * again by itself (as a file mapping does not fail a good page
	 * because read-ahead failed). Without a staging buffer, the one-block
	 * path through the frame too. */
	if (staged && got == 1)
		return e;
	int e2;
	uint32_t f = reserve(r, blk, true, &e2);
	return f == UF__NIL ? e2 : load(r, f, blk, M_READ);
}

/*
 * Huge-page windows. A sequential read of a read-only region over a memory
 * store, whose budget holds the whole region (so nothing is ever evicted
 * to make room), reaching a block where a huge page starts: the whole huge
 * page (r->hsize bytes: 512 blocks of 4 KiB on x86-64) is copied from the
 * store into the engine's huge staging page and moved in as one page table
 * entry (install_huge). No page is allocated, charged or copied per 4 KiB:
 * a scan costs 0.4x the batched copy per page (docs/PERFORMANCE.md). The
 * moved page is writable until it is protected: a write another thread
 * makes in that moment (to a read-only region, where it should have
 * faulted) is found by comparing the bytes with the store's, and undone
 * (the block is copied in again from the store). Blocks of the page that
 * are later evicted split it; the kernel does that. One window at a time
 * per region (hbusy); another thread's sequential miss meanwhile takes the
 * normal path. True where the window was loaded; false where the caller
 * loads a normal one (blk's frame f0 still reserved).
 */
UF_SIGCTX static bool huge_window(const struct uf_region *r, uint64_t blk, uint64_t end, bool seq)
{
	if (!atomic_load_explicit(&r->hon, memory_order_relaxed))
		return false;
	/* Blocks of a huge page each: every load is one (no run to wait for). */
	uint64_t nh = r->hsize >> r->bshift;
	/* A run is known sequential once it crosses a boundary; a fault at the
	 * region's start is taken for the start of one (most scans start
	 * there), so its first huge page is read whole too. */
	if (nh > 1 && !seq && blk)
		return false;
	return !(blk & (nh - 1)) && blk + nh <= end && ((blk + nh) << r->bshift) <= r->data_len &&
	       !uf__huge_touched(r, (uintptr_t)uf__blk_addr(r, blk));
}

UF_SIGCTX static bool load_huge(struct uf_region *r, uint64_t blk, uint32_t f0)
{
	if (atomic_exchange_explicit(&r->hbusy, true, memory_order_acquire))
		return false;
	unsigned n = (unsigned)(r->hsize >> r->bshift);
	uint32_t *frames = r->hframes;
	frames[0] = f0;
	unsigned got = reserve_run(r, blk, frames, 1, n, NULL);
	/* The window's bytes where the check can read them: the store's own
	 * (a memory store), or a copy (a failed read takes the normal path,
	 * which reads again and reports the error). */
	const unsigned char *src = NULL;
	if (got == n && r->hpeek)
		src = uf__store_peek(r->store, r->soff + (blk << r->bshift), r->hsize);
	else if (got == n && store_read(r, blk, r->href, r->hsize) == 0)
		src = r->href;
	int e = -ENOMEM;
	if (src) {
		memcpy(r->hstage, src, r->hsize);
		e = r->eng->install_huge(r, blk);
		unsigned char *dst = uf__blk_addr(r, blk);
		if (e > 0 && memcmp(dst, src, r->hsize)) {
			/* Written between the move and the protect: undo it. */
			for (unsigned i = 0; i < n && e > 0; i++) {
				size_t o = (size_t)i << r->bshift;
				if (memcmp(dst + o, src + o, r->bs) == 0)
					continue;
				e = r->eng->zap(r, frames[i], blk + i, r->bs);
				if (!e)
					e = r->eng->install_clean(r, blk + i, r->bs, src + o);
				e = e ? e : 1;
			}
		}
		if (e < 0)
			r->eng->zap(r, f0, blk, r->hsize);
	}
	if (e >= 0) {
		stat_add(&r->st_loads, n);
		activate_run(r, frames, n, NULL);
		atomic_store_explicit(&r->ra_next, blk + n, memory_order_relaxed);
		atomic_store_explicit(&r->ra_win, r->ra_max, memory_order_relaxed);
	} else {
		for (unsigned i = 1; i < got; i++)
			unreserve(r, frames[i], blk + i);
	}
	atomic_store_explicit(&r->hbusy, false, memory_order_release);
	return e >= 0;
}

/* The fault (or prefetch) path for one block; read-ahead stops before
 * block end (uf_prefetch's range: blocks past it would push out the
 * range's own when it fills the budget). */
UF_SIGCTX static int serve(struct uf_region *r, uint64_t blk, int mode, uint64_t end)
{
	for (;;) {
		uf__spin_lock(&r->lock);
		uint32_t f = hfind(r, blk);
		if (f != UF__NIL) {
			struct uf__frame *fr = &r->frames[f];
			uint32_t st = atomic_load(&fr->state);
			uint32_t kind = st & F_KIND, dirty = st & F_DIRTY;
			if (kind == F_LOADING || kind == F_BUSY) {
				if (!may_sleep(r)) {
					uf__spin_unlock(&r->lock);
					return -EDEADLK;
				}
				/* The first wait on a background window: start the next. */
				if (kind == F_LOADING && mode != M_PREFETCH && ra_trigger(r, blk))
					continue;
				wait_unlock(r, fr, st);
				continue;
			}
			if (kind == F_ACTIVE) {
				/* Mapped already: either we raced with its load, or this is the
				 * first write to a write-protected block. */
				if (mode == M_UNKNOWN && !r->writable) {
					int e = unknown_on_mapped(r, blk, f);
					uf__spin_unlock(&r->lock);
					return e;
				}
				if ((mode != M_WRITE && mode != M_UNKNOWN) || dirty || !r->writable) {
					uf__spin_unlock(&r->lock);
					return 0;
				}
				/* Dirty from before the block is opened (see load()). */
				atomic_store(&fr->state, F_BUSY | F_DIRTY | (st & F_WAITERS));
				list_remove(r, f);
				list_push_head(r, L_ACTIVE, f);
				uf__spin_unlock(&r->lock);
				int e = r->eng->protect(r, blk, uf__blk_install_len(r, blk), false);
				if (!e) {
					stat_add(&r->st_dirty, 1);
					/* Under asynchronous tracking this is a write that
					 * met the block's load (a missing-page fault), not a
					 * write-protect fault. */
					if (!r->async_wp)
						stat_add(&r->st_write_faults, 1);
				}
				publish(fr, F_ACTIVE | (e ? 0 : F_DIRTY));
				return e;
			}
			uf__assert(kind == F_PARKED);
			/* A background window's parked first block: start the next. */
			if ((st & F_RA) && mode != M_PREFETCH && ra_trigger(r, blk))
				continue;
			/* Parked: bring it back without a store read. */
			list_remove(r, f);
			bool wr = mode == M_WRITE && r->writable;
			atomic_store(&fr->state, F_BUSY | dirty | (wr ? F_DIRTY : 0) | (st & F_WAITERS));
			uf__spin_unlock(&r->lock);
			int e = r->eng->install(r, f, blk, uf__blk_install_len(r, blk),
						dirty || wr);
			uf__spin_lock(&r->lock);
			list_push_head(r, e ? L_INACTIVE : L_ACTIVE, f);
			uf__spin_unlock(&r->lock);
			if (e) {
				publish(fr, F_PARKED | dirty);
				return e;
			}
			if (!(st & F_RA))
				stat_add(&r->st_reactivations, 1);
			if (wr && !dirty) {
				stat_add(&r->st_dirty, 1);
				if (!r->async_wp)
					stat_add(&r->st_write_faults, 1);
			}
			publish(fr, F_ACTIVE | ((dirty || wr) ? F_DIRTY : 0));
			balance(r, 1);
			return 0;
		}

		/* Not resident. While the budget has free frames, take one
		 * without dropping the lock (one lock round and lookup less per
		 * fault); otherwise reserve() finds a victim. */
		f = reserve_free_locked(r, blk);
		if (f == UF__NIL) {
			uf__spin_unlock(&r->lock);
			int e = 0;
			f = reserve(r, blk, true, &e);
			if (f == UF__NIL) {
				if (e)
					return e;
				continue; /* someone else made blk resident meanwhile */
			}
		}
		if (mode == M_WRITE || !r->eng->install_clean)
			return load(r, f, blk, mode);
		bool seq = atomic_load_explicit(&r->ra_next, memory_order_relaxed) == blk;
		if (huge_window(r, blk, end, seq) && load_huge(r, blk, f))
			return 0;
		unsigned n = readahead(r, blk);
		if (n > end - blk)
			n = (unsigned)(end - blk);
		return load_clean(r, blk, f, n, mode != M_PREFETCH);
	}
}

UF_SIGCTX int uf__pager_fault(struct uf_region *r, uintptr_t addr, int access)
{
	if (addr < r->base || addr >= r->data_end)
		return UF__E_PAST_END;
	if (access == UF_ACCESS_WRITE && !r->writable)
		return UF__E_PROT;
	if (access == UF_ACCESS_EXEC && !(r->prot & PROT_EXEC))
		return UF__E_PROT;
	stat_add(&r->st_faults, 1);
	/* An unknown access: served as a read, see unknown_on_mapped. */
	int mode = access == UF_ACCESS_WRITE ? M_WRITE : access == UF_ACCESS_UNKNOWN ? M_UNKNOWN : M_READ;
	return serve(r, (addr - r->base) >> r->bshift, mode, UINT64_MAX);
}

UF_SIGCTX void uf__pager_fault_error(struct uf_region *r, uintptr_t addr, int err, void *uc)
{
	/* Inside uf_try_read/uf_try_write: the copy fails with -EFAULT. */
	if (uc && uf__safe_access_fail(uc))
		return;
	/* Inside a store callback (one reading this region for another): that
	 * store call fails with this error, before the error callback or the
	 * program's handler could leave by a jump. */
	if (uc && uf__store_guarded())
		uf__store_guard_fail(uc, err, addr, 0);
	if (err != UF__E_PAST_END && r->on_error &&
	    r->on_error(r, (void *)addr, err, r->error_arg) == UF_ERR_RETRY)
		return;
	uf__fault_deliver_sigbus((void *)addr, uc);
}

/* The hook fault.c calls for an address inside a region. */
UF_SIGCTX int uf__region_fault(const struct uf__range *rg, int sig, siginfo_t *si, void *uc)
{
	struct uf_region *r = rg->obj;
	if (sig == SIGBUS && r->eng->sigbus)
		return r->eng->sigbus(rg, si, uc);
	uintptr_t addr = (uintptr_t)si->si_addr;
	int e = UF__E_PROT;
	int cs;
	uf__cancel_hold(&cs);
	/* MAPERR: the range is not mapped (a fork child, or the program unmapped
	 * it): not ours to serve. */
	if (!(sig == SIGSEGV && si->si_code == SEGV_MAPERR) && r->pid == uf__self_pid()) {
		/* The fault handler's sa_mask blocks asynchronous signals
		 * (fault.c). Saved and restored: a nested fault returns here
		 * too; nothing in the pager leaves by siglongjmp (the error
		 * delivery below may, after the flag is restored). */
		bool blocked = uf__t_async_blocked;
		uf__t_async_blocked = true;
		e = uf__pager_fault(r, addr, uf__arch_access(uc));
		uf__t_async_blocked = blocked;
	}
	uf__registry_put(rg);
	uf__cancel_release(cs); /* holding nothing: a pending cancel may act */
	if (e == 0)
		return UF__HANDLED;
	if (e == UF__E_PROT)
		return UF__DENIED; /* the program broke the region's protection */
	/* The callback and the program's SIGBUS handler may leave by
	 * siglongjmp: the reference is dropped already. The region stays valid
	 * as long as the program does not unmap it while using it. */
	uf__pager_fault_error(r, addr, e, uc);
	return UF__HANDLED;
}

/* ------------------------------------------------------------------ */
/* calls from the API (normal context)                                 */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Fills v (room for nframes) with the resident blocks in [b0, b1), sorted;
 * with dirty_only those with F_DIRTY, and under asynchronous tracking also
 * those being evicted or parked (BUSY), whose dirtiness is being settled: a
 * sync must wait for them. Returns the count. */
static long collect_into(struct uf_region *r, uint64_t b0, uint64_t b1, bool dirty_only, uint64_t *v)
{
	long k = 0;
	uf__spin_lock(&r->lock);
	for (uint32_t f = 0; f < r->fresh; f++) {
		uint32_t st = atomic_load_explicit(&r->frames[f].state, memory_order_relaxed);
		bool settling = (r->async_wp && (st & F_KIND) == F_BUSY) || (st & F_MOVED);
		if ((st & F_KIND) == F_FREE || (dirty_only && !(st & F_DIRTY) && !settling))
			continue;
		uint64_t b = r->frames[f].block;
		if (b >= b0 && b < b1)
			v[k++] = b;
	}
	uf__spin_unlock(&r->lock);
	qsort(v, (size_t)k, sizeof(*v), cmp_u64);
	return k;
}

/* collect_into a new array (*out, to free). Returns the count or -ENOMEM. */
static long collect(struct uf_region *r, uint64_t b0, uint64_t b1, bool dirty_only, uint64_t **out)
{
	*out = malloc((r->nframes ? r->nframes : 1) * sizeof(**out));
	return *out ? collect_into(r, b0, b1, dirty_only, *out) : -ENOMEM;
}

/* Takes ownership (BUSY) of the idle frame holding blk. Returns the frame
 * and its state before, or UF__NIL if blk is not resident. A frame that is
 * not idle is waited for, unless busy is given: then *busy says so and
 * UF__NIL is returned (a caller that owns other frames must not sleep on
 * another owner, who may be waiting for one of them). */
static uint32_t own_block_try(struct uf_region *r, uint64_t blk, uint32_t *old, bool unlist,
			      bool *busy)
{
	for (;;) {
		uf__spin_lock(&r->lock);
		uint32_t f = hfind(r, blk);
		if (f == UF__NIL) {
			uf__spin_unlock(&r->lock);
			return UF__NIL;
		}
		struct uf__frame *fr = &r->frames[f];
		uint32_t st = atomic_load(&fr->state);
		if (!idle(st)) {
			if (busy) {
				uf__spin_unlock(&r->lock);
				*busy = true;
				return UF__NIL;
			}
			wait_unlock(r, fr, st);
			continue;
		}
		if (unlist)
			list_remove(r, f);
		atomic_store(&fr->state, F_BUSY | (st & (F_DIRTY | F_WAITERS)));
		uf__spin_unlock(&r->lock);
		*old = st & ~F_WAITERS;
		return f;
	}
}

static uint32_t own_block(struct uf_region *r, uint64_t blk, uint32_t *old, bool unlist)
{
	return own_block_try(r, blk, old, unlist, NULL);
}

/*
 * A write-back batch: blocks owned (BUSY) by the sync, their bytes ready,
 * written to the store with one uf__store_writev (one writev call of the
 * store, or one write per contiguous run; one hand-off to a store thread).
 * Blocks go in in offset order, so blocks adjacent in the region are
 * adjacent in the batch, and in memory too when they are read from the
 * mapping or from consecutive snapshot slots. Two batches take turns: one
 * is filled while a store thread writes the other.
 */
#define WB_BATCH 1024u		 /* blocks */
#define WB_SNAP_BYTES (2u << 20) /* snapshot memory of a batch, at most */
/* For a store called in place without writev (uf_store_mem, a file), a
 * batch buys only the merging of contiguous runs into one write: its
 * batches hold one run each (a gap writes the batch first). Where blocks
 * are written from snapshots (asynchronous tracking, TSan) they go one by
 * one through one hot slot, as before batching: ufbench write-sync
 * measured the sync 1.6x slower through 16 slots and ~10% slower through
 * 8, as fast as before with one. Without snapshots runs merge from the
 * mapping. */
#define WB_SNAP_BYTES_PLAIN 1u /* rounds to one block */
struct wb_batch {
	unsigned cap, n;
	bool runs_only; /* the store has neither writev nor store threads */
	uint64_t *blk;
	uint32_t *frame, *st;
	bool *active;
	struct uf_store_vec *vec;
	unsigned char *snap; /* cap block-sized slots, when snapshots are taken */
};
struct wb {
	struct wb_batch b[2];
	unsigned cur;	       /* the batch being filled */
	bool inflight;	       /* b[cur ^ 1] is being written */
	struct uf__store_req q; /* its request */
};

static int wb_init1(struct uf_region *r, struct wb_batch *b, bool snap)
{
	unsigned cap = WB_BATCH;
	bool plain = !r->store->pool && !r->store->ops.writev;
	size_t snap_max = plain ? WB_SNAP_BYTES_PLAIN : WB_SNAP_BYTES;
	if (snap && (snap_max >> r->bshift) < cap)
		cap = (snap_max >> r->bshift) ? (unsigned)(snap_max >> r->bshift) : 1;
	if (r->nframes && r->nframes < cap)
		cap = (unsigned)r->nframes;
	*b = (struct wb_batch){.cap = cap, .runs_only = plain};
	b->blk = malloc(cap * sizeof(*b->blk));
	b->frame = malloc(cap * sizeof(*b->frame));
	b->st = malloc(cap * sizeof(*b->st));
	b->active = malloc(cap * sizeof(*b->active));
	b->vec = malloc(cap * sizeof(*b->vec));
	b->snap = snap ? malloc((size_t)cap << r->bshift) : NULL;
	return b->blk && b->frame && b->st && b->active && b->vec && (!snap || b->snap) ? 0 : -ENOMEM;
}

static void wb_fini(struct wb *w)
{
	for (int i = 0; i < 2; i++) {
		struct wb_batch *b = &w->b[i];
		free(b->blk);
		free(b->frame);
		free(b->st);
		free(b->active);
		free(b->vec);
		free(b->snap);
	}
}

static int wb_init(struct uf_region *r, struct wb *w, bool snap)
{
	memset(w, 0, sizeof(*w));
	int e = wb_init1(r, &w->b[0], snap);
	return e ? e : wb_init1(r, &w->b[1], snap);
}

/* Lets the frames of a written batch go: clean if the store took it, all
 * still dirty (and writable again) if not. */
static void wb_finish(struct uf_region *r, struct wb_batch *b, int e)
{
	for (unsigned i = 0; i < b->n; i++) {
		struct uf__frame *fr = &r->frames[b->frame[i]];
		uint64_t blk = b->blk[i];
		size_t ilen = uf__blk_install_len(r, blk);
		if (!e) {
			if (r->async_wp)
				fr->clean_hash = block_hash(b->vec[i].buf, ilen);
			stat_add(&r->st_writebacks, 1);
			stat_add(&r->st_dirty, -1);
			publish(fr, b->st[i] & ~F_DIRTY);
			continue;
		}
		if (b->active[i] && !r->async_wp)
			r->eng->protect(r, blk, ilen, false); /* still dirty: keep it writable */
		publish(fr, b->st[i]);
	}
	b->n = 0;
}

/* Waits for the batch in flight, if any, and lets it go. Its result. */
static int wb_complete(struct uf_region *r, struct wb *w)
{
	if (!w->inflight)
		return 0;
	int e = uf__store_writev_wait(r->store, &w->q);
	w->inflight = false;
	wb_finish(r, &w->b[w->cur ^ 1], e);
	return e;
}

/* Hands the batch being filled to the store (after the one in flight is
 * done: one at a time, in order) and starts filling the other. Returns
 * the first error of a batch completed here. */
static int wb_submit(struct uf_region *r, struct wb *w)
{
	struct wb_batch *b = &w->b[w->cur];
	if (!b->n)
		return 0;
	int first = wb_complete(r, w);
	struct uf_region *outer = t_in_store;
	t_in_store = r;
	if (b->runs_only) { /* called in place: nothing to overlap */
		int e = uf__store_writev(r->store, b->vec, b->n);
		t_in_store = outer;
		wb_finish(r, b, e);
		return first ? first : e;
	}
	int queued = uf__store_writev_start(r->store, b->vec, b->n, &w->q);
	t_in_store = outer;
	w->inflight = true;
	w->cur ^= 1;
	if (!queued) { /* written in this thread already */
		int e = wb_complete(r, w);
		if (!first)
			first = e;
	}
	return first;
}

/* Writes every batch and waits for them. The first error. */
static int wb_drain(struct uf_region *r, struct wb *w)
{
	int e = wb_submit(r, w), e2 = wb_complete(r, w);
	return e ? e : e2;
}

/*
 * Adds block blk to the batch being filled if it has changes (handing the
 * batch over first when it is full; writing both first when blk's frame is
 * busy: see own_block_try). seen: the sync's scan found it written (and
 * protected it again) under asynchronous tracking. Returns the first error
 * of a batch completed here, or of blk itself.
 *
 * Under asynchronous tracking writers cannot be held off, so the bytes
 * written back are a snapshot taken after the block was protected again,
 * and clean_hash is the hash of that snapshot: of exactly what the store
 * holds. A write after the re-protect marks the page written; should a
 * scan consume that mark before the block is written back, the park's
 * hash check still sees the block differ from the store. (Hashing the live
 * bytes instead would let a write racing with the store write look clean.)
 */
static int wb_add(struct uf_region *r, struct wb *w, uint64_t blk, bool seen)
{
	int first = 0;
	struct wb_batch *b = &w->b[w->cur];
	if (b->n == b->cap || (b->runs_only && b->n && blk != b->blk[b->n - 1] + 1)) {
		first = wb_submit(r, w);
		b = &w->b[w->cur];
	}
	uint32_t st;
	bool busy = false;
	uint32_t f = own_block_try(r, blk, &st, false, b->n || w->inflight ? &busy : NULL);
	if (busy) {
		int e = wb_drain(r, w);
		if (!first)
			first = e;
		b = &w->b[w->cur];
		f = own_block(r, blk, &st, false);
	}
	if (f == UF__NIL)
		return first; /* evicted meanwhile: written back then */
	struct uf__frame *fr = &r->frames[f];
	bool active = (st & F_KIND) == F_ACTIVE;
	size_t ilen = uf__blk_install_len(r, blk), dlen = uf__blk_data_len(r, blk);
	const void *src = r->eng->frame_buf(r, f, blk);
	int e = 0;
	if (active && (st & F_DIRTY || (r->async_wp && seen))) {
		/* Stop writers first (synchronous tracking: they wait in their
		 * fault until the batch is written) so what reaches the store
		 * is what stays clean; the scan already protected a block it
		 * saw. */
		if (!(r->async_wp && seen))
			e = r->eng->protect(r, blk, ilen, true);
		if (!(st & F_DIRTY))
			stat_add(&r->st_dirty, 1);
		st |= F_DIRTY;
		src = uf__blk_addr(r, blk);
		if (!e && b->snap) {
			/* Writers may be writing it as we copy (by design; a write
			 * after the re-protect is marked): the uninstrumented copy
			 * routine keeps ThreadSanitizer from reporting that. */
			void *slot = b->snap + ((size_t)b->n << r->bshift);
			e = (int)uf__copy_safe(slot, src, ilen).err;
			src = slot;
		}
	} else if (!(st & F_DIRTY)) {
		publish(fr, st);
		return first;
	}
	if (e) {
		if (active && !r->async_wp)
			r->eng->protect(r, blk, ilen, false);
		publish(fr, st);
		return first ? first : e;
	}
	unsigned i = b->n++;
	b->blk[i] = blk;
	b->frame[i] = f;
	b->st[i] = st;
	b->active[i] = active;
	b->vec[i] = (struct uf_store_vec){r->soff + (blk << r->bshift), src, dlen};
	return first;
}

/*
 * Under asynchronous tracking one scan finds the blocks written without a
 * fault and protects them again: from then on they are owed to the store,
 * so everything that could fail for want of memory is allocated before it,
 * and every block it saw is written back, with the blocks marked dirty or
 * being settled, in one walk in offset order. The scan comes before that
 * list is taken, so a block whose marks an eviction cleared first is
 * either still being evicted when listed (and waited for) or already in
 * the store. Resident blocks are at most nframes, so the scan cannot
 * overflow; should it fail anyway, every resident block counts as written.
 * The blocks go to the store in batches (wb_add); a failed batch leaves
 * every block of it dirty. Then the store's flush; lazy (a background
 * pass): only if something was written to the store since its last flush.
 */
static int sync_locked(struct uf_region *r, uint64_t b0, uint64_t b1, bool lazy)
{
	size_t cap = r->nframes ? r->nframes : 1;
	uint64_t *v = malloc(cap * sizeof(*v));
	uint64_t *w = r->async_wp ? malloc(cap * sizeof(*w)) : NULL;
	/* Under ThreadSanitizer every write-back goes through the snapshot:
	 * writers filled the block before protect() stopped them, an ordering
	 * the kernel gives and TSan cannot see; the snapshot's uninstrumented
	 * copy is the one access that would otherwise be reported. */
	bool snap = r->async_wp || UF__TSAN;
	struct wb wb;
	int e = wb_init(r, &wb, snap);
	if (!v || (r->async_wp && !w) || e) {
		free(v);
		free(w);
		wb_fini(&wb);
		return -ENOMEM;
	}
	long m = 0;
	if (r->async_wp) {
		m = r->eng->written_scan(r, b0, b1, true, w, cap);
		if (m < 0)
			m = collect_into(r, b0, b1, false, w);
	}
	long n = collect_into(r, b0, b1, true, v);
	/* Both lists are sorted: walk them together, in offset order. */
	int first = 0;
	for (long i = 0, j = 0; i < m || j < n;) {
		bool seen = j >= n || (i < m && w[i] <= v[j]);
		uint64_t blk = seen ? w[i++] : v[j++];
		if (seen && j < n && v[j] == blk)
			j++; /* in both */
		e = wb_add(r, &wb, blk, seen);
		if (e && !first)
			first = e;
	}
	e = wb_drain(r, &wb);
	if (e && !first)
		first = e;
	wb_fini(&wb);
	free(v);
	free(w);
	e = lazy ? uf__store_flush_if_written(r->store) : uf__store_flush(r->store);
	return first ? first : e;
}

int uf__pager_sync(struct uf_region *r, uint64_t b0, uint64_t b1)
{
	pthread_mutex_lock(&r->sync_lock);
	int e = sync_locked(r, b0, b1, false);
	pthread_mutex_unlock(&r->sync_lock);
	return e;
}

int uf__pager_sync_pass(struct uf_region *r)
{
	pthread_mutex_lock(&r->sync_lock);
	int e = sync_locked(r, 0, r->nblocks, true);
	pthread_mutex_unlock(&r->sync_lock);
	return e;
}

int uf__pager_drop(struct uf_region *r, uint64_t b0, uint64_t b1, bool writeback)
{
	uint64_t *v;
	long n = collect(r, b0, b1, false, &v);
	if (n < 0)
		return (int)n;
	int first = 0;
	for (long i = 0; i < n; i++) {
		uint64_t blk = v[i];
		uint32_t st;
		uint32_t f = own_block(r, blk, &st, true);
		if (f == UF__NIL)
			continue;
		struct uf__frame *fr = &r->frames[f];
		uint32_t dirty = st & F_DIRTY;
		bool parked = (st & F_KIND) == F_PARKED;
		int e = 0;
		if (writeback) {
			e = evict_frame(r, f, blk, &st, &parked, NULL);
			dirty = st & F_DIRTY;
		} else {
			/* discard: forget the block, changes included */
			size_t ilen = uf__blk_install_len(r, blk);
			if (!parked)
				e = r->eng->zap ? r->eng->zap(r, f, blk, ilen) : r->eng->park(r, f, blk, ilen);
			if (!e) {
				if (dirty)
					stat_add(&r->st_dirty, -1);
				if (r->eng->release && (parked || !r->eng->zap))
					r->eng->release(r, f, blk, ilen);
				stat_add(&r->st_evictions, 1);
			}
		}
		uf__spin_lock(&r->lock);
		if (e == 0) {
			hremove(r, blk);
			bool waiters = put_free(r, f);
			uf__spin_unlock(&r->lock);
			resident_add(r, -1);
			if (waiters)
				free_wake(fr);
			continue;
		}
		list_push_head(r, parked ? L_INACTIVE : L_ACTIVE, f);
		uf__spin_unlock(&r->lock);
		publish(fr, (parked ? F_PARKED : F_ACTIVE) | dirty);
		if (!first)
			first = e;
	}
	free(v);
	return first;
}

int uf__pager_prefetch(struct uf_region *r, uint64_t b0, uint64_t b1)
{
	uint64_t last = (r->data_end - r->base + r->bs - 1) >> r->bshift;
	if (b1 > last)
		b1 = last;
	/* More would only push out what was just loaded: the budget, or
	 * once the region has evicted (pressure, may_park) the part of it
	 * kept mapped, as the rest is parked to choose the next victim. */
	uint64_t hold = r->nframes;
	if (atomic_load_explicit(&r->st_evictions, memory_order_relaxed) != 0)
		hold -= r->inactive_target;
	if (b1 > b0 && b1 - b0 > hold)
		b1 = b0 + hold;
	int n = 0;
	for (uint64_t b = b0; b < b1; b++) {
		int e = serve(r, b, M_PREFETCH, b1);
		if (e)
			return n ? n : e;
		n++;
	}
	return n;
}

/* Blocks with changes not yet written back, counting those written
 * without a fault under asynchronous tracking. */
uint64_t uf__pager_dirty(struct uf_region *r)
{
	uint64_t known = atomic_load(&r->st_dirty);
	if (!r->async_wp)
		return known;
	uint64_t *w = malloc((r->nframes ? r->nframes : 1) * sizeof(*w));
	if (!w)
		return known;
	long m = r->eng->written_scan(r, 0, r->nblocks, false, w, r->nframes);
	uf__spin_lock(&r->lock);
	for (long i = 0; i < m; i++) {
		uint32_t f = hfind(r, w[i]);
		if (f != UF__NIL && !(atomic_load(&r->frames[f].state) & F_DIRTY))
			known++;
	}
	uf__spin_unlock(&r->lock);
	free(w);
	return known;
}

int uf__pager_init(struct uf_region *r)
{
	/* While a victim is being evicted its frame is in the table under both
	 * blocks, so up to 2 * nframes keys: at most half full. */
	uint64_t cap = 16;
	while (cap < 4ull * r->nframes)
		cap <<= 1;
	r->hmax = cap;
	r->hmask = (cap < H_MIN ? cap : H_MIN) - 1; /* grows: hgrow */
	/* Lazily touched: only the frames in use (taken in index order) and
	 * the slots of the current table cost RAM. */
	r->frames = uf__map_anon(r->nframes * sizeof(*r->frames), PROT_READ | PROT_WRITE);
	/* The plain array where the budget holds the whole region (4 bytes a
	 * block, below what the hash costs a resident block) or where it is
	 * small; otherwise the hash, which grows with what is resident: the
	 * array's pages are touched one per 1024 blocks wherever the program
	 * reads, so sparse reads over a region far larger than its budget
	 * (a 64 GiB region read every 1 MiB: 64 MiB of array for 256 MiB of
	 * data) cost more than the hash's slots. */
	if (r->nframes >= r->nblocks || r->nblocks * sizeof(*r->dmap) <= (1u << 20)) {
		r->dmap = uf__map_anon(r->nblocks * sizeof(*r->dmap), PROT_READ | PROT_WRITE);
	} else {
		r->htab = uf__map_anon(cap * sizeof(*r->htab), PROT_READ | PROT_WRITE);
		r->htab_alt = uf__map_anon(cap * sizeof(*r->htab), PROT_READ | PROT_WRITE);
	}
	if (!r->frames || (!r->dmap && (!r->htab || !r->htab_alt))) {
		uf__pager_fini(r);
		return -ENOMEM;
	}
	r->fresh = 0;
	r->free_head = UF__NIL;
	r->active = r->inactive = (struct uf__list){UF__NIL, UF__NIL, 0};
	/* A third of the budget parked. Measured on a Zipf(0.99) trace with a
	 * 10% budget (ufbench zipf-read): miss ratio 0.310 / 0.300 / 0.296 with
	 * 1/8, 1/3, 1/2 parked (exact LRU 0.290, FIFO 0.326), but each step up
	 * costs more reactivation faults (+9%, +12%): a third is the middle. */
	r->inactive_target = r->nframes >= 4 ? r->nframes / 3 : 0;
	/* Parked blocks are unmapped: keep mapped at least what one
	 * instruction may need at once (uf__frames_floor), or it would fault
	 * forever, each fault parking a block its retry needs. */
	uint32_t least = uf__frames_floor(r->prot);
	uint32_t mapped = r->nframes > least ? r->nframes - least : 0;
	if (r->inactive_target > mapped)
		r->inactive_target = mapped;
	/* Read-ahead: at most UF__RA_MAX_BYTES, a quarter of the budget, and
	 * only where the engine can install a run in one call; a window must
	 * not push out the blocks an instruction needs besides the faulting
	 * one either. */
	size_t ra = UF__RA_MAX_BYTES >> r->bshift;
	if (ra > r->nframes / 4)
		ra = r->nframes / 4;
	uint32_t active = r->nframes - r->inactive_target;
	if (active >= least && ra > active - least + 1)
		ra = active - least + 1;
	if (ra > UF__RA_MAX)
		ra = UF__RA_MAX;
	if ((r->flags & UF_MAP_NO_READAHEAD) || !r->eng->install_clean || ra < 2)
		ra = 1;
	r->ra_max = (unsigned)ra;
	/* Installs straight from a memory store's bytes, unless they lie in a
	 * region or area of ours: the kernel's copy from there would fail
	 * (EFAULT) instead of faulting them in. */
	r->direct = false;
	const char *src = r->eng->install_clean && r->data_len
				  ? uf__store_peek(r->store, r->soff, r->data_len) : NULL;
	bool peek = src != NULL;
	if (src) {
		struct uf__range rg;
		sigset_t mask;
		unsigned tok = uf__registry_enter_masked(&mask);
		for (int i = 0; i < 2; i++)
			if (uf__registry_find((uintptr_t)src + (i ? r->data_len - 1 : 0), &rg))
				peek = false;
		uf__registry_exit_masked(tok, &mask);
		r->direct = peek && !uf__getenv_off("USERFAULT_DIRECT");
	}
	/* Huge-page windows where the engine set them up (load_huge): a
	 * memory store's bytes are read in place where the direct install
	 * could read them, other stores' through a copy. */
	r->hpeek = peek;
	if (r->hsize && r->eng->install_huge && r->nframes >= r->nblocks) {
		r->hframes = calloc(r->hsize >> r->bshift, sizeof(*r->hframes));
		atomic_store(&r->hon, r->hframes != NULL);
	}
	atomic_store(&r->ra_win, 1);
	atomic_store(&r->ra_next, UINT64_MAX);
	atomic_store(&r->ra_mark, UINT64_MAX);
	/* Background read-ahead where the store has store threads; without
	 * the records, read-ahead stays in the faulting thread. */
	if (r->store->pool && r->ra_max > 1)
		r->ra_jobs = calloc(RA_JOBS, sizeof(*r->ra_jobs));
	r->ra_depth = (unsigned)(r->nframes / (4ull * r->ra_max));
	r->ra_depth = r->ra_depth > RA_JOBS ? RA_JOBS : r->ra_depth ? r->ra_depth : 1;
	return 0;
}

void uf__pager_fini(struct uf_region *r)
{
	uint64_t cap = r->hmax;
	if (r->frames)
		munmap(r->frames, r->nframes * sizeof(*r->frames));
	if (r->htab)
		munmap(r->htab, cap * sizeof(*r->htab));
	if (r->htab_alt)
		munmap(r->htab_alt, cap * sizeof(*r->htab));
	if (r->dmap)
		munmap(r->dmap, r->nblocks * sizeof(*r->dmap));
	free(r->ra_jobs); /* uf_unmap waited for the jobs (their region references) */
	r->ra_jobs = NULL;
	free(r->hframes);
	r->hframes = NULL;
	atomic_store(&r->hon, false);
	r->frames = NULL;
	r->htab = r->htab_alt = NULL;
	r->dmap = NULL;
}

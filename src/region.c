/* SPDX-License-Identifier: MIT */
/* region.c - the public region calls: argument checks, engine choice,
 * registration, and the range calls handed to the pager. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "diag.h"
#include "fault.h"
#include "region.h"
#include "registry.h"
#include "sanitizer.h"
#include "threads.h"

/* No Linux address space is larger (5-level x86_64: 2^56). Anything longer
 * cannot be mapped: -ENOMEM like any other shortage of address space, the
 * same for every engine and length (mmap(2) says the same). */
#define UF_MAX_MAP_LEN ((size_t)1 << 57)

void uf_map_opts_init(struct uf_map_opts *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->struct_size = sizeof(*o);
}

static size_t phys_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	return pages > 0 ? (size_t)pages * uf__page_size() : ((size_t)2 << 30);
}

static size_t default_budget(size_t len)
{
	size_t half = phys_ram() / 2;
	return len < half ? len : half;
}

/* ------------------------------------------------------------------ */
/* live regions: written back at exit, and by the background writer     */

static pthread_mutex_t g_list_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_list_cond; /* CLOCK_MONOTONIC; wb_busy drops, due times change */
static struct uf_region *g_list;
static pid_t g_writer_pid; /* the process whose background writer runs */
static pthread_once_t g_list_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What a call that owns frames or takes the region lock holds off:
 * asynchronous signals (a handler touching the region would wait for the
 * call instead of deadlocking on it; internal.h) and cancellation; and it
 * says so in uf__t_async_blocked, which guards its store calls (store.c). */
struct hold {
	sigset_t mask;
	int cs;
	bool blocked;
};

static void hold_begin(struct hold *h)
{
	uf__async_block(&h->mask);
	uf__cancel_hold(&h->cs);
	h->blocked = uf__t_async_blocked;
	uf__t_async_blocked = true;
}

static void hold_end(const struct hold *h)
{
	uf__t_async_blocked = h->blocked;
	uf__cancel_release(h->cs);
	uf__async_restore(&h->mask);
}

/* At exit(): what uf_sync would do for every region this process mapped.
 * A failure cannot be returned to anyone: it is said on stderr, also for
 * a store with nothing to write to (uf_store_fn, no write callback: the
 * sync fails with -EROFS when blocks are dirty, and does nothing if not). */
static void exit_writeback(void)
{
	pthread_mutex_lock(&g_list_lock);
	for (struct uf_region *r = g_list; r; r = r->lnext) {
		if (r->pid != uf__self_pid() || !r->writable)
			continue;
		struct hold h;
		hold_begin(&h);
		int e = uf__pager_sync(r, 0, r->nblocks);
		hold_end(&h);
		if (e)
			fprintf(stderr,
				"userfault: at exit, region %p (%zu bytes) could not be written back: %s; "
				"%llu dirty blocks lost\n",
				(void *)r->base, r->len, uf_strerror(e),
				(unsigned long long)uf__pager_dirty(r));
	}
	pthread_mutex_unlock(&g_list_lock);
	uf__diag_at_exit(); /* after the write-back: its lines count it */
}

static void list_lock(void) { pthread_mutex_lock(&g_list_lock); }
static void list_unlock(void) { pthread_mutex_unlock(&g_list_lock); }

static void list_init(void)
{
	/* A fork while the writer holds the lock must not leave the child
	 * with a lock nobody will release. */
	pthread_atfork(list_lock, list_unlock, list_unlock);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g_list_cond, &ca);
	pthread_condattr_destroy(&ca);
	atexit(exit_writeback);
}

/* The background writer: one thread per process, started by the first
 * region that asks for it. Each pass over a region is uf_sync of the whole
 * region, run without the list lock (wb_busy keeps uf_unmap waiting). */
static void *writer_main(void *arg)
{
	(void)arg;
	uf__t_async_blocked = true; /* it runs with every asynchronous signal blocked */
	pthread_mutex_lock(&g_list_lock);
	for (;;) {
		uint64_t now = mono_ns(), next = now + 1000000000ull;
		struct uf_region *due = NULL;
		for (struct uf_region *r = g_list; r; r = r->lnext) {
			if (!r->writeback_ms || r->pid != uf__self_pid() || r->wb_busy)
				continue;
			if (r->wb_due <= now) {
				due = r;
				break;
			}
			if (r->wb_due < next)
				next = r->wb_due;
		}
		if (!due) {
			struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
			pthread_cond_timedwait(&g_list_cond, &g_list_lock, &ts);
			continue;
		}
		due->wb_busy = 1;
		pthread_mutex_unlock(&g_list_lock);
		if (due->writable && due->store->ops.write)
			(void)uf__pager_sync_pass(due); /* failed blocks stay dirty */
		pthread_mutex_lock(&g_list_lock);
		due->wb_busy = 0;
		due->wb_due = mono_ns() + (uint64_t)due->writeback_ms * 1000000u;
		pthread_cond_broadcast(&g_list_cond);
	}
	return NULL;
}

/* Called with the list lock held. */
static int start_writer(void)
{
	if (g_writer_pid == uf__self_pid())
		return 0; /* running (a fork child has none: it starts its own) */
	/* It takes no asynchronous signal; the synchronous ones stay open, so
	 * a fault inside a store callback it makes reaches the fault handler
	 * (a blocked one kills the process at once). */
	sigset_t all, old;
	uf__async_sigset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	int e = uf__thread_create(&th, &at, writer_main, NULL);
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return e;
	g_writer_pid = uf__self_pid();
	return 0;
}

static int list_add(struct uf_region *r)
{
	pthread_once(&g_list_once, list_init);
	pthread_mutex_lock(&g_list_lock);
	int e = r->writeback_ms ? start_writer() : 0;
	if (!e) {
		r->wb_due = mono_ns() + (uint64_t)r->writeback_ms * 1000000u;
		r->lprev = NULL;
		r->lnext = g_list;
		if (g_list)
			g_list->lprev = r;
		g_list = r;
		pthread_cond_broadcast(&g_list_cond);
	}
	pthread_mutex_unlock(&g_list_lock);
	return e;
}

/* Waits for a background pass over r to end. */
static void list_remove(struct uf_region *r)
{
	pthread_mutex_lock(&g_list_lock);
	while (r->wb_busy)
		pthread_cond_wait(&g_list_cond, &g_list_lock);
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		g_list = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	pthread_mutex_unlock(&g_list_lock);
}

/* How often uf_map asks the kernel for another address range when the one
 * it got lies in an area (then it fails with -EEXIST). */
#define UF__MAP_TRIES 16

static void release_held(void *const *held, unsigned n, size_t len)
{
	for (unsigned i = 0; i < n; i++)
		munmap(held[i], len);
}

static void region_free(struct uf_region *r)
{
	uf__pager_fini(r);
	pthread_mutex_destroy(&r->sync_lock);
	free(r);
}

static int map_region(uf_store *store, uint64_t off, size_t len, int prot,
		      const struct uf_map_opts *opts, uf_region **out);

/* Cancellation waits (uf__cancel_hold): the open calls of a mapping
 * (/dev/userfaultfd, /proc/self/pagemap, sysfs) are cancellation points,
 * some reached with a lock of the library held. */
int uf_map(uf_store *store, uint64_t off, size_t len, int prot, const struct uf_map_opts *opts,
	   uf_region **out)
{
	int cs;
	uf__cancel_hold(&cs);
	int e = map_region(store, off, len, prot, opts, out);
	uf__cancel_release(cs);
	return e;
}

static int map_region(uf_store *store, uint64_t off, size_t len, int prot,
		      const struct uf_map_opts *opts, uf_region **out)
{
	const size_t ps = uf__page_size();
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	if (opts) {
		if (opts->struct_size < offsetof(struct uf_map_opts, engine) ||
		    opts->struct_size > 4096)
			return -EINVAL;
		typedef struct uf_map_opts T;
		static const size_t ends[] = {UF__END(T, struct_size), UF__END(T, block_size),
					      UF__END(T, max_resident), UF__END(T, engine),
					      UF__END(T, flags), UF__END(T, on_error),
					      UF__END(T, error_arg), UF__END(T, writeback_ms)};
		_Static_assert(UF__ALIGN_END(T, writeback_ms) == sizeof(T), "ends[] lists every field");
		memcpy(&o, opts, uf__whole_fields(opts->struct_size, ends, UF__ARRAY_SIZE(ends)));
	}
	if (!store || !out || !len || (off & (ps - 1)) || off >= store->size)
		return -EINVAL;
	if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) || !(prot & PROT_READ))
		return -EINVAL;
	if (o.flags & ~(UF_MAP_NO_READAHEAD | UF_MAP_WP_FAULTS))
		return -EINVAL;
	if (o.engine < UF_ENGINE_AUTO || o.engine > UF_ENGINE_SIGNAL)
		return -EINVAL;
	size_t bs = o.block_size ? o.block_size : ps;
	if (!uf__is_pow2(bs) || bs < ps || bs > UF_MAX_BLOCK_SIZE)
		return -EINVAL;
	if (len > UF_MAX_MAP_LEN)
		return -ENOMEM;
	size_t maplen = uf__align_up(len, ps);
	uint64_t data_len = store->size - off < maplen ? store->size - off : maplen;
	/* A store that reads in units (the Redis store's blocks): every load
	 * of a region not laid out in whole units would fail. */
	if (store->unit && ((off % store->unit) || (bs % store->unit) || (data_len % store->unit)))
		return -EINVAL;
	uint64_t nblocks = (maplen + bs - 1) / bs;
	size_t budget = o.max_resident ? o.max_resident : default_budget(nblocks * bs);
	if (budget < bs)
		return -EINVAL;
	/* The budget is capped at what can be resident: the blocks of the
	 * region and the machine's RAM (the frame and lookup tables are sized
	 * from it, so a budget far above RAM must not size them), and at the
	 * frame index range. */
	size_t ram = phys_ram(), asked = budget; /* asked: for USERFAULT_VERBOSE */
	if (budget > ram)
		budget = ram > bs ? ram : bs;
	uint64_t nframes = budget / bs;
	/* With fewer frames than one instruction needs at once it could never
	 * complete: every fault would evict the block its retry needs next (a
	 * livelock fuzz_api found with a budget of one page and a 64-byte
	 * uf_try_read across a page boundary). */
	if (nframes < uf__frames_floor(prot))
		nframes = uf__frames_floor(prot);
	if (nframes > nblocks)
		nframes = nblocks;
	if (nframes >= UF__NIL)
		nframes = UF__NIL - 1;

	int e = uf__fault_init();
	if (e)
		return e;
	const struct uf__engine_ops *eng = uf__engine_pick(o.engine, &e);
	if (!eng)
		return e;

	struct uf_region *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->len = maplen;
	r->bs = bs;
	r->bshift = (unsigned)__builtin_ctzl(bs);
	r->nblocks = nblocks;
	r->soff = off;
	r->data_len = data_len;
	r->prot = prot;
	r->writable = prot & PROT_WRITE;
	r->flags = o.flags;
	r->store = store;
	r->on_error = o.on_error;
	r->error_arg = o.error_arg;
	r->writeback_ms = o.writeback_ms;
	r->nframes = (uint32_t)nframes;
	r->pid = uf__self_pid();
	pthread_mutex_init(&r->sync_lock, NULL);
	/* Attach; under AUTO a refusal (seccomp, permissions) moves on to the
	 * next engine instead of failing. */
	bool any = o.engine == UF_ENGINE_AUTO && uf__getenv("USERFAULT_ENGINE") == NULL;
	uint32_t nframes0 = r->nframes;
	/* Address ranges the kernel offered that an area of the program's
	 * holds (areas may cover unmapped memory): kept reserved while we ask
	 * again, so the next offer lies elsewhere. */
	void *held[UF__MAP_TRIES];
	unsigned nheld = 0;
again:
	for (;;) {
		/* What an engine sets, from scratch: a refused attach may have
		 * set some of it (asynchronous tracking, a lower frame count). */
		r->eng = eng;
		r->eng_flags = 0;
		r->async_wp = false;
		r->nframes = nframes0;
		r->uffd = -1;
		e = eng->attach(r);
		if (!e || !any)
			break;
		uf__diag_refused(eng->id, e, "attach");
		if (!(eng = uf__engine_next(eng)))
			break;
	}
	if (e) {
		release_held(held, nheld, r->len);
		region_free(r);
		return e;
	}
	r->data_end = r->base + uf__align_up(r->data_len, ps);
	/* After attach: an engine may have lowered nframes (its own limits). */
	e = uf__pager_init(r);
	if (!e)
		e = uf__registry_add_ref(r->base, r->base + r->len, UF__KIND_REGION, r, &r->refs);
	if (e == -EEXIST && nheld < UF__MAP_TRIES) {
		void *b = (void *)r->base;
		uf__pager_fini(r);
		r->eng->detach(r);
		void *p = mmap(b, r->len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == b) {
			held[nheld++] = p;
			goto again;
		}
		if (p != MAP_FAILED)
			munmap(p, r->len); /* a kernel without MAP_FIXED_NOREPLACE */
		release_held(held, nheld, r->len);
		region_free(r);
		return -EEXIST;
	}
	release_held(held, nheld, r->len);
	if (!e) {
		e = list_add(r);
		if (e)
			uf__registry_remove(r);
	}
	if (e) {
		r->eng->detach(r);
		region_free(r);
		return e;
	}
	uf__store_ref(store);
	uf__diag_mapped(r, &o, asked);
	/* A handler thread serves faults on r once a message says a thread
	 * touched it: the kernel orders that after this (see handler_main). */
	uf__tsan_release(r);
	*out = r;
	return 0;
}

void *uf_region_addr(const uf_region *r) { return r ? (void *)r->base : NULL; }
size_t uf_region_size(const uf_region *r) { return r ? r->len : 0; }
int uf_region_engine(const uf_region *r) { return r ? r->eng->id : -EINVAL; }

/* Converts [addr, addr+len) to the blocks it touches; len 0 = to the end. */
/* A fork child inherits the handle but not the mapping, and the region's
 * userfaultfd still points at the parent's memory: refuse. */
static int usable(const uf_region *r)
{
	if (!r)
		return -EINVAL;
	return r->pid == uf__self_pid() ? 0 : -EPERM;
}

static int block_range(const uf_region *r, void *addr, size_t len, uint64_t *b0, uint64_t *b1)
{
	int e = usable(r);
	if (e)
		return e;
	/* What handler threads did serving this thread's faults happened
	 * before: the kernel woke it after (uf__tsan_release there). */
	uf__tsan_acquire(r);
	uintptr_t a = addr ? (uintptr_t)addr : r->base;
	if (!addr && !len)
		len = r->len;
	if (a < r->base || a >= r->base + r->len || len > r->base + r->len - a)
		return -EINVAL;
	if (!len)
		len = r->base + r->len - a;
	*b0 = (a - r->base) >> r->bshift;
	*b1 = (a + len - r->base + r->bs - 1) >> r->bshift;
	return 0;
}

/* The range calls own frames and take the region lock: they run with
 * asynchronous signals blocked (internal.h), so a signal handler touching
 * the region waits until the call is done instead of deadlocking on it. */
enum range_op { OP_SYNC, OP_DISCARD, OP_EVICT, OP_PREFETCH };

static int range_call(uf_region *r, void *addr, size_t len, enum range_op op)
{
	uint64_t b0, b1;
	int e = block_range(r, addr, len, &b0, &b1);
	if (e)
		return e;
	struct hold h;
	hold_begin(&h);
	switch (op) {
	case OP_SYNC: e = uf__pager_sync(r, b0, b1); break;
	case OP_DISCARD: e = uf__pager_drop(r, b0, b1, false); break;
	case OP_EVICT: e = uf__pager_drop(r, b0, b1, true); break;
	case OP_PREFETCH: e = uf__pager_prefetch(r, b0, b1); break;
	}
	hold_end(&h);
	return e;
}

int uf_sync(uf_region *r, void *addr, size_t len) { return range_call(r, addr, len, OP_SYNC); }
int uf_discard(uf_region *r, void *addr, size_t len) { return range_call(r, addr, len, OP_DISCARD); }
int uf_evict(uf_region *r, void *addr, size_t len) { return range_call(r, addr, len, OP_EVICT); }
int uf_prefetch(uf_region *r, void *addr, size_t len) { return range_call(r, addr, len, OP_PREFETCH); }

int uf_stats(const uf_region *r, struct uf_stats *st)
{
	if (!r || !st || st->struct_size < offsetof(struct uf_stats, faults) || st->struct_size > 4096)
		return -EINVAL;
	struct uf_stats s;
	memset(&s, 0, sizeof(s));
	s.struct_size = st->struct_size;
	s.engine = r->eng->id;
	s.faults = atomic_load(&r->st_faults);
	s.loads = atomic_load(&r->st_loads);
	s.evictions = atomic_load(&r->st_evictions);
	s.writebacks = atomic_load(&r->st_writebacks);
	s.write_faults = atomic_load(&r->st_write_faults);
	s.reactivations = atomic_load(&r->st_reactivations);
	s.resident = atomic_load(&r->st_resident);
	s.resident_peak = atomic_load(&r->st_resident_peak);
	sigset_t old;
	uf__async_block(&old); /* it takes the region lock */
	s.dirty = uf__pager_dirty((struct uf_region *)r);
	uf__async_restore(&old);
	s.max_resident = r->nframes;
	s.block_size = r->bs;
	s.async_writes = r->async_wp;
	typedef struct uf_stats T;
	static const size_t ends[] = {
		UF__END(T, struct_size),  UF__END(T, engine),	     UF__END(T, faults),
		UF__END(T, loads),	  UF__END(T, evictions),     UF__END(T, writebacks),
		UF__END(T, write_faults), UF__END(T, reactivations), UF__END(T, resident),
		UF__END(T, resident_peak), UF__END(T, dirty),	     UF__END(T, max_resident),
		UF__END(T, block_size),	  UF__END(T, async_writes)};
	_Static_assert(UF__ALIGN_END(T, async_writes) == sizeof(T), "ends[] lists every field");
	/* Only whole fields: the bytes of one it holds in part stay as they were. */
	memcpy(st, &s, uf__whole_fields(st->struct_size, ends, UF__ARRAY_SIZE(ends)));
	return 0;
}

int uf_unmap(uf_region *r, unsigned flags)
{
	if (!r || (flags & ~UF_UNMAP_DISCARD))
		return -EINVAL;
	if (usable(r))
		return -EPERM;
	uf__tsan_acquire(r); /* as in block_range */
	struct hold h;
	hold_begin(&h);
	int e = 0;
	if (!(flags & UF_UNMAP_DISCARD))
		e = uf__pager_sync(r, 0, r->nblocks); /* on failure nothing changed: the region stays */
	if (!e) {
		uf__diag_unmapping(r);
		e = uf__registry_remove(r);
	}
	if (!e) {
		list_remove(r);
		r->eng->detach(r);
		uf__store_unref(r->store);
		region_free(r);
	}
	hold_end(&h);
	return e;
}

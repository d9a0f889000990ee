/* SPDX-License-Identifier: MIT */
/*
 * Seeded stress against a shadow model, with store calls failing.
 *
 * Several threads do random 8-byte reads and writes over a region four
 * times its budget, interleaved with uf_sync, uf_discard, uf_evict and
 * uf_prefetch on random ranges, while another thread maps, reads and unmaps
 * other regions, and the injector (tests/inject.h) fails store reads and
 * writes (after partial work). Every 8-byte word of the store encodes its
 * own index: a value is MAGIC | index | generation, so a zero or another
 * block's bytes can never pass for it.
 *
 * Each worker owns the words with index % NTHREADS == its number and is the
 * only writer of them; it knows the last value it wrote (the shadow) and
 * checks, precisely:
 *   - a read of an owned word returns the shadow, unless a uf_discard may
 *     have run since the write (any thread may discard any range: a write
 *     racing with a discard of its block may or may not survive); then it
 *     returns a value this word held, at least as new as the last one a
 *     uf_sync proved to be in the store, and the model pins that value;
 *   - a read of a foreign word returns a value of that word no newer than
 *     its owner's last write;
 *   - when uf_sync returns 0 and no discard ran since the write, the store
 *     holds exactly the shadow of every owned word in the range;
 *   - a failing sync or evict returns the injected error, and the data
 *     stays (later reads and the final check would see a lost write);
 *   - read errors reach the error callback, which retries (main region), or
 *     SIGBUS, caught with sigsetjmp (the mapper thread's regions);
 * and at the end, with the injector off: a final sync returns 0 and the
 * store equals the region, word for word.
 *
 * STRESS_SECONDS (default 2) and STRESS_SEED (default: from the clock)
 * control a run; the seed is printed first and with every failure. Each
 * thread's sequence of operations follows from the seed; their
 * interleaving does not.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"
#include "inject.h"

#define NTHREADS 3
#define MAGIC 0xA5C3000000000000ull
#define IDX_SHIFT 24
#define GEN_MASK 0xFFFFFFull
#define VAL(idx, gen) (MAGIC | ((uint64_t)(idx) << IDX_SHIFT) | ((gen) & GEN_MASK))
#define VAL_OK(v, idx) (((v) & ~((1ull << 48) - 1)) == MAGIC && (((v) >> IDX_SHIFT) & 0xFFFFFF) == (idx))
#define GEN(v) ((v) & GEN_MASK)

static uint64_t seed;
#define SFAIL(...)                                                               \
	do {                                                                     \
		fprintf(stderr, "seed %llu: ", (unsigned long long)seed);        \
		FAIL(__VA_ARGS__);                                               \
	} while (0)

static size_t ps, bs, size, nwords;
static uint64_t *backing; /* the store: words, accessed atomically */
static uint64_t *region;
static uf_region *R;
static struct inject inj;
static _Atomic uint32_t *curgen; /* per word: the owner's last generation */
/* Discards: disc_active counts those running, disc_gen those started. An
 * operation saw no discard if qbegin() and qend() give the same even key. */
static _Atomic uint64_t disc_gen, disc_active;
static _Atomic int stop;

static _Atomic uint64_t n_reads, n_writes, n_syncs, n_sync_err, n_discards, n_evicts,
	n_prefetch, n_cb, n_maps, n_sigbus, n_loose, n_sync_checked, n_scans;

static uint64_t stored(size_t w) { return __atomic_load_n(&backing[w], __ATOMIC_RELAXED); }

static int retry_cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)arg;
	if (err != -EIO) {
		static const char m[] = "stress: error callback with an error not injected\n";
		if (write(2, m, sizeof(m) - 1) < 0) {
		}
		_exit(1);
	}
	atomic_fetch_add_explicit(&n_cb, 1, memory_order_relaxed);
	return UF_ERR_RETRY;
}

/* Per owned word: the model. */
struct word {
	uint64_t shadow; /* what the word holds, if pinned is the current qend() key */
	uint64_t pinned; /* the quiet key at which shadow was known; odd: never */
	uint32_t floor;  /* generation a uf_sync proved to be in the store */
};

struct worker {
	int id;
	uint64_t rng;
	struct word *w; /* indexed by word / NTHREADS */
};

static uint64_t qbegin(void)
{
	uint64_t g = atomic_load(&disc_gen);
	return atomic_load(&disc_active) ? 1 : g * 2;
}
static uint64_t qend(uint64_t s)
{
	uint64_t a = atomic_load(&disc_active);
	return (!(s & 1) && !a && atomic_load(&disc_gen) * 2 == s) ? s : 1;
}

static uint64_t range_pick(uint64_t *rng, size_t *off, size_t *len)
{
	size_t nb = size / bs, b0 = xorshift64(rng) % nb, n = 1 + xorshift64(rng) % 8;
	if (b0 + n > nb)
		n = nb - b0;
	*off = b0 * bs;
	*len = n * bs;
	return b0;
}

/* s1: qend() of the read (odd: a discard may have run during it). */
static void check_read(struct worker *me, size_t w, uint64_t v, uint64_t s1)
{
	if (!VAL_OK(v, w))
		SFAIL("word %zu (block %zu) reads %#llx: not a value of this word", w, w * 8 / bs,
		      (unsigned long long)v);
	uint32_t g = atomic_load(&curgen[w]);
	if (GEN(v) > g)
		SFAIL("word %zu reads generation %llu, newer than its last write %u", w,
		      (unsigned long long)GEN(v), g);
	if ((int)(w % NTHREADS) != me->id)
		return;
	struct word *m = &me->w[w / NTHREADS];
	if (!(s1 & 1) && m->pinned == s1) {
		if (v != m->shadow)
			SFAIL("word %zu (block %zu) reads %#llx, shadow %#llx (no discard since)", w,
			      w * 8 / bs, (unsigned long long)v, (unsigned long long)m->shadow);
		return;
	}
	atomic_fetch_add_explicit(&n_loose, 1, memory_order_relaxed);
	if (GEN(v) < m->floor)
		SFAIL("word %zu reads generation %llu after a discard, but a sync put %u in the store",
		      w, (unsigned long long)GEN(v), m->floor);
	if (!(s1 & 1)) { /* no discard during the read: pin it */
		m->shadow = v;
		m->pinned = s1;
	}
}

static void read_word(struct worker *me, size_t w)
{
	uint64_t s0 = qbegin();
	uint64_t v = __atomic_load_n(&region[w], __ATOMIC_RELAXED);
	uint64_t s1 = qend(s0);
	check_read(me, w, v, s1);
	atomic_fetch_add_explicit(&n_reads, 1, memory_order_relaxed);
}

static void do_read(struct worker *me) { read_word(me, xorshift64(&me->rng) % nwords); }

/* A sequential scan: one word of each block of a run of 16-64 blocks, in
 * order (read-ahead; background read-ahead for a store with store
 * threads). */
static void do_scan(struct worker *me)
{
	size_t nb = size / bs, b0 = xorshift64(&me->rng) % nb, n = 16 + xorshift64(&me->rng) % 49;
	size_t wpb = bs / 8, at = xorshift64(&me->rng) % wpb;
	for (size_t b = b0; b < b0 + n && b < nb; b++)
		read_word(me, b * wpb + at);
	atomic_fetch_add_explicit(&n_scans, 1, memory_order_relaxed);
}

static void do_write(struct worker *me)
{
	size_t w = (xorshift64(&me->rng) % (nwords / NTHREADS)) * NTHREADS + (size_t)me->id;
	struct word *m = &me->w[w / NTHREADS];
	uint32_t g = atomic_load(&curgen[w]) + 1;
	if (g > GEN_MASK)
		return; /* this word has had enough */
	atomic_store(&curgen[w], g); /* before the value exists anywhere */
	uint64_t s0 = qbegin();
	__atomic_store_n(&region[w], VAL(w, g), __ATOMIC_RELAXED);
	uint64_t s1 = qend(s0);
	m->shadow = VAL(w, g);
	m->pinned = s1;
	atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
}

/* A write a successful uf_sync did not put in the store: say which was
 * lost, the block's dirty state (the region still holds the write; is
 * the block still known, does a second sync write it?) or the write
 * itself, then fail. */
static void lost_write(size_t w, uint64_t want, uint64_t got, size_t off, size_t len)
{
	uint64_t now = 0;
	int re = uf_try_read(&now, &region[w], sizeof(now));
	atomic_store(&inj.on, 0);
	uint64_t dirty = stats_of(R).dirty;
	int e2 = uf_sync(R, (char *)region + off, len);
	uint64_t after = stored(w);
	unsigned char mapped = 0;
	(void)mincore((void *)((uintptr_t)&region[w] & ~(uintptr_t)(ps - 1)), ps, &mapped);
	struct uf_stats b4 = stats_of(R);
	int e3 = uf_evict(R, (char *)region + (w * 8 / bs) * bs, bs);
	struct uf_stats af = stats_of(R);
	SFAIL("after uf_sync = 0, word %zu (block %zu) holds %#llx in the store, written %#llx "
	      "before the sync; the region holds %#llx (uf_try_read %d), page mapped %d; %llu "
	      "blocks dirty; a second sync = %d leaves %#llx; uf_evict = %d evicts %llu blocks",
	      w, w * 8 / bs, (unsigned long long)got, (unsigned long long)want,
	      (unsigned long long)now, re, mapped & 1, (unsigned long long)dirty, e2,
	      (unsigned long long)after, e3, (unsigned long long)(af.evictions - b4.evictions));
}

static void do_sync(struct worker *me)
{
	size_t off, len;
	range_pick(&me->rng, &off, &len);
	uint64_t s0 = qbegin();
	int e = uf_sync(R, (char *)region + off, len);
	uint64_t s1 = qend(s0);
	atomic_fetch_add_explicit(&n_syncs, 1, memory_order_relaxed);
	if (e) {
		if (e != -EIO)
			SFAIL("uf_sync = %d (%s), not the injected -EIO", e, uf_strerror(e));
		atomic_fetch_add_explicit(&n_sync_err, 1, memory_order_relaxed);
		return;
	}
	if (s1 & 1)
		return;
	/* No discard since s0: every owned word pinned at s0 is in the store. */
	for (size_t w = off / 8; w < (off + len) / 8; w++) {
		if ((int)(w % NTHREADS) != me->id)
			continue;
		struct word *m = &me->w[w / NTHREADS];
		if (m->pinned != s0)
			continue;
		uint64_t st = stored(w);
		if (st != m->shadow)
			lost_write(w, m->shadow, st, off, len);
		m->floor = (uint32_t)GEN(m->shadow);
		atomic_fetch_add_explicit(&n_sync_checked, 1, memory_order_relaxed);
	}
}

static void do_range_op(struct worker *me, int op)
{
	size_t off, len;
	range_pick(&me->rng, &off, &len);
	void *a = (char *)region + off;
	int e;
	switch (op) {
	case 0:
		atomic_fetch_add(&disc_active, 1);
		atomic_fetch_add(&disc_gen, 1);
		e = uf_discard(R, a, len);
		atomic_fetch_sub(&disc_active, 1);
		if (e)
			SFAIL("uf_discard = %d (%s)", e, uf_strerror(e));
		atomic_fetch_add_explicit(&n_discards, 1, memory_order_relaxed);
		break;
	case 1:
		e = uf_evict(R, a, len);
		if (e && e != -EIO)
			SFAIL("uf_evict = %d (%s)", e, uf_strerror(e));
		atomic_fetch_add_explicit(&n_evicts, 1, memory_order_relaxed);
		break;
	default:
		e = uf_prefetch(R, a, len);
		if (e < 0 && e != -EIO) /* else the blocks it served */
			SFAIL("uf_prefetch = %d (%s)", e, uf_strerror(e));
		atomic_fetch_add_explicit(&n_prefetch, 1, memory_order_relaxed);
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned x = (unsigned)(xorshift64(&me->rng) % 1000);
		if (x < 590)
			do_read(me);
		else if (x < 600)
			do_scan(me);
		else if (x < 980)
			do_write(me);
		else if (x < 988)
			do_sync(me);
		else if (x < 990)
			do_range_op(me, 0);
		else if (x < 995)
			do_range_op(me, 1);
		else
			do_range_op(me, 2);
	}
	return NULL;
}

/* The mapper: maps other regions over a pattern store whose reads fail now
 * and then, with no error callback: a failed load is SIGBUS, caught here;
 * the retry reads the right byte. Then unmaps. */
static __thread sigjmp_buf *volatile bus_jb; /* volatile: the handler reads it */
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)si, (void)uc;
	if (bus_jb)
		siglongjmp(*bus_jb, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int guarded_read(volatile unsigned char *p, unsigned char *out)
{
	sigjmp_buf jb;
	if (sigsetjmp(jb, 1)) {
		bus_jb = NULL;
		return -1;
	}
	bus_jb = &jb;
	*out = *p;
	bus_jb = NULL;
	return 0;
}

static void *mapper_main(void *arg)
{
	uint64_t rng = seed ^ 0x5555;
	size_t msize = 32 * ps;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uf_store *inner;
		unsigned char *buf = pattern_store(msize, &inner);
		struct inject j = {.seed = xorshift64(&rng), .read_fail_ppm = 100000};
		uf_store *s = inject_wrap(&j, inner);
		atomic_store(&j.on, 1);
		struct uf_map_opts o = test_map_opts();
		o.max_resident = 4 * ps;
		uf_region *r;
		int e = uf_map(s, 0, msize, PROT_READ, &o, &r);
		if (e)
			SFAIL("mapper: uf_map = %d (%s)", e, uf_strerror(e));
		volatile unsigned char *p = uf_region_addr(r);
		for (int i = 0; i < 64; i++) {
			size_t k = xorshift64(&rng) % msize;
			unsigned char c = 0;
			int tries = 0;
			while (guarded_read(p + k, &c)) {
				atomic_fetch_add_explicit(&n_sigbus, 1, memory_order_relaxed);
				if (++tries > 1000)
					SFAIL("mapper: byte %zu SIGBUS 1000 times at 10 %% failures", k);
			}
			if (c != pattern_byte(k))
				SFAIL("mapper: byte %zu reads %#x, want %#x", k, c, pattern_byte(k));
		}
		ASSERT_OK(uf_unmap(r, 0));
		ASSERT_OK(uf_store_close(s));
		free(buf);
		atomic_fetch_add_explicit(&n_maps, 1, memory_order_relaxed);
	}
	return arg;
}

/* A write-back that fails keeps the block dirty; a later sync succeeds and
 * the store has the write (deterministic, before the threads start). */
static void failed_writeback(void)
{
	size_t w = 5;
	uint32_t g = atomic_load(&curgen[w]) + 1;
	atomic_store(&curgen[w], g);
	__atomic_store_n(&region[w], VAL(w, g), __ATOMIC_RELAXED);
	atomic_store(&inj.fail_next_writes, 1);
	atomic_store(&inj.on, 1);
	int e = uf_sync(R, NULL, 0);
	if (e != -EIO)
		SFAIL("uf_sync with a failing write = %d, want -EIO", e);
	if (stats_of(R).dirty < 1)
		SFAIL("a failed write-back left no dirty block");
	atomic_store(&inj.on, 0);
	ASSERT_OK(uf_sync(R, NULL, 0));
	if (stored(w) != VAL(w, g))
		SFAIL("store word %zu = %#llx after the retried sync", w, (unsigned long long)stored(w));
}

int main(void)
{
	const char *es = getenv("STRESS_SECONDS"), *ss = getenv("STRESS_SEED");
	double secs = es ? atof(es) : 2.0;
	test_init((unsigned)secs + 120);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	seed = ss ? strtoull(ss, NULL, 0) : (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20);
	if (!seed)
		seed = 1;
	fprintf(stderr, "stress: seed %llu (STRESS_SEED=%llu to repeat), %.0f s\n",
		(unsigned long long)seed, (unsigned long long)seed, secs);
	uint64_t rng = seed;

	ps = page_size();
	bs = ps << (xorshift64(&rng) % 3); /* 1, 2 or 4 pages a block */
	size_t budget = 32 * bs;
	size = 4 * budget;
	nwords = size / 8;
	backing = malloc(size);
	curgen = calloc(nwords, sizeof(*curgen));
	ASSERT(backing && curgen);
	for (size_t w = 0; w < nwords; w++)
		backing[w] = VAL(w, 0);

	struct sigaction sa = {0};
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0); /* before the library's: it chains */

	struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = word_store_read,
				   .write = word_store_write};
	uf_store *inner;
	ASSERT_OK(uf_store_new(&ops, backing, size, &inner));
	/* The whole configuration before uf_map; only the atomics change
	 * while handler threads may read it. */
	inj.seed = seed;
	inj.partial = 1;
	inj.read_fail_ppm = 20000;  /* 2 % */
	inj.write_fail_ppm = 50000; /* 5 % */
	/* Store calls on store threads for one seed in two (background
	 * read-ahead, hand-offs), in the faulting thread for the other. */
	if (xorshift64(&rng) & 1)
		inj.store_flags = UF_STORE_NOT_SIGSAFE;
	uf_store *s = inject_wrap(&inj, inner);
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	o.max_resident = budget;
	o.on_error = retry_cb;
	if (xorshift64(&rng) & 1)
		o.flags |= UF_MAP_NO_READAHEAD;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &R));
	region = uf_region_addr(R);
	fprintf(stderr, "stress: engine %s, block %zu, budget %zu blocks, region %zu blocks%s%s\n",
		uf_engine_name(uf_region_engine(R)), bs, budget / bs, size / bs,
		(o.flags & UF_MAP_NO_READAHEAD) ? ", no read-ahead" : "",
		inj.store_flags ? ", store threads" : "");

	failed_writeback();

	atomic_store(&inj.on, 1);
	struct worker wk[NTHREADS];
	pthread_t th[NTHREADS], mt;
	for (int i = 0; i < NTHREADS; i++) {
		wk[i].id = i;
		wk[i].rng = seed * (uint64_t)(i + 2) + 1;
		wk[i].w = calloc(nwords / NTHREADS + 1, sizeof(struct word));
		ASSERT(wk[i].w);
		for (size_t w = (size_t)i; w < nwords; w += NTHREADS) {
			wk[i].w[w / NTHREADS].shadow = VAL(w, atomic_load(&curgen[w]));
			wk[i].w[w / NTHREADS].pinned = 0;
		}
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
	}
	ASSERT_EQ(pthread_create(&mt, NULL, mapper_main, NULL), 0);
	struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < NTHREADS; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	ASSERT_EQ(pthread_join(mt, NULL), 0);

	/* The injector off: a final sync succeeds and the store equals the
	 * region, each word as the model allows it. */
	atomic_store(&inj.on, 0);
	uint64_t s0 = qbegin();
	uint64_t *final = malloc(size);
	ASSERT(final);
	for (size_t w = 0; w < nwords; w++) {
		final[w] = __atomic_load_n(&region[w], __ATOMIC_RELAXED);
		check_read(&wk[w % NTHREADS], w, final[w], s0);
	}
	int e = uf_sync(R, NULL, 0);
	if (e)
		SFAIL("final uf_sync = %d (%s) with the injector off", e, uf_strerror(e));
	for (size_t w = 0; w < nwords; w++)
		if (stored(w) != final[w])
			SFAIL("after the final sync, store word %zu = %#llx, region %#llx", w,
			      (unsigned long long)stored(w), (unsigned long long)final[w]);
	if (stats_of(R).dirty)
		SFAIL("dirty blocks after the final sync: %llu", (unsigned long long)stats_of(R).dirty);
	struct uf_stats st = stats_of(R);
	printf("stress %s: %llu faults, %llu loads, %llu evictions, %llu writebacks; "
	       "%llu reads, %llu writes, %llu syncs (%llu failed, %llu words checked in the store), "
	       "%llu discards, %llu evicts, %llu prefetches, %llu scans, %llu loose reads; "
	       "injected %llu read + %llu write failures, %llu callback retries; "
	       "mapper: %llu regions, %llu SIGBUS; 0 mismatches\n",
	       uf_engine_name(st.engine), (unsigned long long)st.faults, (unsigned long long)st.loads,
	       (unsigned long long)st.evictions, (unsigned long long)st.writebacks,
	       (unsigned long long)n_reads, (unsigned long long)n_writes,
	       (unsigned long long)n_syncs, (unsigned long long)n_sync_err,
	       (unsigned long long)n_sync_checked, (unsigned long long)n_discards,
	       (unsigned long long)n_evicts, (unsigned long long)n_prefetch,
	       (unsigned long long)n_scans, (unsigned long long)n_loose, (unsigned long long)inj.read_fails,
	       (unsigned long long)inj.write_fails, (unsigned long long)n_cb,
	       (unsigned long long)n_maps, (unsigned long long)n_sigbus);
	ASSERT_OK(uf_unmap(R, 0));
	ASSERT_OK(uf_store_close(s));
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* uf_sync while other threads write, under a budget that forces evictions:
 * when uf_sync returns, every write that finished before it was called is
 * in the store. Writers count up a value per page and publish it only after
 * the write; the check compares the store with the published values taken
 * before each sync. This is what asynchronous write tracking (writes that
 * are not faults, collected by a scan that also re-protects) must keep:
 * a write racing with the scan, with a park, or with an eviction already in
 * flight must not be reported clean. At the end the store equals the
 * region exactly. Once with a block per page, once with 4-page blocks. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define NPAGES 64
#define BUDGET 16
#define NWRITERS 2
#define SECONDS 1.0 /* of syncs racing with the writers, per block size */

static size_t ps;
static uint64_t *backing; /* the store's bytes, as 64-bit words */
static _Atomic uint64_t done[NPAGES];
static _Atomic int stop;
static unsigned char *region;

static uint64_t stored(size_t page, size_t word)
{
	return __atomic_load_n(&backing[page * (ps / 8) + word], __ATOMIC_RELAXED);
}

static void *writer(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg, seed = 0x9e3779b9 + t;
	uint64_t count[NPAGES] = {0};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t p = (xorshift64(&seed) % (NPAGES / NWRITERS)) * NWRITERS + t;
		uint64_t v = ++count[p];
		volatile uint64_t *w = (volatile uint64_t *)(region + p * ps);
		w[0] = v;
		w[ps / 8 - 1] = v; /* both ends of the page */
		atomic_store_explicit(&done[p], v, memory_order_release);
	}
	return NULL;
}

static uint64_t total_writes(void)
{
	uint64_t n = 0;
	for (size_t p = 0; p < NPAGES; p++)
		n += atomic_load_explicit(&done[p], memory_order_relaxed);
	return n;
}

static void run(size_t bs)
{
	size_t size = NPAGES * ps;
	backing = calloc(1, size);
	ASSERT(backing);
	struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = word_store_read,
				   .write = word_store_write};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, backing, size, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = BUDGET * ps;
	o.block_size = bs;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	region = uf_region_addr(r);

	pthread_t th[NWRITERS];
	for (uintptr_t t = 0; t < NWRITERS; t++)
		ASSERT_EQ(pthread_create(&th[t], NULL, writer, (void *)t), 0);
	uint64_t snap[NPAGES];
	unsigned late = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int i;
	for (i = 0;; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
		/* SECONDS, or longer (up to 20x) until the race was exercised
		 * enough: on a loaded machine (or under a sanitizer) 1 s may see
		 * too few writes for the checks below. */
		if (el > SECONDS && (el > 20 * SECONDS || (i > 10 && total_writes() > 1000)))
			break;
		for (size_t p = 0; p < NPAGES; p++)
			snap[p] = atomic_load_explicit(&done[p], memory_order_acquire);
		ASSERT_OK(uf_sync(r, NULL, 0));
		for (size_t p = 0; p < NPAGES; p++) {
			uint64_t a = stored(p, 0), b = stored(p, ps / 8 - 1);
			if (a < snap[p] || b < snap[p]) {
				fprintf(stderr, "sync %d page %zu: store has %llu/%llu, %llu was written before\n",
					i, p, (unsigned long long)a, (unsigned long long)b,
					(unsigned long long)snap[p]);
				late++;
			}
		}
		ASSERT_EQ(late, 0);
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < NWRITERS; t++)
		pthread_join(th[t], NULL);

	struct uf_stats st = stats_of(r);
	uint64_t writes = 0;
	for (size_t p = 0; p < NPAGES; p++)
		writes += atomic_load(&done[p]);
	printf("%d syncs, %llu writes, %llu evictions, %llu write-backs\n", i,
	       (unsigned long long)writes, (unsigned long long)st.evictions,
	       (unsigned long long)st.writebacks);
	/* The race was exercised: many syncs, writes, and evictions. */
	ASSERT_GT(i, 10);
	ASSERT_GT(writes, 1000);
	ASSERT_GT(st.evictions, 0);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(stats_of(r).dirty, 0);
	/* The store first, every page: reading the region loads pages, and
	 * the evictions that makes would write back (so hide) a lost write
	 * of a page checked later. */
	for (size_t p = 0; p < NPAGES; p++) {
		uint64_t want = atomic_load(&done[p]);
		ASSERT_EQ(stored(p, 0), want);
		ASSERT_EQ(stored(p, ps / 8 - 1), want);
	}
	for (size_t p = 0; p < NPAGES; p++)
		ASSERT_EQ(((volatile uint64_t *)(region + p * ps))[0], atomic_load(&done[p]));
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(backing);
	memset(done, 0, sizeof(done));
	atomic_store(&stop, 0);
}

int main(void)
{
	test_init(120);
	ps = page_size();
	run(ps);     /* a block per page */
	run(4 * ps); /* 4-page blocks: a write marks one page of a block */
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* A sequential scan under a budget parks and evicts whole runs of blocks at
 * once (one move and one write scan for a run of a window's blocks, one
 * release for a run of victims). Writes landing on those blocks while they
 * are parked must never be lost: two writer threads write into the blocks
 * just behind the scanner (the coldest active ones, parked next) while it
 * scans the region several times; then uf_sync, and the store and the
 * region must both hold every write. A write that lands between a run's
 * write scan and its move, or whose mark the scan took without the block
 * being counted dirty, would be lost here. A read-only region (parked by
 * copy and unmap where the engine cannot move its pages) is then scanned
 * forwards and backwards, so parked runs come back: every byte must be the
 * store's. */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { NB = 4096, BUDGET = 512, PASSES = 6, WRITERS = 2 };

static volatile unsigned char g_sink; /* the scan's reads, kept */
static struct fixture fx;
static unsigned char *shadow; /* what every byte must end up as */
static size_t bs;
static _Atomic size_t scan_pos;
static _Atomic int stop;
static _Atomic unsigned long writes;

static void *writer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1), v = (uint64_t)id << 56;
	while (!atomic_load(&stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t pos = atomic_load(&scan_pos);
		size_t back = 1 + (size_t)(x % (2 * BUDGET));
		size_t blk = (pos + NB - back) % NB;
		/* Slots of 8 bytes; each writer owns every other one, so the
		 * shadow's order of writes per slot is the writer's own. */
		size_t slots = bs / 8;
		size_t slot = ((size_t)(x >> 20) % (slots / WRITERS)) * WRITERS + id;
		size_t off = blk * bs + slot * 8;
		v++;
		/* Relaxed atomics: the scanner's touch of the same block is a
		 * race by design. */
		__atomic_store_n((uint64_t *)(void *)(fx.p + off), v, __ATOMIC_RELAXED);
		memcpy(shadow + off, &v, 8);
		atomic_fetch_add(&writes, 1);
	}
	return NULL;
}

static void run(void)
{
	bs = page_size();
	fixture_open(&fx, (size_t)NB * bs, bs, (size_t)BUDGET * bs, PROT_READ | PROT_WRITE);
	/* The shadow starts as the pattern, computed rather than read from the
	 * store (which handler threads write: TSan cannot see that they do so
	 * only after this thread's fault). */
	shadow = pattern_buf(fx.size);
	atomic_store(&scan_pos, 0);
	atomic_store(&stop, 0);
	atomic_store(&writes, 0);
	pthread_t t[WRITERS];
	for (unsigned i = 0; i < WRITERS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)i), 0);
	for (int pass = 0; pass < PASSES; pass++)
		for (size_t b = 0; b < NB; b++) {
			g_sink ^= __atomic_load_n(&fx.p[b * bs + (b * 61) % bs], __ATOMIC_RELAXED);
			atomic_store(&scan_pos, b);
		}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < WRITERS; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	ASSERT_OK(uf_sync(fx.r, fx.p, (size_t)NB * bs));
	struct uf_stats st = stats_of(fx.r);
	printf("%lu writes; faults %llu evictions %llu writebacks %llu reactivations %llu\n",
	       (unsigned long)atomic_load(&writes), (unsigned long long)st.faults,
	       (unsigned long long)st.evictions, (unsigned long long)st.writebacks,
	       (unsigned long long)st.reactivations);
	ASSERT_GT(st.evictions, 0);
	ASSERT_GT(st.writebacks, 0);
	ASSERT_EQ(fixture_check_shadow(&fx, shadow, NB, bs), 0);
	free(shadow);
	fixture_close(&fx, 0);
}

static void run_readonly(void)
{
	bs = page_size();
	fixture_open(&fx, (size_t)NB * bs, bs, (size_t)BUDGET * bs, PROT_READ);
	size_t bad = 0;
	for (int pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < NB; i++) {
			size_t b = pass % 2 ? NB - 1 - i : i;
			if (memcmp(fx.p + b * bs, fx.buf + b * bs, bs) && bad++ < 5)
				fprintf(stderr, "pass %d block %zu differs from the store\n", pass, b);
		}
	struct uf_stats st = stats_of(fx.r);
	printf("read-only: faults %llu evictions %llu reactivations %llu\n",
	       (unsigned long long)st.faults, (unsigned long long)st.evictions,
	       (unsigned long long)st.reactivations);
	ASSERT_EQ(bad, 0);
	ASSERT_GT(st.evictions, 0);
	ASSERT_GT(st.reactivations, 0);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(120);
	for (int round = 0; round < 3; round++)
		run();
	run_readonly();
	printf("ok\n");
	return 0;
}

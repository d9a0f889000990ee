/* SPDX-License-Identifier: MIT */
/* Under a budget a sequential scan of a writable region loads each
 * read-ahead window into the pages its frames' victims left behind and
 * moves them in (src/pager.c, load_recycled): a moved page is writable
 * until it is write-protected a moment later, and a write in between
 * leaves no trace but its bytes. Writer threads aim at that moment: each
 * picks a block of the window ahead of the scanner, waits without faulting
 * (mincore) until its page is mapped, and writes it at once. After
 * uf_sync the store and the region must hold every write; a write that
 * met a moved page before its protect, with the block left clean, would be
 * evicted as clean and lost (without the content check after the protect
 * this test loses writes every round). The same under write-protect
 * faults is the USERFAULT_WP_ASYNC=0 run of make check. */
#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

enum { NB = 4096, BUDGET = 2048, PASSES = 8, ROUNDS = 2, WRITERS = 2, AHEAD = 128 };

static volatile unsigned char g_sink; /* the scan's reads, kept */
static struct fixture fx;
static unsigned char *shadow; /* what every byte must end up as */
static size_t bs;
static _Atomic size_t scan_pos;
static _Atomic int stop;
static _Atomic unsigned long writes, early, sync_lost;
static _Atomic unsigned ready;
static uint64_t last[WRITERS]; /* each writer's last value, between passes */

static bool mapped(const void *a)
{
	unsigned char v = 0;
	return mincore((void *)a, bs, &v) == 0 && (v & 1);
}

static void *writer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	/* Values never repeat, across passes too: each write changes bytes. */
	uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1 + atomic_load(&writes)), v = last[id];
	if (!v)
		v = (uint64_t)(id + 1) << 56;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t pos = atomic_load(&scan_pos);
		size_t blk = pos + 1 + (size_t)(x % AHEAD);
		if (blk >= NB || mapped(fx.p + blk * bs))
			continue;
		/* Wait for the scanner's window to bring it in; give up once the
		 * scanner is well past it (the window came and went while this
		 * thread was off its CPU). */
		unsigned spins = 0;
		bool in = false;
		while (!atomic_load(&stop) && atomic_load(&scan_pos) < blk + AHEAD)
			if ((in = mapped(fx.p + blk * bs)))
				break;
			else
				spins++;
		if (!in)
			continue;
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
		if (spins < 4)
			atomic_fetch_add(&early, 1);
		/* Writer 0 syncs its block at once: a write done before uf_sync
		 * is in the store when it returns, even one that met the move
		 * (the block is not dirty until the check after the protect,
		 * so the sync must wait for that check). */
		if (id == 0) {
			int e = uf_sync(fx.r, fx.p + blk * bs, bs);
			if (e || !same_bytes(fx.buf + off, (const unsigned char *)&v, 8)) {
				fprintf(stderr, "block %zu: uf_sync = %d, the store lacks the write before it\n", blk, e);
				atomic_fetch_add(&sync_lost, 1);
			}
		}
	}
	last[id] = v;
	return NULL;
}

static void run(void)
{
	bs = page_size();
	fixture_open(&fx, (size_t)NB * bs, bs, (size_t)BUDGET * bs, PROT_READ | PROT_WRITE);
	shadow = pattern_buf(fx.size); /* computed: handler threads write the store */
	memset(last, 0, sizeof(last));
	/* After each pass: uf_sync, and the check. Half the region is still
	 * resident then (the budget), its writes found by the sync alone; the
	 * other half's were found as each block was evicted. */
	for (int pass = 0; pass < PASSES; pass++) {
		atomic_store(&scan_pos, 0);
		atomic_store(&stop, 0);
		atomic_store(&ready, 0);
		pthread_t t[WRITERS];
		for (unsigned i = 0; i < WRITERS; i++)
			ASSERT_EQ(pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)i), 0);
		while (atomic_load(&ready) < WRITERS)
			sched_yield();
		for (size_t b = 0; b < NB; b++) {
			atomic_store(&scan_pos, b);
			g_sink ^= __atomic_load_n(&fx.p[b * bs + (b * 61) % bs], __ATOMIC_RELAXED);
		}
		atomic_store(&stop, 1);
		for (unsigned i = 0; i < WRITERS; i++)
			ASSERT_EQ(pthread_join(t[i], NULL), 0);
		ASSERT_EQ(atomic_load(&sync_lost), 0);
		ASSERT_OK(uf_sync(fx.r, fx.p, (size_t)NB * bs));
		ASSERT_EQ(fixture_check_shadow(&fx, shadow, NB, bs), 0);
	}
	struct uf_stats st = stats_of(fx.r);
	printf("%lu writes so far (%lu right as the page appeared); faults %llu evictions %llu "
	       "writebacks %llu\n",
	       (unsigned long)atomic_load(&writes), (unsigned long)atomic_load(&early),
	       (unsigned long long)st.faults, (unsigned long long)st.evictions,
	       (unsigned long long)st.writebacks);
	ASSERT_GT(st.evictions, 0);
	free(shadow);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(120);
	/* Writes land only when a writer is on a CPU as a window comes in:
	 * some rounds on a loaded machine get none, so the count is over all
	 * of them. */
	for (int round = 0; round < ROUNDS; round++)
		run();
	ASSERT_GT(atomic_load(&writes), 0);
	printf("ok\n");
	return 0;
}

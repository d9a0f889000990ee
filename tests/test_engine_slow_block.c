/* SPDX-License-Identifier: MIT */
/* A slow block delays only the threads that need it. The store's read of
 * two chosen blocks sleeps 2 s; three threads touch them (two on the same
 * block, one on the other) while the main thread faults 100 other blocks,
 * which must finish long before the slow reads do (< 1 s, generous for a
 * loaded machine; unhindered it takes milliseconds). Every engine: the
 * handler-thread engine must not let waiting faults occupy every handler. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define SLOW_MS 2000
static const size_t nblocks = 4096;
static const uint64_t slow_a = 1000, slow_b = 3000;
static unsigned char *g_buf;
static size_t g_ps;
static _Atomic int g_in_slow;

static int slow_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	uint64_t b0 = off / g_ps, b1 = (off + len - 1) / g_ps;
	if ((b0 <= slow_a && slow_a <= b1) || (b0 <= slow_b && slow_b <= b1)) {
		atomic_fetch_add(&g_in_slow, 1);
		struct timespec ts = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	memcpy(dst, g_buf + off, len);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char *g_p;

static void *toucher(void *arg)
{
	uint64_t b = (uint64_t)(uintptr_t)arg;
	size_t off = b * g_ps + 8;
	if (g_p[off] != g_buf[off])
		FAIL("slow block %llu: got %u want %u", (unsigned long long)b, g_p[off], g_buf[off]);
	return NULL;
}

int main(void)
{
	test_init(60);
	g_ps = page_size();
	size_t size = nblocks * g_ps;
	g_buf = pattern_buf(size);
	struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = slow_read};
	uf_store *st;
	ASSERT_OK(uf_store_new(&ops, NULL, size, &st));
	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	ASSERT_OK(uf_map(st, 0, size, PROT_READ, &o, &r));
	g_p = uf_region_addr(r);

	/* In this order: the first slow read is under way, a second thread
	 * waits for the same block, then a third touches the other slow block
	 * (with two handler threads that took every handler). */
	pthread_t t[3];
	uint64_t which[3] = {slow_a, slow_a, slow_b};
	ASSERT_OK(-pthread_create(&t[0], NULL, toucher, (void *)(uintptr_t)which[0]));
	while (atomic_load(&g_in_slow) < 1) /* bounded by the test's timeout */
		usleep(1000);
	for (int i = 1; i < 3; i++) {
		ASSERT_OK(-pthread_create(&t[i], NULL, toucher, (void *)(uintptr_t)which[i]));
		usleep(50000); /* let it reach its fault */
	}

	double t0 = now_s();
	for (size_t i = 0; i < 100; i++) {
		/* stride 37: never sequential (no read-ahead), never a slow block */
		size_t b = i * 37 + 7;
		size_t off = b * g_ps + 16;
		if (g_p[off] != g_buf[off])
			FAIL("block %zu: got %u want %u", b, g_p[off], g_buf[off]);
	}
	double dt = now_s() - t0;
	double t1 = now_s();
	for (int i = 0; i < 3; i++)
		ASSERT_OK(-pthread_join(t[i], NULL));
	printf("100 faults beside two 2 s blocks (three threads waiting on them): %.3f s; "
	       "the slow ones ended %.3f s later\n", dt, now_s() - t1);
	ASSERT_LT((long)(dt * 1000), 1000L); /* ms */
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(st));
	free(g_buf);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * pthread_cancel of a thread while the library works for it: a fault whose
 * store read sleeps (nanosleep, a cancellation point), and a uf_sync whose
 * store write sleeps. The cancel waits until the library is done: the
 * fault is served, the sync returns 0, and the thread is cancelled at its
 * next cancellation point. Before, the in-thread engines unwound the
 * thread out of the store call, and the next access to that block (or
 * uf_unmap) waited for ever, with asynchronous signals blocked, so not
 * even SIGTERM ended the process. The same for a thread whose loads fail
 * and are retried by the error callback (under uffd-thread the cancel
 * acted inside the retry, whose record a handler thread then wrote into a
 * dead stack: the process crashed).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define NPAGES 8
static unsigned char g_buf[NPAGES * 4096];
static _Atomic int g_slow_read, g_slow_write, g_in_call;

static void nap(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (atomic_load(&g_slow_read)) {
		atomic_store(&g_in_call, 1);
		nap(200);
	}
	memcpy(dst, g_buf + off, len);
	return 0;
}

static int wr(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	if (atomic_load(&g_slow_write)) {
		atomic_store(&g_in_call, 1);
		nap(200);
	}
	memcpy(g_buf + off, src, len);
	return 0;
}

static volatile unsigned char *g_p;
static uf_region *g_r;
static _Atomic int g_got = -1, g_sync = 1;

static void *reader(void *arg)
{
	(void)arg;
	atomic_store(&g_got, g_p[3 * 4096 + 5]);
	pthread_testcancel();
	return NULL;
}

static void *syncer(void *arg)
{
	(void)arg;
	atomic_store(&g_sync, uf_sync(g_r, NULL, 0));
	pthread_testcancel();
	return NULL;
}

/* Runs fn in a thread, cancels it once it is inside the slow store call. */
static void cancel_inside(void *(*fn)(void *))
{
	atomic_store(&g_in_call, 0);
	pthread_t th;
	ASSERT_OK(pthread_create(&th, NULL, fn, NULL));
	for (int i = 0; !atomic_load(&g_in_call); i++) {
		ASSERT_LT(i, 5000);
		nap(1);
	}
	ASSERT_EQ(pthread_cancel(th), 0);
	void *res;
	ASSERT_EQ(pthread_join(th, &res), 0);
	ASSERT(res == PTHREAD_CANCELED);
}

/* Failed loads retried by the error callback: the retry's service (under
 * uffd-thread a request to a handler thread, whose record lives on the
 * faulting thread's stack) must not be left by a cancel either. */
#define NFAIL 64
static _Atomic unsigned long g_reads;
static volatile unsigned char *g_fp;
static uf_region *g_fr;
static volatile int g_in_access;
static _Atomic int g_bad_cancel;

static int rd_fail(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off;
	if (atomic_fetch_add(&g_reads, 1) % 2 == 0)
		return -EIO;
	memset(dst, 0x5a, len);
	return 0;
}

static int retry_cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)err, (void)arg;
	return UF_ERR_RETRY;
}

static void note_cancel(void *arg)
{
	(void)arg;
	if (g_in_access)
		atomic_fetch_add(&g_bad_cancel, 1);
}

static void *fail_toucher(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	pthread_cleanup_push(note_cancel, NULL);
	for (;;) {
		size_t off = (size_t)(rand_r(&seed) % NFAIL) * 4096;
		g_in_access = 1;
		unsigned char c = g_fp[off]; /* no cancellation point of its own */
		g_in_access = 0;
		if (c != 0x5a)
			atomic_fetch_add(&g_bad_cancel, 1000);
		if (rand_r(&seed) % 4 == 0)
			uf_evict(g_fr, (void *)(g_fp + off), 4096); /* so it loads again */
		pthread_testcancel();
	}
	pthread_cleanup_pop(0);
	return NULL;
}

static void cancel_failing_loads(void)
{
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd_fail};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, NFAIL * 4096, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 16 * 4096;
	o.flags = UF_MAP_NO_READAHEAD;
	o.on_error = retry_cb;
	ASSERT_OK(uf_map(s, 0, NFAIL * 4096, PROT_READ, &o, &g_fr));
	g_fp = uf_region_addr(g_fr);
	for (int i = 0; i < 100; i++) {
		pthread_t th;
		g_in_access = 0;
		ASSERT_OK(pthread_create(&th, NULL, fail_toucher, (void *)(uintptr_t)(i + 1)));
		nap(i % 3);
		ASSERT_EQ(pthread_cancel(th), 0);
		ASSERT_EQ(pthread_join(th, NULL), 0);
	}
	ASSERT_EQ(atomic_load(&g_bad_cancel), 0);
	ASSERT_OK(uf_unmap(g_fr, 0));
	ASSERT_OK(uf_store_close(s));
	printf("100 cancels of a thread whose loads fail and are retried: none acted inside a fault\n");
}

int main(void)
{
	test_init(60);
	if (page_size() != 4096)
		SKIP("the store is sized for 4 KiB pages");
	for (size_t i = 0; i < sizeof(g_buf); i++)
		g_buf[i] = pattern_byte(i);
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd, .write = wr};
	uf_store *s;
	g_r = map_user_store(&ops, sizeof(g_buf), UF_MAP_NO_READAHEAD, &s);
	g_p = uf_region_addr(g_r);

	/* A fault whose load is in progress. */
	atomic_store(&g_slow_read, 1);
	cancel_inside(reader);
	atomic_store(&g_slow_read, 0);
	ASSERT_EQ(atomic_load(&g_got), pattern_byte(3 * 4096 + 5)); /* served before the cancel */
	ASSERT_EQ(g_p[3 * 4096 + 5], pattern_byte(3 * 4096 + 5));   /* and loaded: no wait */

	/* A uf_sync whose write-back is in progress. */
	g_p[6 * 4096] = 0x5a;
	atomic_store(&g_slow_write, 1);
	cancel_inside(syncer);
	atomic_store(&g_slow_write, 0);
	ASSERT_EQ(atomic_load(&g_sync), 0);
	ASSERT_EQ(g_buf[6 * 4096], 0x5a);
	struct uf_stats st = stats_of(g_r);
	ASSERT_EQ(st.dirty, 0);

	ASSERT_OK(uf_unmap(g_r, 0));
	ASSERT_OK(uf_store_close(s));
	cancel_failing_loads();
	printf("ok\n");
	return 0;
}

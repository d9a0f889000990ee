/* SPDX-License-Identifier: MIT */
/*
 * Background write-back (writeback_ms) flushes the store only after
 * something was written to it: an idle region costs no flush (a file
 * store's fdatasync every period); a pass after a write flushes; a failed
 * flush is tried again by the next pass although nothing new was written;
 * an explicit uf_sync still always flushes.
 */
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define NPAGES 16
static unsigned char g_buf[NPAGES * 4096];
static _Atomic int g_writes, g_flushes, g_fail_flush;

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	memcpy(dst, g_buf + off, len);
	return 0;
}

static int wr(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	memcpy(g_buf + off, src, len);
	atomic_fetch_add(&g_writes, 1);
	return 0;
}

static int fl(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_flushes, 1);
	return atomic_exchange(&g_fail_flush, 0) ? -EIO : 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits up to 5 s for *v to reach at least want. */
static void wait_at_least(_Atomic int *v, int want, const char *what)
{
	for (int i = 0; atomic_load(v) < want; i++) {
		if (i > 500)
			FAIL("%s: %d, waited for %d", what, atomic_load(v), want);
		sleep_ms(10);
	}
}

int main(void)
{
	test_init(60);
	if (page_size() != 4096)
		SKIP("the store is sized for 4 KiB pages");
	const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = rd, .write = wr, .flush = fl};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, sizeof(g_buf), &s));
	struct uf_map_opts o = test_map_opts();
	o.writeback_ms = 10;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, sizeof(g_buf), PROT_READ | PROT_WRITE, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);

	/* Read, never written: about 20 passes, no write, no flush. */
	ASSERT_EQ(p[5], 0);
	sleep_ms(200);
	ASSERT_EQ(atomic_load(&g_writes), 0);
	ASSERT_EQ(atomic_load(&g_flushes), 0);

	/* A write: a pass writes it back and flushes. */
	p[3 * 4096] = 7;
	wait_at_least(&g_flushes, 1, "flushes after a write");
	ASSERT_GE(atomic_load(&g_writes), 1);
	ASSERT_EQ(g_buf[3 * 4096], 7);
	sleep_ms(50); /* a pass that began before the flush may end now */
	int f = atomic_load(&g_flushes);
	sleep_ms(200); /* idle again */
	ASSERT_EQ(atomic_load(&g_flushes), f);

	/* A failing flush: the next pass flushes again, with nothing new. */
	atomic_store(&g_fail_flush, 1);
	p[4 * 4096] = 8;
	wait_at_least(&g_flushes, f + 2, "flushes after a failed one");
	ASSERT_EQ(atomic_load(&g_fail_flush), 0);
	sleep_ms(50);
	f = atomic_load(&g_flushes);
	sleep_ms(200);
	ASSERT_EQ(atomic_load(&g_flushes), f);

	/* uf_sync flushes, written or not. */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_GE(atomic_load(&g_flushes), f + 1);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* The RAM budget holds: uf_stats never reports more resident blocks than the
 * budget, the process's real resident set grows by no more than the budget,
 * and evicted dirty blocks are written back (the store equals the shadow). */
#include "common.h"

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	const size_t npages = 4096, budget_pages = 64; /* 16 MiB region, 256 KiB budget */
	struct fixture fx;
	fixture_open(&fx, npages * ps, 0, budget_pages * ps, PROT_READ | PROT_WRITE);
	unsigned char *shadow = malloc(npages * ps);
	/* From the pattern, not from fx.buf: the store's buffer belongs to
	 * the library while the region lives (a handler thread writes it back
	 * during evictions; reading it here would race). */
	for (size_t i = 0; i < npages * ps; i++)
		shadow[i] = pattern_byte(i);
	size_t rss0 = rss_bytes();

	uint64_t seed = 42;
	size_t max_rss_growth = 0;
	for (int i = 0; i < 20000; i++) {
		size_t pg = xorshift64(&seed) % npages;
		size_t off = pg * ps + xorshift64(&seed) % ps;
		if (i % 3 == 0) {
			unsigned char v = (unsigned char)xorshift64(&seed);
			fx.p[off] = v;
			shadow[off] = v;
		} else if (fx.p[off] != shadow[off]) {
			FAIL("page %zu off %zu: got %u want %u", pg, off, fx.p[off], shadow[off]);
		}
		if (i % 500 == 0) {
			struct uf_stats st = stats_of(fx.r);
			ASSERT_LE(st.resident, budget_pages);
			ASSERT_LE(st.dirty, st.resident);
			size_t rss = rss_bytes();
			if (rss > rss0 && rss - rss0 > max_rss_growth)
				max_rss_growth = rss - rss0;
		}
	}
	struct uf_stats st = stats_of(fx.r);
	ASSERT_EQ(st.max_resident, budget_pages);
	ASSERT_LE(st.resident_peak, budget_pages);
	ASSERT_GT(st.evictions, 1000);
	ASSERT_GT(st.writebacks, 100); /* dirty victims were written back */
	/* Real memory: the budget plus a little metadata (frames, table).
	 * Not under a sanitizer: its runtime's memory counts in the RSS. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	ASSERT_LE(max_rss_growth, budget_pages * ps + 512 * 1024);
#endif

	/* Everything not resident was written back on eviction: after a sync the
	 * store matches the shadow byte for byte. */
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(stats_of(fx.r).dirty, 0);
	for (size_t i = 0; i < npages * ps; i++)
		if (fx.buf[i] != shadow[i])
			FAIL("store byte %zu: %u want %u", i, fx.buf[i], shadow[i]);
	fixture_close(&fx, 0);
	free(shadow);
	printf("ok: rss growth %zu KiB for a %zu KiB budget\n", max_rss_growth / 1024,
	       budget_pages * ps / 1024);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Writes reach the store on uf_sync (only the synced range, in full blocks);
 * uf_discard drops local changes; uf_evict writes back and releases. All of
 * it twice: with the engine's default write tracking, and with
 * UF_MAP_WP_FAULTS (a write-protect fault per first write, never
 * asynchronous tracking). */
#include "common.h"

static void run(unsigned flags)
{
	size_t ps = page_size(), n = 64;
	fixture_map_flags = flags;
	struct fixture fx;
	fixture_open(&fx, n * ps, 0, 0, PROT_READ | PROT_WRITE);

	/* read everything first: clean blocks must not be written back */
	volatile unsigned char *vp = fx.p; /* or the compiler drops the reads */
	unsigned sum = 0;
	for (size_t i = 0; i < n * ps; i += 64)
		sum += vp[i];
	(void)sum;
	ASSERT_EQ(stats_of(fx.r).resident, n);
	ASSERT_EQ(stats_of(fx.r).dirty, 0);

	/* write one byte in pages 3 and 40 */
	fx.p[3 * ps + 5] = 0xAB;
	fx.p[40 * ps] = 0xCD;
	struct uf_stats st = stats_of(fx.r);
	ASSERT_EQ(st.dirty, 2);
	/* asynchronous tracking: no fault; otherwise one per first write */
	if (flags & UF_MAP_WP_FAULTS)
		ASSERT_EQ(st.async_writes, 0);
	ASSERT_EQ(st.write_faults, (st.async_writes ? 0u : 2u));
	ASSERT_EQ(fx.buf[3 * ps + 5], pattern_byte(3 * ps + 5)); /* not yet in the store */

	/* sync only the first half: page 3 goes, page 40 stays dirty */
	ASSERT_OK(uf_sync(fx.r, fx.p, 32 * ps));
	ASSERT_EQ(fx.buf[3 * ps + 5], 0xAB);
	ASSERT_EQ(fx.buf[40 * ps], pattern_byte(40 * ps));
	st = stats_of(fx.r);
	ASSERT_EQ(st.dirty, 1);
	ASSERT_EQ(st.writebacks, 1);

	/* a second write to a synced page is tracked again */
	fx.p[3 * ps + 6] = 0x11;
	ASSERT_EQ(stats_of(fx.r).dirty, 2);
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(fx.buf[3 * ps + 6], 0x11);
	ASSERT_EQ(fx.buf[40 * ps], 0xCD);
	ASSERT_EQ(stats_of(fx.r).dirty, 0);
	ASSERT_EQ(stats_of(fx.r).writebacks, 3);

	/* discard: local change gone, the next read sees the store */
	fx.p[10 * ps] = 0x77;
	fx.buf[10 * ps + 1] = 0x99; /* the store changes behind our back */
	ASSERT_OK(uf_discard(fx.r, fx.p + 10 * ps, ps));
	ASSERT_EQ(stats_of(fx.r).dirty, 0);
	ASSERT_EQ(fx.p[10 * ps], pattern_byte(10 * ps));
	ASSERT_EQ(fx.p[10 * ps + 1], 0x99);
	ASSERT_EQ(fx.buf[10 * ps], pattern_byte(10 * ps)); /* never written */

	/* evict: written back, then released; reading loads it again */
	fx.p[20 * ps] = 0x42;
	uint64_t loads = stats_of(fx.r).loads;
	ASSERT_OK(uf_evict(fx.r, fx.p + 20 * ps, 1));
	ASSERT_EQ(fx.buf[20 * ps], 0x42);
	ASSERT_EQ(fx.p[20 * ps], 0x42);
	ASSERT_EQ(stats_of(fx.r).loads, loads + 1);

	/* prefetch loads without faults */
	ASSERT_OK(uf_evict(fx.r, NULL, 0));
	ASSERT_EQ(stats_of(fx.r).resident, 0);
	int got = uf_prefetch(fx.r, fx.p, 8 * ps);
	ASSERT_EQ(got, 8);
	uint64_t faults = stats_of(fx.r).faults;
	for (size_t i = 0; i < 8 * ps; i += ps)
		ASSERT_EQ(fx.p[i], fx.buf[i]);
	ASSERT_EQ(stats_of(fx.r).faults, faults);

	/* a write inside a multi-page block syncs the whole block */
	fixture_close(&fx, 0);
	fixture_open(&fx, n * ps, 4 * ps, 0, PROT_READ | PROT_WRITE);
	fx.p[ps + 7] = 0x5A;
	ASSERT_EQ(stats_of(fx.r).dirty, 1);
	ASSERT_OK(uf_sync(fx.r, fx.p + ps, 1));
	ASSERT_EQ(fx.buf[ps + 7], 0x5A);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(60);
	run(0);
	run(UF_MAP_WP_FAULTS);
	printf("ok\n");
	return 0;
}

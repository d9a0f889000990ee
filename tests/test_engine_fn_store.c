/* SPDX-License-Identifier: MIT */
/* A function store computes each block once while it is resident: reading
 * twice costs one computation per block; with a budget, recomputation
 * happens only after an eviction (calls == loads), and a parked block comes
 * back without a call. Writes to a function store cannot be written back:
 * uf_sync says -EROFS and the data stays dirty. */
#include <pthread.h>

#include "common.h"

#define NBLK 256
static _Atomic unsigned calls[NBLK];
static size_t g_bs;

static int fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	/* one call may cover several blocks (read-ahead): count each */
	for (uint64_t b = off / g_bs; b < (off + len + g_bs - 1) / g_bs; b++)
		calls[b]++;
	uint64_t *w = dst;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = (off / 8 + i) * 2654435761u;
	return 0;
}

static void run(size_t budget_blocks)
{
	memset(calls, 0, sizeof(calls));
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill, NULL, NBLK * g_bs, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget_blocks * g_bs;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, NBLK * g_bs, PROT_READ | PROT_WRITE, &o, &r));
	const uint64_t *w = uf_region_addr(r);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < NBLK * g_bs / 8; i += 7)
			if (w[i] != i * 2654435761u)
				FAIL("word %zu: %llu", i, (unsigned long long)w[i]);
	struct uf_stats st = stats_of(r);
	unsigned total = 0;
	for (int b = 0; b < NBLK; b++) {
		total += calls[b];
		if (budget_blocks >= NBLK)
			ASSERT_EQ(calls[b], 1);
	}
	ASSERT_EQ(total, st.loads);
	if (budget_blocks < NBLK)
		ASSERT_GT(st.evictions, 0);

	/* written data cannot go back to a function */
	((volatile uint64_t *)w)[1] = 7;
	ASSERT_EQ(uf_sync(r, NULL, 0), -EROFS);
	ASSERT_EQ(stats_of(r).dirty, 1);
	ASSERT_EQ(w[1], 7);
	ASSERT_EQ(uf_unmap(r, 0), -EROFS); /* refuses: would lose the write */
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
}

int main(void)
{
	test_init(60);
	g_bs = page_size();
	run(NBLK);
	run(NBLK / 8);
	/* hot block survives a scan: with parking, a block touched again while
	 * parked is reactivated, not recomputed */
	memset(calls, 0, sizeof(calls));
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill, NULL, NBLK * g_bs, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 16 * g_bs;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, NBLK * g_bs, PROT_READ, &o, &r));
	const volatile uint64_t *w = uf_region_addr(r);
	for (size_t b = 0; b < NBLK; b++) {
		(void)w[b * g_bs / 8];
		(void)w[0]; /* block 0 is hot */
	}
	ASSERT_LE(calls[0], 2);
	ASSERT_GT(stats_of(r).reactivations, 0);
	ASSERT_OK(uf_unmap(r, 0));

	/* Better than FIFO: a block touched once per 8 new ones stays, with a
	 * budget of 32 blocks, over a scan of all 256 (FIFO would load it
	 * every 32 loads, 8 times over). Needs the inactive list to be filled
	 * up to its target, not kept at one entry. */
	memset(calls, 0, sizeof(calls));
	o.max_resident = 32 * g_bs;
	o.flags = UF_MAP_NO_READAHEAD;
	ASSERT_OK(uf_map(s, 0, NBLK * g_bs, PROT_READ, &o, &r));
	w = uf_region_addr(r);
	for (size_t b = 1; b < NBLK; b++) {
		(void)w[b * g_bs / 8];
		if (b % 8 == 0)
			(void)w[0];
	}
	ASSERT_LE(calls[0], 2);
	ASSERT_GE(stats_of(r).reactivations, 4);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("ok\n");
	return 0;
}

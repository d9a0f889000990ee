/* A budget that holds everything a region touched is no pressure: no block
 * is parked or evicted, so no block faults twice. Through uf_stats: every
 * touched block faults exactly once and nothing is evicted or reactivated,
 * both when the budget holds the whole region and when it holds exactly the
 * blocks touched (every frame in use, none needed). */
#include "common.h"

/* Touches n blocks of the region in an order with no two neighbours in a
 * row (read-ahead stays off), twice, checking the bytes. */
static void touch(struct fixture *fx, size_t bs, size_t n, size_t stride, size_t nb)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			size_t b = (i * stride) % nb;
			size_t off = b * bs + (i * 4099) % bs;
			if (fx->p[off] != fx->buf[off])
				FAIL("pass %d block %zu: got %u want %u", pass, b, fx->p[off], fx->buf[off]);
		}
}

static void check(size_t bs, size_t nb, size_t touched, size_t budget_blocks)
{
	struct fixture fx;
	fixture_open(&fx, nb * bs, bs, budget_blocks * bs, PROT_READ | PROT_WRITE);
	/* stride 97 over a power-of-two count: a permutation, never +1 */
	touch(&fx, bs, touched, touched == nb ? 97 : 2 * 97, nb);
	struct uf_stats st = stats_of(fx.r);
	printf("bs %zu KiB, %zu blocks, %zu touched, budget %zu: faults %llu loads %llu "
	       "evictions %llu reactivations %llu resident %llu\n",
	       bs >> 10, nb, touched, budget_blocks, (unsigned long long)st.faults,
	       (unsigned long long)st.loads, (unsigned long long)st.evictions,
	       (unsigned long long)st.reactivations, (unsigned long long)st.resident);
	ASSERT_EQ(st.evictions, 0);
	ASSERT_EQ(st.reactivations, 0);
	ASSERT_EQ(st.faults, touched);
	ASSERT_EQ(st.loads, touched);
	ASSERT_EQ(st.resident, touched);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	check(ps, 1024, 1024, 1024);              /* budget = region */
	check(16 * ps, 256, 256, 256);            /* 64 KiB blocks, budget = region */
	check(16 * ps, 256, 128, 128);            /* budget = exactly what is touched */
	check(16 * ps, 256, 256, 0);              /* default budget (the region) */
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* uf_prefetch(3): the blocks of the range are resident afterwards, so that
 * touching them takes no fault and write(2) from them succeeds on every
 * engine; it loads only the range (read-ahead used to run past its end,
 * and when the range filled the budget that pushed out the range's own
 * first blocks: 19 loads and 3 evictions for 16 blocks under a budget of
 * 16, six of them faulting again, and write(2) failing with EFAULT); a
 * range larger than the budget is cut to what the budget keeps mapped;
 * resident blocks are counted and not loaded again. */
#include <fcntl.h>

#include "common.h"

#define NBLK 256
#define BUDGET 16

static void expect_resident(uf_region *r, unsigned char *a, const unsigned char *b, size_t from,
			    size_t n)
{
	size_t ps = page_size();
	uint64_t f0 = stats_of(r).faults;
	for (size_t i = from; i < from + n; i++)
		ASSERT_EQ(((volatile unsigned char *)a)[i * ps + 11], b[i * ps + 11]);
	uint64_t f1 = stats_of(r).faults;
	if (f1 != f0)
		FAIL("%llu of %zu prefetched blocks faulted when touched", (unsigned long long)(f1 - f0), n);
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	uf_store *s;
	const unsigned char *b = pattern_store(NBLK * ps, &s);
	char path[] = "/tmp/uf-prefetch-XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0);
	unlink(path);
	const int prots[] = {PROT_READ, PROT_READ | PROT_WRITE};
	for (unsigned pi = 0; pi < 2; pi++) {
		int prot = prots[pi];
		struct uf_map_opts o = test_map_opts();
		o.max_resident = BUDGET * ps;
		uf_region *r;
		ASSERT_OK(uf_map(s, 0, NBLK * ps, prot, &o, &r));
		unsigned char *a = uf_region_addr(r);

		/* A range the budget holds exactly, in the middle of the region. */
		ASSERT_EQ(uf_prefetch(r, a + 40 * ps, BUDGET * ps), BUDGET);
		struct uf_stats st = stats_of(r);
		ASSERT_EQ(st.loads, BUDGET);
		ASSERT_EQ(st.evictions, 0);
		ASSERT_EQ(st.resident, BUDGET);
		ASSERT_EQ(pwrite(fd, a + 40 * ps, BUDGET * ps, 0), (ssize_t)(BUDGET * ps));
		expect_resident(r, a, b, 40, BUDGET);
		ASSERT_EQ(stats_of(r).loads, BUDGET);

		/* Again: found resident, counted, nothing loaded. */
		ASSERT_EQ(uf_prefetch(r, a + 44 * ps, 4 * ps), 4);
		ASSERT_EQ(stats_of(r).loads, BUDGET);

		/* The whole region, once the region has evicted: cut to what the
		 * budget keeps mapped (a third is kept parked), from its start
		 * (all 16 were loaded and 5 of them parked again: they faulted,
		 * and write(2) failed). */
		ASSERT_OK(uf_evict(r, NULL, 0));
		uint64_t l0 = stats_of(r).loads;
		const int mapped = BUDGET - BUDGET / 3;
		ASSERT_EQ(uf_prefetch(r, NULL, 0), mapped);
		ASSERT_EQ(stats_of(r).loads - l0, mapped);
		ASSERT_EQ(pwrite(fd, a, mapped * ps, 0), (ssize_t)(mapped * ps));
		expect_resident(r, a, b, 0, mapped);

		/* A few blocks: only those. */
		ASSERT_OK(uf_evict(r, NULL, 0));
		l0 = stats_of(r).loads;
		ASSERT_EQ(uf_prefetch(r, a + 100 * ps, 3 * ps), 3);
		ASSERT_EQ(stats_of(r).loads - l0, 3);
		expect_resident(r, a, b, 100, 3);
		ASSERT_OK(uf_unmap(r, 0));
	}
	close(fd);
	uf_store_close(s);
	return 0;
}

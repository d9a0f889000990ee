/* SPDX-License-Identifier: MIT */
/* Blocks above the read-ahead batch (512 KiB to 2 MiB) read back correctly
 * and, under the userfaultfd engines, cost no fresh page per 4 KiB: a load
 * goes through a staging slot that stays populated, so the process takes
 * far fewer minor faults than the pages it reads (filling the frame's own
 * slot took one per page). */
#include <sys/resource.h>

#include "common.h"

static long minflt(void)
{
	struct rusage ru;
	ASSERT_OK(getrusage(RUSAGE_SELF, &ru));
	return ru.ru_minflt;
}

static void check(size_t bs)
{
	const size_t size = 32u << 20, nb = size / bs, ps = page_size();
	struct fixture fx;
	fixture_open(&fx, size, bs, 0, PROT_READ | PROT_WRITE);
	int engine = stats_of(fx.r).engine;
	long f0 = minflt();
	uint64_t sum = 0, want = 0;
	for (size_t i = 0; i < nb; i++) {
		size_t b = (i * 5 + 3) % nb; /* nb is a power of two: every block once */
		for (size_t off = b * bs; off < (b + 1) * bs; off += ps) {
			sum += fx.p[off + (off / ps) % ps];
			want += fx.buf[off + (off / ps) % ps];
		}
	}
	long flt = minflt() - f0;
	struct uf_stats st = stats_of(fx.r);
	printf("block %zu KiB, engine %d: %zu pages read, %ld minor faults, %llu loads\n", bs >> 10, engine,
	       size / ps, flt, (unsigned long long)st.loads);
	ASSERT_EQ(sum, want);
	ASSERT_EQ(st.loads, nb);
	/* The signal engine fills through a second mapping of a memfd: its
	 * pages are allocated by faults there, one per page, by design. */
	/* Under a sanitizer its runtime's own faults (shadow memory) count
	 * too: the count is not the library's. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	if (engine != UF_ENGINE_SIGNAL)
		ASSERT_LT(flt, (long)(size / ps / 8));
#endif
	/* writes still land and go back */
	fx.p[bs + 5] = 0x5a;
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(fx.buf[bs + 5], 0x5a);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(120);
	for (size_t bs = 512u << 10; bs <= (2u << 20); bs <<= 1)
		check(bs);
	printf("ok\n");
	return 0;
}

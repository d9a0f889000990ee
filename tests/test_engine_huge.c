/* SPDX-License-Identifier: MIT */
/* A 1 TiB region with a 256 MiB budget survives random faults all over it
 * (HUGE_FAULTS, default 200000; the 1,000,000 runs with
 * HUGE_FAULTS=1000000 or in ufbench huge-sparse), every value checked, the
 * budget held, and the process's resident set within budget + 64 MiB.
 * An engine that cannot serve it (the signal engine past its VMA limit)
 * must refuse with a clear error, not crash. */
#include "common.h"

static int fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	uint64_t *w = dst;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = (off / 8 + i) ^ 0xA5A5A5A5A5A5A5A5ull;
	return 0;
}

static size_t hwm_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	ASSERT(f);
	char line[256];
	size_t kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

int main(void)
{
	test_init(300);
	if (under_qemu())
		SKIP("a 1 TiB region does not fit qemu-user's emulated address space; tested natively");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* The sanitizer runtime keeps shadow memory for what the region
	 * touches (TSan refuses some 1 TiB registrations with -ENOMEM, and its
	 * shadow counts in VmHWM): a 64 GiB region, no RSS bound. */
	const uint64_t size = 1ull << 36;
	const int check_hwm = 0;
#else
	const uint64_t size = 1ull << 40;
	const int check_hwm = 1;
#endif
	const size_t budget = 256u << 20;
	const char *env = getenv("HUGE_FAULTS");
	long n = env ? atol(env) : 200000;
	size_t hwm0 = hwm_bytes();

	uf_store *s;
	ASSERT_OK(uf_store_fn(fill, NULL, size, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	uf_region *r;
	int e = uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r);
	if (e == -ENOMEM && o.engine == UF_ENGINE_SIGNAL) {
		printf("signal engine refused a 1 TiB region: %s\n", uf_strerror(e));
		ASSERT_OK(uf_store_close(s));
		return 0;
	}
	ASSERT_OK(e);
	volatile uint64_t *w = uf_region_addr(r);
	uint64_t seed = 7, words = size / 8;
	for (long i = 0; i < n; i++) {
		uint64_t k = xorshift64(&seed) % words;
		uint64_t v = w[k];
		if (v != (k ^ 0xA5A5A5A5A5A5A5A5ull))
			FAIL("word %llu: %llx", (unsigned long long)k, (unsigned long long)v);
	}
	struct uf_stats st = stats_of(r);
	ASSERT_LE(st.resident_peak * st.block_size, budget);
	ASSERT_GE(st.loads, (uint64_t)n * 9 / 10);
	size_t hwm = hwm_bytes();
	printf("%ld faults, peak resident %llu MiB, VmHWM grew %zu MiB\n", n,
	       (unsigned long long)(st.resident_peak * st.block_size >> 20), (hwm - hwm0) >> 20);
	if (check_hwm)
		ASSERT_LE(hwm - hwm0, budget + (64u << 20));
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* uf_map limits: equal causes give equal errors on every engine. A length
 * no address space can hold is -ENOMEM, from just past 2^47 up to SIZE_MAX
 * (it used to be -EINVAL near SIZE_MAX and, on the signal engine, from
 * 2^63); a budget of 2^32 blocks or more is capped, not -EINVAL; and a
 * budget far above RAM is capped at RAM (the block tables were sized from
 * the budget: 1 GB of RSS for 390 MB of data); and the lookup table grows
 * with the frames in use, so a budget far above what is read costs no
 * RSS beyond the data: 256 MiB read over a 64 GiB region under a 1 TiB
 * budget (capped at RAM) cost +535 MiB of RSS on uffd with 24 GiB of RAM
 * when the table was sized from the capped budget (its slots are touched
 * at random: up to 24 bytes a block touched); now about the data. */
#include "common.h"

static int fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	uint64_t *d = dst;
	for (size_t i = 0; i < len / 8; i++)
		d[i] = off + i * 8;
	return 0;
}

static int decline(const struct uf_fault *f, void *arg)
{
	(void)f;
	(void)arg;
	return UF_PASS;
}

/* Whether a range uf_map set aside while retrying is still mapped over
 * [p, p + len): an unnamed PROT_NONE mapping of at least min bytes. The
 * range need not be free: the handler-thread engine's pool and a
 * sanitizer's runtime map memory from other threads, and the kernel may
 * put it there (a probe for free space failed under ASan); those
 * mappings are readable, one guard page, or a thread stack being set up
 * (PROT_NONE, megabytes: larger than the area and a guard page each side,
 * which a leftover reservation never is). */
static bool reservation_left(const char *p, size_t len, size_t min)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	char line[512];
	bool left = false;
	while (!left && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perm[8], name[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perm, name) < 3)
			continue;
		if (hi <= (uintptr_t)p || lo >= (uintptr_t)p + len)
			continue;
		left = !strcmp(perm, "---p") && !name[0] && hi - lo >= min &&
		       hi - lo <= len + 2 * page_size();
	}
	fclose(f);
	return left;
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill, NULL, (uint64_t)1 << 62, &s));
	const size_t lens[] = {(size_t)1 << 58, (size_t)1 << 62, ((size_t)1 << 63) - 1,
			       (size_t)1 << 63, SIZE_MAX - ps + 1, SIZE_MAX};
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct uf_map_opts o = test_map_opts();
		o.max_resident = 1 << 20;
		uf_region *r = NULL;
		int e = uf_map(s, 0, lens[i], PROT_READ, &o, &r);
		if (e != -ENOMEM)
			FAIL("uf_map(len %#zx) = %d (%s), want -ENOMEM", lens[i], e, uf_strerror(e));
	}

	/* An area may cover unmapped memory, and the kernel may offer that
	 * range for a new region: uf_map takes another (it failed with
	 * -EEXIST, every time). Areas of one and of three region sizes. */
	uf_store *ms;
	const size_t mlen = 32 * ps;
	const unsigned char *mb = pattern_store(mlen, &ms);
	struct uf_map_opts mo = test_map_opts();
	for (unsigned k = 1; k <= 3; k += 2) {
		for (int round = 0; round < 20; round++) {
			uf_region *r;
			ASSERT_OK(uf_map(ms, 0, mlen, PROT_READ | PROT_WRITE, &mo, &r));
			char *was = uf_region_addr(r);
			ASSERT_OK(uf_unmap(r, 0));
			/* the free range where it was, and below it */
			uf_area *a;
			ASSERT_OK(uf_area_register(was - (k - 1) * mlen, k * mlen, decline, NULL, &a));
			int e = uf_map(ms, 0, mlen, PROT_READ | PROT_WRITE, &mo, &r);
			if (e)
				FAIL("uf_map beside an area over free memory (%u sizes): %s", k, uf_strerror(e));
			char *p = uf_region_addr(r);
			ASSERT(p + mlen <= was - (k - 1) * mlen || p >= was + mlen);
			ASSERT_EQ((unsigned char)p[5 * ps + 7], mb[5 * ps + 7]);
			ASSERT_OK(uf_unmap(r, 0));
			ASSERT_OK(uf_area_unregister(a));
			/* the range set aside while retrying is given back */
			ASSERT(!reservation_left(was - (k - 1) * mlen, k * mlen, mlen));
		}
	}
	uf_store_close(ms);

	if (under_qemu()) /* reported as a skip: the cases above passed */
		SKIP("1 TiB and 4 GiB regions do not fit qemu-user's emulated address space; tested natively");

	/* Budget of 2^32 blocks and more: capped. */
	const size_t budgets[] = {(size_t)1 << 44, (size_t)1 << 50, SIZE_MAX};
	for (unsigned i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		struct uf_map_opts o = test_map_opts();
		o.max_resident = budgets[i];
		uf_region *r;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
		const size_t big = (size_t)1 << 36; /* the runtime's shadow refuses 1 TiB */
#else
		const size_t big = (size_t)1 << 40;
#endif
		ASSERT_OK(uf_map(s, 0, big, PROT_READ, &o, &r));
		struct uf_stats st = stats_of(r);
		long pages = sysconf(_SC_PHYS_PAGES);
		ASSERT_LE(st.max_resident, (uint64_t)pages);
		ASSERT_EQ(((volatile uint64_t *)uf_region_addr(r))[1000], 8000);
		ASSERT_OK(uf_unmap(r, 0));
	}

	/* 256 MiB read, 1 MiB apart, over a 64 GiB region under a 1 TiB
	 * budget: RSS grows by the data and an eighth at most (a table sized
	 * from the budget capped at RAM took 270 MiB more with 24 GiB of RAM;
	 * more than 32 MiB from 4 GiB of RAM up). */
	size_t data = (size_t)256 << 20, stride = (size_t)1 << 20;
	struct uf_map_opts o = test_map_opts();
	o.max_resident = (size_t)1 << 40;
	uf_region *r;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	const size_t span = (size_t)1 << 36; /* the runtime's shadow refuses larger */
#else
	const size_t span = (size_t)64 << 30;
#endif
	ASSERT_OK(uf_map(s, 0, span, PROT_READ, &o, &r));
	size_t before = rss_bytes();
	volatile uint64_t *p = uf_region_addr(r);
	for (size_t off = 0; off < data / ps * stride && off < span; off += stride)
		ASSERT_EQ(p[off / 8], off);
	size_t grew = rss_bytes() - before;
	printf("%s: RSS grew %zu MiB for %zu MiB of data under a 1 TiB budget\n",
	       uf_engine_name(uf_region_engine(r)), grew >> 20, data >> 20);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	ASSERT_LE(grew, data + data / 8); /* a sanitizer's runtime counts in the RSS */
#endif
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	return 0;
}

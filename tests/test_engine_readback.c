/* SPDX-License-Identifier: MIT */
/* Reading a region returns the store's bytes, for several block sizes, read-only
 * and read-write, with the store's end inside a page (zero tail). */
#include <sys/mman.h>

#include "harness.h"

static void check(size_t store_size, size_t map_len, size_t bs, int prot, size_t budget)
{
	uf_store *s;
	unsigned char *buf = pattern_store(store_size, &s);
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	o.max_resident = budget;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, map_len, prot, &o, &r));
	const unsigned char *p = uf_region_addr(r);
	ASSERT(p != NULL);
	ASSERT_GE(uf_region_size(r), map_len);
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	size_t readable = store_size < map_len ? (store_size + ps - 1) / ps * ps : map_len;
	/* two passes: the second re-reads after evictions */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < readable; i++) {
			unsigned char want = i < store_size ? buf[i] : 0;
			if (p[i] != want)
				FAIL("byte %zu: got %u want %u (bs %zu pass %d)", i, p[i], want, bs, pass);
		}
	struct uf_stats st = {.struct_size = sizeof(st)};
	ASSERT_OK(uf_stats(r, &st));
	ASSERT_EQ(st.engine, uf_region_engine(r));
	ASSERT_GE(st.loads, (readable + bs - 1) / bs);
	ASSERT_LE(st.resident, st.max_resident);
	ASSERT_EQ(st.dirty, 0);
	ASSERT_EQ(st.block_size, bs);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(buf);
}

int main(void)
{
	test_init(60);
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	check(64 * ps, 64 * ps, ps, PROT_READ, 0);
	check(64 * ps, 64 * ps, ps, PROT_READ | PROT_WRITE, 0);
	check(64 * ps, 64 * ps, 4 * ps, PROT_READ | PROT_WRITE, 0);
	check(64 * ps, 64 * ps, 16 * ps, PROT_READ, 0);
	/* store ends mid-page and mid-block; budget forces eviction */
	check(40 * ps + 123, 48 * ps, 4 * ps, PROT_READ | PROT_WRITE, 8 * ps);
	check(40 * ps + 123, 48 * ps, ps, PROT_READ, 4 * ps);
	/* budget of a single block */
	check(32 * ps, 32 * ps, ps, PROT_READ | PROT_WRITE, ps);
	printf("ok\n");
	return 0;
}

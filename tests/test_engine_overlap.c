/* SPDX-License-Identifier: MIT */
/* Two regions over the same bytes of one store (uf_map(3)): each holds its
 * own copy of what it loaded, does not see the other's changes, and writes
 * its dirty blocks back whole, so the block written back last is what the
 * store holds. */
#include "common.h"

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	uf_store *s;
	unsigned char *b = pattern_store(16 * ps, &s);
	struct uf_map_opts o = test_map_opts();
	uf_region *r1, *r2;
	ASSERT_OK(uf_map(s, 0, 16 * ps, PROT_READ | PROT_WRITE, &o, &r1));
	ASSERT_OK(uf_map(s, 4 * ps, 8 * ps, PROT_READ | PROT_WRITE, &o, &r2));
	unsigned char *p1 = uf_region_addr(r1), *p2 = uf_region_addr(r2);
	const unsigned char orig1 = b[6 * ps + 1], orig2 = b[6 * ps + 2];

	p1[6 * ps + 1] = (unsigned char)~orig1; /* store block 6 in r1 */
	ASSERT_EQ(p2[2 * ps + 1], orig1);       /* ... is r2's block 2: the store's */
	ASSERT_OK(uf_sync(r1, NULL, 0));
	ASSERT_EQ(b[6 * ps + 1], (unsigned char)~orig1);
	ASSERT_EQ(p2[2 * ps + 1], orig1); /* r2 keeps the copy it loaded */

	p2[2 * ps + 2] = (unsigned char)~orig2;
	ASSERT_OK(uf_sync(r2, NULL, 0));
	/* r2's whole block replaced r1's change */
	ASSERT_EQ(b[6 * ps + 2], (unsigned char)~orig2);
	ASSERT_EQ(b[6 * ps + 1], orig1);
	ASSERT_EQ(p1[6 * ps + 1], (unsigned char)~orig1); /* r1 still sees its own */

	ASSERT_OK(uf_unmap(r2, 0));
	ASSERT_OK(uf_unmap(r1, UF_UNMAP_DISCARD));
	uf_store_close(s);
	free(b);
	return 0;
}

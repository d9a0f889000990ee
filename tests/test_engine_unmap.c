/* SPDX-License-Identifier: MIT */
/* uf_unmap never drops dirty data silently: it writes dirty blocks back
 * (resident and parked ones), or fails with the store's error and leaves the
 * region mapped and intact, unless told to discard. */
#include "common.h"

static _Atomic int fail_writes;
static unsigned char *g_buf;

static int rd(void *c, uint64_t o, void *d, size_t l) { (void)c; memcpy(d, g_buf + o, l); return 0; }
static int wr(void *c, uint64_t o, const void *s, size_t l)
{
	(void)c;
	if (fail_writes)
		return -EIO;
	memcpy(g_buf + o, s, l);
	return 0;
}

int main(void)
{
	test_init(30);
	size_t ps = page_size(), n = 64;
	g_buf = calloc(n, ps);
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd, .write = wr};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, n * ps, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 16 * ps; /* some dirty blocks will be parked, not mapped */
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, n * ps, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < n; i += 4)
		p[i * ps + 1] = (unsigned char)(i + 1);
	ASSERT_GT(stats_of(r).dirty, 0);

	fail_writes = 1;
	ASSERT_EQ(uf_unmap(r, 0), -EIO);
	/* still there, still dirty, data intact */
	for (size_t i = 0; i < n; i += 4)
		ASSERT_EQ(p[i * ps + 1], i + 1);
	ASSERT_GT(stats_of(r).dirty, 0);

	fail_writes = 0;
	ASSERT_OK(uf_unmap(r, 0));
	for (size_t i = 0; i < n; i += 4)
		ASSERT_EQ(g_buf[i * ps + 1], i + 1);

	/* UF_UNMAP_DISCARD drops the changes: the store keeps its bytes */
	ASSERT_OK(uf_map(s, 0, n * ps, PROT_READ | PROT_WRITE, &o, &r));
	p = uf_region_addr(r);
	p[3 * ps] = 0xEE;
	fail_writes = 1;
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_EQ(g_buf[3 * ps], 0);
	ASSERT_OK(uf_store_close(s));
	free(g_buf);
	printf("ok\n");
	return 0;
}

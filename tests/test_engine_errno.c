/* SPDX-License-Identifier: MIT */
/* errno is preserved across a served fault, even when the store clobbers it
 * and when the fault is a first write (write-protect fault). */
#include "common.h"

static unsigned char data[64 * 4096];

static int clobber_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	memcpy(dst, data + off, len);
	errno = EXDEV; /* a store may leave anything in errno */
	return 0;
}

static int clobber_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	memcpy(data + off, src, len);
	errno = EXDEV;
	return 0;
}

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	memset(data, 3, sizeof(data));
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = clobber_read, .write = clobber_write};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, sizeof(data), &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 4 * ps; /* evictions with write-back inside faults too */
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, sizeof(data), PROT_READ | PROT_WRITE, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < 64; i++) {
		errno = 4242;
		unsigned char v = p[i * ps];
		ASSERT_EQ(v, 3);
		ASSERT_EQ(errno, 4242);
		errno = 4343;
		p[i * ps] = 9; /* first write: write-protect fault, or load + evict */
		ASSERT_EQ(errno, 4343);
	}
	/* 64 missing-page faults at least; first writes fault too unless the
	 * engine tracks writes asynchronously */
	ASSERT_GE(stats_of(r).faults, 64);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_EQ(data[5 * ps], 9);
	ASSERT_OK(uf_store_close(s));
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* No recycled frame or staging buffer ever shows bytes of another block or
 * another region. A store that breaks its contract (a read that fills
 * only the first half of its buffer and returns success) gets zeros in the
 * rest, not what the buffer held before; the page holding the end of a
 * store that ends inside a block reads zeros past the end, also in a frame
 * that held another block. Every engine, with read-ahead and without. */
#include "common.h"
#include "inject.h"

static void fill_frames(size_t ps, size_t budget)
{
	/* Load and dirty a region's worth of 0xEE blocks, so frames, pools and
	 * staging buffers all hold bytes that must never show up again. */
	size_t size = 4 * budget;
	unsigned char *buf = malloc(size);
	ASSERT(buf);
	memset(buf, 0xEE, size);
	uf_store *s;
	ASSERT_OK(uf_store_mem(buf, size, 0, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < size; i += ps)
		p[i + 1] = 0xEE;
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(buf);
}

static void check_block(const unsigned char *p, size_t off, size_t n, size_t valid, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char want = pattern_byte(off + i);
		unsigned char c = p[off + i];
		if (i < valid ? c != want : (c != 0 && c != want))
			FAIL("%s: byte %zu of the region reads %#x (want %#x%s)", what, off + i, c, want,
			     i < valid ? "" : " or 0");
	}
}

static void run(unsigned flags)
{
	size_t ps = page_size(), budget = 8 * ps, size = 64 * ps;
	fill_frames(ps, budget);

	/* Short reads. */
	uf_store *inner;
	unsigned char *buf = pattern_store(size, &inner);
	struct inject j = {.short_read = 1};
	uf_store *s = inject_wrap(&j, inner);
	atomic_store(&j.on, 1);
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	o.flags = flags;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	const unsigned char *p = uf_region_addr(r);
	/* One block at a time (each load is its own short read) or a
	 * read-ahead run (the short read covers the whole run). */
	for (size_t b = 0; b < size / ps; b++) {
		(void)*(volatile const unsigned char *)(p + b * ps);
		check_block(p, b * ps, ps, 0, "short read");
	}
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	free(buf);

	/* A store ending in the middle of a 4-page block, in recycled frames. */
	fill_frames(ps, budget);
	size_t ssize = 10 * ps + ps / 2;
	buf = pattern_store(ssize, &inner);
	o = test_map_opts();
	o.block_size = 4 * ps;
	o.max_resident = 2 * 4 * ps;
	o.flags = flags;
	ASSERT_OK(uf_map(inner, 0, ssize, PROT_READ | PROT_WRITE, &o, &r));
	p = uf_region_addr(r);
	for (int round = 0; round < 3; round++) {
		for (size_t b = 0; b < 3; b++) {
			size_t valid = b < 2 ? 4 * ps : ssize - 8 * ps;
			size_t n = b < 2 ? 4 * ps : 3 * ps; /* the mapping ends at the page */
			check_block(p, b * 4 * ps, n, valid, "partial last block");
			for (size_t i = valid; i < n; i++)
				if (p[b * 4 * ps + i])
					FAIL("byte %zu past the store's end reads %#x", b * 4 * ps + i,
					     p[b * 4 * ps + i]);
		}
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(inner));
	free(buf);
}

int main(void)
{
	test_init(60);
	run(0);
	run(UF_MAP_NO_READAHEAD);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* A failing block fails alone: a store that cannot read a few chosen blocks
 * gives SIGBUS only on accesses to those blocks, under sequential and
 * strided scans (read-ahead batches that contain a failing block fall back
 * to loading the faulting block alone), for single-page and 4-page blocks,
 * and for a store with store threads, whose full read-ahead windows are
 * read in the background (a failing background window gives its blocks
 * back; the access then loads them itself), and for a writable region under
 * a budget, whose windows are recycled (a failing run gives its frames
 * back), and for a read-only scan in huge-page windows (a window whose
 * read fails loads the normal way). Every other block reads its own
 * bytes. */
#include <setjmp.h>
#include <stdatomic.h>

#include "common.h"

static sigjmp_buf jb;
static void *volatile bus_addr;
static unsigned char *g_buf;
static size_t g_bs;
/* 700 and 1100 fall in huge pages (2 MiB of 4 KiB blocks) of the huge
 * scan below: a huge-page window whose store read fails loads the normal
 * way, and only those blocks fail. */
static const unsigned bad[] = {5, 6, 17, 40, 63, 150, 201, 333, 700, 1100};

/* The failing blocks move on by this. Atomic: store calls run in handler
 * and store threads, ordered after its change by the kernel (the fault),
 * which TSan cannot see. */
static _Atomic unsigned g_shift;

static bool is_bad(uint64_t blk)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (bad[i] + atomic_load_explicit(&g_shift, memory_order_relaxed) == blk)
			return true;
	return false;
}

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	for (uint64_t b = off / g_bs; b * g_bs < off + len; b++)
		if (is_bad(b))
			return -EIO;
	memcpy(dst, g_buf + off, len);
	return 0;
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	bus_addr = si->si_addr;
	siglongjmp(jb, 1);
}

static bool g_huge_scan; /* the huge scan: its last huge page must load as one */

static void scan(size_t bs, unsigned stride, unsigned nblk, unsigned flags, int prot, unsigned budget)
{
	size_t size = (size_t)nblk * bs, ps = page_size();
	g_bs = bs;
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd, .flags = flags};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, size, &s));
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	/* Everything fits (read-ahead runs at full width), or a budget of
	 * budget blocks, under which the windows of a writable region are
	 * read into their victims' pages and moved in (load_recycled). */
	o.max_resident = budget ? (size_t)budget * bs : size;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, prot, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);
	/* twice (three times under a budget): the second pass sees failing
	 * blocks again, good ones resident or recycled */
	for (int pass = 0; pass < (budget ? 3 : 2); pass++) {
		/* Under a budget every block was evicted since the last pass:
		 * other blocks fail in each, so their windows are ones that
		 * recycle (the frames of blocks that failed before are free,
		 * not victims, and free frames are not recycled). */
		atomic_store_explicit(&g_shift, budget ? 7 * (unsigned)pass : 0, memory_order_relaxed);
		for (volatile unsigned b = 0; b < nblk; b += stride) {
			for (volatile size_t pg = 0; pg < bs; pg += ps) {
				size_t off = b * bs + pg + (b % 61);
				bus_addr = NULL;
				if (sigsetjmp(jb, 1)) {
					if (!is_bad(b))
						FAIL("SIGBUS on good block %u (bs %zu, stride %u, pass %d, flags %u)",
						     b, bs, stride, pass, flags);
					ASSERT_EQ((uintptr_t)bus_addr, (uintptr_t)(p + off));
					continue;
				}
				unsigned char v = p[off];
				if (is_bad(b))
					FAIL("read of failing block %u returned %u", b, v);
				ASSERT_EQ(v, g_buf[off]);
			}
		}
	}
	if (g_huge_scan && huge_expected(r))
		ASSERT_GE(anon_huge((const void *)p), (size_t)2 << 20);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	catch_signal(SIGBUS, on_bus);
	unsigned nblk = 400, nhuge = 2048; /* 8 MiB of 4 KiB blocks: 4 huge pages */
	size_t len = (size_t)nhuge * ps;
	g_buf = malloc(len);
	ASSERT(g_buf);
	for (size_t i = 0; i < len; i++)
		g_buf[i] = pattern_byte(i);
	for (size_t bs = ps; bs <= 4 * ps; bs *= 4)
		for (unsigned stride = 1; stride <= 3; stride++)
			for (unsigned k = 0; k < 2; k++)
				scan(bs, stride, nblk, k ? UF_STORE_NOT_SIGSAFE : 0, PROT_READ, 0);
	for (unsigned k = 0; k < 2; k++)
		scan(ps, 1, nblk, k ? UF_STORE_NOT_SIGSAFE : 0, PROT_READ | PROT_WRITE, 160);
	/* Read-only, the budget holding it, a signal-safe store: huge-page
	 * windows under the in-thread engine (the last huge page loads as one). */
	g_huge_scan = true;
	scan(ps, 1, nhuge, 0, PROT_READ, 0);
	free(g_buf);
	printf("ok\n");
	return 0;
}

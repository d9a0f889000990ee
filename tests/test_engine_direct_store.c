/* SPDX-License-Identifier: MIT */
/* Clean blocks of a memory store are installed straight from the store's
 * buffer (no staging copy) unless USERFAULT_DIRECT=0: both ways return the
 * store's bytes, under eviction, with writes synced back; and a memory
 * store whose buffer is itself a userfault region (whose bytes the kernel
 * cannot copy without a fault it will not serve) still reads correctly,
 * through the staging copy. */
#include <sys/mman.h>

#include "common.h"

static void rw(size_t npages, size_t bs, size_t budget, int prot)
{
	size_t ps = page_size(), size = npages * ps;
	struct fixture fx;
	fixture_open(&fx, size, bs, budget, prot);
	unsigned char *p = fx.p, *buf = fx.buf;
	uf_region *r = fx.r;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < size; i += 61)
			/* Against the pattern, not the store: a handler thread may
			 * write the store back later, ordered after this read only
			 * through the kernel, which ThreadSanitizer cannot see. */
			if (p[i] != pattern_byte(i))
				FAIL("byte %zu: got %u want %u (bs %zu pass %d)", i, p[i], pattern_byte(i),
				     bs, pass);
	if (prot & PROT_WRITE) {
		for (size_t pg = 0; pg < npages; pg += 7)
			p[pg * ps + 5] = (unsigned char)(pg + 1);
		ASSERT_OK(uf_sync(r, p, size));
		for (size_t pg = 0; pg < npages; pg++) {
			unsigned char want = pg % 7 ? pattern_byte(pg * ps + 5) : (unsigned char)(pg + 1);
			if (buf[pg * ps + 5] != want)
				FAIL("store page %zu after sync: got %u want %u", pg, buf[pg * ps + 5], want);
		}
	}
	fixture_close(&fx, 0);
}

/* A memory store over another region's memory. */
static void nested(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), size = 64 * ps;
	uf_store *fs, *ms;
	ASSERT_OK(uf_store_fn(pattern_fill, NULL, size, &fs));
	struct uf_map_opts o = test_map_opts();
	uf_region *outer, *inner;
	ASSERT_OK(uf_map(fs, 0, size, PROT_READ, &o, &outer));
	ASSERT_OK(uf_store_mem(uf_region_addr(outer), size, UF_STORE_RDONLY, &ms));
	ASSERT_OK(uf_map(ms, 0, size, PROT_READ, &o, &inner));
	const unsigned char *p = uf_region_addr(inner);
	for (size_t i = 0; i < size; i += 97)
		if (p[i] != pattern_byte(i))
			FAIL("nested byte %zu: got %u want %u", i, p[i], pattern_byte(i));
	ASSERT_OK(uf_unmap(inner, 0));
	ASSERT_OK(uf_store_close(ms));
	ASSERT_OK(uf_unmap(outer, 0));
	ASSERT_OK(uf_store_close(fs));
}

int main(void)
{
	test_init(60);
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	for (int direct = 1; direct >= 0; direct--) {
		if (direct)
			unsetenv("USERFAULT_DIRECT");
		else
			setenv("USERFAULT_DIRECT", "0", 1);
		rw(256, ps, 0, PROT_READ);
		rw(256, ps, 0, PROT_READ | PROT_WRITE);
		rw(256, 4 * ps, 16 * ps, PROT_READ | PROT_WRITE); /* evictions, parked blocks */
		rw(256, ps, 8 * ps, PROT_READ);
		rw(64, 16 * ps, 0, PROT_READ);
		/* The handler-thread engine runs store calls on its handler
		 * threads: a store reading another region of that engine there
		 * waits for a handler of the same pool (documented: a store
		 * must not depend on regions of the engine serving it). */
		int nested_ok = test_engine() != UF_ENGINE_UFFD_THREAD;
#if defined(__SANITIZE_THREAD__)
		/* ThreadSanitizer runs signal handlers with every signal blocked,
		 * so the nested fault (the store's memcpy from the outer region,
		 * inside the inner region's fault handler) kills the process, as
		 * in test_engine_store_nested. */
		nested_ok = 0;
#endif
		if (nested_ok)
			nested();
	}
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* A store callback that touches the region it serves never hangs: reading
 * the very block it is loading (with uf_try_read) fails with -EFAULT at
 * once instead of waiting for itself, on the in-thread engines, both when
 * the callback runs in the faulting thread (a signal-safe store) and on a
 * store thread (UF_STORE_NOT_SIGSAFE, the faulting thread waiting for it).
 * The store then fails the load, and the access gets SIGBUS as for any
 * failed load. */
#include <setjmp.h>

#include "common.h"

static sigjmp_buf jb;
static unsigned char *g_buf;
static volatile unsigned char *g_p;
static volatile int nested_rc = 1;

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (off == 0) {
		unsigned char v;
		nested_rc = uf_try_read(&v, (const void *)(g_p + 1), 1);
		if (nested_rc)
			return -EIO;
	}
	memcpy(dst, g_buf + off, len);
	return 0;
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	siglongjmp(jb, 1);
}

int main(void)
{
	test_init(30);
#if defined(__SANITIZE_THREAD__)
	SKIP("under TSan a fault inside the fault handler (the store's nested uf_try_read) kills the process: TSan runs signal handlers with every signal blocked; tested natively and under ASan");
#endif
	const char *eng = getenv("USERFAULT_ENGINE");
	if (eng && !strcmp(eng, "uffd-thread"))
		SKIP("store calls run in handler threads there: a store must not touch its own region (documented), no detection");
	size_t ps = page_size(), size = 8 * ps;
	g_buf = malloc(size);
	ASSERT(g_buf);
	for (size_t i = 0; i < size; i++)
		g_buf[i] = pattern_byte(i);
	catch_signal(SIGBUS, on_bus);
	for (int pass = 0; pass < 2; pass++) {
		const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd,
						 .flags = pass ? UF_STORE_NOT_SIGSAFE : 0};
		uf_store *s;
		ASSERT_OK(uf_store_new(&ops, NULL, size, &s));
		struct uf_map_opts o = test_map_opts();
		o.flags = UF_MAP_NO_READAHEAD;
		uf_region *r;
		ASSERT_OK(uf_map(s, 0, size, PROT_READ, &o, &r));
		g_p = uf_region_addr(r);
		if (uf_region_engine(r) == UF_ENGINE_UFFD_THREAD)
			SKIP("the handler-thread engine was chosen: see above");
		nested_rc = 1;
		volatile int bus = 0;
		if (sigsetjmp(jb, 1))
			bus = 1;
		else
			(void)g_p[0];
		ASSERT_EQ(bus, 1);
		ASSERT_EQ(nested_rc, -EFAULT);
		/* other blocks are fine */
		ASSERT_EQ(g_p[3 * ps], g_buf[3 * ps]);
		ASSERT_OK(uf_unmap(r, 0));
		ASSERT_OK(uf_store_close(s));
	}
	free(g_buf);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Whatever negative errno a store read fails with reaches the program as
 * that failed load: the error callback gets exactly that errno, and without
 * a callback the faulting thread gets SIGBUS at the address. This includes
 * -EACCES and -EFAULT, the errnos closest to the pager's own verdicts (a
 * protection violation is SIGSEGV, an access past the store's end skips the
 * callback). A negative value that is no errno becomes -EIO. Read-only and
 * writable regions, loads and first writes; uf_try_read gets -EFAULT. */
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>

#include "common.h"

static volatile unsigned char sink;
static sigjmp_buf jb;
static void *volatile got_addr;
static volatile int got_sig;
static volatile int got_err;
static _Atomic int fail_with; /* the next reads fail with this (0: succeed) */

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_addr = si->si_addr;
	siglongjmp(jb, 1);
}

static int cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)arg;
	got_err = err;
	got_addr = addr;
	return UF_ERR_SIGBUS;
}

static int err_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	int e = atomic_load(&fail_with);
	if (e)
		return e;
	size_t ps = page_size(); /* a read may cover several blocks (read-ahead) */
	for (size_t i = 0; i < len; i += ps)
		memset((char *)dst + i, (int)((off + i) / ps) + 1, ps);
	(void)ctx;
	return 0;
}

static int err_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx, (void)off, (void)src, (void)len;
	return 0;
}

enum { LOAD, STORE, TRY_READ };

/* One access at page i of r with the store failing with err; expect the
 * failure reported with want (the errno the callback gets). */
static void one(uf_region *r, bool with_cb, int kind, size_t i, int err, int want)
{
	size_t ps = page_size();
	volatile unsigned char *p = (unsigned char *)uf_region_addr(r) + i * ps + 7;
	atomic_store(&fail_with, err);
	got_sig = 0;
	got_err = 0;
	got_addr = NULL;
	if (kind == TRY_READ) {
		unsigned char v;
		ASSERT_EQ(uf_try_read(&v, (const void *)p, 1), -EFAULT);
	} else if (sigsetjmp(jb, 1) == 0) {
		if (kind == LOAD)
			sink = *p;
		else
			*p = 1;
		FAIL("a load failing with %d (%s) went unreported", err, kind == LOAD ? "load" : "store");
	}
	if (kind != TRY_READ) {
		if (got_sig != SIGBUS)
			FAIL("store error %d: signal %d instead of SIGBUS", err, got_sig);
		ASSERT_EQ(got_addr, (void *)p);
	}
	if (with_cb && kind != TRY_READ)
		ASSERT_EQ(got_err, want);
	else
		ASSERT_EQ(got_err, 0);
	/* Nothing was loaded: once the store recovers the page reads normally. */
	atomic_store(&fail_with, 0);
	ASSERT_EQ(*p, (unsigned char)(i + 1));
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | SA_NODEFER};
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0); /* a wrong SIGSEGV fails the test */
	/* and values past every errno Linux defines, up to the range's end */
	static const int errs[] = {-EACCES, -EFAULT, -EPERM, -EIO, -ENOENT, -EROFS, -EHWPOISON,
				   -254, -255, -256, -1000, -4095};
	const size_t nerr = sizeof(errs) / sizeof(errs[0]);
	const size_t npages = 128;
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = err_read, .write = err_write};
	for (int with_cb = 0; with_cb < 2; with_cb++) {
		for (int prot = 0; prot < 2; prot++) {
			uf_store *s;
			ASSERT_OK(uf_store_new(&ops, NULL, npages * ps, &s));
			struct uf_map_opts o = test_map_opts();
			o.block_size = ps;
			o.on_error = with_cb ? cb : NULL;
			o.flags = UF_MAP_NO_READAHEAD; /* each access meets its own failure */
			uf_region *r;
			ASSERT_OK(uf_map(s, 0, npages * ps, prot ? PROT_READ | PROT_WRITE : PROT_READ,
					 &o, &r));
			size_t pg = 0;
			for (size_t k = 0; k < nerr; k++) {
				one(r, with_cb, LOAD, pg++, errs[k], errs[k]);
				if (prot)
					one(r, with_cb, STORE, pg++, errs[k], errs[k]);
				one(r, with_cb, TRY_READ, pg++, errs[k], errs[k]);
			}
			/* Not an errno: reported as -EIO. */
			one(r, with_cb, LOAD, pg++, -5000, -EIO);
			one(r, with_cb, LOAD, pg++, INT_MIN, -EIO);
			ASSERT_LE(pg, npages);
			ASSERT_OK(uf_unmap(r, 0));
			ASSERT_OK(uf_store_close(s));
		}
	}
	printf("ok\n");
	return 0;
}

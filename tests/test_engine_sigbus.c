/* SPDX-License-Identifier: MIT */
/* A store read error on a fault delivers SIGBUS to the faulting thread with
 * si_addr at the faulting address (never silent zeros); access past the
 * store's end is SIGBUS; an error callback can retry; a failed write-back
 * keeps the block dirty and a later sync retries it. */
#include <pthread.h>
#include <setjmp.h>

#include "common.h"

/* Loads whose value is used: valgrind drops a load whose value nobody
 * uses, and then it never faults. */
static volatile unsigned char sink;
static sigjmp_buf jb;
static void *volatile bus_addr;
static volatile int bus_code;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	bus_addr = si->si_addr;
	bus_code = si->si_code;
	siglongjmp(jb, 1);
}

struct flaky {
	unsigned char *buf;
	_Atomic int fail_reads;  /* > 0: fail the next n reads */
	_Atomic int fail_writes;
	uint64_t bad_off;        /* reads of this offset always fail (if != -1) */
};

static int fl_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct flaky *f = ctx;
	if (off == f->bad_off)
		return -EIO;
	if (f->fail_reads > 0) {
		f->fail_reads--;
		return -EIO;
	}
	memcpy(dst, f->buf + off, len);
	return 0;
}

static int fl_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct flaky *f = ctx;
	if (f->fail_writes > 0) {
		f->fail_writes--;
		return -ENOSPC;
	}
	memcpy(f->buf + off, src, len);
	return 0;
}

static _Atomic int cb_calls;
static int retry_cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)arg;
	cb_calls++;
	ASSERT_EQ(err, -EIO);
	return UF_ERR_RETRY;
}

static uf_region *map_flaky(struct flaky *f, uf_store **s, size_t size, size_t maplen,
			    uf_error_fn cb)
{
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = fl_read, .write = fl_write};
	ASSERT_OK(uf_store_new(&ops, f, size, s));
	struct uf_map_opts o = test_map_opts();
	o.on_error = cb;
	uf_region *r;
	ASSERT_OK(uf_map(*s, 0, maplen, PROT_READ | PROT_WRITE, &o, &r));
	return r;
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	struct sigaction sa = {0};
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0); /* before the library's */

	struct flaky f = {.buf = calloc(1, 16 * ps), .bad_off = 5 * ps};
	memset(f.buf, 0x5A, 16 * ps);
	uf_store *s;
	/* store of 10.5 pages mapped over 16: pages 11..15 are past its end */
	uf_region *r = map_flaky(&f, &s, 10 * ps + ps / 2, 16 * ps, NULL);
	volatile unsigned char *p = uf_region_addr(r);

	/* read error -> SIGBUS at the exact address */
	if (sigsetjmp(jb, 1) == 0) {
		sink = p[5 * ps + 77];
		FAIL("read of a failing block returned");
	}
	ASSERT_EQ((uintptr_t)bus_addr, (uintptr_t)(p + 5 * ps + 77));
	ASSERT_EQ(bus_code, BUS_ADRERR);
	/* write to the failing block: the same */
	bus_addr = NULL;
	if (sigsetjmp(jb, 1) == 0) {
		p[5 * ps + 8] = 1;
		FAIL("write to a failing block returned");
	}
	ASSERT_EQ((uintptr_t)bus_addr, (uintptr_t)(p + 5 * ps + 8));
	ASSERT_EQ(stats_of(r).resident, 0);
	/* a fault-safe copy from the failing block fails instead: no signal */
	bus_addr = NULL;
	unsigned char tmp[16];
	if (sigsetjmp(jb, 1) == 0)
		ASSERT_EQ(uf_try_read(tmp, (const void *)(p + 5 * ps + 8), sizeof(tmp)), -EFAULT);
	else
		FAIL("uf_try_read of a failing block raised SIGBUS");

	/* the page holding the store's end reads its bytes, then zeros */
	ASSERT_EQ(p[10 * ps + 10], 0x5A);
	ASSERT_EQ(p[10 * ps + ps / 2 + 10], 0);
	/* past the store's end -> SIGBUS */
	bus_addr = NULL;
	if (sigsetjmp(jb, 1) == 0) {
		sink = p[12 * ps];
		FAIL("read past the store returned");
	}
	ASSERT_EQ((uintptr_t)bus_addr, (uintptr_t)(p + 12 * ps));

	/* transient error, no callback: SIGBUS; the next access succeeds */
	f.fail_reads = 1;
	if (sigsetjmp(jb, 1) == 0) {
		sink = p[2 * ps];
		FAIL("transient error returned");
	}
	ASSERT_EQ(p[2 * ps], 0x5A);

	/* failed write-back: sync reports it, the block stays dirty, retry works */
	p[3 * ps] = 0x11;
	f.fail_writes = 1;
	ASSERT_EQ(uf_sync(r, NULL, 0), -ENOSPC);
	ASSERT_EQ(stats_of(r).dirty, 1);
	ASSERT_EQ(f.buf[3 * ps], 0x5A);
	ASSERT_EQ(p[3 * ps], 0x11);
	p[3 * ps + 1] = 0x12; /* still writable */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(f.buf[3 * ps], 0x11);
	ASSERT_EQ(f.buf[3 * ps + 1], 0x12);
	ASSERT_EQ(stats_of(r).dirty, 0);

	/* failed write-back on eviction: the block is kept, not dropped */
	p[4 * ps] = 0x44;
	f.fail_writes = 1;
	ASSERT_EQ(uf_evict(r, NULL, 0), -ENOSPC);
	ASSERT_EQ(stats_of(r).dirty, 1);
	ASSERT_EQ(p[4 * ps], 0x44);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_EQ(f.buf[4 * ps], 0x44);
	ASSERT_OK(uf_store_close(s));

	/* error callback: retried until the store recovers; no SIGBUS */
	f.bad_off = (uint64_t)-1;
	f.fail_reads = 3;
	r = map_flaky(&f, &s, 16 * ps, 16 * ps, retry_cb);
	p = uf_region_addr(r);
	bus_addr = NULL;
	if (sigsetjmp(jb, 1) == 0)
		ASSERT_EQ(p[7 * ps], 0x5A);
	else
		FAIL("SIGBUS despite a retrying callback");
	ASSERT_EQ(cb_calls, 3);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(f.buf);
	printf("ok\n");
	return 0;
}

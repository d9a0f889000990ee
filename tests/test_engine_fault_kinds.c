/* SPDX-License-Identifier: MIT */
/* One behaviour per fault kind, whatever the engine:
 *  - a program handler installed after the library that calls
 *    uf_handle_fault first: a missing page is served (1), a write to a
 *    read-only region is the program's (0);
 *  - a program handler that does not call it: the region's faults are not
 *    served, the program's handler receives them at the faulting address
 *    (SIGBUS, or SIGSEGV under the signal engine), never zeros, however
 *    many (600 pages: more than uffd-thread's poison records);
 *  - under such a handler, whose sa_mask blocks nothing, asynchronous
 *    signals are still blocked while the library serves the fault (the
 *    store's read sees SIGUSR1 blocked; the mask is back afterwards);
 *  - uf_stats().write_faults counts only writes that faulted: 0 under
 *    asynchronous write tracking, also for a first write to a block not
 *    yet loaded, or to one another thread is loading. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

static sigjmp_buf jb;
static volatile int use_uf, got_sig, handle_ret;
static void *volatile got_addr;

static void prog_handler(int sig, siginfo_t *si, void *uc)
{
	if (use_uf) {
		handle_ret = uf_handle_fault(sig, si, uc);
		if (handle_ret)
			return;
	}
	got_sig = sig;
	got_addr = si->si_addr;
	siglongjmp(jb, 1);
}

static struct sigaction old_segv, old_bus;

static void install_prog(int call_uf)
{
	use_uf = call_uf;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = prog_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	ASSERT_EQ(sigaction(SIGSEGV, &sa, &old_segv), 0);
	ASSERT_EQ(sigaction(SIGBUS, &sa, &old_bus), 0);
}

static void restore_lib(void)
{
	ASSERT_EQ(sigaction(SIGSEGV, &old_segv, NULL), 0);
	ASSERT_EQ(sigaction(SIGBUS, &old_bus, NULL), 0);
}

/* Reads p[off]: 1 and the byte in *v if it returned, 0 if the program's
 * handler took the fault. */
static int try_load(volatile unsigned char *p, size_t off, unsigned char *v)
{
	got_sig = 0;
	if (sigsetjmp(jb, 1))
		return 0;
	*v = p[off];
	return 1;
}

static int try_store(volatile unsigned char *p, size_t off, unsigned char v)
{
	got_sig = 0;
	if (sigsetjmp(jb, 1))
		return 0;
	p[off] = v;
	return 1;
}

static unsigned char g_slow_buf[16 * 4096];
static _Atomic int g_slow;
static int slow_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (atomic_load(&g_slow)) {
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
	memcpy(dst, g_slow_buf + off, len);
	return 0;
}
static int slow_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	memcpy(g_slow_buf + off, src, len);
	return 0;
}
static void *read_block(void *p)
{
	(void)*(volatile unsigned char *)p;
	return NULL;
}

static void test_write_during_load(void)
{
	size_t ps = page_size();
	if (ps != 4096)
		return; /* g_slow_buf is sized for 4 KiB pages */
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = slow_read, .write = slow_write};
	uf_store *s;
	uf_region *r = map_user_store(&ops, sizeof(g_slow_buf), UF_MAP_NO_READAHEAD, &s);
	unsigned char *p = uf_region_addr(r);
	struct uf_stats st = stats_of(r);
	atomic_store(&g_slow, 1);
	pthread_t th;
	ASSERT_OK(pthread_create(&th, NULL, read_block, p + 6 * ps));
	struct timespec ts = {0, 50 * 1000000L}; /* the load has begun */
	nanosleep(&ts, NULL);
	p[6 * ps + 3] = 0x5a;
	ASSERT_OK(pthread_join(th, NULL));
	atomic_store(&g_slow, 0);
	struct uf_stats st2 = stats_of(r);
	ASSERT_EQ(st2.write_faults - st.write_faults, st.async_writes ? 0 : 1);
	ASSERT_EQ(st2.dirty, 1);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(g_slow_buf[6 * ps + 3], 0x5a);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

/* The fill records whether SIGUSR1 was blocked in the thread that ran it. */
static _Atomic int g_fill_usr1 = -1;
static int mask_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	atomic_store(&g_fill_usr1, sigismember(&cur, SIGUSR1));
	for (size_t i = 0; i < len; i++)
		((unsigned char *)dst)[i] = pattern_byte(off + i);
	return 0;
}

static void test_handle_fault_mask(void)
{
	size_t ps = page_size();
	uf_store *s;
	ASSERT_OK(uf_store_fn(mask_fill, NULL, 8 * ps, &s));
	struct uf_map_opts o = test_map_opts();
	o.flags = UF_MAP_NO_READAHEAD;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, 8 * ps, PROT_READ, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);
	install_prog(1); /* its sa_mask is empty */
	sigset_t none, after;
	sigemptyset(&none);
	ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
	unsigned char v;
	ASSERT_EQ(try_load(p, 2 * ps + 1, &v), 1);
	ASSERT_EQ(handle_ret, 1);
	ASSERT_EQ(v, pattern_byte(2 * ps + 1));
	int usr1_blocked = atomic_load(&g_fill_usr1);
	ASSERT_EQ(usr1_blocked, 1);
	ASSERT_EQ(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
	ASSERT_EQ(sigismember(&after, SIGUSR1), 0);
	restore_lib();
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

int main(void)
{
	test_init(60);
	size_t ps = page_size();
	struct fixture fx;
	unsigned char v;

	/* A handler that calls uf_handle_fault first. */
	fixture_open(&fx, 16 * ps, 0, 0, PROT_READ);
	install_prog(1);
	ASSERT_EQ(try_load(fx.p, 3, &v), 1);
	ASSERT_EQ(v, fx.buf[3]);
	ASSERT_EQ(handle_ret, 1);
	ASSERT_EQ(try_store(fx.p, 3, 1), 0); /* loaded read-only block */
	ASSERT_EQ(handle_ret, 0);
	ASSERT_EQ((uintptr_t)got_addr, (uintptr_t)(fx.p + 3));
	/* Not a handler's arguments: 0, for any address (a NULL context
	 * crashed it), and the block is not loaded by it. */
	siginfo_t fake = {.si_signo = SIGBUS, .si_code = BUS_ADRERR};
	fake.si_addr = fx.p + 5 * ps;
	ASSERT_EQ(uf_handle_fault(SIGBUS, &fake, NULL), 0);
	fake.si_addr = &fake;
	ASSERT_EQ(uf_handle_fault(SIGSEGV, &fake, NULL), 0);
	ASSERT_EQ(uf_handle_fault(SIGSEGV, NULL, NULL), 0);
	ASSERT_EQ(try_store(fx.p, 7 * ps, 1), 0); /* block not loaded */
	ASSERT_EQ(handle_ret, 0);
	ASSERT_EQ((uintptr_t)got_addr, (uintptr_t)(fx.p + 7 * ps));
	ASSERT_EQ(fx.buf[3], pattern_byte(3));
	restore_lib();

	test_handle_fault_mask();

	/* A handler that does not: nothing is served behind its back. */
	install_prog(0);
	ASSERT_EQ(try_load(fx.p, 9 * ps + 1, &v), 0);
	ASSERT(got_sig == SIGBUS || got_sig == SIGSEGV);
	if (uf_region_engine(fx.r) != UF_ENGINE_SIGNAL)
		ASSERT_EQ(got_sig, SIGBUS);
	else
		ASSERT_EQ(got_sig, SIGSEGV);
	ASSERT_EQ((uintptr_t)got_addr & ~(uintptr_t)(ps - 1), (uintptr_t)(fx.p + 9 * ps));
	restore_lib();
	/* With the library's handler back, the same page is served. */
	ASSERT_EQ(fx.p[9 * ps + 1], fx.buf[9 * ps + 1]);
	fixture_close(&fx, 0);

	/* Many faults under such a handler (more than uffd-thread has poison
	 * records: the first 256 were unserved, the rest served): none is
	 * served, then each is once the library's handler is back. */
	enum { MANY = 600 };
	fixture_open(&fx, MANY * ps, 0, 0, PROT_READ);
	uint64_t loads0 = stats_of(fx.r).loads;
	install_prog(0);
	int unserved = 0;
	for (size_t k = 0; k < MANY; k++)
		unserved += try_load(fx.p, k * ps + 2, &v) == 0 && got_sig != 0;
	restore_lib();
	if (unserved != MANY)
		FAIL("a handler that does not call uf_handle_fault: %d of %d faults unserved", unserved, MANY);
	ASSERT_EQ(stats_of(fx.r).loads, loads0);
	for (size_t k = 0; k < MANY; k++)
		ASSERT_EQ(fx.p[k * ps + 2], fx.buf[k * ps + 2]);
	fixture_close(&fx, 0);

	/* write_faults */
	fixture_open(&fx, 16 * ps, 0, 0, PROT_READ | PROT_WRITE);
	struct uf_stats st = stats_of(fx.r);
	fx.p[2 * ps] = 9; /* not loaded yet */
	(void)*(volatile unsigned char *)(fx.p + 4 * ps);
	fx.p[4 * ps] = 9; /* loaded clean */
	struct uf_stats st2 = stats_of(fx.r);
	ASSERT_EQ(st2.write_faults - st.write_faults, st.async_writes ? 0 : 2);
	ASSERT_EQ(st2.dirty, 2);
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(fx.buf[2 * ps], 9);
	ASSERT_EQ(fx.buf[4 * ps], 9);
	fixture_close(&fx, 0);

	/* A write that meets the block's load in another thread: under
	 * asynchronous tracking not a write fault either (it was counted). */
	test_write_during_load();
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_engine_store_fault.c - a fault inside a signal-safe store's callback
 * that the library does not serve fails that store call with the fault's
 * error, and goes nowhere else: not to the program's handler (installed
 * before the library's or after it, calling uf_handle_fault), not to a raw
 * area's handler. Those handlers leave by siglongjmp here, which inside the
 * callback would have stranded the load: the block stayed loading, and
 * every later access to it, and uf_unmap, waited for ever. Checked for a
 * load (SIGBUS at the region's address, or the error callback with
 * -EFAULT), for uf_sync's write-back (-EFAULT, the blocks stay dirty), for
 * write-backs of evicted blocks inside faults (no write lost), and for a
 * callback that reads another region whose load fails (its error, -EIO,
 * fails the outer load; the inner region's error callback is not called),
 * for a callback that reads the block it loads (-EDEADLK), for the
 * background writer (its write fails, the pass still flushes), and for a
 * callback that runs off the alternate signal stack (the process dies of
 * SIGSEGV, saying why, in a child). uf_explain of the SIGBUS names the
 * callback's fault. A hang fails by the harness timeout.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common.h"

#define NBLK 16

static size_t ps;
static sigjmp_buf jb;
static volatile sig_atomic_t g_segv, g_bus, g_area_calls;
static void *volatile g_bus_addr;
static unsigned char *g_none;	 /* a PROT_NONE page: touching it faults */
static unsigned char *g_backing; /* the store's bytes */
static _Atomic int g_bad_reads, g_bad_writes; /* callbacks that fault next */
static _Atomic int g_eio_reads;		      /* reads that fail (-EIO) next */
static volatile unsigned char *g_inner;	      /* set: rd reads it first (case nested) */
static volatile unsigned char *g_self;	      /* set: rd reads it when loading g_self_off */
static uint64_t g_self_off;

static char g_explained[1024]; /* uf_explain of the last SIGBUS */

static volatile int g_in_child; /* test_overflow's child: SIGBUS ends it */

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	if (g_in_child && sig == SIGBUS)
		_exit(SIGBUS);
	if (sig == SIGSEGV) {
		g_segv++;
	} else {
		g_bus++;
		g_bus_addr = si->si_addr;
		uf_explain(si, uc, g_explained, sizeof(g_explained));
	}
	siglongjmp(jb, 1);
}

/* A handler installed after the library's, as uf_map(3) says to write it. */
static void on_sig_after(int sig, siginfo_t *si, void *uc)
{
	if (uf_handle_fault(sig, si, uc))
		return;
	on_sig(sig, si, uc);
}

static void install(void (*fn)(int, siginfo_t *, void *))
{
	catch_signal(SIGSEGV, fn);
	catch_signal(SIGBUS, fn);
}

static bool take(_Atomic int *n)
{
	int v = atomic_load(n);
	while (v > 0 && !atomic_compare_exchange_weak(n, &v, v - 1))
		;
	return v > 0;
}

static volatile int g_recurse; /* set: rd recurses until its stack runs out */

static unsigned deep(unsigned n)
{
	volatile unsigned char pad[512];
	pad[0] = (unsigned char)n;
	return n ? deep(n - 1) + pad[0] : 0;
}

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (g_inner)
		(void)*g_inner;
	if (g_recurse)
		(void)deep(1u << 20);
	if (g_self && off == g_self_off)
		(void)*g_self;
	if (take(&g_bad_reads))
		(void)*(volatile unsigned char *)g_none;
	if (take(&g_eio_reads))
		return -EIO;
	memcpy(dst, g_backing + off, len);
	return 0;
}

static int wr(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	if (take(&g_bad_writes))
		*(volatile unsigned char *)g_none = 1;
	memcpy(g_backing + off, src, len);
	return 0;
}

static _Atomic int g_flushes;

static int fl(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_flushes, 1);
	return 0;
}

static uf_store *new_store(void)
{
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd, .write = wr, .flush = fl};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, NBLK * ps, &s));
	return s;
}

/* A fresh store, mapped read-only without read-ahead (a fault, one load). */
static volatile unsigned char *map_ro(uf_store **s, uf_error_fn on_err, uf_region **r)
{
	*s = new_store();
	struct uf_map_opts o = test_map_opts();
	o.flags = UF_MAP_NO_READAHEAD;
	o.on_error = on_err;
	ASSERT_OK(uf_map(*s, 0, NBLK * ps, PROT_READ, &o, r));
	return uf_region_addr(*r);
}

static void unmap_close(uf_region *r, uf_store *s)
{
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

static void *reader(void *p)
{
	volatile unsigned char *a = p;
	return (void *)(uintptr_t)(a[0] + 1);
}

/* An access that may fail: 1 if it took SIGBUS or SIGSEGV (the handler jumped). */
#define FAILS(stmt)                                   \
	({                                            \
		int failed_ = 0;                      \
		if (sigsetjmp(jb, 1))                 \
			failed_ = 1;                  \
		else                                  \
			stmt;                         \
		failed_;                              \
	})

/* A load whose read callback faults: SIGBUS at the access, the program's
 * SIGSEGV handler never runs, and the block is not left loading. */
/* As uf_map(3) shows it, but without SA_NODEFER: SIGSEGV and SIGBUS are
 * blocked while it runs, and the callback's fault must still be served. */
static void install_after(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sig_after;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
}

static void test_load(bool after)
{
	if (after)
		install_after(); /* replaces the library's: for good */
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_ro(&s, NULL, &r);
	g_segv = g_bus = 0;
	atomic_store(&g_bad_reads, 1);
	ASSERT_EQ(FAILS((void)p[5]), 1);
	ASSERT_EQ(g_segv, 0);
	ASSERT_EQ(g_bus, 1);
	ASSERT(g_bus_addr == (void *)(p + 5));
	/* The crash explanation names the callback's fault. */
	char none[32];
	snprintf(none, sizeof(none), "%#lx", (unsigned long)(uintptr_t)g_none);
	printf("uf_explain: %s\n", g_explained);
	ASSERT(strstr(g_explained, "callback took SIGSEGV at ") && strstr(g_explained, none));
	/* Another thread reads the block that failed: it loads (before the
	 * fix it waited for ever on the load left behind). */
	pthread_t t;
	void *ret;
	ASSERT_EQ(pthread_create(&t, NULL, reader, (void *)p), 0);
	ASSERT_EQ(pthread_join(t, &ret), 0);
	ASSERT_EQ((uintptr_t)ret, (uintptr_t)g_backing[0] + 1);
	ASSERT_EQ(p[5], g_backing[5]);
	/* A thread that blocks SIGSEGV: the callback's fault is still
	 * served (a blocked fault signal kills the process). Not under the
	 * signal engine, where the region's own faults are SIGSEGV. */
	if (test_engine() != UF_ENGINE_SIGNAL) {
		sigset_t segv, old;
		sigemptyset(&segv);
		sigaddset(&segv, SIGSEGV);
		ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &segv, &old), 0);
		atomic_store(&g_bad_reads, 1);
		g_bus = 0;
		ASSERT_EQ(FAILS((void)p[6 * ps]), 1);
		ASSERT_EQ(g_bus, 1);
		ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
		ASSERT_EQ(p[6 * ps], g_backing[6 * ps]);
	}
	/* Once the block has loaded, a later failure of it is explained as
	 * what it is. */
	ASSERT_OK(uf_evict(r, (void *)p, ps));
	atomic_store(&g_eio_reads, 1);
	ASSERT_EQ(FAILS((void)p[5]), 1);
	ASSERT(strstr(g_explained, "the store's read failed") && !strstr(g_explained, "callback"));
	unmap_close(r, s);
	printf("load, program handler %s the library's: SIGBUS at the access, no SIGSEGV, block loads again\n",
	       after ? "after" : "before");
}

static _Atomic int g_err_seen, g_err_calls, g_inner_err_calls;

static int on_error(uf_region *r, void *addr, int err, void *arg)
{
	(void)r;
	(void)addr;
	(void)arg;
	atomic_store(&g_err_seen, err);
	/* One retry; a second failure goes to SIGBUS. */
	return atomic_fetch_add(&g_err_calls, 1) == 0 ? UF_ERR_RETRY : UF_ERR_SIGBUS;
}

static int on_inner_error(uf_region *r, void *addr, int err, void *arg)
{
	(void)r;
	(void)addr;
	(void)err;
	(void)arg;
	atomic_fetch_add(&g_inner_err_calls, 1);
	return UF_ERR_SIGBUS;
}

/* The error callback sees -EFAULT, and its retry loads the block. */
static void test_error_callback(void)
{
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_ro(&s, on_error, &r);
	g_segv = g_bus = 0;
	atomic_store(&g_err_calls, 0);
	atomic_store(&g_bad_reads, 1);
	unsigned char v = 0;
	ASSERT_EQ(FAILS(v = p[2 * ps + 1]), 0);
	ASSERT_EQ(v, g_backing[2 * ps + 1]);
	ASSERT_EQ(atomic_load(&g_err_calls), 1);
	ASSERT_EQ(atomic_load(&g_err_seen), -EFAULT);
	ASSERT_EQ(g_segv + g_bus, 0);
	unmap_close(r, s);
	printf("error callback: -EFAULT, the retry loads\n");
}

static int area_fn(const struct uf_fault *f, void *arg)
{
	(void)f;
	(void)arg;
	g_area_calls++;
	siglongjmp(jb, 1);
}

/* A raw area over the page the callback faults on: its handler, which
 * jumps, runs for the program's own access and not for the callback's. */
static void test_area(void)
{
	uf_area *a;
	ASSERT_OK(uf_area_register(g_none, ps, area_fn, NULL, &a));
	g_area_calls = 0;
	ASSERT_EQ(FAILS((void)*(volatile unsigned char *)g_none), 1);
	ASSERT_EQ(g_area_calls, 1);
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_ro(&s, NULL, &r);
	g_segv = g_bus = 0;
	atomic_store(&g_bad_reads, 1);
	ASSERT_EQ(FAILS((void)p[3 * ps]), 1);
	ASSERT_EQ(g_area_calls, 1);
	ASSERT_EQ(g_bus, 1);
	ASSERT_EQ(p[3 * ps], g_backing[3 * ps]);
	unmap_close(r, s);
	ASSERT_OK(uf_area_unregister(a));
	printf("raw area: its handler runs for the program's access only\n");
}

static uint64_t dirty_of(uf_region *r)
{
	struct uf_stats st = {.struct_size = sizeof(st)};
	ASSERT_OK(uf_stats(r, &st));
	return st.dirty;
}

/* uf_sync's write callback faults: -EFAULT, the blocks stay dirty, the
 * next uf_sync writes them. */
static void test_sync(void)
{
	uf_store *s = new_store();
	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, NBLK * ps, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);
	for (int i = 0; i < 4; i++)
		p[i * ps] = (unsigned char)(0xa0 + i);
	g_segv = 0;
	atomic_store(&g_bad_writes, 1);
	ASSERT_EQ(uf_sync(r, NULL, 0), -EFAULT);
	ASSERT_EQ(g_segv, 0);
	ASSERT_GE(dirty_of(r), 1);
	ASSERT_EQ(g_backing[0], pattern_byte(0)); /* the faulting call wrote nothing */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(dirty_of(r), 0);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(g_backing[i * ps], 0xa0 + i);
	unmap_close(r, s);
	printf("uf_sync: -EFAULT, blocks kept dirty, written by the next uf_sync\n");
}

/* A write callback ended by a fault may have written some of its bytes:
 * the store counts as written since its last flush, so the background
 * pass that made the call flushes it (as after a write that failed). */
static void test_background_flush(void)
{
	uf_store *s = new_store();
	struct uf_map_opts o = test_map_opts();
	o.writeback_ms = 20;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, NBLK * ps, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);
	atomic_store(&g_bad_writes, 1000000); /* every write faults */
	atomic_store(&g_flushes, 0);
	p[0] = 0x5a;
	for (int i = 0; i < 500 && !atomic_load(&g_flushes); i++) /* 5 s: a loaded CI guest */
		usleep(10000);
	ASSERT_GE(atomic_load(&g_flushes), 1);
	ASSERT_GE(dirty_of(r), 1); /* and the block stays dirty */
	atomic_store(&g_bad_writes, 0);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(g_backing[0], 0x5a);
	unmap_close(r, s);
	printf("a background write ended by a fault: that pass flushes, the block stays dirty\n");
}

/* Under the smallest budget every fault evicts a dirty block, inside the
 * fault handler; some of those writes fault. Every write reaches the store. */
static void test_evict(void)
{
	uf_store *s = new_store();
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 4 * ps;
	o.flags = UF_MAP_NO_READAHEAD;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, NBLK * ps, PROT_READ | PROT_WRITE, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);
	unsigned char shadow[NBLK];
	uint64_t seed = 7;
	int failed = 0;
	g_segv = 0;
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < NBLK; i++) {
			unsigned char v = (unsigned char)xorshift64(&seed);
			if (i % 5 == round % 5)
				atomic_store(&g_bad_writes, 1);
			/* A fault whose victims' writes all failed may fail: then
			 * the write did not happen, and is tried again. */
			while (FAILS(p[i * ps] = v))
				failed++;
			shadow[i] = v;
		}
	}
	atomic_store(&g_bad_writes, 0);
	ASSERT_EQ(g_segv, 0);
	ASSERT_OK(uf_sync(r, NULL, 0));
	for (int i = 0; i < NBLK; i++)
		ASSERT_EQ(g_backing[i * ps], shadow[i]);
	unmap_close(r, s);
	printf("eviction write-backs that fault: every write in the store (%d accesses retried)\n",
	       failed);
}

static int rd_eio(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	(void)off;
	(void)dst;
	(void)len;
	return -EIO;
}

/* The callback reads another region, whose load fails: the outer load
 * fails with that error; the inner region's error callback is not called. */
static void test_nested(void)
{
	const struct uf_store_ops iops = {.struct_size = sizeof(iops), .read = rd_eio};
	uf_store *is;
	ASSERT_OK(uf_store_new(&iops, NULL, ps, &is));
	struct uf_map_opts o = test_map_opts();
	o.on_error = on_inner_error;
	uf_region *ir;
	ASSERT_OK(uf_map(is, 0, ps, PROT_READ, &o, &ir));
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_ro(&s, on_error, &r);
	atomic_store(&g_err_calls, 0);
	atomic_store(&g_inner_err_calls, 0);
	g_inner = uf_region_addr(ir);
	/* The retry fails the same way: the error callback then lets it go. */
	ASSERT_EQ(FAILS((void)p[0]), 1);
	ASSERT_EQ(atomic_load(&g_err_calls), 2);
	ASSERT_EQ(atomic_load(&g_err_seen), -EIO);
	ASSERT_EQ(atomic_load(&g_inner_err_calls), 0);
	char inner[32];
	snprintf(inner, sizeof(inner), "%#lx", (unsigned long)(uintptr_t)g_inner);
	ASSERT(strstr(g_explained, "callback read another userfault region at ") &&
	       strstr(g_explained, inner));
	g_inner = NULL;
	ASSERT_EQ(p[0], g_backing[0]);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_unmap(ir, 0));
	ASSERT_OK(uf_store_close(s));
	ASSERT_OK(uf_store_close(is));
	printf("a callback reading a failing region: -EIO fails the outer load\n");
}

/* The callback reads the very block it is loading: -EDEADLK fails the
 * store call and the load, at once (in-thread engines). */
static void test_own_block(void)
{
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_ro(&s, on_error, &r);
	if (uf_region_engine(r) == UF_ENGINE_UFFD_THREAD) {
		printf("own block: not under uffd-thread (a store must not touch its region there)\n");
	} else {
		atomic_store(&g_err_calls, 0);
		g_self_off = 4 * ps;
		g_self = p + 4 * ps + 9;
		ASSERT_EQ(FAILS((void)p[4 * ps]), 1);
		ASSERT_EQ(atomic_load(&g_err_calls), 2);
		ASSERT_EQ(atomic_load(&g_err_seen), -EDEADLK);
		g_self = NULL;
		ASSERT_EQ(p[4 * ps], g_backing[4 * ps]);
		printf("own block: -EDEADLK fails the load\n");
	}
	unmap_close(r, s);
}

/* A callback that overflows the alternate stack it runs on (the program
 * gave the thread one): the frames under it are gone, so the process
 * must die of it, saying why, rather than jump into them. In a child. */
static void test_overflow(void)
{
	int pfd[2];
	ASSERT_EQ(pipe(pfd), 0);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		size_t alt = 64 << 10;
		unsigned char *m = mmap(NULL, ps + alt, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED || mprotect(m + ps, alt, PROT_READ | PROT_WRITE))
			_exit(3);
		stack_t ss = {.ss_sp = m + ps, .ss_size = alt};
		if (sigaltstack(&ss, NULL))
			_exit(4);
		uf_store *s;
		uf_region *r;
		volatile unsigned char *p = map_ro(&s, NULL, &r);
		/* The load failed (SIGBUS, on_sig): a callback that overflowed a
		 * stack with an intact frame above it (a handler thread's, whose
		 * own fault handler ran on an alternate stack). */
		g_in_child = 1;
		g_recurse = 1;
		(void)p[0];
		_exit(5); /* the access must not come back */
	}
	close(pfd[1]);
	/* A child that neither dies nor returns (the old library spun there
	 * for ever, with asynchronous signals blocked) is killed after 10 s. */
	int st = 0;
	pid_t w = 0;
	for (int i = 0; i < 1000 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
		usleep(10000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		FAIL("the child still ran 10 s after its callback overflowed the alternate stack");
	}
	ASSERT_EQ(w, pid);
	char out[512];
	size_t n = read_pipe(pfd[0], out, sizeof(out));
	printf("overflow in a callback: child %s %d; stderr: %s", WIFSIGNALED(st) ? "killed by" : "exited",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), n ? out : "(nothing)\n");
	/* Under uffd-thread the callback runs on a handler thread, on its
	 * own stack: without an alternate stack there the kernel kills the
	 * process, with no word; with one (ASan gives threads one) the store
	 * call fails and so does the load (SIGBUS: exit status 7). */
	if (test_engine() == UF_ENGINE_UFFD_THREAD) {
		ASSERT((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
		       (WIFEXITED(st) && WEXITSTATUS(st) == SIGBUS));
	} else {
		ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
		ASSERT(strstr(out, "overflowed the alternate signal stack"));
	}
}

int main(void)
{
	test_init(60);
#if defined(__SANITIZE_THREAD__)
	SKIP("under TSan a fault inside the fault handler (a store callback's) kills the process: TSan runs signal handlers with every signal blocked; tested natively and under ASan");
#endif
	ps = page_size();
	g_none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(g_none != MAP_FAILED);
	g_backing = malloc(NBLK * ps);
	ASSERT(g_backing);
	for (size_t i = 0; i < NBLK * ps; i++)
		g_backing[i] = pattern_byte(i);
	/* The program's handlers exist before the library's (installed by
	 * the first uf_map): the library chains to them. */
	install(on_sig);
	test_load(false);
	test_error_callback();
	test_area();
	test_sync();
	test_background_flush();
	test_evict();
	test_nested();
	test_own_block();
	if (!under_qemu())
		test_overflow();
	test_load(true); /* last: it replaces the library's handler */
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_engine_stack_probe.c - stack overflows the way JITs meet them (issue 9 §6).
 *
 * A JIT probes its stack in strides larger than a page, bangs it far below
 * the stack pointer, and allocates frames of up to a megabyte. Each case
 * runs a small assembly loop that walks the stack pointer down (stride S,
 * start at every 256-byte offset in a page, reads and writes) until the
 * first fault; the overflow callback must run, and the fault must be the
 * first probe that went below the thread's stack: no probe may land in
 * accessible memory under the guard (the library's own alternate stack used
 * to sit right there), on the main thread and on pthreads, twice in a row
 * each. A wild access far from any stack must still not be reported, and
 * the overflow distance is a setting. Runs once per engine: nothing here
 * may depend on which engine serves regions.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "harness.h"
#include "overflow.h"

static size_t ps;
static __thread sigjmp_buf t_jmp;
static __thread uintptr_t t_fault;
static __thread int t_caught;

static void on_overflow(void *addr, void *arg)
{
	(void)arg;
	t_fault = (uintptr_t)addr;
	t_caught++;
	siglongjmp(t_jmp, 1);
}

/* Moves the SP to start, then forever: SP -= step; access [SP + off]. A
 * fault ends it (the callback leaves by siglongjmp). off < 0 is a bang ahead
 * of the SP, off > 0 touches the top of a large frame first. */
__attribute__((noinline, noreturn)) static void walk(uintptr_t start, size_t step, long off, int write)
{
#if defined(__x86_64__)
	__asm__ volatile("mov %0, %%rsp\n"
			 "1: sub %1, %%rsp\n"
			 "test %3, %3\n"
			 "jz 2f\n"
			 "movb $1, (%%rsp,%2)\n"
			 "jmp 1b\n"
			 "2: movb (%%rsp,%2), %%al\n"
			 "jmp 1b\n"
			 :
			 : "r"(start), "r"(step), "r"(off), "r"((long)write)
			 : "rax", "memory");
#elif defined(__aarch64__)
	__asm__ volatile("mov sp, %0\n"
			 "1: sub sp, sp, %1\n"
			 "add x9, sp, %2\n"
			 "cbz %3, 2f\n"
			 "strb wzr, [x9]\n"
			 "b 1b\n"
			 "2: ldrb w10, [x9]\n"
			 "b 1b\n"
			 :
			 : "r"(start), "r"(step), "r"(off), "r"((long)write)
			 : "x9", "x10", "memory");
#else
#error "add the walk loop for this architecture"
#endif
	__builtin_unreachable();
}

/* Where this thread's stack ends: the lowest address a walk may touch
 * without faulting (a pthread: its stack's low end, above the guard; the
 * main thread: the RLIMIT_STACK floor under [stack]). */
struct limits {
	uintptr_t floor;
	uintptr_t guard_lo; /* pthread guard low end (== floor for main) */
};

static uintptr_t main_floor(void)
{
	unsigned long hi = main_stack_top();
	ASSERT(hi);
	struct rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_STACK, &rl), 0);
	return hi - rl.rlim_cur;
}

static struct limits thread_limits(bool is_main)
{
	struct limits l;
	if (is_main) {
		l.floor = l.guard_lo = main_floor();
		return l;
	}
	pthread_attr_t at;
	ASSERT_EQ(pthread_getattr_np(pthread_self(), &at), 0);
	void *stk;
	size_t size, guard;
	ASSERT_EQ(pthread_attr_getstack(&at, &stk, &size), 0);
	ASSERT_EQ(pthread_attr_getguardsize(&at, &guard), 0);
	pthread_attr_destroy(&at);
	l.floor = (uintptr_t)stk;
	l.guard_lo = l.floor - guard;
	return l;
}

/* One walk; returns the fault address the callback saw. */
static uintptr_t walk_once(uintptr_t start, size_t step, long off, int write)
{
	int before = t_caught;
	if (sigsetjmp(t_jmp, 1) == 0)
		walk(start, step, off, write);
	ASSERT_EQ(t_caught, before + 1);
	return t_fault;
}

/* Every stride 0x1000..0x10000 (step 0x100, or sampled with step 0x700
 * when quick), every 256-byte start offset, reads and writes; then 1 MiB
 * frames touched at their top and a bang 1 MiB ahead of the SP. Twice each
 * (two overflows in a row). */
static long run_cases(bool is_main, size_t stride_step)
{
	struct limits l = thread_limits(is_main);
	char here;
	/* Start well below this frame, page aligned. */
	uintptr_t base = (((uintptr_t)&here - 64 * 1024) & ~(uintptr_t)(ps - 1));
	long n = 0;
	for (size_t s = 0x1000; s <= 0x10000; s += stride_step) {
		for (size_t a = 0; a < ps; a += 256) {
			for (int w = 0; w < 2; w++) {
				for (int twice = 0; twice < 2; twice++) {
					uintptr_t f = walk_once(base - a, s, 0, w);
					/* The first probe under the stack faults: it lies
					 * within one stride below the floor. */
					if (!(f < l.floor && f + s >= l.floor))
						FAIL("%s stride %#zx start -%#zx %s: fault at %#lx, floor %#lx "
						     "(guard from %#lx): a probe went below the stack unseen",
						     is_main ? "main" : "thread", s, a, w ? "write" : "read",
						     (unsigned long)f, (unsigned long)l.floor,
						     (unsigned long)l.guard_lo);
					n++;
				}
			}
		}
	}
	/* 1 MiB frames, a local at the top of each touched first. */
	const size_t mib = 1024 * 1024;
	for (int w = 0; w < 2; w++)
		for (int twice = 0; twice < 2; twice++) {
			uintptr_t f = walk_once(base, mib, (long)(mib - 64), w);
			ASSERT(f < l.floor && f + mib >= l.floor);
			n++;
		}
	/* Bang 1 MiB ahead of a SP that moves a page at a time. */
	for (int w = 0; w < 2; w++)
		for (int twice = 0; twice < 2; twice++) {
			uintptr_t f = walk_once(base, ps, -(long)mib, w);
			ASSERT(f < l.floor && f + ps >= l.floor);
			n++;
		}
	return n;
}

static size_t g_stride_step = 0x100;

/* The first accessible mapping in [lo, hi), or 0. */
static uintptr_t accessible_in(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	char line[512], perm[8];
	unsigned long a, b;
	uintptr_t found = 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) == 3 && a < hi && b > lo &&
		    (perm[0] == 'r' || perm[1] == 'w'))
			found = a > lo ? a : lo;
	fclose(f);
	return found;
}

static void *thread_main(void *arg)
{
	(void)arg;
	ASSERT_OK(uf_stack_guard_thread_init());
	struct limits l = thread_limits(false);
	/* The library's alternate stack is never within the distance below
	 * the guard, wherever the kernel put it. */
	stack_t ss;
	ASSERT_EQ(sigaltstack(NULL, &ss), 0);
	uintptr_t alt = (uintptr_t)ss.ss_sp, d = uf_stack_guard_distance();
	if (alt < l.floor && alt + ss.ss_size + d > l.guard_lo)
		FAIL("alternate stack %#lx+%#zx lies within %#lx below the guard at %#lx", (unsigned long)alt,
		     ss.ss_size, (unsigned long)d, (unsigned long)l.guard_lo);
	/* Another thread's stack right under this one (glibc reuses cached
	 * stacks) would take the probes unseen: not the library's to prevent. */
	uintptr_t other = accessible_in(l.guard_lo - 0x10000, l.guard_lo);
	if (other) {
		printf("pthread: memory not ours at %#lx under the guard: probe cases not run\n",
		       (unsigned long)other);
		return NULL;
	}
	long n = run_cases(false, g_stride_step);
	printf("pthread: %ld overflows caught\n", n);
	return NULL;
}

static void run_thread(size_t stack_size)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, stack_size);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, &at, thread_main, NULL), 0);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	pthread_attr_destroy(&at);
}

/* Fills every free gap of at least len bytes above lo (up to the gap under
 * the main stack, which the kernel does not place mappings in), so that
 * the next mapping of len bytes goes to the highest gap below: the hole
 * the caller left at lo. Returns how many fillers it mapped into fill[]. */
static unsigned fill_gaps_above(uintptr_t lo, size_t len, void **fill, size_t *flen, unsigned max)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	char line[512];
	unsigned long a, b, prev = 0;
	unsigned n = 0;
	while (fgets(line, sizeof(line), f) && n < max) {
		if (sscanf(line, "%lx-%lx", &a, &b) != 2)
			continue;
		bool stack = strstr(line, "[stack]") != NULL;
		if (prev > lo && a - prev >= len && !stack) {
			void *q = mmap((void *)prev, a - prev, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
			if (q != MAP_FAILED) {
				fill[n] = q;
				flen[n++] = a - prev;
			}
		}
		if (stack)
			break;
		prev = b;
	}
	fclose(f);
	return n;
}

/* A frame that jumps the guard into a read-only region below the stack: the
 * write is refused, and it is reported as the overflow it is (it used to
 * die of SIGSEGV without a report: the region's refusal went straight to
 * the program). The thread's stack is its own, laid out as [region][guard
 * page][stack]; the region is mapped into the hole left for it. */
static uintptr_t g_ro_lo, g_ro_hi;
static void *jump_main(void *arg)
{
	(void)arg;
	ASSERT_OK(uf_stack_guard_thread_init());
	char here;
	uintptr_t start = ((uintptr_t)&here - 16 * 1024) & ~(uintptr_t)(ps - 1);
	uintptr_t target = g_ro_lo + 5 * ps + 64;
	uintptr_t f = walk_once(start, start - target, 0, 1);
	ASSERT_EQ(f, target);
	ASSERT(f >= g_ro_lo && f < g_ro_hi);
	return NULL;
}

static void test_jump_into_read_only_region(void)
{
	const size_t rlen = 37 * ps, stk = 1024 * 1024; /* rlen: a length nothing else here maps; stk: TSan wants 900 KiB */
	uf_store *s; /* first: its buffer is mapped too */
	unsigned char *b = pattern_store(rlen, &s);
	char *P = mmap(NULL, rlen + ps + stk, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(P != MAP_FAILED);
	char *stack = P + rlen + ps;
	ASSERT_OK(mprotect(stack, stk, PROT_READ | PROT_WRITE));
	ASSERT_OK(munmap(P, rlen));
	void *fill[256];
	size_t flen[256];
	unsigned nf = fill_gaps_above((uintptr_t)P + rlen, rlen, fill, flen, 256);
	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	int e = uf_map(s, 0, rlen, PROT_READ, &o, &r);
	for (unsigned i = 0; i < nf; i++)
		munmap(fill[i], flen[i]);
	ASSERT_OK(e);
	if (uf_region_addr(r) != (void *)P) {
		/* (a sanitizer's runtime and qemu-user lay out memory their own way) */
		printf("region at %p, not in the hole at %p: jump case not run\n", uf_region_addr(r), (void *)P);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
		if (!under_qemu())
			FAIL("the region did not land in the hole left for it");
#endif
	} else {
		g_ro_lo = (uintptr_t)P;
		g_ro_hi = (uintptr_t)P + rlen;
		pthread_attr_t at;
		pthread_attr_init(&at);
		ASSERT_OK(pthread_attr_setstack(&at, stack, stk));
		pthread_t th;
		ASSERT_OK(pthread_create(&th, &at, jump_main, NULL));
		ASSERT_OK(pthread_join(th, NULL));
		pthread_attr_destroy(&at);
		/* refused, not served: the region still holds the store's bytes */
		ASSERT_EQ(((volatile unsigned char *)P)[5 * ps + 64], b[5 * ps + 64]);
		printf("frame jumping the guard into a read-only region: overflow reported\n");
	}
	ASSERT_OK(uf_unmap(r, 0));
	uf_store_close(s);
	free(b);
	munmap(P + rlen, ps + stk);
}

/* A wild read or write far from any stack into PROT_NONE memory, with the
 * callback installed, dies of SIGSEGV (exit 42 would be a report). */
static char *g_none;
static void wild_read(void *arg) { (void)arg, (void)*(volatile char *)(g_none + 5 * ps); }
static void wild_write(void *arg) { (void)arg, *(volatile char *)(g_none + 5 * ps) = 1; }
static void test_wild_access_not_reported(void)
{
	g_none = mmap(NULL, 16 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(g_none != MAP_FAILED);
	for (int w = 0; w < 2; w++) {
		int st = in_child(w ? wild_write : wild_read, NULL);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
			FAIL("a wild %s far from any stack was reported as an overflow", w ? "write" : "read");
		ASSERT(WIFSIGNALED(st));
		ASSERT_EQ(WTERMSIG(st), SIGSEGV);
	}
	munmap(g_none, 16 * ps);
}

static void test_distance_setting(void)
{
	size_t d = uf_stack_guard_distance();
	ASSERT_GE(d, 1024 * 1024 + 64 * 1024); /* large enough for 1 MiB frames */
	ASSERT_EQ(uf_stack_guard_set_distance(0), -EINVAL);
	ASSERT_EQ(uf_stack_guard_set_distance((size_t)2 << 30), -EINVAL);
	ASSERT_EQ(uf_stack_guard_distance(), d); /* bad input changes nothing */
	ASSERT_OK(uf_stack_guard_set_distance(3 * 1024 * 1024 + 1));
	ASSERT_EQ(uf_stack_guard_distance(), 3 * 1024 * 1024 + ps);
	ASSERT_OK(uf_stack_guard_set_distance(d));

	/* A bang further ahead than the distance is not an overflow: in a
	 * child with a small distance, banging 1 MiB ahead dies. */
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(20);
		if (uf_stack_guard_set_distance(256 * 1024) || uf_stack_guard_install(on_overflow_exit, NULL))
			_exit(3);
		char here;
		walk((((uintptr_t)&here - 64 * 1024) & ~(uintptr_t)(ps - 1)), ps, -(long)(1024 * 1024), 1);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
		FAIL("a bang 1 MiB ahead of the SP was reported with a 256 KiB distance");
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSEGV);
}

/* The distance a child run with USERFAULT_STACK_DISTANCE=val (unset if
 * NULL) reports, in MiB (its exit status). */
static int child_distance_mib(char **argv, const char *val)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		if (val)
			setenv("USERFAULT_STACK_DISTANCE", val, 1);
		else
			unsetenv("USERFAULT_STACK_DISTANCE");
		execl("/proc/self/exe", argv[0], "--distance", (char *)NULL);
		_exit(127);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* USERFAULT_STACK_DISTANCE sets the default; a value that is not one page
 * to 1 GiB is ignored, also one whose suffix would wrap it round. */
static void test_distance_env(char **argv)
{
	if (under_qemu()) {
		printf("USERFAULT_STACK_DISTANCE not checked: /proc/self/exe is qemu under qemu-user\n");
		return;
	}
	const char *vals[] = {"3m", "3145728", "3072k", "03m"};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		ASSERT_EQ(child_distance_mib(argv, vals[i]), 3);
	int def = child_distance_mib(argv, NULL);
	ASSERT(def != 3);
	const char *bad[] = {"17179869185g", "18446744073709551616", "-1", "-3m", "2g", "4095", "abc", "3x", "",
			     " 3m", "+3m", "0x300000", "3m "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (child_distance_mib(argv, bad[i]) != def)
			FAIL("USERFAULT_STACK_DISTANCE=\"%s\" was not ignored", bad[i]);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--distance"))
		return (int)(uf_stack_guard_distance() >> 20);
	test_init(150);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	if (under_qemu())
		g_stride_step = 0x700; /* emulated signals are slow: sample the strides */
	test_distance_setting();
	test_distance_env(argv);
	test_wild_access_not_reported();
	ASSERT_OK(uf_stack_guard_install(on_overflow, NULL));

	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= (64ul << 20)) {
		long n = run_cases(true, g_stride_step);
		printf("main thread: %ld overflows caught\n", n);
	} else {
		printf("main thread not run: RLIMIT_STACK unlimited or above 64 MiB\n");
	}
	run_thread(4 * 1024 * 1024);
	run_thread(8 * 1024 * 1024);
	test_jump_into_read_only_region();
	printf("ok\n");
	return 0;
}

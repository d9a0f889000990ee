/* SPDX-License-Identifier: MIT */
/*
 * test_stack_guard.c - stack overflows are caught (main thread and a
 * pthread, twice in a row each, leaving by siglongjmp), and faults that are
 * not overflows (NULL write, wild pointer, a write into a guard page or the
 * main stack's gap with the SP far away) are not reported as overflows.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "harness.h"
#include "overflow.h"

static size_t ps;
static __thread sigjmp_buf t_jmp;
static __thread void *t_fault_addr;
static __thread int t_overflows;
static _Atomic int g_overflows;

static void on_overflow(void *addr, void *arg)
{
	ASSERT(arg == &g_overflows);
	atomic_fetch_add(&g_overflows, 1);
	t_overflows++;
	t_fault_addr = addr;
	siglongjmp(t_jmp, 1);
}

static volatile unsigned long g_limit = ~0ul;
__attribute__((noinline)) static unsigned long recurse(unsigned long n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	if (n >= g_limit)
		return n;
	return recurse(n + 1) + (unsigned long)buf[0];
}

/* Overflows the calling thread's stack; returns the fault address. */
static void *overflow_once(void)
{
	volatile int before = t_overflows;
	if (sigsetjmp(t_jmp, 1) == 0) {
		recurse(0);
		FAIL("recursion returned");
	}
	ASSERT_EQ(t_overflows, before + 1);
	return t_fault_addr;
}

static void test_main_thread_overflows_twice(void)
{
	void *a1 = overflow_once();
	void *a2 = overflow_once();
	/* Both faults are below this frame, a page or so apart at most. */
	char here;
	ASSERT((char *)a1 < &here && (char *)a2 < &here);
	printf("main overflow at %p, again at %p (frame at %p)\n", a1, a2, (void *)&here);
	/* Normal operation continues, a third overflow too. */
	overflow_once();
}

static void *thread_overflow(void *arg)
{
	int r = uf_stack_guard_thread_init();
	if (r)
		return (void *)(intptr_t)r;
	ASSERT_OK(uf_stack_guard_thread_init()); /* idempotent */
	overflow_once();
	overflow_once();
	ASSERT_OK(uf_stack_guard_thread_fini());
	ASSERT_OK(uf_stack_guard_thread_fini()); /* idempotent */
	ASSERT_OK(uf_stack_guard_thread_init()); /* again after fini */
	overflow_once();
	return NULL;
}

static void test_pthread_overflows_twice(size_t stack_size)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	if (stack_size)
		pthread_attr_setstacksize(&at, stack_size);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, &at, thread_overflow, NULL), 0);
	void *r;
	pthread_join(th, &r);
	ASSERT_OK((intptr_t)r);
	pthread_attr_destroy(&at);
}

/* Two threads overflow at the same time. */
static void test_concurrent_overflows(void)
{
	int before = atomic_load(&g_overflows);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 512 * 1024);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(pthread_create(&th[i], &at, thread_overflow, NULL), 0);
	for (int i = 0; i < 3; i++) {
		void *r;
		pthread_join(th[i], &r);
		ASSERT_OK((intptr_t)r);
	}
	ASSERT_EQ(atomic_load(&g_overflows), before + 9);
	pthread_attr_destroy(&at);
}

/* Under ASan the previous SIGSEGV handler (ASan's, which ours chains to)
 * reports the fault and exits 1 instead of dying of the signal. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_DEATH 1
#else
#define SANITIZER_DEATH 0
#endif
#define ASSERT_DIED_OF_SEGV(st)                                                              \
	do {                                                                                 \
		int st_ = (st);                                                              \
		if (WIFEXITED(st_) && WEXITSTATUS(st_) == 42)                                \
			FAIL("reported as a stack overflow");                                \
		if (!(SANITIZER_DEATH && WIFEXITED(st_) && WEXITSTATUS(st_) == 1)) {         \
			ASSERT(WIFSIGNALED(st_));                                            \
			ASSERT_EQ(WTERMSIG(st_), SIGSEGV);                                   \
		}                                                                            \
	} while (0)

static void write_at(void *p) { *(volatile char *)p = 1; }

static void overflow_main(void *arg)
{
	(void)arg;
	recurse(0);
}

/* The guard page of a live thread, found the way the library does it. */
static void guard_of(pthread_t th, char **lo, size_t *len)
{
	pthread_attr_t at;
	ASSERT_EQ(pthread_getattr_np(th, &at), 0);
	void *stk;
	size_t size;
	ASSERT_EQ(pthread_attr_getstack(&at, &stk, &size), 0);
	ASSERT_EQ(pthread_attr_getguardsize(&at, len), 0);
	pthread_attr_destroy(&at);
	*lo = (char *)stk - *len;
}

static void *wild_into_own_guard(void *arg)
{
	(void)arg;
	if (uf_stack_guard_thread_init())
		_exit(3);
	char *g;
	size_t len;
	guard_of(pthread_self(), &g, &len);
	if (len == 0)
		_exit(4);
	write_at(g + len / 2); /* the SP is megabytes above: a wild pointer */
	return NULL;
}

static void child_wild_own_guard(void *arg)
{
	(void)arg;
	pthread_t th;
	pthread_create(&th, NULL, wild_into_own_guard, NULL);
	pthread_join(th, NULL);
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void child_main_writes_thread_guard(void *arg)
{
	(void)arg;
	pthread_t th;
	pthread_create(&th, NULL, sleeper, NULL);
	char *g;
	size_t len;
	guard_of(th, &g, &len);
	if (len == 0)
		_exit(4);
	write_at(g);
}

/* Below the floor RLIMIT_STACK puts under the main stack: the kernel will not
 * grow the stack there, so this faults; the SP is far above it. */
static void child_wild_into_main_gap(void *arg)
{
	(void)arg;
	unsigned long hi = main_stack_top();
	struct rlimit rl;
	if (!hi || getrlimit(RLIMIT_STACK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (64ul << 20))
		_exit(5);
	write_at((char *)(hi - rl.rlim_cur - 256 * 1024));
}

static void test_non_overflows_are_not_reported(void)
{
	ASSERT_DIED_OF_SEGV(in_child((void (*)(void *))write_at, NULL));
	ASSERT_DIED_OF_SEGV(in_child((void (*)(void *))write_at, (void *)24));
	char *none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(none != MAP_FAILED);
	ASSERT_DIED_OF_SEGV(in_child((void (*)(void *))write_at, none + 5));
	munmap(none, ps);
	ASSERT_DIED_OF_SEGV(in_child(child_wild_own_guard, NULL));
	ASSERT_DIED_OF_SEGV(in_child(child_main_writes_thread_guard, NULL));
	int st = in_child(child_wild_into_main_gap, NULL);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 5)
		printf("main stack gap case not run (no [stack] or unlimited stack)\n");
	else
		ASSERT_DIED_OF_SEGV(st);
	/* And the opposite direction in the same setup: a real overflow is
	 * reported (exit 42). */
	st = in_child(overflow_main, NULL);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 42);
}

/* A callback that returns lets the process die of the fault. */
static void returns(void *addr, void *arg) { (void)addr, (void)arg; }
static void child_overflow_returning(void *arg)
{
	(void)arg;
	uf_stack_guard_install(returns, NULL);
	recurse(0);
}

/* Threads that exit without fini give their alternate stacks back. */
static void *init_and_exit(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)uf_stack_guard_thread_init();
}
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;
	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}
static void test_thread_exit_releases_alt_stack(void)
{
	int before = count_maps();
	for (int i = 0; i < 100; i++) {
		pthread_t th;
		void *r;
		ASSERT_EQ(pthread_create(&th, NULL, init_and_exit, NULL), 0);
		pthread_join(th, &r);
		ASSERT_OK((intptr_t)r);
	}
#ifndef __SANITIZE_THREAD__
	/* (TSan maps memory of its own for each new thread) */
	ASSERT_LE(count_maps(), before + 8);
#else
	(void)before;
#endif
}

/* The distance calls install no fault handler: a program that sets the
 * distance, then installs a SIGSEGV handler of its own, then the guard,
 * still gets its overflow reported (exit 42), its handler being the one
 * installed before the library's. */
static void prog_segv(int sig) { (void)sig; _exit(9); }
static void distance_first(void)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(20);
		struct sigaction cur;
		if (uf_stack_guard_set_distance(1 << 20) || uf_stack_guard_distance() != 1 << 20)
			_exit(3);
		if (sigaction(SIGSEGV, NULL, &cur) || cur.sa_handler != SIG_DFL)
			_exit(4); /* the library's handler went in already */
		struct sigaction sa = {0};
		sa.sa_handler = prog_segv;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, NULL) || uf_stack_guard_install(on_overflow_exit, NULL))
			_exit(5);
		overflow_recurse(0);
		_exit(6);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 42)
		FAIL("distance set before the program's handler: status 0x%x (exit 4: the distance "
		     "call installed the handler; 9: the program's handler got the overflow)", st);
}

int main(void)
{
	test_init(120);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	distance_first();
	ASSERT_EQ(uf_stack_guard_install(NULL, NULL), -EINVAL);
	test_non_overflows_are_not_reported();
	int st = in_child(child_overflow_returning, NULL);
	ASSERT_DIED_OF_SEGV(st);

	ASSERT_OK(uf_stack_guard_install(on_overflow, &g_overflows));
	test_main_thread_overflows_twice();
	test_pthread_overflows_twice(0);
	test_pthread_overflows_twice(256 * 1024);
	test_concurrent_overflows();
	test_thread_exit_releases_alt_stack();
	printf("overflows caught: %d\n", atomic_load(&g_overflows));
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_callouts.c - what the fault call-outs promise under the control flow
 * runtimes use:
 * - replacing the process-wide handler while another thread faults loses
 *   no fault (a fault sees the old handler or the new one, never the old
 *   one's phases for one half and the new one's for the other);
 * - an area handler left by siglongjmp without uf_fault_leave is released
 *   by the thread's next fault of any kind (another area's, inside
 *   uf_try_read, inside uf_probe), so uf_area_unregister in another thread
 *   returns;
 * - a fault-safe copy asks an area's handler once per fault: if it passes,
 *   the copy fails with -EFAULT (the copy's exact-byte retry does not ask
 *   again);
 * - the handler installed before the library with SA_RESETHAND runs once,
 *   as the kernel would run it, and the next fault kills.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

static size_t ps;
/* An address nothing maps (the first page), hidden from the compiler. */
static char *volatile null_page = (char *)16;

/* ---- replacing the process-wide handler under faults ---- */

static __thread sigjmp_buf t_jb;
static _Atomic int stop;
static _Atomic long handled;

static int leave_fn(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	atomic_fetch_add(&handled, 1);
	uf_fault_leave();
	siglongjmp(t_jb, 1);
}

static int leave_fn2(const struct uf_fault *f, void *arg) { return leave_fn(f, arg); }

static void *fault_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		if (sigsetjmp(t_jb, 1) == 0)
			(void)*(volatile char *)null_page;
	return NULL;
}

/* In a child: a lost fault kills it (no handler is left to catch it). */
static void swap_under_faults(unsigned other_when)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		if (uf_handler_install(leave_fn, NULL, UF_HANDLER_FIRST))
			_exit(3);
		pthread_t t;
		if (pthread_create(&t, NULL, fault_loop, NULL))
			_exit(3);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long k = 0;; k++) {
			int e = (k & 1) ? uf_handler_install(leave_fn, NULL, UF_HANDLER_FIRST)
					: uf_handler_install(leave_fn2, NULL, other_when);
			if (e)
				_exit(4);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (t1.tv_sec - t0.tv_sec >= 1 && atomic_load(&handled) > 100)
				break;
		}
		atomic_store(&stop, 1);
		pthread_join(t, NULL);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("FIRST <-> %s swaps under faults: %s %d",
		     other_when == UF_HANDLER_LAST ? "LAST" : "FIRST",
		     WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* ---- an area handler left without uf_fault_leave ---- */

static sigjmp_buf jb;
static char *mem; /* two PROT_NONE pages */
static uf_area *area;
static _Atomic int unregistered;

static int jumper(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	siglongjmp(jb, 1); /* no uf_fault_leave */
}

static int opener(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	ASSERT_EQ(mprotect(mem + ps, ps, PROT_READ), 0);
	return UF_HANDLED;
}

static void *unregister_main(void *arg)
{
	(void)arg;
	ASSERT_OK(uf_area_unregister(area));
	atomic_store(&unregistered, 1);
	return NULL;
}

enum { NEXT_TRY_READ, NEXT_PROBE, NEXT_AREA };

static void released_by_next_fault(int next)
{
	mem = mmap(NULL, 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(mem != MAP_FAILED);
	ASSERT_OK(uf_area_register(mem, ps, jumper, NULL, &area));
	if (sigsetjmp(jb, 1) == 0)
		(void)*(volatile char *)mem;
	atomic_store(&unregistered, 0);
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, NULL, unregister_main, NULL), 0);
	/* The other thread waits for the reference this thread still holds. */
	struct timespec d = {0, 50 * 1000 * 1000};
	nanosleep(&d, NULL);
	ASSERT_EQ(atomic_load(&unregistered), 0);
	char buf[4];
	uf_area *b = NULL;
	if (next == NEXT_TRY_READ) {
		ASSERT_EQ(uf_try_read(buf, mem + ps, sizeof(buf)), -EFAULT);
	} else if (next == NEXT_PROBE) {
		ASSERT_EQ(uf_probe(mem + ps, 1, UF_PROBE_READ), -EFAULT);
	} else {
		ASSERT_OK(uf_area_register(mem + ps, ps, opener, NULL, &b));
		(void)*(volatile char *)(mem + ps);
	}
	pthread_join(t, NULL); /* hangs (test timeout) if nothing released it */
	ASSERT_EQ(atomic_load(&unregistered), 1);
	if (b)
		ASSERT_OK(uf_area_unregister(b));
	ASSERT_EQ(munmap(mem, 2 * ps), 0);
}

/* ---- a fault-safe copy asks an area's handler once ---- */

static int calls;

static int pass_fn(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	calls++;
	return UF_PASS;
}

/* Passes on its first call; would make the page readable on a second. */
static int pass_then_open(const struct uf_fault *f, void *arg)
{
	(void)arg;
	if (++calls == 1)
		return UF_PASS;
	ASSERT_EQ(mprotect((void *)((uintptr_t)f->addr & ~(uintptr_t)(ps - 1)), ps, PROT_READ | PROT_WRITE), 0);
	return UF_HANDLED;
}

static void copy_asks_once(void)
{
	char *m = mmap(NULL, 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(m != MAP_FAILED);
	uf_area *a;
	ASSERT_OK(uf_area_register(m, 2 * ps, pass_fn, NULL, &a));
	static const size_t sizes[] = {1, 2, 7, 8, 16, 63, 64, 200, 4096};
	char buf[4096 + 64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		calls = 0;
		ASSERT_EQ(uf_try_read(buf, m + 5, sizes[i]), -EFAULT);
		if (calls != 1)
			FAIL("uf_try_read of %zu bytes asked the handler %d times", sizes[i], calls);
		calls = 0;
		ASSERT_EQ(uf_try_write(m + 5, buf, sizes[i]), -EFAULT);
		if (calls != 1)
			FAIL("uf_try_write of %zu bytes asked the handler %d times", sizes[i], calls);
	}
	ASSERT_OK(uf_area_unregister(a));
	ASSERT_OK(uf_area_register(m, 2 * ps, pass_then_open, NULL, &a));
	calls = 0;
	ASSERT_EQ(uf_try_read(buf, m + 8, 64), -EFAULT);
	ASSERT_EQ(calls, 1);
	/* The handler decides afresh for the next copy. */
	ASSERT_EQ(uf_try_read(buf, m + 8, 64), 0);
	ASSERT_EQ(calls, 2);
	ASSERT_OK(uf_area_unregister(a));
	ASSERT_EQ(munmap(m, 2 * ps), 0);
}

/* ---- SA_RESETHAND on the handler before ours ---- */

static volatile int reset_calls;

static void reset_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	reset_calls++;
	siglongjmp(jb, 1);
}

static void resethand_runs_once(void)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		struct rlimit no = {0, 0};
		setrlimit(RLIMIT_CORE, &no); /* the death is expected: no core file */
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = reset_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
		sigaction(SIGSEGV, &sa, NULL);
		char c;
		uf_try_read(&c, &c, 1); /* installs the library's handler over it */
		for (int i = 0; i < 2; i++)
			if (sigsetjmp(jb, 1) == 0)
				(void)*(volatile char *)null_page;
		_exit(reset_calls + 10); /* the second fault should have killed us */
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		FAIL("SA_RESETHAND handler: %s %d (want death by SIGSEGV after one call)",
		     WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(void)
{
	test_init(60);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	swap_under_faults(UF_HANDLER_FIRST);
	swap_under_faults(UF_HANDLER_LAST);
	released_by_next_fault(NEXT_TRY_READ);
	released_by_next_fault(NEXT_PROBE);
	released_by_next_fault(NEXT_AREA);
	copy_asks_once();
	resethand_runs_once();
	printf("ok\n");
	return 0;
}

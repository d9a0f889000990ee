/* SPDX-License-Identifier: MIT */
/*
 * test_engine_leave_callouts.c - call-outs from fault context left by siglongjmp leak
 * nothing (issue 9 §1 for raw areas, the process-wide handler and the
 * overflow callback): 10,000 faults each left by a jump, then
 * uf_area_unregister returns at once, from the same thread and from
 * another one, and fds, mappings and memory are what they were.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "harness.h"
#include "leaks.h"
#include "overflow.h"

#define N 10000
static size_t ps;
static sigjmp_buf g_jmp;
static _Atomic long g_calls;
static int g_use_leave;

struct snapshot {
	int fds, maps;
	long rss;
};
static struct snapshot snap(void) { return (struct snapshot){count_dir("/proc/self/fd"), count_maps(), rss_kib()}; }
static void same_as(struct snapshot a, const char *what)
{
	struct snapshot b = snap();
	printf("%s: fds %d -> %d, mappings %d -> %d, RSS %ld -> %ld KiB\n", what, a.fds, b.fds, a.maps,
	       b.maps, a.rss, b.rss);
	ASSERT_EQ(b.fds, a.fds);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* (a sanitizer runtime's own mappings and memory count here) */
	ASSERT_LE(b.maps, a.maps + 2);
	ASSERT_LE(b.rss, a.rss + 1024); /* a leak per fault would show as megabytes */
#endif
}

static int jump_out(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	atomic_fetch_add(&g_calls, 1);
	if (g_use_leave)
		uf_fault_leave();
	siglongjmp(g_jmp, 1);
}

static void fault_n(char *p, int n)
{
	for (volatile int i = 0; i < n; i++) {
		if (sigsetjmp(g_jmp, 1) == 0) {
			*(volatile char *)(p + (size_t)(i % 4) * ps) = 1;
			FAIL("the write went through");
		}
	}
}

static void timed_unregister(uf_area *a, const char *what)
{
	double t0 = now();
	ASSERT_OK(uf_area_unregister(a));
	double dt = now() - t0;
	printf("%s: uf_area_unregister took %.3f ms\n", what, dt * 1e3);
	ASSERT_LT(dt, 1.0); /* "at once", with room for a loaded machine */
}

/* Same thread: no uf_fault_leave at all; each fault reaps the record the
 * previous jump left, unregister reaps the last one. */
static void test_area_jumps_same_thread(int use_leave)
{
	g_use_leave = use_leave;
	char *p = mmap(NULL, 4 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(p != MAP_FAILED);
	uf_area *a;
	ASSERT_OK(uf_area_register(p, 4 * ps, jump_out, NULL, &a));
	fault_n(p, 10); /* warm up: first-use allocations */
	struct snapshot s = snap();
	long before = atomic_load(&g_calls);
	fault_n(p, N);
	ASSERT_EQ(atomic_load(&g_calls) - before, N);
	fault_n(p, 1); /* the last jump's record is reaped by unregister itself */
	timed_unregister(a, use_leave ? "same thread, uf_fault_leave" : "same thread, no leave call");
	same_as(s, "after 10000 jumps out of an area handler");
	munmap(p, 4 * ps);
}

/* Another thread faults and jumps out (calling uf_fault_leave); the main
 * thread unregisters while that thread is alive and idle. */
static char *g_p;
static pthread_barrier_t g_bar;
static void *faulter(void *arg)
{
	(void)arg;
	ASSERT_OK(uf_stack_guard_thread_init());
	fault_n(g_p, N);
	pthread_barrier_wait(&g_bar); /* done faulting */
	pthread_barrier_wait(&g_bar); /* unregistered */
	return NULL;
}
static void test_area_jumps_other_thread(void)
{
	g_use_leave = 1;
	g_p = mmap(NULL, 4 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(g_p != MAP_FAILED);
	uf_area *a;
	ASSERT_OK(uf_area_register(g_p, 4 * ps, jump_out, NULL, &a));
	pthread_barrier_init(&g_bar, NULL, 2);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, faulter, NULL), 0);
	pthread_barrier_wait(&g_bar);
	timed_unregister(a, "other thread left with uf_fault_leave");
	pthread_barrier_wait(&g_bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&g_bar);
	munmap(g_p, 4 * ps);
}

/* The process-wide handler, left by a jump on NULL reads. */
static int null_jump(const struct uf_fault *f, void *arg)
{
	(void)arg;
	if (f->addr != NULL)
		return UF_PASS;
	atomic_fetch_add(&g_calls, 1);
	siglongjmp(g_jmp, 1);
}
static void test_process_handler_jumps(void)
{
	ASSERT_OK(uf_handler_install(null_jump, NULL, UF_HANDLER_FIRST));
	struct snapshot s = snap();
	long before = atomic_load(&g_calls);
	for (volatile int i = 0; i < N; i++)
		if (sigsetjmp(g_jmp, 1) == 0)
			(void)*(volatile char *)NULL;
	ASSERT_EQ(atomic_load(&g_calls) - before, N);
	ASSERT_OK(uf_handler_uninstall());
	same_as(s, "after 10000 jumps out of the process-wide handler");
}

/* The overflow callback, left by a jump: 1,000 overflows of a small
 * thread stack. */
static void on_overflow(void *addr, void *arg)
{
	(void)addr, (void)arg;
	atomic_fetch_add(&g_calls, 1);
	siglongjmp(g_jmp, 1);
}
static void *overflower(void *arg)
{
	(void)arg;
	ASSERT_OK(uf_stack_guard_thread_init());
	for (volatile int i = 0; i < 1000; i++)
		if (sigsetjmp(g_jmp, 1) == 0)
			overflow_recurse(0);
	return NULL;
}
static void test_overflow_jumps(void)
{
	ASSERT_OK(uf_stack_guard_install(on_overflow, NULL));
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 128 * 1024);
	pthread_t th;
	/* A first thread so the stack cache and TLS are warm. */
	ASSERT_EQ(pthread_create(&th, &at, overflower, NULL), 0);
	pthread_join(th, NULL);
	struct snapshot s = snap();
	long before = atomic_load(&g_calls);
	ASSERT_EQ(pthread_create(&th, &at, overflower, NULL), 0);
	pthread_join(th, NULL);
	ASSERT_EQ(atomic_load(&g_calls) - before, 1000);
	pthread_attr_destroy(&at);
	ASSERT_OK(uf_stack_guard_uninstall());
	same_as(s, "after 1000 jumps out of the overflow callback");
}

int main(void)
{
	test_init(120);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	test_area_jumps_same_thread(0);
	test_area_jumps_same_thread(1);
	test_area_jumps_other_thread();
	test_process_handler_jumps();
	test_overflow_jumps();
	printf("ok\n");
	return 0;
}

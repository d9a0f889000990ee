/* SPDX-License-Identifier: MIT */
/*
 * sigsegv_threads.c (built as test_sigsegv_threads, against the drop-in's
 * sigsegv.h and libsigsegv.so.2) - thread safety beyond libsigsegv's own:
 *   - areas registered and removed by one thread (10,000 times, reshaping
 *     the dispatcher's table) while four others fault on their own areas
 *     and dispatch from their SIGSEGV handler;
 *   - overlapping areas: an address is dispatched to the area holding it
 *     that starts last (registered last among equal starts);
 *   - a stack overflow is caught in every thread that called
 *     stackoverflow_install_handler with its own extra stack, twice each,
 *     four threads at once, leaving by sigsegv_leave_handler.
 * GNU libsigsegv's dispatcher is unlocked and its overflow check only knows
 * the main thread's stack.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sigsegv.h"

#include "overflow.h"

#define WORKERS 4
#define PAGES 16
#define ROUNDS 2000

static size_t ps;
static sigsegv_dispatcher g_disp;
static _Atomic long g_handled;

static int open_page(void *addr, void *arg)
{
	(void)arg;
	uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(ps - 1);
	if (mprotect((void *)page, ps, PROT_READ | PROT_WRITE))
		return 0;
	atomic_fetch_add(&g_handled, 1);
	return 1;
}

static int never(void *addr, void *arg)
{
	(void)addr, (void)arg;
	abort(); /* churned areas are never faulted on */
}

static int on_segv(void *addr, int serious)
{
	(void)serious;
	return sigsegv_dispatch(&g_disp, addr);
}

static void *worker(void *arg)
{
	char *mem = arg;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PAGES; i++)
			mem[(size_t)i * ps + (size_t)r % ps] = (char)r; /* faults, dispatched */
		for (int i = 0; i < PAGES; i++)
			if (mem[(size_t)i * ps + (size_t)r % ps] != (char)r)
				FAIL("worker lost a write");
		if (mprotect(mem, PAGES * ps, PROT_NONE))
			FAIL("mprotect");
	}
	return NULL;
}

static void test_dispatcher_churn(void)
{
	sigsegv_init(&g_disp);
	if (sigsegv_install_handler(on_segv) < 0)
		FAIL("sigsegv_install_handler");
	/* One big reservation: worker areas and churned areas interleave. */
	size_t slots = WORKERS + 64;
	char *base = mmap(NULL, slots * PAGES * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		FAIL("mmap");
	pthread_t th[WORKERS];
	for (int w = 0; w < WORKERS; w++) {
		char *mem = base + (size_t)(w * 17) * PAGES * ps;
		if (!sigsegv_register(&g_disp, mem, PAGES * ps, open_page, NULL))
			FAIL("sigsegv_register");
		pthread_create(&th[w], NULL, worker, mem);
	}
	void *tickets[64] = {0};
	long churn = 0;
	for (int i = 0; i < 10000; i++) {
		int k = i % 64;
		size_t slot = (size_t)k + WORKERS;
		if ((slot % 17) == 0)
			continue; /* a worker's slot */
		if (tickets[k]) {
			sigsegv_unregister(&g_disp, tickets[k]);
			tickets[k] = NULL;
		} else {
			tickets[k] = sigsegv_register(&g_disp, base + slot * PAGES * ps, ps, never, NULL);
			if (!tickets[k])
				FAIL("sigsegv_register (churn)");
		}
		churn++;
	}
	for (int w = 0; w < WORKERS; w++)
		pthread_join(th[w], NULL);
	long want = (long)WORKERS * ROUNDS * PAGES;
	if (atomic_load(&g_handled) != want)
		FAIL("handled %ld faults, expected %ld", atomic_load(&g_handled), want);
	printf("dispatcher: %ld faults dispatched in %d threads while %ld register/unregister calls ran\n",
	       want, WORKERS, churn);
	sigsegv_deinstall_handler();
	munmap(base, slots * PAGES * ps);
}

/* ---- overlapping areas: the one holding the address answers ---- */
static int answer(void *addr, void *arg)
{
	(void)addr;
	return (int)(intptr_t)arg;
}
static void test_dispatcher_overlap(void)
{
	sigsegv_dispatcher d;
	sigsegv_init(&d);
	char *b = (char *)(uintptr_t)0x10000000; /* never touched: dispatch only */
	void *t1 = sigsegv_register(&d, b, 4 * ps, answer, (void *)1);
	void *t2 = sigsegv_register(&d, b + 8 * ps, 4 * ps, answer, (void *)2);
	void *t3 = sigsegv_register(&d, b, 16 * ps, answer, (void *)3);
	if (!t1 || !t2 || !t3)
		FAIL("sigsegv_register");
	/* Past both inner areas, inside the outer one. */
	if (sigsegv_dispatch(&d, b + 13 * ps) != 3 || sigsegv_dispatch(&d, b + 5 * ps) != 3)
		FAIL("an address held only by the enclosing area was not dispatched to it");
	/* Held by several: the area starting last answers, and of two
	 * starting at the same address the one registered last (sigsegv.h). */
	int r = sigsegv_dispatch(&d, b + 9 * ps);
	if (r != 2)
		FAIL("b+9p (areas 2 and 3) dispatched to %d, not 2", r);
	r = sigsegv_dispatch(&d, b + 1 * ps);
	if (r != 3)
		FAIL("b+1p (areas 1 and 3, same start) dispatched to %d, not 3", r);
	if (sigsegv_dispatch(&d, b + 16 * ps) != 0)
		FAIL("past every area: dispatched");
	sigsegv_unregister(&d, t3);
	if (sigsegv_dispatch(&d, b + 13 * ps) != 0 || sigsegv_dispatch(&d, b + 1 * ps) != 1)
		FAIL("after unregistering the enclosing area");
	sigsegv_unregister(&d, t1);
	sigsegv_unregister(&d, t2);
	/* An area ending at the very top holds its last byte; one whose
	 * length runs past the top holds everything above its start. */
	char *top = (char *)(UINTPTR_MAX - 2 * ps + 1);
	void *t4 = sigsegv_register(&d, top, 2 * ps, answer, (void *)4);
	if (!t4 || sigsegv_dispatch(&d, (void *)UINTPTR_MAX) != 4 ||
	    sigsegv_dispatch(&d, top) != 4 || sigsegv_dispatch(&d, top - 1) != 0)
		FAIL("an area ending at the top of the address space");
	sigsegv_unregister(&d, t4);
	void *t5 = sigsegv_register(&d, top, SIZE_MAX, answer, (void *)5);
	if (!t5 || sigsegv_dispatch(&d, (void *)UINTPTR_MAX) != 5 || sigsegv_dispatch(&d, top - 1) != 0)
		FAIL("an area whose length runs past the top");
	sigsegv_unregister(&d, t5);
	printf("dispatcher: overlapping areas answered by the innermost one holding the address\n");
}

/* ---- overflow in any thread ---- */
static __thread sigjmp_buf t_jmp;
static __thread int t_caught;
static _Atomic int g_overflows;

static void continuation(void *a, void *b, void *c)
{
	(void)a, (void)b, (void)c;
	siglongjmp(t_jmp, 1);
}
static void on_overflow(int emergency, stackoverflow_context_t scp)
{
	if (emergency || !scp)
		FAIL("emergency %d, context %p", emergency, (void *)scp);
	t_caught++;
	atomic_fetch_add(&g_overflows, 1);
	sigsegv_leave_handler(continuation, NULL, NULL, NULL);
}
static pthread_barrier_t g_bar;
static void *overflower(void *arg)
{
	(void)arg;
	char *extra = malloc(SIGSTKSZ);
	if (stackoverflow_install_handler(on_overflow, extra, SIGSTKSZ) < 0)
		FAIL("stackoverflow_install_handler in a thread");
	pthread_barrier_wait(&g_bar); /* overflow together */
	for (volatile int i = 0; i < 2; i++)
		if (sigsetjmp(t_jmp, 1) == 0)
			overflow_recurse(0);
	if (t_caught != 2)
		FAIL("thread caught %d overflows", t_caught);
	/* Deinstalling is process-wide, as in libsigsegv: after everyone. */
	pthread_barrier_wait(&g_bar);
	stackoverflow_deinstall_handler();
	free(extra);
	return NULL;
}
static void test_overflow_in_threads(void)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	pthread_barrier_init(&g_bar, NULL, WORKERS);
	pthread_t th[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&th[i], &at, overflower, NULL);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&g_overflows) != 2 * WORKERS)
		FAIL("%d overflows caught, expected %d", atomic_load(&g_overflows), 2 * WORKERS);
	printf("stack overflow: caught twice in each of %d threads at once\n", WORKERS);
}

int main(void)
{
	test_init(120);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	test_dispatcher_churn();
	test_dispatcher_overlap();
	test_overflow_in_threads();
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * sigsegv_fork.c (built as test_sigsegv_fork, against the drop-in's
 * sigsegv.h and libsigsegv.so.2) - fork() in one thread while two others
 * use a dispatcher: one faults on its area (dispatched from the SIGSEGV
 * handler), one calls sigsegv_dispatch in a loop and registers and removes
 * an area now and then. Each of 200 children registers an area, faults on
 * it, removes it, installs a SIGSEGV and a stack-overflow handler and
 * exits; none hangs. Dispatch readers a parent thread had announced, and
 * the dispatcher's mutex it may have held, are forgotten in the child:
 * its first sigsegv_register waited for them forever (most runs, within
 * the first few children).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sigsegv.h"

#include "harness.h"

#define PAGES 16

static size_t ps;
static sigsegv_dispatcher g_disp;
static _Atomic int g_stop;
static _Atomic long g_faults, g_dispatches;

static int open_page(void *addr, void *arg)
{
	(void)arg;
	uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(ps - 1);
	return mprotect((void *)page, ps, PROT_READ | PROT_WRITE) == 0;
}

static int answer(void *addr, void *arg)
{
	(void)addr;
	return (int)(intptr_t)arg;
}

static int on_segv(void *addr, int serious)
{
	(void)serious;
	return sigsegv_dispatch(&g_disp, addr);
}

/* Faults on every page of its area, dispatched from the handler. */
static void *faulter(void *arg)
{
	char *mem = arg;
	for (unsigned r = 0; !atomic_load_explicit(&g_stop, memory_order_relaxed); r++) {
		for (int i = 0; i < PAGES; i++)
			mem[(size_t)i * ps] = (char)r;
		atomic_fetch_add_explicit(&g_faults, PAGES, memory_order_relaxed);
		if (mprotect(mem, PAGES * ps, PROT_NONE))
			FAIL("mprotect");
	}
	return NULL;
}

/* Dispatches without a fault (the read side, always busy), and registers
 * and removes an area every 256 calls (the write side, holding the lock). */
static void *dispatcher(void *arg)
{
	char *other = arg;
	for (unsigned n = 0; !atomic_load_explicit(&g_stop, memory_order_relaxed); n++) {
		if (sigsegv_dispatch(&g_disp, other + ps) != 7)
			FAIL("direct dispatch did not reach its area");
		if (n % 256 == 0) {
			void *t = sigsegv_register(&g_disp, other + 8 * ps, ps, answer, (void *)8);
			if (!t)
				FAIL("sigsegv_register (churn)");
			sigsegv_unregister(&g_disp, t);
		}
		atomic_fetch_add_explicit(&g_dispatches, 1, memory_order_relaxed);
	}
	return NULL;
}

static void on_overflow(int emergency, stackoverflow_context_t scp)
{
	(void)emergency, (void)scp;
	_exit(9); /* never overflowed */
}

/* In the child: the write side of everything, and one dispatched fault. */
static int child(char *spare)
{
	alarm(10); /* a hang is exit 124 (test_init's handler), not a stuck test */
	void *t = sigsegv_register(&g_disp, spare, ps, open_page, NULL);
	if (!t)
		return 3;
	spare[1] = 1; /* faults; dispatched to the area just registered */
	sigsegv_unregister(&g_disp, t);
	if (sigsegv_dispatch(&g_disp, spare) != 0)
		return 4;
	if (sigsegv_install_handler(on_segv) < 0)
		return 5;
	static char extra[SIGSTKSZ];
	if (stackoverflow_install_handler(on_overflow, extra, sizeof(extra)) < 0)
		return 6;
	stackoverflow_deinstall_handler();
	return 0;
}

int main(void)
{
	test_init(120);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	sigsegv_init(&g_disp);
	if (sigsegv_install_handler(on_segv) < 0)
		FAIL("sigsegv_install_handler");
	char *base = mmap(NULL, 3 * PAGES * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		FAIL("mmap");
	char *mine = base, *other = base + PAGES * ps, *spare = base + 2 * PAGES * ps;
	if (!sigsegv_register(&g_disp, mine, PAGES * ps, open_page, NULL) ||
	    !sigsegv_register(&g_disp, other, 4 * ps, answer, (void *)7))
		FAIL("sigsegv_register");
	pthread_t th[2];
	ASSERT_EQ(pthread_create(&th[0], NULL, faulter, mine), 0);
	ASSERT_EQ(pthread_create(&th[1], NULL, dispatcher, other), 0);
	const int forks = 200;
	for (int k = 0; k < forks; k++) {
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0)
			_exit(child(spare));
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("child %d: status %#x (exit 124 means it hung)", k, st);
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	printf("%d forks while dispatching; %ld faults and %ld direct dispatches in the parent\n",
	       forks, atomic_load(&g_faults), atomic_load(&g_dispatches));
	sigsegv_deinstall_handler();
	munmap(base, 3 * PAGES * ps);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * sigsegv_bench.c - what a libsigsegv user pays per fault, built twice:
 * against GNU libsigsegv (sigsegv_bench_real) and against userfault's
 * drop-in (sigsegv_bench_uf). bench/sigsegv.sh runs both in one go.
 *   fault:    SIGSEGV on a PROT_NONE page -> handler mprotects it -> return
 *             (the access is retried), 1,024 pages, re-protected in one call
 *   dispatch: the same through sigsegv_dispatch and a registered area
 *   overflow: main-thread stack overflow (RLIMIT_STACK 1 MiB, 4 KiB frames)
 *             -> stackoverflow handler -> sigsegv_leave_handler -> longjmp
 * Prints the median of 9 rounds, in ns per event.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sigsegv.h>

#define PAGES 1024
#define ROUNDS 9
#define OVERFLOWS 200

static size_t ps;
static char *g_mem;
static int g_use_dispatch;
static sigsegv_dispatcher g_disp;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static int open_page(void *addr, void *arg)
{
	(void)arg;
	uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(ps - 1);
	return mprotect((void *)page, ps, PROT_READ | PROT_WRITE) == 0;
}
static int on_segv(void *addr, int serious)
{
	(void)serious;
	if (g_use_dispatch)
		return sigsegv_dispatch(&g_disp, addr);
	if ((char *)addr >= g_mem && (char *)addr < g_mem + PAGES * ps)
		return open_page(addr, NULL);
	return 0;
}

static double fault_round(void)
{
	if (mprotect(g_mem, PAGES * ps, PROT_NONE))
		abort();
	double t0 = now_ns();
	for (size_t i = 0; i < PAGES; i++)
		((volatile char *)g_mem)[i * ps] = 1;
	return (now_ns() - t0) / PAGES;
}

static sigjmp_buf g_jmp;
static void continuation(void *a, void *b, void *c)
{
	(void)a, (void)b, (void)c;
	siglongjmp(g_jmp, 1);
}
static void on_overflow(int emergency, stackoverflow_context_t scp)
{
	(void)emergency, (void)scp;
	sigsegv_leave_handler(continuation, NULL, NULL, NULL);
}
static volatile unsigned long g_never = ~0ul;
__attribute__((noinline)) static unsigned long recurse(unsigned long n)
{
	volatile char buf[4000];
	buf[0] = (char)n;
	if (n >= g_never)
		return n;
	return recurse(n + 1) + (unsigned long)buf[0];
}
static double overflow_round(void)
{
	double t0 = now_ns();
	for (volatile int i = 0; i < OVERFLOWS; i++)
		if (sigsetjmp(g_jmp, 1) == 0)
			recurse(0);
	return (now_ns() - t0) / OVERFLOWS;
}

int main(int argc, char **argv)
{
	(void)argc;
	ps = (size_t)sysconf(_SC_PAGESIZE);
	/* Before any library call: the overflow point is this limit. */
	struct rlimit rl = {1 << 20, 1 << 20};
	getrlimit(RLIMIT_STACK, &rl);
	rl.rlim_cur = 1 << 20;
	setrlimit(RLIMIT_STACK, &rl);
	static char extra[SIGSTKSZ];
	if (stackoverflow_install_handler(on_overflow, extra, sizeof(extra)) < 0 ||
	    sigsegv_install_handler(on_segv) < 0) {
		fprintf(stderr, "%s: cannot install handlers\n", argv[0]);
		return 1;
	}
	g_mem = mmap(NULL, PAGES * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sigsegv_init(&g_disp);
	sigsegv_register(&g_disp, g_mem, PAGES * ps, open_page, NULL);
	double f[ROUNDS], d[ROUNDS], o[ROUNDS];
	fault_round(); /* warm: pages allocated once */
	overflow_round();
	for (int r = 0; r < ROUNDS; r++) {
		g_use_dispatch = 0;
		f[r] = fault_round();
		g_use_dispatch = 1;
		d[r] = fault_round();
		o[r] = overflow_round();
	}
	printf("fault %.0f\ndispatch %.0f\noverflow %.0f\n", median(f, ROUNDS), median(d, ROUNDS),
	       median(o, ROUNDS));
	return 0;
}

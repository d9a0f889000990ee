/* SPDX-License-Identifier: MIT */
/*
 * prog_crash.c - a program that crashes the way argv[1] says, for the
 * crash-explanation tests (test_ufcatch runs it under ufcatch).
 *
 *   null-read  jump-unmapped  write-ro  prot-none  stack-overflow
 *   thread-overflow  abort  fpe  trap  region-sigbus  exit N
 *
 * Each crash sits in its own non-inlined function named crash_<case>, so a
 * test can look for the name in the backtrace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "userfault.h"

#if defined(__clang__)
#define NOINLINE __attribute__((noinline)) /* clang makes no clones */
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

static volatile int g_sink;
static volatile unsigned g_never = 0xffffffffu;

NOINLINE static int crash_null_read(void)
{
	int *volatile p = (int *)(uintptr_t)16;
	return *p;
}

NOINLINE static void crash_write_ro(void)
{
	char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	*(volatile char *)(p + 8) = 1;
}

NOINLINE static int crash_prot_none(void)
{
	char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	return *(volatile char *)p;
}

NOINLINE static void crash_jump_unmapped(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	munmap(p, 4096);
	void (*volatile fn)(void) = (void (*)(void))p;
	fn();
	g_sink = 1; /* not a tail call: keep the return address on the stack */
}

/* Not tail-recursive, a frame of a few hundred bytes; ends only by overflow. */
NOINLINE static unsigned crash_stack_overflow(unsigned n)
{
	volatile char buf[256];
	buf[n & 255] = (char)n;
	if (n == g_never)
		return 0;
	return crash_stack_overflow(n + 1) + buf[(n * 7) & 255];
}

static void *overflow_thread(void *arg)
{
	(void)arg;
	g_sink = (int)crash_stack_overflow(0);
	return NULL;
}

NOINLINE static void crash_thread_overflow(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, overflow_thread, NULL))
		exit(2);
	pthread_join(t, NULL);
}

NOINLINE static int crash_fpe(void)
{
	volatile int zero = 0, x = 42;
#if defined(__x86_64__)
	return x / zero;
#else
	/* aarch64 integer division by zero yields 0 instead of trapping. */
	(void)x, (void)zero;
	raise(SIGFPE);
	return 0;
#endif
}

NOINLINE static void crash_trap(void) { __builtin_trap(); }

NOINLINE static void crash_abort(void) { abort(); }

static int failing_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off, (void)dst, (void)len;
	return -EIO;
}

/* A store error in a userfault region: libuserfault passes the SIGBUS on to
 * the handler installed before its own (the crash reporter's). */
NOINLINE static int crash_region_sigbus(void)
{
	uf_store *st;
	uf_region *r;
	if (uf_store_fn(failing_fill, NULL, 1 << 20, &st) < 0 ||
	    uf_map(st, 0, 1 << 20, PROT_READ, NULL, &r) < 0) {
		fprintf(stderr, "prog_crash: cannot map a region\n");
		exit(4);
	}
	return ((volatile char *)uf_region_addr(r))[3 * 4096 + 5];
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: prog_crash CASE\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "null-read"))
		g_sink = crash_null_read();
	else if (!strcmp(c, "write-ro"))
		crash_write_ro();
	else if (!strcmp(c, "prot-none"))
		g_sink = crash_prot_none();
	else if (!strcmp(c, "jump-unmapped"))
		crash_jump_unmapped();
	else if (!strcmp(c, "stack-overflow"))
		g_sink = (int)crash_stack_overflow(0);
	else if (!strcmp(c, "thread-overflow"))
		crash_thread_overflow();
	else if (!strcmp(c, "abort"))
		crash_abort();
	else if (!strcmp(c, "fpe"))
		g_sink = crash_fpe();
	else if (!strcmp(c, "trap"))
		crash_trap();
	else if (!strcmp(c, "region-sigbus"))
		g_sink = crash_region_sigbus();
	else if (!strcmp(c, "exit"))
		return argc > 2 ? atoi(argv[2]) : 0;
	else {
		fprintf(stderr, "prog_crash: unknown case %s\n", c);
		return 2;
	}
	fprintf(stderr, "prog_crash: %s did not crash\n", c);
	return 3;
}

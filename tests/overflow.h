/* SPDX-License-Identifier: MIT */
/* overflow.h - runs the calling thread's stack out: a recursion with a
 * 256-byte frame that the compiler can neither turn into a loop nor prove
 * finite. Used by the stack-overflow tests. */
#ifndef UF_TEST_OVERFLOW_H
#define UF_TEST_OVERFLOW_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include <string.h>

static volatile unsigned long overflow_limit = ~0ul;
__attribute__((noinline, unused)) static unsigned long overflow_recurse(unsigned long n)
{
	volatile char buf[256];
	buf[0] = (char)n;
	if (n >= overflow_limit)
		return n;
	return overflow_recurse(n + 1) + (unsigned long)buf[0];
}

/* The top of the main thread's stack ([stack] in /proc/self/maps), or 0. */
__attribute__((unused)) static unsigned long main_stack_top(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo = 0, hi = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[stack]"))
			sscanf(line, "%lx-%lx", &lo, &hi);
	if (f)
		fclose(f);
	return hi;
}

/* In a child process: an overflow report is exit 42. */
__attribute__((unused)) static void on_overflow_exit(void *addr, void *arg)
{
	(void)addr, (void)arg;
	_exit(42);
}

/* Runs fn in a child with the exiting callback; returns its wait status. */
__attribute__((unused)) static int in_child(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(20);
		if (uf_stack_guard_install(on_overflow_exit, NULL))
			_exit(3);
		fn(arg);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}
#endif

/* SPDX-License-Identifier: MIT */
/*
 * test_safe_access_first.c - the first fault-safe access of a process may
 * come from a signal handler, or from many threads at once: each installs
 * nothing twice, and each gets -EFAULT for a bad address. (That the first
 * call is async-signal-safe, calling nothing that allocates or locks, is
 * checked statically by make check-sigctx: uf__fault_init is UF_SIGCTX.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"

static char *bad; /* a PROT_NONE page */
static volatile int in_handler_ret = 1;
static volatile int in_handler_ok;

static void on_usr1(int sig)
{
	(void)sig;
	unblock_fault_signals();
	unsigned char v = 0;
	in_handler_ret = uf_try_read(&v, bad, 1);
	static const unsigned char good = 42;
	in_handler_ok = uf_try_read(&v, &good, 1) == 0 && v == 42;
}

static _Atomic int go;
static _Atomic int fails;

static void *racer(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		;
	unsigned char v;
	if (uf_try_read(&v, bad, 1) != -EFAULT || uf_try_write(bad, &v, 1) != -EFAULT)
		atomic_fetch_add(&fails, 1);
	return NULL;
}

/* In a fresh child, so that no earlier call of this test installed anything. */
static void first_in_signal_handler(void)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		signal(SIGUSR1, on_usr1);
		raise(SIGUSR1);
		if (in_handler_ret != -EFAULT || !in_handler_ok)
			_exit(1);
		/* Installed once: a fault-safe access still works outside. */
		unsigned char v;
		_exit(uf_try_read(&v, bad, 1) == -EFAULT ? 0 : 2);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

static void first_from_many_threads(void)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		enum { N = 16 };
		pthread_t t[N];
		for (int i = 0; i < N; i++)
			if (pthread_create(&t[i], NULL, racer, NULL))
				_exit(3);
		atomic_store(&go, 1);
		for (int i = 0; i < N; i++)
			pthread_join(t[i], NULL);
		_exit(atomic_load(&fails) ? 1 : 0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

int main(void)
{
	test_init(30);
	bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(bad != MAP_FAILED);
	first_in_signal_handler();
	first_from_many_threads();
	printf("ok\n");
	return 0;
}

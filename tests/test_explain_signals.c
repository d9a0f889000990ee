/* SPDX-License-Identifier: MIT */
/*
 * uf_explain(3) under asynchronous signals whose handlers leave by
 * siglongjmp or fork: asynchronous signals wait while it runs, so
 *  - a handler that jumps out never cuts it short: no file of its stays
 *    open (the count of open descriptors is the same afterwards), and no
 *    reader of the region registry stays counted (uf_map and uf_unmap,
 *    which wait for the registry's readers, still return);
 *  - a child forked by a handler while another thread explains (it leaves
 *    the handler by siglongjmp) maps and unmaps a region of its own and
 *    exits.
 * Each phase runs for a fixed number of signals; the harness timeout
 * fails a hang.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

static sigjmp_buf g_jb;
static _Atomic int g_stop, g_ready;
static _Atomic long g_jumps, g_calls;
static siginfo_t g_si;

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ASSERT(d != NULL);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&g_jumps, 1);
	siglongjmp(g_jb, 1);
}

/* The forked child's work: map and unmap (registry writers, which wait
 * for its readers) and exit. */
static void child_work(void)
{
	static char b[4096];
	uf_store *s;
	uf_region *r;
	if (uf_store_mem(b, sizeof(b), 0, &s) || uf_map(s, 0, sizeof(b), PROT_READ, NULL, &r))
		_exit(2);
	if (((volatile char *)uf_region_addr(r))[1] != 0)
		_exit(3);
	if (uf_unmap(r, 0) || uf_store_close(s))
		_exit(4);
	_exit(0);
}

static void *explainer(void *arg)
{
	(void)arg;
	static char buf[4096];
	/* One jump point, set before the signals may come: a signal that came
	 * before it was set, or while it was being set, would jump through a
	 * stale buffer (the last phase's thread's). */
	if (sigsetjmp(g_jb, 1) == 2)
		child_work(); /* a child forked by on_usr2; never returns */
	atomic_store(&g_ready, 1);
	while (!atomic_load(&g_stop)) {
		uf_explain(&g_si, NULL, buf, sizeof(buf));
		atomic_fetch_add(&g_calls, 1);
	}
	return NULL;
}

static uf_region *map_small(uf_store **s, void *buf, size_t len)
{
	ASSERT_OK(uf_store_mem(buf, len, 0, s));
	uf_region *r;
	ASSERT_OK(uf_map(*s, 0, len, PROT_READ, NULL, &r));
	return r;
}

static void unmap_small(uf_region *r, uf_store *s)
{
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

/* Signals the explaining thread n times, spread over its calls. */
static void pelt(pthread_t th, int sig, int n)
{
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(pthread_kill(th, sig), 0);
		struct timespec ts = {0, 20000 + (i % 7) * 3000};
		nanosleep(&ts, NULL);
	}
}

static pid_t g_kids[256];
static _Atomic int g_nkids;

static void on_usr2(int sig)
{
	(void)sig;
	pid_t pid = fork();
	if (pid == 0)
		siglongjmp(g_jb, 2); /* out of the handler: uf_map allocates */
	int k = atomic_fetch_add(&g_nkids, 1);
	if (k < (int)(sizeof(g_kids) / sizeof(g_kids[0])))
		g_kids[k] = pid;
}

int main(void)
{
	test_init(60);
	static char data[16 * 4096];
	uf_store *s;
	uf_region *r = map_small(&s, data, sizeof(data));
	g_si.si_signo = SIGSEGV;
	g_si.si_code = SEGV_MAPERR;
	g_si.si_addr = (char *)uf_region_addr(r) + 5;

	struct sigaction sa = {0};
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	sa.sa_handler = on_usr2;
	ASSERT_EQ(sigaction(SIGUSR2, &sa, NULL), 0);

	/* Phase 1: handlers that jump out of it. */
	int fds = open_fds();
	pthread_t th;
	ASSERT_OK(pthread_create(&th, NULL, explainer, NULL));
	while (!atomic_load(&g_ready))
		sched_yield();
	pelt(th, SIGUSR1, 4000);
	atomic_store(&g_stop, 1);
	ASSERT_OK(pthread_join(th, NULL));
	ASSERT_GT(atomic_load(&g_jumps), 0);
	ASSERT_EQ(open_fds(), fds);
	/* (Every call may have been followed by a jump as its mask came off,
	 * so g_calls may be 0 under an emulator: explain once more here.) */
	static char text[4096];
	ASSERT_GT(uf_explain(&g_si, NULL, text, sizeof(text)), 0);
	ASSERT(strstr(text, "Thread ") != NULL);
	/* The registry has no reader left over: a writer's wait returns. */
	unmap_small(r, s);
	r = map_small(&s, data, sizeof(data));
	g_si.si_addr = (char *)uf_region_addr(r) + 5;

	/* Phase 2: handlers that fork, while it runs. */
	atomic_store(&g_stop, 0);
	atomic_store(&g_ready, 0);
	ASSERT_OK(pthread_create(&th, NULL, explainer, NULL));
	while (!atomic_load(&g_ready))
		sched_yield();
	for (int i = 0; i < 64; i++) {
		/* One at a time: a signal sent while the last one is pending
		 * merges with it. */
		ASSERT_EQ(pthread_kill(th, SIGUSR2), 0);
		for (int w = 0; atomic_load(&g_nkids) == i; w++) {
			ASSERT_LT(w, 20000);
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
		struct timespec ts = {0, (i % 5) * 41000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&g_stop, 1);
	ASSERT_OK(pthread_join(th, NULL));
	int n = atomic_load(&g_nkids);
	ASSERT_EQ(n, 64);
	for (int i = 0; i < n; i++) {
		int st;
		ASSERT_EQ(waitpid(g_kids[i], &st, 0), g_kids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("child %d forked in a handler: status 0x%x", i, st);
	}
	unmap_small(r, s);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * threads.c - the library's own threads (handler threads, store threads,
 * the background writer, the statistics publisher), counted so that a
 * process whose main thread ended with pthread_exit still ends when its
 * last thread of the program does.
 *
 * glibc ends the process (exit(0)) when the last thread of the process
 * returns or calls pthread_exit. The library's threads are threads too, so
 * without help such a process would live on with only them, and the
 * exit-time write-back (region.c) would never run. Nothing in the kernel
 * tells a thread that the others are gone, so:
 *  - a key with a destructor is set on the main thread when the library is
 *    loaded there; the destructor runs only when the main thread leaves by
 *    pthread_exit (a return from main calls exit, which runs none);
 *  - from then on, while library threads exist, a watcher (itself a
 *    library thread) reads the process's thread count, every WATCH_MS at
 *    first and then less often, up to every WATCH_MAX_MS (a program that
 *    runs for days on its other threads pays 10 reads a second), and
 *    calls exit(0), as glibc would have, once every thread left besides
 *    the exited main thread (a zombie, still counted) is the library's.
 *
 * Never ending the process too early. A library thread adds itself to
 * g_live only once it runs (so it is already in the kernel's count) and
 * takes itself out before it ends (so it is still in it): g_live never
 * exceeds the library threads the kernel counts, and the estimate of the
 * program's threads, kernel count - 1 - g_live, never falls below the real
 * number. A thread that starts between the two reads could break that, so
 * g_started (only ever increased, before g_live) must read the same on
 * both sides of the kernel's count.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "threads.h"

#define WATCH_MS 10
#define WATCH_MAX_MS 100

static _Atomic long g_live;     /* library threads running */
static _Atomic long g_started;  /* library threads ever started */
static _Atomic bool g_main_gone; /* the main thread called pthread_exit */
static _Atomic bool g_watching;
static pthread_key_t g_main_key;

/* On the creator's stack: the creator waits until the thread has taken
 * it. Not malloc'ed: a new uffd-thread handler that called free() before
 * its first epoll_wait waited for malloc's lock held by the very thread
 * whose fault had been queued to it (one arena, test_engine_fork_signal). */
struct start {
	void *(*fn)(void *);
	void *arg;
	_Atomic uint32_t taken;
};

static void thread_done(void *p)
{
	(void)p;
	atomic_fetch_sub(&g_live, 1);
}

static void *thread_main(void *p)
{
	struct start *sp = p;
	void *(*fn)(void *) = sp->fn;
	void *arg = sp->arg;
	atomic_fetch_add(&g_started, 1);
	atomic_fetch_add(&g_live, 1);
	atomic_store_explicit(&sp->taken, 1, memory_order_release); /* sp is gone after this */
	uf__futex_wake_all(&sp->taken);
	void *ret;
	/* Also on cancellation and pthread_exit: a count left too high could
	 * end the process while a thread of the program still runs. */
	pthread_cleanup_push(thread_done, NULL);
	ret = fn(arg);
	pthread_cleanup_pop(1);
	return ret;
}

static void watch_start(void);

int uf__thread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	struct start st = {fn, arg, 0};
	int e = pthread_create(th, attr, thread_main, &st);
	if (e)
		return -e;
	while (!atomic_load_explicit(&st.taken, memory_order_acquire))
		uf__futex_wait(&st.taken, 0);
	if (atomic_load(&g_main_gone))
		watch_start();
	return 0;
}

/* The kernel's count of the process's threads (the exited main thread
 * included); 0 while the main thread still runs (the program's key
 * destructors, which run after ours, may still be at work on it); -1
 * without /proc. */
static long kernel_threads(void)
{
	char buf[4096];
	if (uf__read_small_file("/proc/self/status", buf, sizeof(buf)) < 0)
		return -1;
	/* State is the main thread's: a zombie once it has ended. */
	const char *st = strstr(buf, "\nState:");
	const char *t = strstr(buf, "\nThreads:");
	if (!st || !t)
		return -1;
	st += 7;
	st += strspn(st, " \t");
	return *st == 'Z' ? strtol(t + 9, NULL, 10) : 0;
}

static void *watcher(void *arg)
{
	(void)arg;
	for (long ms = WATCH_MS;; ms = ms * 2 > WATCH_MAX_MS ? WATCH_MAX_MS : ms * 2) {
		long s0 = atomic_load(&g_started);
		long k = kernel_threads();
		long live = atomic_load(&g_live);
		if (k < 0)
			break; /* no /proc: the process lives on, as it did before */
		if (k > 0 && atomic_load(&g_started) == s0 && k - 1 - live <= 0)
			exit(0); /* what glibc does when the last thread ends */
		struct timespec ts = {0, ms * 1000000L};
		nanosleep(&ts, NULL);
	}
	atomic_store(&g_watching, false);
	return NULL;
}

static void watch_start(void)
{
	if (atomic_exchange(&g_watching, true))
		return;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* it takes no signal */
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64u << 10);
	pthread_t th;
	if (uf__thread_create(&th, &at, watcher, NULL))
		atomic_store(&g_watching, false);
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Runs on the main thread as it leaves by pthread_exit. */
static void main_gone(void *p)
{
	(void)p;
	atomic_store(&g_main_gone, true);
	if (atomic_load(&g_live) > 0)
		watch_start();
}

static void after_fork_child(void)
{
	/* Only the forking thread exists here; it is the child's main thread
	 * only if it was the parent's (its key value came with it). */
	atomic_store(&g_live, 0);
	atomic_store(&g_watching, false);
	atomic_store(&g_main_gone, false);
}

__attribute__((constructor)) static void threads_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
	if (uf__gettid() == getpid() && pthread_key_create(&g_main_key, main_gone) == 0)
		pthread_setspecific(g_main_key, &g_main_key);
}

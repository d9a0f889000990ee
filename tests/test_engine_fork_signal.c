/* SPDX-License-Identifier: MIT */
/* A signal handler that touches a region while its thread is inside
 * fork(): the fault is served. glibc's fork() holds malloc's locks from
 * before the clone until after it returns, and a signal that arrives
 * meanwhile runs its handler there. The handler-thread engine started a
 * new handler thread (pthread_create allocates) before serving a message
 * when no other handler was idle: it waited for those locks and the
 * forking thread waited for it, for ever (a few iterations in ten).
 *
 * The same while the thread is inside malloc with one arena for all threads
 * (the handler's new thread waited for the arena's lock).
 *
 * The same for a store that is not async-signal-safe (UF_STORE_NOT_SIGSAFE,
 * served by store threads): its read allocates, and a store thread waited
 * for malloc's locks while the forking thread waited for the store. The
 * library now holds asynchronous signals off in a thread inside fork()
 * (pthread_atfork), so neither can happen.
 *
 * Each iteration maps a new region, keeps one handler busy with a slow
 * block, and forks back to back while another thread sends the forking
 * thread signals whose handler reads the region's next fresh block. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <malloc.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

#define NBLK 512
#define SLOW_MS 30

static int fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (off == 0) {
		struct timespec ts = {0, SLOW_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	uint64_t *d = dst;
	for (size_t i = 0; i < len / 8; i++)
		d[i] = off + i * 8 + 1;
	return 0;
}

/* The same bytes from a store that allocates in every call. */
static int alloc_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	void *tmp = malloc(len);
	if (!tmp)
		return -ENOMEM;
	int e = fill(ctx, off, tmp, len);
	memcpy(dst, tmp, len);
	free(tmp);
	return e;
}

static volatile uint64_t *g_p;
static _Atomic unsigned g_next = 1; /* next block the handler reads */
static _Atomic unsigned g_bad;
static _Atomic bool g_bomb;
static pthread_t g_main;
static pid_t g_parent;

static void on_usr1(int sig)
{
	(void)sig;
	int saved = errno;
	/* ThreadSanitizer queues signals itself, and a child inherits the
	 * queue: the region is the parent's only. */
	if (getpid() != g_parent)
		return;
	unblock_fault_signals(); /* ThreadSanitizer runs handlers with all blocked */
	unsigned b = atomic_fetch_add(&g_next, 1);
	if (b < NBLK) {
		size_t w = b * page_size() / 8;
		if (g_p[w] != w * 8 + 1)
			atomic_fetch_add(&g_bad, 1);
	}
	errno = saved;
}

static void *slow_reader(void *arg)
{
	(void)arg;
	if (g_p[0] != 1)
		atomic_fetch_add(&g_bad, 1);
	return NULL;
}

static void *bomber(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 20000};
	while (atomic_load(&g_bomb)) {
		pthread_kill(g_main, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

enum busy { FORKS, MALLOCS };

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* What the signalled thread does meanwhile: fork back to back, or (with
 * one malloc arena for all threads) allocate and free in a loop. */
static void run(uf_store *s, enum busy busy, const char *what)
{
	size_t ps = page_size();
	unsigned forks = 0, served = 0;
	for (int it = 0; it < 12; it++) {
		struct uf_map_opts o = test_map_opts();
		o.flags = UF_MAP_NO_READAHEAD; /* a fault for each block the handler reads */
		uf_region *r;
		ASSERT_OK(uf_map(s, 0, (size_t)NBLK * ps, PROT_READ, &o, &r));
		g_p = uf_region_addr(r);
		atomic_store(&g_next, 1);
		pthread_t slow, bt;
		ASSERT_OK(pthread_create(&slow, NULL, slow_reader, NULL));
		struct timespec ts = {0, 2000000}; /* the slow load has begun */
		nanosleep(&ts, NULL);
		atomic_store(&g_bomb, true);
		ASSERT_OK(pthread_create(&bt, NULL, bomber, NULL));
		uint64_t t0 = now_ns();
		for (unsigned k = 0; busy == MALLOCS && now_ns() - t0 < 20000000 && atomic_load(&g_next) < NBLK; k++) {
			void *v = malloc(4096 + (k & 7) * 512); /* past the thread cache */
			ASSERT(v);
			((volatile char *)v)[0] = 1;
			free(v);
		}
		for (int k = 0; busy == FORKS && k < 40 && atomic_load(&g_next) < NBLK; k++) {
			pid_t pid = fork();
			ASSERT(pid >= 0);
			if (pid == 0)
				_exit(0);
			forks++;
			int st;
			while (waitpid(pid, &st, 0) < 0)
				ASSERT_EQ(errno, EINTR);
			ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		atomic_store(&g_bomb, false);
		ASSERT_OK(pthread_join(bt, NULL));
		ASSERT_OK(pthread_join(slow, NULL));
		unsigned n = atomic_load(&g_next);
		served += (n < NBLK ? n : NBLK) - 1;
		ASSERT_OK(uf_unmap(r, 0));
	}
	ASSERT_EQ(atomic_load(&g_bad), 0);
	ASSERT(served > 0); /* the handler ran, and read the region */
	printf("%s: %u forks, %u blocks read by the signal handler\n", what, forks, served);
	atomic_store(&g_bad, 0);
}

int main(void)
{
	test_init(120);
	/* One arena: a handler thread's allocation waits for the signalled
	 * thread's malloc (before any thread starts). */
	bool one_arena = mallopt(M_ARENA_MAX, 1) == 1;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	ASSERT(one_arena); /* (a sanitizer's allocator has no arenas to set) */
#endif
	g_main = pthread_self();
	g_parent = getpid();
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	ASSERT_OK(sigaction(SIGUSR1, &sa, NULL));
	size_t ps = page_size();
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill, NULL, (uint64_t)NBLK * ps, &s));
	run(s, FORKS, "signal-safe store, fork");
	if (one_arena)
		run(s, MALLOCS, "signal-safe store, malloc");
	else
		printf("malloc case not run: this allocator takes no M_ARENA_MAX\n");
	uf_store_close(s);
	struct uf_store_ops ops = {.struct_size = sizeof(ops),
				   .read = alloc_read,
				   .flags = UF_STORE_NOT_SIGSAFE,
				   .threads = 2};
	ASSERT_OK(uf_store_new(&ops, NULL, (uint64_t)NBLK * ps, &s));
	run(s, FORKS, "store that allocates (store threads), fork");
	uf_store_close(s);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* A main thread that ends with pthread_exit while regions are mapped: the
 * process ends when its last thread of the program does, as it would
 * without the library, although the library's threads (store threads, the
 * background writer, uffd-thread's handlers) still run; and the exit-time
 * write-back happens. Not too early either: an exit status set by the last
 * thread stands, and a thread still at work is not cut off. Every case runs
 * in a child under a deadline, so a process that never ends fails here. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

#define DEADLINE_S 10

struct shared {
	_Atomic int done; /* the last thread of the program got to its end */
	unsigned char data[];
};
static struct shared *g_sh;
static size_t g_size;
static int g_mode;

static int sh_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	memcpy(dst, g_sh->data + off, len);
	return 0;
}
static int sh_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	memcpy(g_sh->data + off, src, len);
	return 0;
}

/* A store run on store threads, a region with a background writer that
 * will not come round before the end (60 s), and the engine under test:
 * every kind of library thread but the publisher. */
static uf_region *map_shared(void)
{
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops),
						.read = sh_read,
						.write = sh_write,
						.flags = UF_STORE_NOT_SIGSAFE,
						.threads = 2};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, g_size, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = g_size;
	o.writeback_ms = 60000;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, g_size, PROT_READ | PROT_WRITE, &o, &r));
	ASSERT_OK(uf_store_close(s));
	return r;
}

static void dirty(uf_region *r, unsigned char v, size_t from)
{
	size_t ps = page_size();
	unsigned char *p = uf_region_addr(r);
	for (size_t off = from * ps; off < g_size; off += 2 * ps)
		p[off + 3] = v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
	while (nanosleep(&ts, &ts))
		;
}

static uf_region *g_r;

/* mode 1: writes more after main has gone, then returns.
 * mode 2: the same, then exit(5).
 * mode 3: maps the region itself, after main has gone. */
static void *worker(void *arg)
{
	(void)arg;
	sleep_ms(200); /* main is gone by now */
	if (g_mode == 3)
		g_r = map_shared();
	dirty(g_r, 0xb0, 1);
	atomic_store(&g_sh->done, 1);
	if (g_mode == 2)
		exit(5);
	return NULL;
}

/* mode 0: main writes and leaves by pthread_exit; nothing else runs. */
static void child(void)
{
	if (g_mode != 3) {
		g_r = map_shared();
		dirty(g_r, 0xa0, 0);
	}
	if (g_mode != 0) {
		pthread_t th;
		ASSERT_EQ(pthread_create(&th, NULL, worker, NULL), 0);
		pthread_detach(th);
	} else {
		atomic_store(&g_sh->done, 1);
	}
	pthread_exit(NULL);
}

static int wait_deadline(pid_t pid, double *took)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		ASSERT(w >= 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		*took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (w == pid)
			return st;
		if (*took > DEADLINE_S) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			FAIL("mode %d: the process still runs %d s after its last thread ended", g_mode,
			     DEADLINE_S);
		}
		sleep_ms(5);
	}
}

int main(void)
{
	test_init(120);
#if defined(__SANITIZE_THREAD__)
	/* The library counts the threads the kernel sees that it did not
	 * start as the program's, and TSan's runtime runs one of its own. */
	SKIP("ThreadSanitizer's own thread keeps such a process running");
#endif
	if (under_qemu())
		SKIP("qemu-user's own thread keeps such a process running");
	size_t ps = page_size();
	g_size = 16 * ps;
	static const char *what[] = {"main alone", "a thread returns after main",
				     "a thread exits with 5 after main", "a thread maps after main"};
	for (g_mode = 0; g_mode < 4; g_mode++) {
		g_sh = mmap(NULL, sizeof(*g_sh) + g_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
		ASSERT(g_sh != MAP_FAILED);
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0)
			child();
		double took;
		int st = wait_deadline(pid, &took);
		if (!WIFEXITED(st))
			FAIL("mode %d: the child ended by signal %d", g_mode, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		ASSERT_EQ(WEXITSTATUS(st), g_mode == 2 ? 5 : 0);
		ASSERT_EQ(atomic_load(&g_sh->done), 1); /* not ended before its last thread */
		for (size_t b = 0; b < g_size / ps; b++) {
			unsigned char want = b % 2 == 0 ? (g_mode == 3 ? 0 : 0xa0) : g_mode ? 0xb0 : 0;
			if (g_sh->data[b * ps + 3] != want)
				FAIL("mode %d: block %zu holds %#x in the store, want %#x (the exit write-back)",
				     g_mode, b, g_sh->data[b * ps + 3], want);
		}
		printf("%s: ended with status %d after %.0f ms, writes in the store\n", what[g_mode],
		       WEXITSTATUS(st), took * 1e3);
		munmap(g_sh, sizeof(*g_sh) + g_size);
	}
	printf("ok\n");
	return 0;
}

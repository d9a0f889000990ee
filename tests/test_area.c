/* SPDX-License-Identifier: MIT */
/*
 * test_area.c - raw per-range fault handlers: argument checks, overlap,
 * what the handler is told, UF_PASS falls through to the default death,
 * unregistering stops delivery, SIGBUS areas, and registration/removal
 * racing with faults in other threads.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <time.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"

static size_t ps;

/* The access type comes from the x86 error code or the aarch64 ESR record of
 * the signal frame. qemu-user writes no ESR record, so under it aarch64
 * reports UF_ACCESS_UNKNOWN; real kernels always provide it. */
#if defined(__aarch64__)
#define ASSERT_ACCESS(got, want)                                                        \
	do {                                                                            \
		if ((got) == UF_ACCESS_UNKNOWN)                                         \
			printf("access type unknown (no ESR in the signal frame: qemu?)\n"); \
		else                                                                    \
			ASSERT_EQ(got, want);                                           \
	} while (0)
#else
#define ASSERT_ACCESS(got, want) ASSERT_EQ(got, want)
#endif

static uint8_t *map_none(size_t pages)
{
	void *p = mmap(NULL, pages * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(p != MAP_FAILED);
	return p;
}

/* Opens the faulting page read-write. */
static int open_page(const struct uf_fault *f, void *arg)
{
	if (arg)
		atomic_fetch_add((_Atomic long *)arg, 1);
	uintptr_t page = (uintptr_t)f->addr & ~(uintptr_t)(ps - 1);
	return mprotect((void *)page, ps, PROT_READ | PROT_WRITE) ? UF_PASS : UF_HANDLED;
}

static int decline(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	return UF_PASS;
}

static void test_bad_arguments_and_overlap(void)
{
	uint8_t *m = map_none(8);
	uf_area *a = NULL, *b;
	ASSERT_EQ(uf_area_register(NULL, ps, open_page, NULL, &a), -EINVAL);
	ASSERT_EQ(uf_area_register(m, 0, open_page, NULL, &a), -EINVAL);
	ASSERT_EQ(uf_area_register(m, ps, NULL, NULL, &a), -EINVAL);
	ASSERT_EQ(uf_area_register(m, ps, open_page, NULL, NULL), -EINVAL);
	ASSERT_EQ(uf_area_register((void *)(uintptr_t)-4096, 8192, open_page, NULL, &a), -EINVAL);
	ASSERT_EQ(uf_area_unregister(NULL), -EINVAL);
	ASSERT(a == NULL);

	ASSERT_OK(uf_area_register(m + 2 * ps, 2 * ps, open_page, NULL, &a));
	ASSERT_EQ(uf_area_register(m + 2 * ps, 2 * ps, open_page, NULL, &b), -EEXIST); /* same */
	ASSERT_EQ(uf_area_register(m + ps, 2 * ps, open_page, NULL, &b), -EEXIST);     /* below */
	ASSERT_EQ(uf_area_register(m + 3 * ps, 2 * ps, open_page, NULL, &b), -EEXIST); /* above */
	ASSERT_EQ(uf_area_register(m, 8 * ps, open_page, NULL, &b), -EEXIST);          /* around */
	ASSERT_EQ(uf_area_register(m + 3 * ps, 1, open_page, NULL, &b), -EEXIST);      /* inside */
	/* Adjacent on both sides is fine. */
	uf_area *lo, *hi;
	ASSERT_OK(uf_area_register(m + ps, ps, open_page, NULL, &lo));
	ASSERT_OK(uf_area_register(m + 4 * ps, ps, open_page, NULL, &hi));
	ASSERT_OK(uf_area_unregister(a));
	ASSERT_OK(uf_area_unregister(lo));
	ASSERT_OK(uf_area_unregister(hi));
	/* The range is free again. */
	ASSERT_OK(uf_area_register(m, 8 * ps, open_page, NULL, &a));
	ASSERT_OK(uf_area_unregister(a));
	munmap(m, 8 * ps);
}

/* The handler is told the address, the access, the signal and the context. */
static struct uf_fault g_seen;
static volatile int g_seen_n; /* written by the handler */
static int record(const struct uf_fault *f, void *arg)
{
	g_seen = *f;
	g_seen_n++;
	uintptr_t page = (uintptr_t)f->addr & ~(uintptr_t)(ps - 1);
	return mprotect((void *)page, ps, (int)(uintptr_t)arg) ? UF_PASS : UF_HANDLED;
}

static void test_handler_sees_fault(void)
{
	uint8_t *m = map_none(2);
	uf_area *a;
	ASSERT_OK(uf_area_register(m, 2 * ps, record, (void *)(uintptr_t)PROT_READ, &a));
	volatile uint8_t *v = m;
	uint8_t x = v[123];
	atomic_signal_fence(memory_order_seq_cst); /* g_seen is written by the handler */
	ASSERT_EQ(x, 0);
	ASSERT_EQ(g_seen_n, 1);
	ASSERT(g_seen.addr == m + 123);
	ASSERT_EQ(g_seen.sig, SIGSEGV);
	ASSERT_ACCESS(g_seen.access, UF_ACCESS_READ);
	ASSERT(g_seen.info != NULL && g_seen.ucontext != NULL);
	uf_area_unregister(a);

	/* A write to the now read-only page: a write access. */
	ASSERT_OK(uf_area_register(m, 2 * ps, record, (void *)(uintptr_t)(PROT_READ | PROT_WRITE), &a));
	v[200] = 7;
	atomic_signal_fence(memory_order_seq_cst);
	ASSERT_EQ(g_seen_n, 2);
	ASSERT(g_seen.addr == m + 200);
	ASSERT_ACCESS(g_seen.access, UF_ACCESS_WRITE);
	ASSERT_EQ(v[200], 7);
	ASSERT_OK(uf_area_unregister(a));
	munmap(m, 2 * ps);
}

/* Runs fn in a child; returns the signal that killed it (0 if it exited). */
static int child_dies_of(void (*fn)(uint8_t *), uint8_t *m)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(20);
		fn(m);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's own SIGSEGV handler (ours chains to it) reports and exits 1. */
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		return SIGSEGV;
#endif
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static void touch(uint8_t *m) { *(volatile uint8_t *)m = 1; }

static void pass_in_child(uint8_t *m)
{
	uf_area *a;
	if (uf_area_register(m, ps, decline, NULL, &a))
		_exit(3);
	touch(m);
}

static void unregistered_in_child(uint8_t *m)
{
	uf_area *a;
	if (uf_area_register(m, ps, open_page, NULL, &a) || uf_area_unregister(a))
		_exit(3);
	touch(m);
}

static void test_pass_and_unregister_fall_through(void)
{
	uint8_t *m = map_none(1);
	ASSERT_EQ(child_dies_of(pass_in_child, m), SIGSEGV);
	ASSERT_EQ(child_dies_of(unregistered_in_child, m), SIGSEGV);
	munmap(m, ps);
}

/* A file mapping past EOF gives SIGBUS; the handler grows the file. */
static int g_fd;
static int grow_file(const struct uf_fault *f, void *arg)
{
	if (f->sig != SIGBUS)
		return UF_PASS;
	uintptr_t base = (uintptr_t)arg;
	off_t need = (off_t)(((uintptr_t)f->addr - base) / ps + 1) * (off_t)ps;
	return ftruncate(g_fd, need) ? UF_PASS : UF_HANDLED;
}

static void test_sigbus_area(void)
{
	char path[] = "/tmp/uf_test_area_XXXXXX";
	g_fd = mkstemp(path);
	ASSERT(g_fd >= 0);
	unlink(path);
	uint8_t *m = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, g_fd, 0);
	ASSERT(m != MAP_FAILED);
	uf_area *a;
	ASSERT_OK(uf_area_register(m, 4 * ps, grow_file, m, &a));
	m[3 * ps + 9] = 42;
	ASSERT_EQ(m[3 * ps + 9], 42);
	ASSERT_EQ(lseek(g_fd, 0, SEEK_END), (off_t)(4 * ps));
	ASSERT_OK(uf_area_unregister(a));
	munmap(m, 4 * ps);
	close(g_fd);
}

/*
 * Workers fault on PROT_NONE pages of their own areas (the handler opens the
 * page) while registering/unregistering their areas between rounds, and a
 * churn thread registers and removes unrelated areas all the time. Every
 * fault must reach its handler exactly once per page and round.
 */
#define WORKERS 4
#define PAGES 32
#define ROUNDS 200
static _Atomic int g_stop;
static _Atomic long g_churns;

struct worker {
	pthread_t th;
	uint8_t *mem;
	_Atomic long faults;
	long expect; /* distinct pages touched, summed over rounds */
	int err;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	uint64_t seed = (uintptr_t)w | 1;
	for (int round = 0; round < ROUNDS; round++) {
		uf_area *a;
		if ((w->err = uf_area_register(w->mem, PAGES * ps, open_page, (void *)&w->faults, &a)))
			return NULL;
		uint8_t touched[PAGES] = {0};
		for (int i = 0; i < PAGES * 4; i++) {
			size_t pg = xorshift64(&seed) % PAGES;
			w->expect += !touched[pg];
			touched[pg] = 1;
			volatile uint8_t *b = w->mem + pg * ps;
			b[i % ps] = (uint8_t)round;
		}
		if ((w->err = uf_area_unregister(a)))
			return NULL;
		if (mprotect(w->mem, PAGES * ps, PROT_NONE)) {
			w->err = -errno;
			return NULL;
		}
	}
	return NULL;
}

static void *churn_main(void *p)
{
	uint8_t *m = p;
	while (!atomic_load(&g_stop)) {
		uf_area *a[8];
		int n = 0;
		for (int i = 0; i < 8; i++)
			if (uf_area_register(m + (size_t)i * 2 * ps, ps, open_page, NULL, &a[n]) == 0)
				n++;
		for (int i = 0; i < n; i++)
			uf_area_unregister(a[i]);
		atomic_fetch_add(&g_churns, 1);
	}
	return NULL;
}

static void test_register_unregister_while_faulting(void)
{
	struct worker w[WORKERS];
	uint8_t *churn_mem = map_none(16);
	pthread_t churn;
	ASSERT_EQ(pthread_create(&churn, NULL, churn_main, churn_mem), 0);
	for (int i = 0; i < WORKERS; i++) {
		w[i].mem = map_none(PAGES);
		atomic_init(&w[i].faults, 0);
		w[i].err = 0;
		w[i].expect = 0;
		ASSERT_EQ(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	}
	long total = 0;
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(w[i].th, NULL);
		ASSERT_OK(w[i].err);
		/* Every page touched in a round faulted exactly once in it. */
		ASSERT_EQ(atomic_load(&w[i].faults), w[i].expect);
		total += w[i].expect;
		munmap(w[i].mem, PAGES * ps);
	}
	atomic_store(&g_stop, 1);
	pthread_join(churn, NULL);
	ASSERT_GT(atomic_load(&g_churns), 0);
	printf("faults served: %ld, churn rounds: %ld\n", total, atomic_load(&g_churns));
	munmap(churn_mem, 16 * ps);
}

/* A thread leaves the handler by siglongjmp without uf_fault_leave and
 * then exits: the area's reference goes with it (uf_area_unregister
 * waited for ever; a next fault of that thread, which would release it,
 * never comes). */
static __thread sigjmp_buf t_jb;
static int jump_out(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	siglongjmp(t_jb, 1);
}

static void *jump_and_exit(void *p)
{
	if (sigsetjmp(t_jb, 1) == 0) {
		touch(p);
		FAIL("the write went through");
	}
	return NULL;
}

static void *unregister_main(void *a)
{
	return (void *)(intptr_t)uf_area_unregister(a);
}

static void test_thread_exits_after_jump(void)
{
	uint8_t *m = map_none(2);
	uf_area *a;
	ASSERT_OK(uf_area_register(m, 2 * ps, jump_out, NULL, &a));
	for (int i = 0; i < 4; i++) { /* threads' descriptors are reused */
		pthread_t th;
		ASSERT_OK(pthread_create(&th, NULL, jump_and_exit, m + (i & 1) * ps));
		ASSERT_OK(pthread_join(th, NULL));
	}
	pthread_t un;
	ASSERT_OK(pthread_create(&un, NULL, unregister_main, a));
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	void *ret;
	int e = pthread_timedjoin_np(un, &ret, &dl);
	if (e == ETIMEDOUT)
		FAIL("uf_area_unregister still waits 10 s after the threads that jumped out exited");
	ASSERT_OK(e);
	ASSERT_OK((intptr_t)ret);
	munmap(m, 2 * ps);
}

int main(void)
{
	test_init(120);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	test_bad_arguments_and_overlap();
	test_handler_sees_fault();
	test_pass_and_unregister_fall_through();
	test_sigbus_area();
	test_register_unregister_while_faulting();
	test_thread_exits_after_jump();
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* fork() in one thread while two others fault: the children (30 of them)
 * see uf_* calls on the inherited handle fail with -EPERM and exit; none
 * hangs (a fault handler or pager lock held by a faulting thread at fork
 * time is not needed by the child's calls); the parent's threads keep
 * reading the right bytes throughout. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

static struct fixture fx;
static _Atomic int stop;
static _Atomic long ops;

static void *worker(void *arg)
{
	uint64_t seed = 99 + (uintptr_t)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t off = xorshift64(&seed) % fx.size;
		unsigned char c = ((volatile unsigned char *)fx.p)[off];
		if (c != pattern_byte(off))
			FAIL("byte %zu reads %#x, want %#x", off, c, pattern_byte(off));
		atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
	}
	return NULL;
}

int main(void)
{
	test_init(120);
	if (under_qemu())
		SKIP("qemu-user ignores MADV_DONTFORK and dies forking a process whose threads fault; fork is tested natively");
	size_t ps = page_size();
	fixture_open(&fx, 512 * ps, 0, 32 * ps, PROT_READ);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i), 0);
	for (int k = 0; k < 30; k++) {
		struct timespec d = {0, 20000000};
		nanosleep(&d, NULL);
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			alarm(10); /* a hang in the child is a failure, not a stuck test */
			int e1 = uf_sync(fx.r, NULL, 0), e2 = uf_prefetch(fx.r, NULL, 0);
			_exit(e1 == -EPERM && e2 == -EPERM ? 0 : 4);
		}
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("child %d: status %#x (SIGALRM %d means it hung)", k, st, SIGALRM);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	printf("30 forks while faulting; %ld reads, %llu faults\n", (long)ops,
	       (unsigned long long)stats_of(fx.r).faults);
	fixture_close(&fx, 0);
	return 0;
}

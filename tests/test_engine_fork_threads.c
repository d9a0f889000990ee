/* SPDX-License-Identifier: MIT */
/* fork() in one thread while two others fault: the children (200 of them)
 * see uf_* calls on the inherited handle fail with -EPERM, then map a
 * region of their own, register an area and install a handler, and exit;
 * none hangs (a fault handler or pager lock held by a faulting thread at
 * fork time is not needed by the child's calls, and readers of the
 * registry or of a handler slot that a parent thread had announced are
 * forgotten: the child's first uf_map waited for them forever, 1 to 2
 * children in 200); the parent's threads keep reading the right bytes
 * throughout. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

static struct fixture fx;
static _Atomic int stop;
static _Atomic long ops;

static int pass(const struct uf_fault *f, void *arg)
{
	(void)f;
	(void)arg;
	return UF_PASS;
}

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
	ASSERT_OK(uf_handler_install(pass, NULL, UF_HANDLER_LAST)); /* a slot in use */
	uf_store *own;
	const unsigned char *ob = pattern_store(16 * ps, &own);
	const int forks = 200;
	for (int k = 0; k < forks; k++) {
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			alarm(10); /* a hang in the child is a failure, not a stuck test */
			int e1 = uf_sync(fx.r, NULL, 0), e2 = uf_prefetch(fx.r, NULL, 0);
			if (e1 != -EPERM || e2 != -EPERM)
				_exit(4);
			struct uf_map_opts o = test_map_opts();
			uf_region *r;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
			/* ThreadSanitizer refuses the handler-thread engine's
			 * threads in a child of a threaded process. AddressSanitizer
			 * (GCC 12's runtime) takes no allocator lock around fork: a
			 * parent thread starting up inside its calloc at the fork
			 * leaves a size class locked in the child, and the child's
			 * new threads wait on it at start-up forever (seen in 2 of 8
			 * runs; glibc's malloc, natively, is reset at fork). */
			if (test_engine() == UF_ENGINE_UFFD_THREAD)
				o.engine = UF_ENGINE_SIGNAL;
#endif
			if (uf_map(own, 0, 16 * ps, PROT_READ, &o, &r) ||
			    ((volatile unsigned char *)uf_region_addr(r))[3 * ps + 1] != ob[3 * ps + 1] ||
			    uf_unmap(r, 0))
				_exit(5);
			uf_area *a;
			if (uf_area_register((char *)fx.p - 64 * ps, ps, pass, NULL, &a) ||
			    uf_area_unregister(a))
				_exit(6);
			if (uf_handler_install(pass, NULL, UF_HANDLER_FIRST) || uf_handler_uninstall())
				_exit(7);
			_exit(0);
		}
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("child %d: status %#x (exit 124: it hung, the alarm fired)", k, st);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	ASSERT_OK(uf_handler_uninstall());
	uf_store_close(own);
	printf("%d forks while faulting; %ld reads, %llu faults\n", forks, (long)ops,
	       (unsigned long long)stats_of(fx.r).faults);
	fixture_close(&fx, 0);
	return 0;
}

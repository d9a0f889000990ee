/* SPDX-License-Identifier: MIT */
/* uf_unmap while another thread still touches the region. What the caller
 * may expect (docs/ENGINES.md, "Unmapping a region in use"): each access
 * racing with the unmap either completes with the region's right bytes or
 * faults, with SIGSEGV as on munmap'd memory or (in-thread engine, a
 * missing page touched just as the region leaves the registry) SIGBUS;
 * never zeros (the userfaultfd engines used to close the userfaultfd
 * before unmapping, and a touch in between read a zero page); uf_unmap
 * neither hangs nor fails. Here the toucher catches SIGSEGV/SIGBUS with
 * sigsetjmp and stops at the first one; nothing else maps memory meanwhile
 * (after uf_unmap returns the addresses may be reused by any later mapping,
 * so a real program must stop touching first). 50 rounds. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

static __thread sigjmp_buf *volatile jb;
static _Atomic int faulted_sig;
static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si, (void)uc;
	if (jb) {
		atomic_store(&faulted_sig, sig);
		siglongjmp(*jb, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static volatile unsigned char *region;
static size_t rsize;
static _Atomic int started;
static _Atomic long reads;

static void *toucher(void *arg)
{
	sigjmp_buf b;
	if (sigsetjmp(b, 1)) {
		jb = NULL;
		return arg;
	}
	jb = &b;
	uint64_t seed = 5;
	for (;;) {
		size_t off = xorshift64(&seed) % rsize;
		unsigned char c = region[off];
		if (c != pattern_byte(off)) {
			jb = NULL;
			FAIL("byte %zu reads %#x during unmap, want %#x", off, c, pattern_byte(off));
		}
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
		atomic_store_explicit(&started, 1, memory_order_relaxed);
	}
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	struct sigaction sa = {0};
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	/* before the library's handler: it chains to these for faults outside
	 * its regions */
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	int segv = 0, bus = 0;
	for (int round = 0; round < 50; round++) {
		struct fixture fx;
		fixture_open(&fx, 64 * ps, 0, 16 * ps, PROT_READ);
		region = fx.p;
		rsize = fx.size;
		atomic_store(&started, 0);
		atomic_store(&faulted_sig, 0);
		pthread_t t;
		ASSERT_EQ(pthread_create(&t, NULL, toucher, NULL), 0);
		while (!atomic_load(&started))
			sched_yield();
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
		ASSERT_OK(uf_unmap(fx.r, 0));
		ASSERT_EQ(pthread_join(t, NULL), 0);
		int sig = atomic_load(&faulted_sig);
		ASSERT(sig == SIGSEGV || sig == SIGBUS);
		segv += sig == SIGSEGV;
		bus += sig == SIGBUS;
		ASSERT_OK(uf_store_close(fx.store));
		free(fx.buf);
	}
	printf("50 unmaps under a toucher: %d ended in SIGSEGV, %d in SIGBUS; %ld reads\n", segv, bus,
	       (long)reads);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* 8 threads doing random reads and writes over a region much larger than
 * its budget, each checking every read against its shadow copy. Thread t
 * owns the 8-byte words w with w % 8 == t, spread over every block, so
 * threads constantly share blocks while loads, evictions and write-backs
 * race. At the end the store must equal the merged shadow. */
#include <pthread.h>

#include "common.h"

#define NTHREADS 8
/* Fewer under a sanitizer: each access costs ten times more there, and
 * the interleavings, not the count, are what the test is about. */
#if defined(__SANITIZE_THREAD__)
#define THREAD_ITERS 1000 /* the handler-thread engine: > 15 min at 4000 */
#elif defined(__SANITIZE_ADDRESS__)
#define THREAD_ITERS 4000
#else
#define THREAD_ITERS 40000
#endif
static struct fixture fx;
static unsigned iters = THREAD_ITERS;
static uint64_t *shadow;
static size_t nwords;
static _Atomic int failed;

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	shadow_walk((volatile uint64_t *)fx.p, shadow, nwords, NTHREADS, t, 0x1234567 + t * 977ull, iters, &failed);
	return NULL;
}

static void run(size_t bs, size_t budget)
{
	size_t size = 8 << 20;
	fixture_open(&fx, size, bs, budget, PROT_READ | PROT_WRITE);
	nwords = size / 8;
	shadow = malloc(size);
	ASSERT(shadow);
	/* From the pattern, not by reading the store: a handler thread writes
	 * the store back later, ordered after this only through the kernel
	 * (the worker's fault), which ThreadSanitizer cannot see. */
	unsigned char *sb = (unsigned char *)shadow;
	for (size_t i = 0; i < size; i++)
		sb[i] = pattern_byte(i);
	pthread_t th[NTHREADS];
	for (uintptr_t t = 0; t < NTHREADS; t++)
		ASSERT_EQ(pthread_create(&th[t], NULL, worker, (void *)t), 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	ASSERT_EQ(failed, 0);
	struct uf_stats st = stats_of(fx.r);
	ASSERT_LE(st.resident_peak, st.max_resident);
	ASSERT_GT(st.evictions, 0);
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(memcmp(fx.buf, shadow, size), 0);
	fixture_close(&fx, 0);
	free(shadow);
}

int main(void)
{
	test_init(120);
	/* qemu-user: about 50 s at the full count, too near the limit on a
	 * loaded CI machine. */
	if (under_qemu())
		iters /= 2;
	size_t ps = page_size();
	run(0, 64 * ps);      /* 4 KiB blocks, 256 KiB budget */
	run(4 * ps, 64 * ps); /* 16 KiB blocks */
	run(0, 8 * ps);       /* budget barely above the thread count */
	printf("ok\n");
	return 0;
}

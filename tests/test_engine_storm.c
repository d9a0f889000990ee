/* SPDX-License-Identifier: MIT */
/* A 10 kHz signal storm while faulting: two threads read and write random
 * bytes of a region four times its budget while a third sends them SIGUSR1
 * every 100 us (SA_RESTART off, so system calls inside fault handling see
 * EINTR). Every byte reads what the model says, the signals arrive, nothing
 * hangs, and a final sync puts the writes in the store. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define NT 2
static struct fixture fx;
static size_t size;
static _Atomic int stop;
static _Atomic long sigs, ops;
static unsigned char *shadow;

static void on_usr1(int sig) { (void)sig, atomic_fetch_add_explicit(&sigs, 1, memory_order_relaxed); }

static void *worker(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg, seed = 12345 + t;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* each thread owns the bytes at off % NT == t */
		size_t off = (xorshift64(&seed) % (size / NT)) * NT + t;
		if (xorshift64(&seed) & 1) {
			unsigned char v = (unsigned char)xorshift64(&seed);
			__atomic_store_n(&fx.p[off], v, __ATOMIC_RELAXED);
			shadow[off] = v;
		} else {
			unsigned char c = __atomic_load_n(&fx.p[off], __ATOMIC_RELAXED);
			if (c != shadow[off])
				FAIL("byte %zu reads %#x, want %#x", off, c, shadow[off]);
		}
		atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
	}
	return NULL;
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	size = 256 * ps;
	struct sigaction sa = {0};
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0); /* no SA_RESTART */
	fixture_open(&fx, size, 0, 64 * ps, PROT_READ | PROT_WRITE);
	shadow = malloc(size);
	ASSERT(shadow);
	for (size_t i = 0; i < size; i++)
		shadow[i] = pattern_byte(i);
	pthread_t th[NT];
	for (int i = 0; i < NT; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i), 0);
	struct timespec t0, now, gap = {0, 100000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long sent = 0;
	do {
		for (int i = 0; i < NT; i++)
			pthread_kill(th[i], SIGUSR1);
		sent += NT;
		nanosleep(&gap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 2000000000L);
	atomic_store(&stop, 1);
	for (int i = 0; i < NT; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	for (size_t i = 0; i < size; i++)
		if (fx.buf[i] != shadow[i])
			FAIL("store byte %zu = %#x after sync, want %#x", i, fx.buf[i], shadow[i]);
	struct uf_stats st = stats_of(fx.r);
	printf("%ld signals sent, %ld handled, %ld operations, %llu faults\n", sent, (long)sigs,
	       (long)ops, (unsigned long long)st.faults);
	ASSERT_GT(sigs, 1000);
	ASSERT_GT(st.faults, 100);
	fixture_close(&fx, 0);
	free(shadow);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* A store callback that touches the region it serves never hangs: reading
 * the very block it is loading (with uf_try_read) fails with -EFAULT at
 * once instead of waiting for itself, on the in-thread engines, both when
 * the callback runs in the faulting thread (a signal-safe store) and on a
 * store thread (UF_STORE_NOT_SIGSAFE, the faulting thread waiting for it).
 * The store then fails the load, and the access gets SIGBUS as for any
 * failed load. The same with four threads whose loads read each other's
 * blocks in a ring, each waiting for the next: no thread waits for ever,
 * every access either reads the right bytes or gets SIGBUS from a load
 * whose nested read failed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

static sigjmp_buf jb;
static unsigned char *g_buf;
static volatile unsigned char *g_p;
static volatile int nested_rc = 1;

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (off == 0) {
		unsigned char v;
		nested_rc = uf_try_read(&v, (const void *)(g_p + 1), 1);
		if (nested_rc)
			return -EIO;
	}
	memcpy(dst, g_buf + off, len);
	return 0;
}

/* The ring: the load of block k (k < NT) reads block k + 1 (mod NT)
 * first, after a pause that lets the other threads' loads start. */
enum { NT = 4, ROUNDS = 20 };
static volatile bool g_ring;
static _Atomic int g_ring_rc[NT];
static size_t g_ps;
static __thread sigjmp_buf *t_jb;

static int rd_ring(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	size_t k = off / g_ps;
	if (g_ring && k < NT) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
		unsigned char v;
		size_t o = ((k + 1) % NT) * g_ps + 1;
		int rc = uf_try_read(&v, (const void *)(g_p + o), 1);
		atomic_store(&g_ring_rc[k], rc);
		if (rc)
			return -EIO;
		if (v != g_buf[o])
			return -EBADMSG;
	}
	memcpy(dst, g_buf + off, len);
	return 0;
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	siglongjmp(t_jb ? *t_jb : jb, 1);
}

static pthread_barrier_t g_bar;
static int g_bus[NT];

static void *ring_thread(void *arg)
{
	size_t k = (size_t)(uintptr_t)arg;
	sigjmp_buf mine;
	t_jb = &mine;
	pthread_barrier_wait(&g_bar);
	if (sigsetjmp(mine, 1)) {
		g_bus[k] = 1;
	} else {
		unsigned char v = g_p[k * g_ps];
		g_bus[k] = v == g_buf[k * g_ps] ? 0 : 2;
	}
	t_jb = NULL;
	return NULL;
}

/* The ring, ROUNDS times on fresh regions; returns how many nested reads
 * failed (at least some: the loads overlap). */
static unsigned ring(unsigned flags)
{
	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd_ring, .flags = flags};
	unsigned failed = 0;
	for (int round = 0; round < ROUNDS; round++) {
		uf_store *s;
		uf_region *r = map_user_store_prot(&ops, 8 * g_ps, UF_MAP_NO_READAHEAD, PROT_READ, &s);
		g_p = uf_region_addr(r);
		for (int k = 0; k < NT; k++)
			atomic_store(&g_ring_rc[k], 1);
		g_ring = true;
		pthread_t th[NT];
		ASSERT_OK(-pthread_barrier_init(&g_bar, NULL, NT));
		for (int k = 0; k < NT; k++)
			ASSERT_OK(-pthread_create(&th[k], NULL, ring_thread, (void *)(uintptr_t)k));
		for (int k = 0; k < NT; k++)
			ASSERT_OK(-pthread_join(th[k], NULL));
		pthread_barrier_destroy(&g_bar);
		g_ring = false;
		for (int k = 0; k < NT; k++) {
			int rc = atomic_load(&g_ring_rc[k]);
			/* SIGBUS only from a load whose nested read failed (a
			 * load may also run again for a thread woken early, and
			 * then succeed: the last result is what counts) */
			ASSERT(g_bus[k] == 0 || g_bus[k] == 1);
			ASSERT(rc == 0 || rc == -EFAULT || rc == 1);
			failed += rc == -EFAULT;
			/* every block reads right once the ring is off */
			ASSERT_EQ(g_p[k * g_ps], g_buf[k * g_ps]);
		}
		ASSERT_OK(uf_unmap(r, 0));
		ASSERT_OK(uf_store_close(s));
	}
	return failed;
}

int main(void)
{
	test_init(30);
#if defined(__SANITIZE_THREAD__)
	SKIP("under TSan a fault inside the fault handler (the store's nested uf_try_read) kills the process: TSan runs signal handlers with every signal blocked; tested natively and under ASan");
#endif
	static size_t ps, size; /* static: live across the siglongjmp */
	ps = page_size(), size = 8 * ps;
	const char *eng = getenv("USERFAULT_ENGINE");
	if (eng && !strcmp(eng, "uffd-thread"))
		SKIP("store calls run in handler threads there: a store must not touch its own region (documented), no detection");
	g_buf = malloc(size);
	ASSERT(g_buf);
	for (size_t i = 0; i < size; i++)
		g_buf[i] = pattern_byte(i);
	catch_signal(SIGBUS, on_bus);
	for (int pass = 0; pass < 2; pass++) {
		const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd,
						 .flags = pass ? UF_STORE_NOT_SIGSAFE : 0};
		uf_store *s;
		uf_region *r = map_user_store_prot(&ops, size, UF_MAP_NO_READAHEAD, PROT_READ, &s);
		g_p = uf_region_addr(r);
		if (uf_region_engine(r) == UF_ENGINE_UFFD_THREAD)
			SKIP("the handler-thread engine was chosen: see above");
		nested_rc = 1;
		volatile int bus = 0;
		if (sigsetjmp(jb, 1))
			bus = 1;
		else
			(void)g_p[0];
		ASSERT_EQ(bus, 1);
		ASSERT_EQ(nested_rc, -EFAULT);
		/* other blocks are fine */
		ASSERT_EQ(g_p[3 * ps], g_buf[3 * ps]);
		ASSERT_OK(uf_unmap(r, 0));
		ASSERT_OK(uf_store_close(s));
	}
	g_ps = ps;
	for (int pass = 0; pass < 2; pass++) {
		unsigned failed = ring(pass ? UF_STORE_NOT_SIGSAFE : 0);
		printf("ring of %d threads, %s store: %u of %d nested reads failed, none waited for ever\n", NT,
		       pass ? "store-thread" : "signal-safe", failed, NT * ROUNDS);
		ASSERT(failed > 0);
	}
	free(g_buf);
	printf("ok\n");
	return 0;
}

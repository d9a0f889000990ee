/* SPDX-License-Identifier: MIT */
/* A signal sent to a thread while a slow store call serves its fault, as
 * uf_map(3) says, on every engine. Under the in-thread engines (uffd,
 * signal) the call runs in that thread's fault handler with asynchronous
 * signals blocked: the signal's handler runs only after the load is done.
 * Under uffd-thread a handler thread makes the call while the faulting
 * thread sleeps in the kernel: the handler runs at once, its access to the
 * block being loaded waits for that load, and the interrupted access then
 * completes. Either way both accesses read the store's bytes, the store is
 * read once, and nothing waits for ever. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

static unsigned char *g_buf;
static volatile unsigned char *g_p;
static size_t g_ps;
static _Atomic int g_reads, g_in_read, g_done_read;
static _Atomic int g_handler_saw_read_done = -1, g_handler_byte = -1;

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	atomic_fetch_add(&g_reads, 1);
	atomic_store(&g_in_read, 1);
	struct timespec ts = {0, 300 * 1000 * 1000};
	while (nanosleep(&ts, &ts)) /* the signal may not cut the load short */
		;
	memcpy(dst, g_buf + off, len);
	atomic_store(&g_done_read, 1);
	return 0;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&g_handler_saw_read_done, atomic_load(&g_done_read));
	atomic_store(&g_handler_byte, g_p[5]);
}

static void *toucher(void *arg)
{
	(void)arg;
	unsigned char v = g_p[3];
	return (void *)(uintptr_t)v;
}

int main(void)
{
	test_init(60);
#if defined(__SANITIZE_THREAD__)
	SKIP("TSan runs a signal's handler at the thread's next intercepted call, not when the signal arrives: the order this test checks is TSan's; tested natively and under ASan");
#endif
	g_ps = page_size();
	size_t size = 4 * g_ps;
	g_buf = malloc(size);
	ASSERT(g_buf);
	for (size_t i = 0; i < size; i++)
		g_buf[i] = pattern_byte(i);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

	const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd};
	uf_store *s;
	uf_region *r = map_user_store_prot(&ops, size, UF_MAP_NO_READAHEAD, PROT_READ, &s);
	g_p = uf_region_addr(r);
	int eng = uf_region_engine(r);

	pthread_t th;
	ASSERT_OK(-pthread_create(&th, NULL, toucher, NULL));
	while (!atomic_load(&g_in_read))
		sched_yield();
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	ASSERT_OK(-pthread_kill(th, SIGUSR1));
	void *v;
	ASSERT_OK(-pthread_join(th, &v));

	ASSERT_EQ((unsigned char)(uintptr_t)v, g_buf[3]);
	ASSERT_EQ(atomic_load(&g_handler_byte), g_buf[5]);
	ASSERT_EQ(atomic_load(&g_reads), 1);
	if (eng == UF_ENGINE_UFFD_THREAD) {
		ASSERT_EQ(atomic_load(&g_handler_saw_read_done), 0);
		printf("%s: the handler ran during the load and its access waited for it\n",
		       uf_engine_name(eng));
	} else {
		ASSERT_EQ(atomic_load(&g_handler_saw_read_done), 1);
		printf("%s: the handler ran after the load\n", uf_engine_name(eng));
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(g_buf);
	printf("ok\n");
	return 0;
}

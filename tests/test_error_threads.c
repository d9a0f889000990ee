/* SPDX-License-Identifier: MIT */
/* Several threads fault on one block whose loads keep failing: every access
 * gets SIGBUS, in its own thread, at its own address, and nothing hangs or
 * spins. Under uffd-thread this exercises the poison records when a second
 * fault on the page was queued before the first one's poison landed. Runs
 * every engine this process can use (it loops itself). */
#include <pthread.h>
#include <setjmp.h>

#include "common.h"

#define NTHREADS 4
#define TRIES 50

static __thread sigjmp_buf jb;
static __thread void *volatile bus_addr;
static size_t ps;
static unsigned char *buf;
static volatile unsigned char *p;
static _Atomic int hits, misses, returned;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	bus_addr = si->si_addr;
	siglongjmp(jb, 1);
}

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (off == 3 * ps) {
		usleep(1000); /* a slow failure, so faults pile up behind it */
		return -EIO;
	}
	memcpy(dst, buf + off, len);
	return 0;
}

static void *worker(void *arg)
{
	(void)arg;
	for (int k = 0; k < TRIES; k++) {
		if (sigsetjmp(jb, 1) == 0) {
			(void)p[3 * ps + (size_t)k];
			returned++;
		} else if (bus_addr == (void *)(p + 3 * ps + k)) {
			hits++;
		} else {
			misses++;
		}
	}
	return NULL;
}

static void check(int engine)
{
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, 16 * ps, &s));
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = engine;
	uf_region *r;
	int e = uf_map(s, 0, 16 * ps, PROT_READ | PROT_WRITE, &o, &r);
	if (e) {
		printf("%-12s not available here (%s)\n", uf_engine_name(engine), uf_strerror(e));
		ASSERT_OK(uf_store_close(s));
		return;
	}
	p = uf_region_addr(r);
	hits = misses = returned = 0;
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, worker, NULL), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(returned, 0);
	ASSERT_EQ(misses, 0);
	ASSERT_EQ(hits, NTHREADS * TRIES);
	/* the neighbours are fine */
	ASSERT_EQ(p[2 * ps + 1], buf[2 * ps + 1]);
	ASSERT_EQ(p[4 * ps + 1], buf[4 * ps + 1]);
	ASSERT_EQ(stats_of(r).resident, 2);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("%-12s %d failing accesses from %d threads: SIGBUS each\n", uf_engine_name(engine),
	       NTHREADS * TRIES, NTHREADS);
}

int main(void)
{
	test_init(60);
	ps = page_size();
	buf = malloc(16 * ps);
	ASSERT(buf);
	for (size_t i = 0; i < 16 * ps; i++)
		buf[i] = pattern_byte(i);
	struct sigaction sa = {0};
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0); /* before the library's */
	check(UF_ENGINE_UFFD);
	check(UF_ENGINE_UFFD_THREAD);
	check(UF_ENGINE_SIGNAL);
	free(buf);
	printf("ok\n");
	return 0;
}

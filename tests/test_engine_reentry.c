/* SPDX-License-Identifier: MIT */
/* A signal handler that touches a region never deadlocks the thread it
 * interrupted, wherever that thread is inside the library: a 10 kHz timer
 * aimed at the main thread reads the region (a plain load and uf_try_read)
 * while the main thread faults, writes, syncs, discards, evicts and
 * prefetches the same region under a small budget. The bytes the handler
 * sees are always the store's (every write stores the byte already there). */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

#include "common.h"

static volatile unsigned char *g_p;
static unsigned char *g_buf;
static size_t g_size;
static _Atomic uint64_t g_ticks, g_bad;
static uint64_t g_seed = 88172645463325252ull;

static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	/* A region access in a handler needs SIGSEGV/SIGBUS deliverable
	 * (header); ThreadSanitizer runs handlers with every signal blocked. */
	sigset_t fault_sigs;
	sigemptyset(&fault_sigs);
	sigaddset(&fault_sigs, SIGSEGV);
	sigaddset(&fault_sigs, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &fault_sigs, NULL);
	uint64_t t = atomic_fetch_add(&g_ticks, 1) + 1;
	uint64_t x = t * 0x9E3779B97F4A7C15ull;
	size_t a = (size_t)(x % g_size), b = (size_t)((x >> 20) % g_size);
	if (g_p[a] != pattern_byte(a))
		atomic_fetch_add(&g_bad, 1);
	unsigned char v;
	if (uf_try_read(&v, (const void *)(g_p + b), 1) == 0 && v != pattern_byte(b))
		atomic_fetch_add(&g_bad, 1);
	errno = saved;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	g_size = 256 * ps;
	uf_store *s;
	g_buf = pattern_store(g_size, &s);
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 16 * ps;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, g_size, PROT_READ | PROT_WRITE, &o, &r));
	g_p = uf_region_addr(r);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tick;
	sa.sa_flags = SA_RESTART;
	ASSERT_EQ(sigaction(SIGRTMIN, &sa, NULL), 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	timer_t tm;
	ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &sev, &tm), 0);
	struct itimerspec its = {{0, 100000}, {0, 100000}}; /* 10 kHz */
	ASSERT_EQ(timer_settime(tm, 0, &its, NULL), 0);

	double secs = getenv("REENTRY_SECONDS") ? atof(getenv("REENTRY_SECONDS")) : 1.5;
	double end = now() + secs;
	uint64_t ops[6] = {0};
	while (now() < end) {
		uint64_t x = xorshift64(&g_seed);
		size_t off = (size_t)(x % g_size);
		switch ((x >> 40) % 16) {
		case 0:
			ASSERT_OK(uf_sync(r, NULL, 0));
			ops[0]++;
			break;
		case 1:
			ASSERT_OK(uf_discard(r, (void *)(g_p + (off & ~(ps - 1))), 8 * ps > g_size - (off & ~(ps - 1)) ? ps : 8 * ps));
			ops[1]++;
			break;
		case 2:
			ASSERT_OK(uf_evict(r, (void *)(g_p + (off & ~(ps - 1))), ps));
			ops[2]++;
			break;
		case 3:
			ASSERT_GE(uf_prefetch(r, (void *)(g_p + (off & ~(ps - 1))), ps), 0);
			ops[3]++;
			break;
		case 4: case 5: case 6:
			g_p[off] = pattern_byte(off); /* a write that changes nothing */
			ops[4]++;
			break;
		default:
			ASSERT_EQ(g_p[off], pattern_byte(off));
			ops[5]++;
		}
	}
	its = (struct itimerspec){{0, 0}, {0, 0}};
	ASSERT_EQ(timer_settime(tm, 0, &its, NULL), 0);
	timer_delete(tm);
	ASSERT_EQ(atomic_load(&g_bad), 0);
	ASSERT_GT(atomic_load(&g_ticks), 100);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	for (size_t i = 0; i < g_size; i++)
		ASSERT_EQ(g_buf[i], pattern_byte(i));
	printf("ok: %llu ticks; sync %llu discard %llu evict %llu prefetch %llu write %llu read %llu\n",
	       (unsigned long long)g_ticks, (unsigned long long)ops[0], (unsigned long long)ops[1],
	       (unsigned long long)ops[2], (unsigned long long)ops[3], (unsigned long long)ops[4],
	       (unsigned long long)ops[5]);
	free(g_buf);
	return 0;
}

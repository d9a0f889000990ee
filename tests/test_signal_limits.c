/* SPDX-License-Identifier: MIT */
/* The signal engine's limits, which the other engines do not have:
 *  - its RAM budget is capped so that the VMAs it may split off stay under
 *    the process's map limit (USERFAULT_MAX_MAP_COUNT stands in for
 *    vm.max_map_count here, so nothing global changes), and the process
 *    never exceeds that limit however it accesses the region;
 *  - uf_map refuses with -ENOMEM when not even a small budget fits;
 *  - when mprotect fails anyway (the program used up the real limit after
 *    uf_map), the faulting access gets SIGBUS at its address: no fault loop;
 *  - evicting blocks gives their RAM back (holes punched in the memfd).
 * Cases that need a different environment re-run this program. */
#include <setjmp.h>
#include <sys/wait.h>

#include "common.h"

static long count_vmas(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	long n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	ASSERT(f);
	char line[256];
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = atol(line + fl + 1);
	fclose(f);
	return v;
}

static uf_region *map_signal(struct fixture *fx, size_t size, size_t budget, int *err)
{
	memset(fx, 0, sizeof(*fx));
	fx->size = size;
	fx->buf = malloc(size);
	ASSERT(fx->buf);
	for (size_t i = 0; i < size; i += 8)
		*(uint64_t *)(fx->buf + i) = i * 0x9E3779B97F4A7C15ull;
	ASSERT_OK(uf_store_mem(fx->buf, size, 0, &fx->store));
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = UF_ENGINE_SIGNAL;
	o.max_resident = budget;
	*err = uf_map(fx->store, 0, size, PROT_READ | PROT_WRITE, &o, &fx->r);
	fx->p = *err ? NULL : uf_region_addr(fx->r);
	return *err ? NULL : fx->r;
}

/* Child: the limit is USERFAULT_MAX_MAP_COUNT = (VMAs now) + slack. */
static int child_budget(long limit)
{
	size_t ps = page_size(), n = 16384, size = n * ps;
	struct fixture fx;
	int e;
	ASSERT(map_signal(&fx, size, size, &e));
	struct uf_stats st = stats_of(fx.r);
	printf("limit %ld: budget lowered from %zu to %llu blocks\n", limit, n,
	       (unsigned long long)st.max_resident);
	ASSERT_LT(st.max_resident, n);
	ASSERT_GE(st.max_resident, 16);
	ASSERT_LE(2 * st.max_resident, (uint64_t)limit);
	/* scattered reads and writes split the region as much as possible */
	uint64_t seed = 42;
	volatile uint64_t *w = (volatile uint64_t *)fx.p;
	long peak = 0;
	for (int i = 0; i < 60000; i++) {
		size_t pg = xorshift64(&seed) % n, k = pg * (ps / 8) + (i % (ps / 8));
		uint64_t want = (uint64_t)k * 8 * 0x9E3779B97F4A7C15ull; /* as map_signal fills */
		if (i & 1)
			w[k] = want; /* the same value: a write fault, no change */
		else if (w[k] != want)
			FAIL("word %zu wrong", k);
		if (i % 4096 == 0) {
			long v = count_vmas();
			peak = v > peak ? v : peak;
		}
	}
	/* every resident block is split off: the worst case */
	long v = count_vmas();
	peak = v > peak ? v : peak;
	printf("VMAs: peak %ld, limit %ld\n", peak, limit);
	ASSERT_LT(peak, limit);
	ASSERT_GT(stats_of(fx.r).evictions, 0);
	fixture_close(&fx, 0);
	return 0;
}

/* Child: a limit too small for even a tiny budget. */
static int child_refuse(void)
{
	struct fixture fx;
	int e;
	ASSERT(!map_signal(&fx, 64 * page_size(), 0, &e));
	ASSERT_EQ(e, -ENOMEM);
	printf("refused: %s\n", uf_strerror(e));
	free(fx.buf);
	ASSERT_OK(uf_store_close(fx.store));
	return 0;
}

static sigjmp_buf jb;
static void *volatile bus_addr;
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	bus_addr = si->si_addr;
	siglongjmp(jb, 1);
}

/* The real vm.max_map_count used up after uf_map: mprotect fails with
 * ENOMEM inside the fault; the access gets SIGBUS; freeing VMAs heals it. */
static void real_limit(void)
{
	size_t ps = page_size();
	struct fixture fx;
	int e;
	ASSERT(map_signal(&fx, 64 * ps, 16 * ps, &e));
	volatile unsigned char *p = fx.p;
	ASSERT_EQ(p[ps], fx.buf[ps]); /* works */

	/* Fill the VMA table: alternate protections over a reserved area. */
	size_t fill = 80000;
	unsigned char *a = mmap(NULL, fill * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				-1, 0);
	ASSERT(a != MAP_FAILED);
	size_t i;
	for (i = 1; i < fill; i += 2)
		if (mprotect(a + i * ps, ps, PROT_NONE))
			break;
	if (i >= fill)
		SKIP("could not reach vm.max_map_count with %zu pages", fill);
	ASSERT_EQ(errno, ENOMEM);

	/* a fault that needs a split now fails: SIGBUS, not a loop */
	bus_addr = NULL;
	if (sigsetjmp(jb, 1) == 0) {
		(void)p[40 * ps + 3];
		FAIL("access at the VMA limit returned");
	}
	ASSERT_EQ((uintptr_t)bus_addr, (uintptr_t)(p + 40 * ps + 3));

	ASSERT_EQ(munmap(a, fill * ps), 0);
	ASSERT_EQ(p[40 * ps + 3], fx.buf[40 * ps + 3]);
	fixture_close(&fx, 0);
	printf("mprotect ENOMEM at the real limit -> SIGBUS at the address\n");
}

/* Evicted blocks give their RAM back. */
static void release_frees_ram(void)
{
	size_t ps = page_size(), n = 2048;
	struct fixture fx;
	int e;
	ASSERT(map_signal(&fx, n * ps, n * ps, &e));
	long before = status_kb("RssShmem");
	if (before < 0)
		SKIP("no RssShmem in /proc/self/status");
	volatile unsigned char *p = fx.p;
	for (size_t i = 0; i < n * ps; i += ps)
		(void)p[i];
	long loaded = status_kb("RssShmem");
	ASSERT_GE(loaded - before, (long)(n * ps / 1024 / 2));
	ASSERT_OK(uf_evict(fx.r, NULL, 0));
	long after = status_kb("RssShmem");
	printf("RssShmem: %ld kB, loaded %ld kB, evicted %ld kB\n", before, loaded, after);
	ASSERT_LT(after - before, (long)(n * ps / 1024 / 8));
	ASSERT_EQ(stats_of(fx.r).resident, 0);
	fixture_close(&fx, 0);
}

/* Child: a malformed limit ("2k") is ignored: the map works. */
static int child_malformed(void)
{
	struct fixture fx;
	int e;
	size_t size = 64 * page_size();
	if (!map_signal(&fx, size, size, &e))
		FAIL("uf_map under a malformed USERFAULT_MAX_MAP_COUNT: %s", uf_strerror(e));
	ASSERT_EQ(stats_of(fx.r).max_resident, 64); /* not lowered */
	ASSERT_EQ(fx.p[5 * page_size() + 8], fx.buf[5 * page_size() + 8]);
	fixture_close(&fx, 0);
	return 0;
}

static int run_child_env(const char *mode, const char *v)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		setenv("USERFAULT_MAX_MAP_COUNT", v, 1);
		execl("/proc/self/exe", "test_signal_limits", mode, v, (char *)NULL);
		_exit(99);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_child(const char *mode, long limit)
{
	char v[32];
	snprintf(v, sizeof(v), "%ld", limit);
	return run_child_env(mode, v);
}

int main(int argc, char **argv)
{
	test_init(120);
	if (under_qemu())
		SKIP("re-executes itself through /proc/self/exe, which is qemu under qemu-user; tested natively");
	if (argc == 3 && !strcmp(argv[1], "budget"))
		return child_budget(atol(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "refuse"))
		return child_refuse();
	if (argc == 3 && !strcmp(argv[1], "malformed"))
		return child_malformed();
	struct sigaction sa = {0};
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0); /* before the library's (real_limit) */
	long now = count_vmas();
	/* the child has about as many VMAs as we do now */
	ASSERT_EQ(run_child("budget", now + 1500), 0);
	ASSERT_EQ(run_child("refuse", now + 40), 0);
	ASSERT_EQ(run_child_env("malformed", "2k"), 0);
	ASSERT_EQ(run_child_env("malformed", "1e4"), 0);
	release_frees_ram();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* Reported as a skip, not a pass: the last case goes untested here. */
	SKIP("real_limit fills the process's VMA table, which the sanitizer runtime needs "
	     "for its own mappings; the cases before it passed, and it runs natively");
#endif
	real_limit();
	printf("ok\n");
	return 0;
}

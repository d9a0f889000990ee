/* SPDX-License-Identifier: MIT */
/*
 * test_safe_access.c - uf_try_read / uf_try_write / uf_probe return -EFAULT
 * instead of crashing, copy exactly up to the first bad byte, and work from
 * threads, signal handlers and raw-area handlers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static size_t ps;

static uint8_t *map_pages(size_t n)
{
	void *p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(p != MAP_FAILED);
	return p;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(seed + i);
}

/* Valid memory: every size class of the copy routine, odd alignments. */
static void test_copies_valid_memory(void)
{
	static const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 100, 255, 256, 511,
				       512, 513, 1000, 4095, 4096, 4097, 65536, 65536 + 3};
	uint8_t *src = map_pages(20), *dst = map_pages(20);
	fill(src, 20 * ps, 1);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		for (size_t so = 0; so < 3; so++)
			for (size_t d = 0; d < 3; d++) {
				size_t n = sizes[i];
				memset(dst, 0xEE, 20 * ps);
				ASSERT_EQ(uf_try_read(dst + d, src + so, n), 0);
				ASSERT(memcmp(dst + d, src + so, n) == 0);
				ASSERT_EQ(dst[d + n], 0xEE);
				ASSERT_OK(uf_try_write(dst + so, src + d, n));
				ASSERT(memcmp(dst + so, src + d, n) == 0);
			}
	munmap(src, 20 * ps);
	munmap(dst, 20 * ps);
}

/* The source runs into a PROT_NONE (then an unmapped) page at offset k of the
 * copy: exactly k bytes land in dst and nothing after them is written. */
static void test_read_stops_at_first_bad_byte(void)
{
	static const size_t sizes[] = {1, 5, 8, 13, 64, 100, 511, 512, 3000, 3 * 4096 + 17};
	uint8_t *src = map_pages(8), *dst = map_pages(8);
	fill(src, 8 * ps, 7);
	uint8_t *bad = src + 4 * ps;
	for (int kind = 0; kind < 2; kind++) {
		if (kind == 0)
			ASSERT_EQ(mprotect(bad, ps, PROT_NONE), 0);
		else
			ASSERT_EQ(munmap(bad, ps), 0);
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			size_t n = sizes[i];
			for (size_t k = 0; k < n && k < 3 * ps; k += (n > 64 ? n / 7 + 1 : 1)) {
				/* the copy starts k bytes before the bad page */
				const uint8_t *s = bad - k;
				memset(dst, 0xEE, n + 64);
				int r = uf_try_read(dst, s, n);
				ASSERT_EQ(r, -EFAULT);
				if (memcmp(dst, s, k) != 0)
					FAIL("size %zu, bad byte at %zu: prefix not copied", n, k);
				for (size_t j = k; j < n + 64; j++)
					if (dst[j] != 0xEE)
						FAIL("size %zu, bad byte at %zu: dst[%zu] written", n, k, j);
			}
		}
	}
	munmap(src, 8 * ps);
	munmap(dst, 8 * ps);
}

/* The destination runs into a read-only page: the bytes before it are
 * written, the read-only page is untouched. */
static void test_write_stops_at_read_only_page(void)
{
	static const size_t sizes[] = {3, 8, 70, 600, 9000};
	uint8_t *src = map_pages(4), *dst = map_pages(6);
	fill(src, 4 * ps, 3);
	memset(dst, 0x11, 6 * ps);
	uint8_t *ro = dst + 3 * ps;
	ASSERT_EQ(mprotect(ro, 3 * ps, PROT_READ), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		for (size_t k = 0; k < n && k < 3 * ps; k += n / 5 + 1) {
			uint8_t *d = ro - k;
			memset(d, 0x22, k);
			ASSERT_EQ(uf_try_write(d, src, n), -EFAULT);
			ASSERT(memcmp(d, src, k) == 0);
			for (size_t j = 0; j < 3 * ps; j++)
				ASSERT_EQ(ro[j], 0x11);
		}
	}
	munmap(src, 4 * ps);
	munmap(dst, 6 * ps);
}

static void test_bad_addresses(void)
{
	uint8_t buf[64];
	ASSERT_EQ(uf_try_read(buf, NULL, 1), -EFAULT);
	ASSERT_EQ(uf_try_read(buf, (void *)16, 8), -EFAULT);
	ASSERT_EQ(uf_try_write(NULL, buf, 8), -EFAULT);
	/* Kernel half and (on x86) a non-canonical address: a #GP with si_addr 0. */
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)0x8000000000000000ull, 16), -EFAULT);
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)0xffffffffff600000ull - 4096, 16), -EFAULT);
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)0xffff800000001000ull, 600), -EFAULT);
	/* Zero bytes never fault, whatever the pointers. */
	ASSERT_EQ(uf_try_read(NULL, NULL, 0), 0);
	/* A range that wraps the address space is not memory: -EFAULT and
	 * nothing written, small (the first access faults) or large (checked). */
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)-8, 16), -EFAULT);
	memset(buf, 0x33, sizeof(buf));
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)-40, 64), -EFAULT);
	for (size_t i = 0; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0x33);
	ASSERT_EQ(uf_try_write((void *)(uintptr_t)-8, buf, 16), -EFAULT);
	ASSERT_EQ(uf_try_read(buf, (void *)(uintptr_t)-4096, 8192), -EFAULT);
	ASSERT_EQ(uf_try_read(buf, buf, SIZE_MAX), -EFAULT);
	for (size_t i = 0; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0x33);
}

/* A file mapping past end of file raises SIGBUS, not SIGSEGV. */
static void test_sigbus_past_eof(void)
{
	char path[] = "/tmp/uf_test_safe_access_XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0);
	unlink(path);
	ASSERT_EQ(ftruncate(fd, (off_t)ps), 0);
	uint8_t *m = mmap(NULL, 2 * ps, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT(m != MAP_FAILED);
	uint8_t buf[256];
	ASSERT_EQ(uf_try_read(buf, m + ps - 100, 200), -EFAULT);
	ASSERT_EQ(uf_probe(m, ps, UF_PROBE_READ), 0);
	ASSERT_EQ(uf_probe(m, ps + 1, UF_PROBE_READ), -EFAULT);
	munmap(m, 2 * ps);
	close(fd);
}

static void test_probe(void)
{
	uint8_t *p = map_pages(6);
	memset(p, 0x5A, 6 * ps);
	ASSERT_EQ(mprotect(p + 2 * ps, ps, PROT_READ), 0);
	ASSERT_EQ(mprotect(p + 3 * ps, ps, PROT_NONE), 0);
	ASSERT_EQ(munmap(p + 5 * ps, ps), 0);

	ASSERT_EQ(uf_probe(p, 2 * ps, UF_PROBE_READ | UF_PROBE_WRITE), 0);
	ASSERT_EQ(uf_probe(p + 1, 3 * ps - 1, UF_PROBE_READ), 0);     /* ends at the PROT_NONE page */
	ASSERT_EQ(uf_probe(p + 1, 3 * ps, UF_PROBE_READ), -EFAULT);   /* its first byte */
	ASSERT_EQ(uf_probe(p + 2 * ps, ps, UF_PROBE_READ), 0);
	ASSERT_EQ(uf_probe(p + 2 * ps, 1, UF_PROBE_WRITE), -EFAULT);  /* read-only */
	ASSERT_EQ(uf_probe(p + ps, ps + 1, UF_PROBE_WRITE), -EFAULT); /* spills onto it */
	ASSERT_EQ(uf_probe(p + 3 * ps + 77, 1, UF_PROBE_READ), -EFAULT);
	ASSERT_EQ(uf_probe(p + 4 * ps, ps, UF_PROBE_WRITE), 0);
	ASSERT_EQ(uf_probe(p + 4 * ps, ps + 1, UF_PROBE_READ), -EFAULT); /* unmapped */
	ASSERT_EQ(uf_probe(NULL, 1, UF_PROBE_READ), -EFAULT);
	/* The write probe changed nothing. */
	for (size_t i = 0; i < 2 * ps; i++)
		ASSERT_EQ(p[i], 0x5A);
	/* Arguments. */
	ASSERT_EQ(uf_probe(p, 0, UF_PROBE_READ), 0);
	ASSERT_EQ(uf_probe(p, 1, 0), -EINVAL);
	ASSERT_EQ(uf_probe(p, 1, 4), -EINVAL);
	ASSERT_EQ(uf_probe((void *)(uintptr_t)-16, 32, UF_PROBE_READ), -EFAULT); /* wraps */
	munmap(p, 5 * ps);
}

/* A write probe racing with another thread's atomic increments of the same
 * word loses none of them: it is an atomic no-op, not a load + store. */
static _Atomic uint32_t g_counter;
static _Atomic int g_stop;
static void *incrementer(void *arg)
{
	uint32_t n = 0;
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&g_counter, 1, memory_order_relaxed);
		n++;
	}
	*(uint32_t *)arg = n;
	return NULL;
}

static void test_write_probe_keeps_concurrent_writes(void)
{
	pthread_t th;
	uint32_t n = 0;
	ASSERT_EQ(pthread_create(&th, NULL, incrementer, &n), 0);
	for (int i = 0; i < 300000; i++)
		ASSERT_EQ(uf_probe((const uint8_t *)&g_counter + (i & 3), 1, UF_PROBE_WRITE), 0);
	atomic_store(&g_stop, 1);
	pthread_join(th, NULL);
	ASSERT_EQ(atomic_load(&g_counter), n);
}

/* Many threads fault in the copy routines at once. */
static uint8_t *g_good, *g_bad;
static void *fault_worker(void *arg)
{
	uint8_t buf[700];
	uintptr_t id = (uintptr_t)arg;
	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)((i * 7 + id) % 699);
		if (uf_try_read(buf, g_bad + (i % 64), n) != -EFAULT)
			return (void *)1;
		if (uf_try_read(buf, g_good + (i % 64), n) != 0 || memcmp(buf, g_good + (i % 64), n))
			return (void *)2;
	}
	return NULL;
}

static void test_threads_fault_concurrently(void)
{
	g_good = map_pages(1);
	fill(g_good, ps, 9);
	g_bad = map_pages(1);
	ASSERT_EQ(mprotect(g_bad, ps, PROT_NONE), 0);
	pthread_t th[4];
	for (uintptr_t i = 0; i < 4; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, fault_worker, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		ASSERT_EQ((uintptr_t)r, 0);
	}
	munmap(g_good, ps);
	munmap(g_bad, ps);
}

/* From an unrelated signal handler. */
static volatile int g_usr1_bad, g_usr1_good;
static void on_usr1(int sig)
{
	(void)sig;
	/* uf_try_read's precondition in a handler: SIGSEGV and SIGBUS not
	 * blocked. ThreadSanitizer installs the kernel handler with every
	 * signal blocked (sa_mask ~[]) and calls this one from it, so without
	 * this the fault on g_bad killed the process under make check-tsan
	 * (whatever USERFAULT_COPY_ISA said: the ISA re-runs just came first). */
	unblock_fault_signals();
	uint64_t v = 0;
	g_usr1_bad = uf_try_read(&v, g_bad, sizeof(v));
	g_usr1_good = uf_try_read(&v, g_good, sizeof(v)) == 0 && v == 0x0123456789abcdefull;
}

static void test_inside_signal_handler(void)
{
	g_good = map_pages(1);
	*(uint64_t *)g_good = 0x0123456789abcdefull;
	g_bad = map_pages(1);
	ASSERT_EQ(munmap(g_bad, ps), 0);
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	ASSERT_EQ(g_usr1_bad, -EFAULT);
	ASSERT_EQ(g_usr1_good, 1);
	signal(SIGUSR1, SIG_DFL);
	munmap(g_good, ps);
}

/* Inside a raw area: the area's handler runs first (here it opens the page
 * and the copy succeeds); a handler that declines makes the copy fail. The
 * handler itself uses uf_try_read on an unmapped page (a nested fault). */
static uint8_t *g_area_mem;
static _Atomic int g_area_calls, g_nested_ok;
static int area_open(const struct uf_fault *f, void *arg)
{
	atomic_fetch_add(&g_area_calls, 1);
	uint64_t v;
	if (uf_try_read(&v, arg, sizeof(v)) == -EFAULT)
		atomic_fetch_add(&g_nested_ok, 1);
	uintptr_t page = (uintptr_t)f->addr & ~(uintptr_t)(ps - 1);
	return mprotect((void *)page, ps, PROT_READ | PROT_WRITE) ? UF_PASS : UF_HANDLED;
}
static int area_decline(const struct uf_fault *f, void *arg)
{
	(void)f, (void)arg;
	atomic_fetch_add(&g_area_calls, 1);
	return UF_PASS;
}

static void test_inside_area(void)
{
	g_area_mem = map_pages(4);
	/* A hole that stays a hole: its neighbours remain mapped (not by us). */
	uint8_t *hole = map_pages(3), *unmapped = hole + ps;
	munmap(unmapped, ps);
	fill(g_area_mem, 4 * ps, 11);
	ASSERT_EQ(mprotect(g_area_mem, 4 * ps, PROT_NONE), 0);
	uf_area *a, *b;
	ASSERT_OK(uf_area_register(g_area_mem, 2 * ps, area_open, unmapped, &a));
	ASSERT_OK(uf_area_register(g_area_mem + 2 * ps, 2 * ps, area_decline, NULL, &b));

	uint8_t *buf = malloc(3 * ps);
	ASSERT(buf);
	ASSERT_EQ(uf_try_read(buf, g_area_mem + 100, 2 * ps - 100), 0);
	ASSERT_EQ(atomic_load(&g_area_calls), 2);
	ASSERT_EQ(atomic_load(&g_nested_ok), 2);
	ASSERT_EQ(mprotect(g_area_mem, 2 * ps, PROT_READ), 0);
	for (size_t i = 100; i < 2 * ps; i++)
		ASSERT_EQ(buf[i - 100], pattern_byte(11 + i));
	ASSERT_EQ(uf_try_read(buf, g_area_mem + 2 * ps + 5, 10), -EFAULT);
	/* Asked at least once (twice here: the 8-byte path, then the byte loop
	 * that finds the exact byte). */
	ASSERT_GE(atomic_load(&g_area_calls), 3);
	/* Spanning into the declining area: the prefix is copied. */
	ASSERT_EQ(uf_try_read(buf, g_area_mem + 2 * ps - 10, 20), -EFAULT);
	ASSERT(memcmp(buf, g_area_mem + 2 * ps - 10, 10) == 0);
	ASSERT_OK(uf_area_unregister(a));
	ASSERT_OK(uf_area_unregister(b));
	munmap(g_area_mem, 4 * ps);
	munmap(hole, 3 * ps);
	free(buf);
}

/* x86_64 picks the copy loop by CPU (SSE2, AVX2, AVX-512); run the copy
 * tests again with each narrower choice so every path is exercised. */
static void rerun_with_narrower_copy_loops(char **argv)
{
#if defined(__x86_64__)
	static const char *const isas[] = {"sse2", "avx2"};
	if (getenv("USERFAULT_COPY_ISA"))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(isas); i++) {
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			setenv("USERFAULT_COPY_ISA", isas[i], 1);
			execv(self_exe(), argv);
			_exit(127);
		}
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != SKIP_EXIT))
			FAIL("with USERFAULT_COPY_ISA=%s: status 0x%x", isas[i], st);
	}
#else
	(void)argv;
#endif
}

int main(int argc, char **argv)
{
	(void)argc;
	test_init(60);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	rerun_with_narrower_copy_loops(argv);
	test_copies_valid_memory();
	test_read_stops_at_first_bad_byte();
	test_write_stops_at_read_only_page();
	test_bad_addresses();
	test_sigbus_past_eof();
	test_probe();
	test_write_probe_keeps_concurrent_writes();
	test_threads_fault_concurrently();
	test_inside_signal_handler();
#ifdef __SANITIZE_THREAD__
	/* Reported as a skip, not a pass. */
	SKIP("under TSan a fault inside the fault handler (test_inside_area's nested uf_try_read) "
	     "kills the process: TSan runs signal handlers from its own wrapper with every signal "
	     "blocked, ignoring SA_NODEFER; the cases before it passed, and it runs natively");
#endif
	test_inside_area();
	printf("ok%s%s\n", getenv("USERFAULT_COPY_ISA") ? " with " : "",
	       getenv("USERFAULT_COPY_ISA") ? getenv("USERFAULT_COPY_ISA") : "");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * harness.h - tiny test harness: assertions that print both values, a
 * timeout on every test, and the engine under test.
 *
 * A test program exits 0 (pass), 1 (fail) or 77 (skip, with the reason on
 * stderr). tests/run.sh runs each one under timeout(1) as well.
 */
#ifndef UF_TEST_HARNESS_H
#define UF_TEST_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "userfault.h"

#define SKIP_EXIT 77

#define FAIL(...)                                                                \
	do {                                                                     \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
		fprintf(stderr, __VA_ARGS__);                                    \
		fprintf(stderr, "\n");                                           \
		exit(1);                                                         \
	} while (0)

#define SKIP(...)                                                                \
	do {                                                                     \
		fprintf(stderr, "SKIP: ");                                       \
		fprintf(stderr, __VA_ARGS__);                                    \
		fprintf(stderr, "\n");                                           \
		exit(SKIP_EXIT);                                                 \
	} while (0)

#define ASSERT(c)                                                                \
	do {                                                                     \
		if (!(c))                                                        \
			FAIL("assertion failed: %s", #c);                        \
	} while (0)

#define ASSERT_CMP(a, op, b)                                                     \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);             \
		if (!(a_ op b_))                                                 \
			FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);     \
	} while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
/* A uf_* call that must succeed; prints the error text if not. */
#define ASSERT_OK(call)                                                          \
	do {                                                                     \
		long long r_ = (long long)(call);                               \
		if (r_ < 0)                                                      \
			FAIL("%s = %lld (%s)", #call, r_, uf_strerror((int)r_)); \
	} while (0)

static void harness_timeout(int sig)
{
	(void)sig;
	static const char m[] = "FAIL: test timed out\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	_exit(124);
}

/* Call first in main: arms a timeout (seconds, TEST_TIMEOUT overrides). */
static inline void test_init(unsigned seconds)
{
	const char *t = getenv("TEST_TIMEOUT");
	if (t)
		seconds = (unsigned)atoi(t);
	signal(SIGALRM, harness_timeout);
	alarm(seconds);
	setvbuf(stdout, NULL, _IONBF, 0);
}

/* Set by tests/run.sh when the tests run under qemu-user (RUNNER). Some
 * behaviours cannot be observed there; such tests skip, saying why. */
static inline int under_qemu(void) { return getenv("UF_TEST_QEMU") != NULL; }

/* This program's path, to re-execute itself. Not "/proc/self/exe" as
 * such: under valgrind that names valgrind's tool, while readlink() of it
 * gives the program (valgrind answers it; the re-executed child then runs
 * natively, without --trace-children). */
static inline const char *self_exe(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return "/proc/self/exe";
	path[n] = 0;
	return path;
}

/* The engine the runner asked for (USERFAULT_ENGINE), for map options. */
static inline int test_engine(void)
{
	const char *e = getenv("USERFAULT_ENGINE");
	if (!e || !*e || !strcmp(e, "auto"))
		return UF_ENGINE_AUTO;
	if (!strcmp(e, "uffd"))
		return UF_ENGINE_UFFD;
	if (!strcmp(e, "uffd-thread"))
		return UF_ENGINE_UFFD_THREAD;
	if (!strcmp(e, "signal"))
		return UF_ENGINE_SIGNAL;
	FAIL("unknown USERFAULT_ENGINE=%s", e);
}

/* Map options for the engine under test (USERFAULT_ENGINE), every other field at its default. */
static inline struct uf_map_opts test_map_opts(void)
{
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = test_engine();
	return o;
}

/* Deterministic byte pattern for store offset off. */
static inline uint8_t pattern_byte(uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull;
	return (uint8_t)(x >> 56) ^ (uint8_t)off;
}

/* Whether the kernel gives transparent huge pages to MADV_HUGEPAGE
 * mappings (huge-page windows, uf_map(3)). */
static inline bool thp_on_request(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	return buf[0] && !strstr(buf, "[never]");
}

/* A uf_fill_fn (uf_store_fn) of the pattern. */
static inline int pattern_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	unsigned char *d = dst;
	for (size_t i = 0; i < len; i++)
		d[i] = pattern_byte(off + i);
	return 0;
}

/* A malloc'd buffer of size pattern bytes and a memory store over it (*s);
 * returns the buffer (the caller frees it after closing the store). */
/* size bytes of the pattern, malloc'd. */
static inline unsigned char *pattern_buf(size_t size)
{
	unsigned char *buf = malloc(size);
	ASSERT(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern_byte(i);
	return buf;
}

static inline unsigned char *pattern_store(size_t size, uf_store **s)
{
	unsigned char *buf = pattern_buf(size);
	ASSERT_OK(uf_store_mem(buf, size, 0, s));
	return buf;
}

/* Installs fn for sig (SA_SIGINFO | SA_NODEFER, so a handler that leaves
 * by siglongjmp can take the signal again). */
/* uf_try_read's precondition inside a signal handler: SIGSEGV and SIGBUS
 * not blocked. ThreadSanitizer calls handlers with every signal blocked. */
static inline void unblock_fault_signals(void)
{
	sigset_t faults;
	sigemptyset(&faults);
	sigaddset(&faults, SIGSEGV);
	sigaddset(&faults, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
}

/* Reads fd to its end (a child's pipe) into buf, NUL-terminated, and
 * closes it; the length read (at most size - 1). */
static inline size_t read_pipe(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t k;
	while (n < size - 1 && (k = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = 0;
	close(fd);
	return n;
}

static inline void catch_signal(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(sig, &sa, NULL), 0);
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif

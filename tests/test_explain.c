/* SPDX-License-Identifier: MIT */
/*
 * test_explain.c - uf_explain() names the right cause and access type.
 *
 * Each case crashes a forked child in a known way; the child's handler (on
 * an alternate stack) calls uf_explain and sends the text through a pipe.
 * Where the context carries no fault record (qemu-user on aarch64), the
 * access type cannot be known and only the cause is checked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"

#if defined(__clang__)
#define NOINLINE __attribute__((noinline)) /* clang makes no clones */
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

static int g_out = -1;
static char g_text[16384];
static volatile int g_sink;
static volatile unsigned g_never = 0xffffffffu;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	int n = uf_explain(si, uc, g_text, sizeof(g_text));
	if (n < 0)
		_exit(3);
	size_t len = strlen(g_text);
	if (write(g_out, g_text, len) != (ssize_t)len)
		_exit(4);
	_exit(0);
}

static void *g_altstack;

static void altstack(void)
{
	size_t sz = 256 * 1024;
	void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(5);
	stack_t ss = {.ss_sp = mem, .ss_size = sz, .ss_flags = 0};
	if (sigaltstack(&ss, NULL))
		_exit(5);
	g_altstack = mem;
}

/* Runs fn in a child whose fatal signal is explained; returns the text. */
static const char *explain_child(const char *name, void (*fn)(void))
{
	static char text[sizeof(g_text) + 1];
	int p[2];
	if (pipe(p))
		FAIL("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		g_out = p[1];
		altstack();
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_signal;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &sa, NULL);
		fn();
		_exit(6); /* did not crash */
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(p[0], text + n, sizeof(text) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	text[n] = 0;
	close(p[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		FAIL("%s: waitpid: %s", name, strerror(errno));
	if (WIFSIGNALED(st))
		FAIL("%s: child died of signal %d inside the handler (uf_explain crashed?)", name,
		     WTERMSIG(st));
	if (WEXITSTATUS(st) == 8)
		return NULL; /* could not set up (no engine here) */
	if (WEXITSTATUS(st) != 0)
		FAIL("%s: child exit %d (6: did not crash)", name, WEXITSTATUS(st));
	printf("--- %s\n%s\n", name, text);
	return text;
}

#define EXPECT(text, s)                                                          \
	do {                                                                     \
		if (!strstr((text), (s)))                                        \
			FAIL("expected \"%s\" in: %s", (s), (text));             \
	} while (0)

static bool has_fault_record(const char *text) { return !strstr(text, "Fault record: none"); }

/* The access type, where the hardware record made it knowable. */
static void expect_access(const char *text, const char *phrase)
{
	if (has_fault_record(text))
		EXPECT(text, phrase);
	else
		printf("(no fault record on this machine: access type not checked)\n");
}

/* ---- the crashes ---- */

NOINLINE static void fault_null_read(void)
{
	int *volatile p = (int *)(uintptr_t)16;
	g_sink = *p;
}

NOINLINE static void fault_null_write(void)
{
	volatile int *volatile p = NULL;
	*p = 1;
}

static char *map_page(int prot)
{
	char *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(7);
	return p;
}

NOINLINE static void fault_write_ro(void) { *(volatile char *)(map_page(PROT_READ) + 100) = 1; }

NOINLINE static void fault_prot_none(void) { g_sink = *(volatile char *)map_page(PROT_NONE); }

/* A hole between two mappings, so the neighbours are known. */
static char *hole(void)
{
	char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p + 4096, 4096))
		_exit(7);
	return p + 4096;
}

NOINLINE static void fault_unmapped(void) { g_sink = *(volatile char *)(hole() + 8); }

NOINLINE static void fault_exec_unmapped(void)
{
	void (*volatile fn)(void) = (void (*)(void))hole();
	fn();
	g_sink = 1; /* not a tail call */
}

NOINLINE static void fault_sent(void) { kill(getpid(), SIGSEGV); }

NOINLINE static unsigned recurse(unsigned n)
{
	volatile char buf[512];
	buf[n & 511] = (char)n;
	if (n == g_never)
		return 0;
	return recurse(n + 1) + buf[(n * 3) & 511];
}

NOINLINE static void fault_main_overflow(void) { g_sink = (int)recurse(0); }

static void *overflow_thread(void *arg)
{
	(void)arg;
	altstack(); /* per thread: the handler needs a stack to run on */
	g_sink = (int)recurse(0);
	return NULL;
}

NOINLINE static void fault_thread_overflow(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	if (pthread_create(&t, &a, overflow_thread, NULL))
		_exit(7);
	pthread_join(t, NULL);
}

NOINLINE static void fault_file_eof(void)
{
	char path[] = "/tmp/uf-explain-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		_exit(7);
	unlink(path);
	if (ftruncate(fd, 4096))
		_exit(7);
	char *p = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(7);
	g_sink = p[4096 + 1];
}

/* x86: a non-canonical address raises #GP, which carries no address. */
NOINLINE static void fault_noncanonical(void)
{
	volatile char *volatile p = (volatile char *)(uintptr_t)0x8000000000001000ull;
	g_sink = *p;
}

static int failing_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off, (void)dst, (void)len;
	return -EIO;
}

/* A store read error inside a userfault region: libuserfault delivers
 * SIGBUS to the handler installed before its own (ours). */
NOINLINE static void fault_region(void)
{
	uf_store *st;
	uf_region *r;
	if (uf_store_fn(failing_fill, NULL, 1 << 20, &st) < 0)
		_exit(8);
	if (uf_map(st, 0, 1 << 20, PROT_READ, NULL, &r) < 0)
		_exit(8);
	g_sink = ((volatile char *)uf_region_addr(r))[5 * 4096 + 3];
}

static int zero_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off;
	memset(dst, 0, len);
	return 0;
}

/* A write to a region mapped read-only, on the engine g_engine. */
static int g_engine;
NOINLINE static void fault_region_ro_write(void)
{
	uf_store *st;
	uf_region *r;
	if (uf_store_fn(zero_fill, NULL, 1 << 20, &st) < 0)
		_exit(8);
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = g_engine;
	if (uf_map(st, 0, 1 << 20, PROT_READ, &o, &r) < 0)
		_exit(8);
	volatile char *p = uf_region_addr(r);
	g_sink = p[7 * 4096]; /* loaded first: a fault on a page that is there */
	p[7 * 4096 + 9] = 1;
}

/* Code whose page cannot be provided: a jump past the end of a file mapped
 * for execution (as with a truncated executable). */
NOINLINE static void fault_exec_file_eof(void)
{
	char path[] = "/tmp/uf-explain-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		_exit(7);
	unlink(path);
	if (ftruncate(fd, 4096))
		_exit(7);
	char *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		_exit(8); /* noexec /tmp */
	void (*volatile fn)(void) = (void (*)(void))(p + 4096);
	fn();
	g_sink = 1;
}

NOINLINE static void fault_intdiv(void)
{
	volatile int zero = 0, x = 7;
	g_sink = x / zero;
}

/* ---- the tests ---- */

static void test_null_read(void)
{
	const char *t = explain_child("null read", fault_null_read);
	EXPECT(t, "SIGSEGV");
	EXPECT(t, "SEGV_MAPERR");
	EXPECT(t, "NULL pointer dereference (offset 16)");
	expect_access(t, "A read of address 0x10");
	EXPECT(t, "in fault_null_read+"); /* static function: from .symtab */
}

static void test_null_write(void)
{
	const char *t = explain_child("null write", fault_null_write);
	EXPECT(t, "NULL pointer dereference (offset 0)");
	expect_access(t, "A write to address 0x0");
}

static void test_write_ro(void)
{
	const char *t = explain_child("write to read-only", fault_write_ro);
	EXPECT(t, "SEGV_ACCERR");
	EXPECT(t, "r--p [anonymous]");
	if (has_fault_record(t)) {
		EXPECT(t, "A write to address");
		EXPECT(t, "A write to a read-only mapping");
	} else {
		EXPECT(t, "do not allow this access");
	}
	EXPECT(t, "at offset 0x64 of");
}

static void test_prot_none(void)
{
	const char *t = explain_child("PROT_NONE", fault_prot_none);
	EXPECT(t, "SEGV_ACCERR");
	EXPECT(t, "PROT_NONE mapping");
	EXPECT(t, "---p [anonymous]");
	expect_access(t, "A read of address");
}

static void test_unmapped(void)
{
	const char *t = explain_child("unmapped", fault_unmapped);
	EXPECT(t, "SEGV_MAPERR");
	EXPECT(t, "The address is not mapped");
	EXPECT(t, "ending 8 bytes below the address");
	EXPECT(t, "starting 4088 bytes above it");
	expect_access(t, "A read of address");
}

static void test_exec_unmapped(void)
{
	const char *t = explain_child("exec unmapped", fault_exec_unmapped);
	EXPECT(t, "SEGV_MAPERR");
	EXPECT(t, "An instruction fetch from 0x");
	EXPECT(t, "The address is not mapped");
	EXPECT(t, "return address in the call frame is");
	EXPECT(t, "in fault_exec_unmapped+");
#if defined(__x86_64__)
	const char *record = "I=1 (instruction fetch)";
#else
	const char *record = "(instruction abort";
#endif
	if (has_fault_record(t))
		EXPECT(t, record);
}

static void test_sent(void)
{
	const char *t = explain_child("sent SIGSEGV", fault_sent);
	EXPECT(t, "SI_USER");
	EXPECT(t, "The process raised it itself");
	EXPECT(t, "no faulting address");
}

static void test_main_overflow(void)
{
	const char *t = explain_child("main stack overflow", fault_main_overflow);
	EXPECT(t, "Stack overflow");
	const char *runner = getenv("RUNNER");
	if (!runner || !*runner) {
		EXPECT(t, "Stack overflow of the main thread");
		EXPECT(t, "RLIMIT_STACK");
	} /* else qemu-user's guest stack is a plain mapping with a guard page */
	expect_access(t, "A write to address");
}

static void test_thread_overflow(void)
{
	const char *t = explain_child("thread stack overflow", fault_thread_overflow);
	EXPECT(t, "SEGV_ACCERR");
	EXPECT(t, "Stack overflow: the address is in the guard page below this thread's stack");
}

static void test_file_eof(void)
{
	const char *t = explain_child("file mapping past EOF", fault_file_eof);
	EXPECT(t, "SIGBUS");
	EXPECT(t, "BUS_ADRERR");
	EXPECT(t, "beyond the end of the file");
	EXPECT(t, "(deleted)");
}

static void test_region(void)
{
	const char *t = explain_child("userfault region", fault_region);
	if (!t) {
		printf("(uf_map failed: no engine here, region case not checked)\n");
		return;
	}
	EXPECT(t, "SIGBUS");
	EXPECT(t, "The address is inside a userfault region");
	EXPECT(t, "0x5003 into it");
	EXPECT(t, "its store could not provide this block");
}

/* Every engine: the userfaultfd engine maps read-only regions writable
 * and write-protects them (the write was explained as "userfault did not
 * serve the fault"). */
static void test_region_ro_write(void)
{
	const int engines[] = {UF_ENGINE_UFFD, UF_ENGINE_UFFD_THREAD, UF_ENGINE_SIGNAL};
	for (unsigned i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		g_engine = engines[i];
		char name[64];
		snprintf(name, sizeof(name), "write to a read-only region (%s)", uf_engine_name(g_engine));
		const char *t = explain_child(name, fault_region_ro_write);
		if (!t) {
			printf("(uf_map failed: %s not here, case not checked)\n", uf_engine_name(g_engine));
			continue;
		}
		EXPECT(t, "SIGSEGV");
		EXPECT(t, "The address is inside a userfault region");
		EXPECT(t, "0x7009 into it");
		if (has_fault_record(t))
			EXPECT(t, "a write to a region mapped read-only");
		else
			printf("(no fault record on this machine: access type not checked)\n");
	}
}

static void test_noncanonical(void)
{
#if defined(__x86_64__)
	const char *runner = getenv("RUNNER");
	if (runner && *runner)
		return; /* an emulator need not model #GP */
	const char *t = explain_child("non-canonical pointer", fault_noncanonical);
	EXPECT(t, "SIGSEGV");
	EXPECT(t, "SI_KERNEL");
	EXPECT(t, "general protection fault");
	EXPECT(t, "in fault_noncanonical+");
#else
	(void)fault_noncanonical;
#endif
}

static void test_exec_file_eof(void)
{
	const char *t = explain_child("exec past end of file", fault_exec_file_eof);
	if (!t) {
		printf("(cannot map /tmp for execution: case not checked)\n");
		return;
	}
	EXPECT(t, "SIGBUS");
	EXPECT(t, "An instruction fetch of the code at 0x");
	EXPECT(t, "beyond the end of the file");
}

static void test_intdiv(void)
{
#if defined(__x86_64__)
	const char *t = explain_child("integer division by zero", fault_intdiv);
	EXPECT(t, "SIGFPE");
	EXPECT(t, "FPE_INTDIV");
	EXPECT(t, "in fault_intdiv+");
#else
	(void)fault_intdiv;
	printf("(integer division by zero does not trap on this architecture)\n");
#endif
}

static void test_arguments(void)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGSEGV;
	si.si_code = SEGV_MAPERR;
	si.si_addr = (void *)(uintptr_t)24;
	char full[2048], small[32];

	ASSERT_EQ(uf_explain(NULL, NULL, full, sizeof(full)), -EINVAL);
	ASSERT_EQ(uf_explain(&si, NULL, NULL, 10), -EINVAL);
	int want = uf_explain(&si, NULL, NULL, 0); /* measuring, like snprintf */
	ASSERT_GT(want, 0);
	ASSERT_EQ(uf_explain(&si, NULL, full, sizeof(full)), want);
	ASSERT_EQ(strlen(full), want);
	EXPECT(full, "NULL pointer dereference (offset 24)");
	EXPECT(full, "An access (type unknown) of address 0x18"); /* no context */
	if (strstr(full, "by the instruction") || strstr(full, "Fault record"))
		FAIL("no context, yet an instruction or a fault record: %s", full);
	/* SIGILL: the kernel's si_addr is the instruction, named still */
	siginfo_t ill;
	memset(&ill, 0, sizeof(ill));
	ill.si_signo = SIGILL;
	ill.si_code = ILL_ILLOPN;
	ill.si_addr = (void *)test_arguments;
	char itext[1024];
	ASSERT_GT(uf_explain(&ill, NULL, itext, sizeof(itext)), 0);
	EXPECT(itext, "The instruction at");

	memset(small, 'x', sizeof(small));
	ASSERT_EQ(uf_explain(&si, NULL, small, sizeof(small)), want);
	ASSERT_EQ(strlen(small), sizeof(small) - 1);
	ASSERT(!strncmp(small, full, sizeof(small) - 1));

	char one = 'x';
	ASSERT_EQ(uf_explain(&si, NULL, &one, 1), want);
	ASSERT_EQ(one, 0);

	/* A sent signal from another process: sender named, no address talk. */
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGTERM;
	si.si_code = SI_USER;
	si.si_pid = 1;
	si.si_uid = 0;
	ASSERT_GT(uf_explain(&si, NULL, full, sizeof(full)), 0);
	EXPECT(full, "SIGTERM");
	EXPECT(full, "sent by process 1 (uid 0)");
}

int main(void)
{
	test_init(120);
	test_arguments();
	test_null_read();
	test_null_write();
	test_write_ro();
	test_prot_none();
	test_unmapped();
	test_exec_unmapped();
	test_sent();
	test_main_overflow();
	test_thread_overflow();
	test_file_eof();
	test_region();
	test_region_ro_write();
	test_noncanonical();
	test_exec_file_eof();
	test_intdiv();
	printf("ok\n");
	return 0;
}

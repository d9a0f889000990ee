/* SPDX-License-Identifier: MIT */
/* Faults that are not ours reach the handler installed before the library,
 * the way that handler expects (SA_SIGINFO or plain), with the original
 * siginfo; without one the process dies of the original signal. A write to
 * a read-only region is not ours either: SIGSEGV (SEGV_ACCERR) reaches the
 * handler before ours, or one the program installed after ours. */
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

static sigjmp_buf jb;
static void *volatile seen_addr;
static volatile int seen_sig, seen_code, plain_sig;

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	seen_sig = sig;
	seen_addr = si->si_addr;
	seen_code = si->si_code;
	siglongjmp(jb, 1);
}

static void plain_handler(int sig)
{
	plain_sig = sig;
	siglongjmp(jb, 1);
}

static void make_library_install(void)
{
	/* The library installs its handler on first use: map something. */
	static unsigned char b[4096];
	uf_store *s;
	ASSERT_OK(uf_store_mem(b, sizeof(b), 0, &s));
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, sizeof(b), PROT_READ, NULL, &r));
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
}

static int child_status(void (*fn)(void))
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

/* Each child starts before the parent installs anything, so the library's
 * "previous handler" is the child's own choice. */
static void no_core(void)
{
	struct rlimit rl = {0, 0};
	setrlimit(RLIMIT_CORE, &rl);
}

static void die_by_segv(void)
{
	no_core();
	make_library_install();
	volatile int *volatile null_ptr = (volatile int *)16;
	*null_ptr = 1;
}

static void plain_chain(void)
{
	signal(SIGSEGV, plain_handler);
	make_library_install();
	unsigned char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sigsetjmp(jb, 1) == 0) {
		(void)*(volatile unsigned char *)none;
		_exit(2);
	}
	_exit(plain_sig == SIGSEGV ? 0 : 3);
}

static void die_by_bus_on_region(void)
{
	no_core();
	/* store error, no handler installed: dies of SIGBUS */
	static unsigned char b[4096];
	uf_store *s;
	ASSERT_OK(uf_store_mem(b, sizeof(b), 0, &s));
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, 2 * 4096, PROT_READ, NULL, &r)); /* page 2 past the end */
	(void)((volatile unsigned char *)uf_region_addr(r))[4096];
}

/* One read-only page of zeros on the engine under test, its first byte
 * read (loaded). */
static volatile unsigned char *map_read_only(uf_store **s, uf_region **r)
{
	static unsigned char b[4096];
	ASSERT_OK(uf_store_mem(b, sizeof(b), 0, s));
	struct uf_map_opts o = test_map_opts();
	ASSERT_OK(uf_map(*s, 0, sizeof(b), PROT_READ, &o, r));
	volatile unsigned char *p = uf_region_addr(*r);
	ASSERT_EQ(p[0], 0);
	return p;
}

/* A write to a read-only region with the program's SIGSEGV handler
 * installed after the library's (the one before is the default): that
 * handler gets SIGSEGV (SEGV_ACCERR), twice, and stays installed; an
 * engine that saw the write as SIGBUS must not put the default action
 * over it. */
static void handler_after_ours(void)
{
	no_core();
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_read_only(&s, &r);
	struct sigaction sa = {0}, cur;
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	for (volatile int round = 0; round < 2; round++) {
		seen_sig = seen_code = 0;
		seen_addr = NULL;
		if (sigsetjmp(jb, 1) == 0) {
			p[1 + round] = 1;
			_exit(2);
		}
		if (seen_sig != SIGSEGV || seen_addr != (void *)(p + 1 + round) || seen_code != SEGV_ACCERR)
			_exit(3);
		ASSERT_EQ(sigaction(SIGSEGV, NULL, &cur), 0);
		if (cur.sa_sigaction != info_handler)
			_exit(4);
	}
	_exit(0);
}

int main(void)
{
	test_init(30);
	if (under_qemu())
		SKIP("qemu-user aborts when a process queues itself a fault signal (rt_tgsigqueueinfo); chaining is tested natively");
	size_t ps = page_size();

	/* plain handler installed before the library: called with the signal */
	int st = child_status(plain_chain);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	/* SIG_DFL before the library: the process dies of SIGSEGV / SIGBUS */
	st = child_status(die_by_segv);
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSEGV);
	st = child_status(die_by_bus_on_region);
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGBUS);
	st = child_status(handler_after_ours);
	if (!WIFEXITED(st))
		FAIL("handler installed after ours: the child died of signal %d", WTERMSIG(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);

	unsigned char *none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(none != MAP_FAILED);

	/* SA_SIGINFO handler installed before the library */
	struct sigaction sa = {0};
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	make_library_install();
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGSEGV, NULL, &cur), 0);
	ASSERT(cur.sa_sigaction != info_handler); /* the library's is in front */
	if (sigsetjmp(jb, 1) == 0) {
		(void)*(volatile unsigned char *)(none + 5);
		FAIL("PROT_NONE read returned");
	}
	ASSERT_EQ(seen_sig, SIGSEGV);
	ASSERT_EQ((uintptr_t)seen_addr, (uintptr_t)(none + 5));
	ASSERT_EQ(seen_code, SEGV_ACCERR);

	/* write to a read-only region: the program's own error, not ours */
	uf_store *s;
	uf_region *r;
	volatile unsigned char *p = map_read_only(&s, &r);
	seen_sig = 0;
	if (sigsetjmp(jb, 1) == 0) {
		p[1] = 1;
		FAIL("write to a read-only region returned");
	}
	ASSERT_EQ(seen_sig, SIGSEGV);
	ASSERT_EQ((uintptr_t)seen_addr, (uintptr_t)(p + 1));
	ASSERT_EQ(seen_code, SEGV_ACCERR);

	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("ok\n");
	return 0;
}

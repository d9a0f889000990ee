/* SPDX-License-Identifier: MIT */
/*
 * stackguard.c - stack overflow detection and recovery.
 *
 * A thread that overflows its stack can only run a handler on an alternate
 * signal stack, so every protected thread gets one (uf_stack_guard_thread_init,
 * released by a pthread key destructor at thread exit). What counts as an
 * overflow is decided from facts gathered outside signal context and kept in
 * initial-exec TLS (no allocation on first access from a handler):
 *   - a pthread's guard area, from pthread_getattr_np at thread_init;
 *   - the main thread's growth gap: [stack] top from /proc/self/maps minus
 *     RLIMIT_STACK, read once at install;
 *   - and in every case the interrupted SP must be close to the fault address,
 *     which is what separates an overflow from a wild pointer that happens to
 *     hit a guard page.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "arch/arch.h"
#include "fault.h"
#include "stackguard.h"

/* How far below the SP a fault can be in an overflow (push, call, red zone,
 * a pre-indexed stp, the stack probe of a large frame), and how far above it
 * (a frame that jumped below the guard and accessed a local in it). */
#define BELOW_SP (64u * 1024)
#define ABOVE_SP (1024u * 1024)
/* Slack under the main stack's rlimit floor (the kernel's stack_guard_gap is
 * 1 MiB; a large frame may land a little past the floor). */
#define MAIN_SLACK (1024u * 1024)
#define ALT_STACK_SIZE (64u * 1024)

struct thread_guard {
	uintptr_t guard_lo, guard_hi; /* this thread's pthread guard, or 0, 0 */
	void *alt_map;                /* our alternate stack mapping (with its guard page) */
	size_t alt_map_len;
	int inited;
};
static __thread struct thread_guard t_guard __attribute__((tls_model("initial-exec")));

static _Atomic(uf_overflow_fn) g_fn;
static void *_Atomic g_arg;
static uintptr_t g_main_lo, g_main_hi; /* main thread growth range, or 0, 0 */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static int g_init_err;

static void thread_exit(void *p)
{
	(void)p;
	uf_stack_guard_thread_fini();
}

/* Not signal context: stdio and /proc are fine here. */
static void global_init(void)
{
	if (pthread_key_create(&g_key, thread_exit)) {
		g_init_err = -EAGAIN;
		return;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return; /* unlimited: the growth range is unknown, the SP test remains */
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	char line[512];
	unsigned long lo, hi;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			uintptr_t floor = hi > rl.rlim_cur + MAIN_SLACK ? hi - rl.rlim_cur - MAIN_SLACK : 0;
			g_main_lo = floor;
			g_main_hi = hi;
			break;
		}
	}
	fclose(f);
}

static int ensure_global(void)
{
	int r = uf__fault_init();
	if (r)
		return r;
	pthread_once(&g_once, global_init);
	return g_init_err;
}

static bool is_main_thread(void) { return uf__gettid() == getpid(); }

UF_SIGCTX bool uf__stack_overflow_check(const siginfo_t *si, const void *uc)
{
	if (!si || si->si_signo != SIGSEGV || si->si_code <= 0 || !uc)
		return false;
	uintptr_t addr = (uintptr_t)si->si_addr, sp = uf__arch_sp(uc);
	if (!addr)
		return false;
	/* An overflowing thread faults right around its SP. A wild pointer into
	 * the same guard page while the SP is far above it is not an overflow. */
	if (sp > addr + BELOW_SP || addr > sp + ABOVE_SP)
		return false;
	if (addr < sp + uf__page_size())
		return true; /* at or just below the SP: the stack ran out here */
	/* Further above the SP: a large frame was allocated and a local in it
	 * hit this thread's guard or the main stack's growth gap. */
	const struct thread_guard *t = &t_guard;
	if (t->inited && addr >= t->guard_lo && addr < t->guard_hi)
		return true;
	if (addr >= g_main_lo && addr < g_main_hi && is_main_thread())
		return true;
	return false;
}

UF_SIGCTX int uf__stack_guard_fault(int sig, siginfo_t *si, void *uc)
{
	uf_overflow_fn fn = atomic_load_explicit(&g_fn, memory_order_acquire);
	if (!fn || sig != SIGSEGV || !uf__stack_overflow_check(si, uc))
		return UF__PASS;
	/* We run on the alternate stack. The callback may siglongjmp out: the
	 * kernel guard page and the alternate stack stay as they are, so the
	 * next overflow is caught the same way. */
	fn(si->si_addr, atomic_load_explicit(&g_arg, memory_order_relaxed));
	/* It returned: let the fault take its course (previous handler or death). */
	return UF__PASS;
}

int uf_stack_guard_install(uf_overflow_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	int r = ensure_global();
	if (r)
		return r;
	r = uf_stack_guard_thread_init();
	if (r)
		return r;
	atomic_store_explicit(&g_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&g_fn, fn, memory_order_release);
	return 0;
}

int uf_stack_guard_thread_init(void)
{
	struct thread_guard *t = &t_guard;
	if (t->inited)
		return 0;
	int r = ensure_global();
	if (r)
		return r;
	struct thread_guard n = {0};
	size_t ps = uf__page_size();

	/* The main thread's guard is its growth gap (global); a pthread's is
	 * the guard area below its stack (glibc: [stack low - guardsize, low)). */
	pthread_attr_t at;
	if (!is_main_thread() && pthread_getattr_np(pthread_self(), &at) == 0) {
		void *lo;
		size_t size, guard = 0;
		if (pthread_attr_getstack(&at, &lo, &size) == 0 &&
		    pthread_attr_getguardsize(&at, &guard) == 0 && guard) {
			guard = uf__align_up(guard, ps);
			n.guard_hi = (uintptr_t)lo;
			n.guard_lo = n.guard_hi > guard ? n.guard_hi - guard : 0;
		}
		pthread_attr_destroy(&at);
	}

	/* Keep an alternate stack someone else installed (a sanitizer runtime,
	 * a language runtime): our handler runs fine on it. */
	stack_t cur;
	if (sigaltstack(NULL, &cur))
		return -errno;
	if (cur.ss_flags & SS_DISABLE) {
		size_t size = ALT_STACK_SIZE;
		long min = sysconf(_SC_MINSIGSTKSZ);
		if (min > 0 && (size_t)min * 4 > size)
			size = uf__align_up((size_t)min * 4, ps);
		/* A PROT_NONE page below turns an overflow of the alternate stack
		 * into a clean death instead of silent corruption. */
		n.alt_map_len = size + ps;
		n.alt_map = uf__map_anon(n.alt_map_len, PROT_READ | PROT_WRITE);
		if (!n.alt_map)
			return -errno;
		if (mprotect(n.alt_map, ps, PROT_NONE)) {
			r = -errno;
			munmap(n.alt_map, n.alt_map_len);
			return r;
		}
		stack_t ss = {.ss_sp = (char *)n.alt_map + ps, .ss_size = size, .ss_flags = 0};
		if (sigaltstack(&ss, NULL)) {
			r = -errno;
			munmap(n.alt_map, n.alt_map_len);
			return r;
		}
	}
	n.inited = 1;
	*t = n;
	/* The key's destructor releases the alternate stack at thread exit. */
	pthread_setspecific(g_key, t);
	return 0;
}

int uf_stack_guard_thread_fini(void)
{
	struct thread_guard *t = &t_guard;
	if (!t->inited)
		return 0;
	if (t->alt_map) {
		stack_t cur;
		if (sigaltstack(NULL, &cur))
			return -errno;
		if (cur.ss_flags & SS_ONSTACK)
			return -EBUSY; /* called from a handler running on it */
		if (cur.ss_sp == (char *)t->alt_map + uf__page_size()) {
			stack_t off = {.ss_flags = SS_DISABLE};
			if (sigaltstack(&off, NULL))
				return -errno;
		}
		munmap(t->alt_map, t->alt_map_len);
	}
	memset(t, 0, sizeof(*t));
	pthread_setspecific(g_key, NULL);
	return 0;
}

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
 *   - and in every case the interrupted SP must be close to the fault address
 *     (no more than the overflow distance above it), which is what separates
 *     an overflow from a wild pointer that happens to hit a guard page.
 *
 * The overflow distance (uf_stack_guard_set_distance, USERFAULT_STACK_DISTANCE,
 * 2 MiB by default) is how far below the guard, and below the SP, a stack
 * probe or a large frame may touch first. JITs probe in strides larger than
 * a page and bang the stack far below the SP, so our own alternate stack must
 * never be what lies under a thread's guard: it sits between PROT_NONE
 * guards, the upper one at least the overflow distance long, so a probe that
 * skips the thread's guard lands in ours and faults like any overflow.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "arch/arch.h"
#include "fault.h"
#include "handler.h"
#include "stackguard.h"

/* For a stack we know nothing about (a thread that never called
 * thread_init): how far below the SP a fault may be in an overflow (push,
 * call, red zone, a pre-indexed stp). */
#define BELOW_SP (64u * 1024)
/* How far above the SP (a frame that jumped below the guard and accessed a
 * local in it: frames up to 1 MiB). */
#define ABOVE_SP (1024u * 1024 + 64u * 1024)
/* Default overflow distance: a 1 MiB frame probed or banged from its far
 * end, with room to spare. */
#define DEFAULT_DISTANCE (2u * 1024 * 1024)
#define MAX_DISTANCE ((size_t)1 << 30)
#define ALT_STACK_SIZE (64u * 1024)
/* Below our alternate stack: its own overflow dies cleanly instead of
 * running into whatever mapping lies under it. */
#define ALT_LOW_GUARD (64u * 1024)

struct thread_guard {
	uintptr_t guard_lo, guard_hi; /* this thread's pthread guard, or 0, 0 */
	void *alt_map;                /* our alternate stack mapping (with its guards) */
	size_t alt_map_len;
	void *alt_sp;                 /* the usable stack inside alt_map */
	void *user_sp;                /* or the caller's own (thread_init_stack) */
	int inited;
};
static __thread struct thread_guard t_guard __attribute__((tls_model("initial-exec")));

/* The callback; flags CB_CTX: a uf_overflow_ctx_fn, else a uf_overflow_fn. */
#define CB_CTX 1u
static struct uf__slot g_cb;
static pthread_mutex_t g_cb_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t g_main_lo, g_main_hi; /* main thread: rlimit floor and [stack] top, or 0, 0 */
static _Atomic size_t g_distance = DEFAULT_DISTANCE;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static int g_init_err;

static void thread_exit(void *p)
{
	(void)p;
	uf_stack_guard_thread_fini();
}

/* "2097152", "2048k", "2m": decimal bytes; 0 if unparsable (a sign, a
 * space, hex, anything but digits and one suffix), or too big to represent
 * (a suffix must not wrap the value round). */
static size_t parse_size(const char *s)
{
	if (*s < '0' || *s > '9')
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || v > (SIZE_MAX >> shift))
		return 0;
	return (size_t)(v << shift);
}

static bool distance_ok(size_t d) { return d >= uf__page_size() && d <= MAX_DISTANCE; }

/* Not signal context: stdio and /proc are fine here. */
static void global_init(void)
{
	if (pthread_key_create(&g_key, thread_exit)) {
		g_init_err = -EAGAIN;
		return;
	}
	const char *e = uf__getenv("USERFAULT_STACK_DISTANCE");
	if (e) {
		size_t d = parse_size(e);
		if (distance_ok(d))
			atomic_store(&g_distance, uf__align_up(d, uf__page_size()));
		else
			uf__write_str(2, "userfault: USERFAULT_STACK_DISTANCE ignored (bytes, k/m/g suffix, "
					 "one page to 1g)\n");
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
			g_main_lo = hi > rl.rlim_cur ? hi - rl.rlim_cur : 0;
			g_main_hi = hi;
			break;
		}
	}
	fclose(f);
}

/* The guard's own state, without the fault handler: the distance calls
 * need only this, so a program may set the distance, then install a
 * handler of its own, and still have uf_stack_guard_install put the
 * library's in front of it. */
static int ensure_state(void)
{
	pthread_once(&g_once, global_init);
	return g_init_err;
}

static int ensure_global(void)
{
	int r = uf__fault_init();
	if (r)
		return r;
	return ensure_state();
}

static bool is_main_thread(void) { return uf__gettid() == getpid(); }

UF_SIGCTX bool uf__stack_overflow_check(const siginfo_t *si, const void *uc)
{
	if (!si || si->si_signo != SIGSEGV || si->si_code <= 0 || !uc)
		return false;
	uintptr_t addr = (uintptr_t)si->si_addr, sp = uf__arch_sp(uc);
	size_t d = atomic_load_explicit(&g_distance, memory_order_relaxed);
	if (!addr || addr + d < addr)
		return false;
	/* An overflowing thread faults near its SP: at most the overflow
	 * distance below it (a probe or bang ahead of the SP), at most a large
	 * frame above it. A wild pointer into the same guard while the SP is
	 * far above it is not an overflow. */
	if (sp > addr + d || addr > sp + ABOVE_SP)
		return false;
	/* The thread's guard, or below it down to the distance (a probe that
	 * skipped the guard; our alternate stack's upper guard lies there). */
	const struct thread_guard *t = &t_guard;
	if (t->inited && t->guard_hi && addr < t->guard_hi && addr + d >= t->guard_lo)
		return true;
	/* The main thread: the kernel refused to grow the stack (RLIMIT_STACK,
	 * or another mapping within its guard gap). */
	if (g_main_hi && addr < g_main_hi && addr + d >= g_main_lo && is_main_thread())
		return true;
	/* A stack we know nothing about: at or just below the SP. */
	return sp <= addr + BELOW_SP && addr < sp + uf__page_size();
}

UF_SIGCTX int uf__stack_guard_fault(int sig, siginfo_t *si, void *uc)
{
	struct uf__slot_val cb = uf__slot_get(&g_cb);
	if (!cb.fn || sig != SIGSEGV || !uf__stack_overflow_check(si, uc))
		return UF__PASS;
	/* The callback may siglongjmp out: it holds nothing (the record only
	 * marks the call for uf_fault_leave), the kernel guard and the
	 * alternate stack stay as they are, so the next overflow is caught the
	 * same way. */
	int d = uf__inflight_push(NULL, uc);
	if (cb.flags & CB_CTX) {
		stack_t ss;
		if (sigaltstack(NULL, &ss))
			ss.ss_flags = SS_DISABLE;
		uintptr_t sp = uf__arch_sp(uc), lo = (uintptr_t)ss.ss_sp;
		uintptr_t addr = (uintptr_t)si->si_addr;
		const struct thread_guard *t = &t_guard;
		/* A handler on the alternate stack that ran out of it: its SP
		 * is on that stack, or already just below it (BELOW_SP, as for
		 * a stack we know nothing about), with the fault there too and
		 * not in this thread's own stack guard (a thread stack may lie
		 * right under the alternate stack). */
		bool alt = !(ss.ss_flags & SS_DISABLE) &&
			   ((sp >= lo && sp < lo + ss.ss_size) ||
			    (sp < lo && sp + BELOW_SP >= lo && addr < lo && addr + BELOW_SP >= lo &&
			     !(t->inited && t->guard_hi && addr < t->guard_hi && addr >= t->guard_lo)));
		struct uf_overflow ov = {
			.addr = si->si_addr,
			.info = si,
			.ucontext = uc,
			.on_alt_stack = (ss.ss_flags & SS_ONSTACK) != 0,
			.interrupted_on_alt_stack = alt,
		};
		((uf_overflow_ctx_fn)cb.fn)(&ov, cb.arg);
	} else {
		((uf_overflow_fn)cb.fn)(si->si_addr, cb.arg);
	}
	uf__inflight_pop(d);
	/* It returned: let the fault take its course (the process-wide
	 * handler's last call, the previous handler, or death). */
	return UF__PASS;
}

static int install(void (*fn)(void), void *arg, unsigned flags)
{
	if (!fn)
		return -EINVAL;
	int r = ensure_global();
	if (r)
		return r;
	r = uf_stack_guard_thread_init();
	if (r)
		return r;
	pthread_mutex_lock(&g_cb_lock);
	uf__slot_set(&g_cb, fn, arg, flags);
	pthread_mutex_unlock(&g_cb_lock);
	return 0;
}

int uf_stack_guard_install(uf_overflow_fn fn, void *arg)
{
	return install((void (*)(void))fn, arg, 0);
}

int uf_stack_guard_install_ctx(uf_overflow_ctx_fn fn, void *arg)
{
	return install((void (*)(void))fn, arg, CB_CTX);
}

void uf__stack_guard_after_fork(void) { uf__slot_after_fork(&g_cb, &g_cb_lock); }

int uf_stack_guard_uninstall(void)
{
	pthread_mutex_lock(&g_cb_lock);
	uf__slot_set(&g_cb, NULL, NULL, 0);
	pthread_mutex_unlock(&g_cb_lock);
	return 0;
}

int uf_stack_guard_set_distance(size_t bytes)
{
	if (!distance_ok(bytes))
		return -EINVAL;
	int r = ensure_state();
	if (r)
		return r;
	atomic_store(&g_distance, uf__align_up(bytes, uf__page_size()));
	return 0;
}

size_t uf_stack_guard_distance(void)
{
	ensure_state(); /* the environment variable counts */
	return atomic_load(&g_distance);
}

/* A PROT_NONE reservation of len bytes, ending right at the thread's guard
 * if that space is free (its upper guard then extends the thread's guard by
 * the overflow distance: a probe that skips the guard faults there instead of
 * running into whatever mapping the kernel would have put below), anywhere
 * otherwise. */
static void *map_below(uintptr_t guard_lo, size_t len)
{
	if (guard_lo > len) {
		void *want = (void *)(guard_lo - len);
		void *p = mmap(want, len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == want)
			return p;
		if (p != MAP_FAILED)
			munmap(p, len); /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
	}
	return uf__map_anon(len, PROT_NONE);
}

/* The main thread's guard is its growth gap (global); a pthread's is the
 * guard area below its stack (glibc: [stack low - guardsize, low)). */
static void record_guard(struct thread_guard *n)
{
	pthread_attr_t at;
	if (is_main_thread() || pthread_getattr_np(pthread_self(), &at))
		return;
	void *lo;
	size_t size, guard = 0;
	if (pthread_attr_getstack(&at, &lo, &size) == 0 && pthread_attr_getguardsize(&at, &guard) == 0 &&
	    guard) {
		guard = uf__align_up(guard, uf__page_size());
		n->guard_hi = (uintptr_t)lo;
		n->guard_lo = n->guard_hi > guard ? n->guard_hi - guard : 0;
	}
	pthread_attr_destroy(&at);
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
	record_guard(&n);

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
		/* [low guard][stack][high guard >= distance], reserved PROT_NONE
		 * (address space only) and opened in the middle. The mapping
		 * often lands right under this thread's stack guard: the high
		 * guard is then what a probe skipping that guard hits. */
		size_t hi_guard = uf__align_up(atomic_load(&g_distance), ps);
		n.alt_map_len = ALT_LOW_GUARD + size + hi_guard;
		n.alt_map = map_below(n.guard_lo, n.alt_map_len);
		if (!n.alt_map)
			return -errno;
		n.alt_sp = (char *)n.alt_map + ALT_LOW_GUARD;
		if (mprotect(n.alt_sp, size, PROT_READ | PROT_WRITE)) {
			r = -errno;
			munmap(n.alt_map, n.alt_map_len);
			return r;
		}
		stack_t ss = {.ss_sp = n.alt_sp, .ss_size = size, .ss_flags = 0};
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

int uf_stack_guard_thread_init_stack(void *stack, size_t size)
{
	long min = sysconf(_SC_MINSIGSTKSZ);
	if (!stack || size < (min > 0 ? (size_t)min : (size_t)MINSIGSTKSZ) ||
	    (uintptr_t)stack + size < (uintptr_t)stack)
		return -EINVAL;
	int r = ensure_global();
	if (r)
		return r;
	stack_t cur;
	if (sigaltstack(NULL, &cur))
		return -errno;
	if (cur.ss_flags & SS_ONSTACK)
		return -EBUSY; /* from a handler running on the current one */
	stack_t ss = {.ss_sp = stack, .ss_size = size, .ss_flags = 0};
	if (sigaltstack(&ss, NULL))
		return -errno;
	struct thread_guard *t = &t_guard;
	if (t->alt_map)
		munmap(t->alt_map, t->alt_map_len); /* ours is not in use any more */
	struct thread_guard n = {0};
	record_guard(&n);
	n.user_sp = stack;
	n.inited = 1;
	*t = n;
	pthread_setspecific(g_key, t);
	return 0;
}

int uf_stack_guard_thread_fini(void)
{
	struct thread_guard *t = &t_guard;
	if (!t->inited)
		return 0;
	if (t->alt_map || t->user_sp) {
		stack_t cur;
		if (sigaltstack(NULL, &cur))
			return -errno;
		if (cur.ss_flags & SS_ONSTACK)
			return -EBUSY; /* called from a handler running on it */
		if (cur.ss_sp == (t->alt_map ? t->alt_sp : t->user_sp)) {
			stack_t off = {.ss_flags = SS_DISABLE};
			if (sigaltstack(&off, NULL))
				return -errno;
		}
		if (t->alt_map)
			munmap(t->alt_map, t->alt_map_len);
	}
	memset(t, 0, sizeof(*t));
	pthread_setspecific(g_key, NULL);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * handler.c - the process-wide fault handler (uf_handler_install), the
 * call-out slots every fault hook reads its user callback from, and the
 * per-thread record of call-outs in flight with uf_fault_leave.
 *
 * Leaving by siglongjmp. User code called from fault context may never
 * return. Whatever the library holds across such a call (today: the
 * reference that keeps a raw area alive while its handler runs) is noted in
 * a small per-thread table first. A record outlives its call only when the
 * call was left by a jump, and is then released at the first of:
 * uf_fault_leave() in the handler before it jumps; the thread's next fault
 * or its next uf_area_unregister, which see that the call's signal frame is
 * gone (below). Nothing else is held across a call-out: callbacks are copied
 * out of their slot before they are called.
 *
 * When is a call gone? A record keeps the address of the signal frame (the
 * ucontext) of the fault it serves. Everything that runs inside that call,
 * nested faults included, runs below that frame on the same stack (the
 * alternate stack once the handler is on it: the kernel only switches to it
 * from outside). So a later fault whose interrupted stack pointer is above
 * the frame, or off the alternate stack the frame is on, comes from code the
 * call was left for.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "arch/arch.h"
#include "fault.h"
#include "handler.h"

/* ---- call-out slots ---- */

void uf__slot_set(struct uf__slot *s, void (*fn)(void), void *arg, unsigned flags)
{
	unsigned next = atomic_load(&s->cur) ^ 1;
	/* Readers of the spare buffer are left over from before the last flip
	 * and only copy three words: wait them out. */
	while (atomic_load(&s->readers[next]))
		sched_yield();
	s->buf[next].fn = fn;
	s->buf[next].arg = arg;
	s->buf[next].flags = flags;
	atomic_store_explicit(&s->cur, next, memory_order_release);
}

void uf__slot_after_fork(struct uf__slot *s, pthread_mutex_t *lock)
{
	atomic_store(&s->readers[0], 0);
	atomic_store(&s->readers[1], 0);
	uf__mutex_reset_after_fork(lock);
}

UF_SIGCTX struct uf__slot_val uf__slot_get(struct uf__slot *s)
{
	for (;;) {
		unsigned i = atomic_load_explicit(&s->cur, memory_order_acquire);
		atomic_fetch_add(&s->readers[i], 1);
		/* A writer that flipped meanwhile may be rewriting buffer i. */
		if (atomic_load(&s->cur) == i) {
			struct uf__slot_val v = {s->buf[i].fn, s->buf[i].arg, s->buf[i].flags};
			atomic_fetch_sub_explicit(&s->readers[i], 1, memory_order_release);
			return v;
		}
		atomic_fetch_sub(&s->readers[i], 1);
	}
}

/* ---- in-flight records ---- */

#define INFLIGHT_MAX 16
struct inflight {
	_Atomic long *ref; /* dropped when the record goes; may be NULL */
	uintptr_t frame;   /* the ucontext of the fault being served */
};
static __thread struct {
	int n;
	bool keyed; /* g_exit_key set: the records go when the thread exits */
	struct inflight e[INFLIGHT_MAX];
} t_inflight __attribute__((tls_model("initial-exec")));

static UF_SIGCTX void drop_to(int depth);

/* A thread that left a call-out by a jump and then exited would hold the
 * reference for ever (uf_area_unregister waited for it): its records go
 * in a key destructor. The key is made at load time, so it is almost
 * surely one of the first 32, whose value pthread_setspecific stores in
 * the thread's descriptor without allocating (what makes it usable in a
 * signal handler); a later key is not set, and such a thread's records
 * stay until its next fault, as before. */
#define KEY_INLINE 32 /* glibc's PTHREAD_KEY_2NDLEVEL_SIZE */
static pthread_key_t g_exit_key;
static bool g_exit_key_ok;

static void inflight_at_exit(void *p)
{
	(void)p;
	drop_to(0);
	t_inflight.keyed = false;
}

__attribute__((constructor)) static void inflight_init(void)
{
	g_exit_key_ok = pthread_key_create(&g_exit_key, inflight_at_exit) == 0 &&
			(unsigned)g_exit_key < KEY_INLINE;
}

UF_SIGCTX int uf__inflight_push(_Atomic long *ref, const void *uc)
{
	/* Records left by a jump are reaped already: every fault reaches its
	 * call-outs through uf__fault_dispatch, which reaps first. */
	int d = t_inflight.n;
	if (d >= INFLIGHT_MAX)
		return -1;
	if (ref && !t_inflight.keyed && g_exit_key_ok) {
		t_inflight.keyed = true;
		pthread_setspecific(g_exit_key, &t_inflight);
	}
	t_inflight.e[d].ref = ref;
	t_inflight.e[d].frame = (uintptr_t)uc;
	/* A signal landing here sees n without this entry: it cannot reap it. */
	atomic_signal_fence(memory_order_seq_cst);
	t_inflight.n = d + 1;
	return d;
}

static UF_SIGCTX void drop_to(int depth)
{
	while (t_inflight.n > depth) {
		int i = t_inflight.n - 1;
		_Atomic long *ref = t_inflight.e[i].ref;
		t_inflight.n = i;
		atomic_signal_fence(memory_order_seq_cst);
		if (ref)
			atomic_fetch_sub_explicit(ref, 1, memory_order_release);
	}
}

UF_SIGCTX void uf__inflight_pop(int depth)
{
	if (depth >= 0)
		drop_to(depth); /* and any record left by a jump into this call */
}

static UF_SIGCTX bool on(const stack_t *ss, uintptr_t p)
{
	return !(ss->ss_flags & SS_DISABLE) && p >= (uintptr_t)ss->ss_sp &&
	       p < (uintptr_t)ss->ss_sp + ss->ss_size;
}

UF_SIGCTX void uf__inflight_reap(uintptr_t sp)
{
	if (uf__likely(t_inflight.n == 0))
		return;
	stack_t ss;
	if (sigaltstack(NULL, &ss))
		ss.ss_flags = SS_DISABLE;
	bool sp_alt = on(&ss, sp);
	/* Innermost first: a live record has only live ones under it. */
	while (t_inflight.n > 0) {
		uintptr_t f = t_inflight.e[t_inflight.n - 1].frame;
		bool live = on(&ss, f) ? sp_alt && sp < f : sp_alt || sp < f;
		if (live)
			break;
		drop_to(t_inflight.n - 1);
	}
}

long uf__inflight_held(const _Atomic long *ref)
{
	long n = 0;
	for (int i = 0; i < t_inflight.n; i++)
		n += t_inflight.e[i].ref == ref;
	return n;
}

void uf_fault_leave(void)
{
	if (t_inflight.n > 0)
		drop_to(t_inflight.n - 1);
}

/* ---- the process-wide handler ---- */

static struct uf__slot g_handler;
static pthread_mutex_t g_handler_lock = PTHREAD_MUTEX_INITIALIZER;

int uf_handler_install(uf_area_fn fn, void *arg, unsigned when)
{
	if (!fn || !when || (when & ~(UF_HANDLER_FIRST | UF_HANDLER_LAST)))
		return -EINVAL;
	int r = uf__fault_init();
	if (r)
		return r;
	pthread_mutex_lock(&g_handler_lock);
	uf__slot_set(&g_handler, (void (*)(void))fn, arg, when);
	pthread_mutex_unlock(&g_handler_lock);
	return 0;
}

void uf__handler_after_fork(void) { uf__slot_after_fork(&g_handler, &g_handler_lock); }

int uf_handler_uninstall(void)
{
	pthread_mutex_lock(&g_handler_lock);
	uf__slot_set(&g_handler, NULL, NULL, 0);
	pthread_mutex_unlock(&g_handler_lock);
	return 0;
}

static UF_SIGCTX int call_handler(const struct uf__slot_val *hp, int phase, int sig, siginfo_t *si,
				  void *uc)
{
	struct uf__slot_val h = *hp;
	unsigned want = phase == UF_PHASE_FIRST ? UF_HANDLER_FIRST : UF_HANDLER_LAST;
	if (!h.fn || !(h.flags & want))
		return UF__PASS;
	struct uf_fault f = {
		.addr = si->si_addr,
		.access = uf__arch_access(uc),
		.sig = sig,
		.info = si,
		.ucontext = uc,
		.phase = phase,
	};
	int d = uf__inflight_push(NULL, uc);
	int r = ((uf_area_fn)h.fn)(&f, h.arg);
	uf__inflight_pop(d);
	return r == UF_HANDLED ? UF__HANDLED : UF__PASS;
}

UF_SIGCTX int uf__handler_fault(int sig, siginfo_t *si, void *uc)
{
	/* One read for both phases: a fault sees the old handler or the new
	 * one (uf_handler_install replacing it meanwhile), never the old one's
	 * phases for the first and the new one's for the last. */
	struct uf__slot_val h = uf__slot_get(&g_handler);
	if (call_handler(&h, UF_PHASE_FIRST, sig, si, uc) == UF__HANDLED)
		return UF__HANDLED;
	if (uf__stack_guard_fault(sig, si, uc) == UF__HANDLED)
		return UF__HANDLED;
	return call_handler(&h, UF_PHASE_LAST, sig, si, uc);
}

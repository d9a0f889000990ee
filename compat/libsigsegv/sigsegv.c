/* SPDX-License-Identifier: MIT */
/*
 * sigsegv.c - libsigsegv 2.14 on userfault's public API (nothing else:
 * no signal handler of its own, no private userfault symbol).
 *
 *   sigsegv_install_handler   -> uf_handler_install, both phases (serious 0/1)
 *   sigsegv_leave_handler     -> uf_fault_leave, then the continuation
 *   stackoverflow_install_... -> uf_stack_guard_thread_init_stack (the
 *                                caller's extra stack) + uf_stack_guard_install_ctx
 *   dispatcher                -> a sorted array published lock-free for
 *                                sigsegv_dispatch, writers under a mutex
 *
 * Unlike libsigsegv the dispatcher may be changed by one thread while others
 * fault and dispatch, and any thread that calls stackoverflow_install_handler
 * has its overflows caught (userfault knows each thread's guard).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigsegv.h"
#include "userfault.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int libsigsegv_version = LIBSIGSEGV_VERSION;

/* ---- the SIGSEGV handler ---- */

static _Atomic(sigsegv_handler_t) g_handler;

/* Signal context. The handler itself is read once per call: a concurrent
 * deinstall makes later faults see none. */
static int on_fault(const struct uf_fault *f, void *arg)
{
	(void)arg;
	sigsegv_handler_t h = atomic_load_explicit(&g_handler, memory_order_acquire);
	if (!h)
		return UF_PASS;
	return h(f->addr, f->phase == UF_PHASE_LAST) ? UF_HANDLED : UF_PASS;
}

EXPORT int sigsegv_install_handler(sigsegv_handler_t handler)
{
	atomic_store_explicit(&g_handler, handler, memory_order_release);
	if (!handler) {
		uf_handler_uninstall();
		return 0;
	}
	return uf_handler_install(on_fault, NULL, UF_HANDLER_FIRST | UF_HANDLER_LAST) ? -1 : 0;
}

EXPORT void sigsegv_deinstall_handler(void)
{
	atomic_store_explicit(&g_handler, NULL, memory_order_release);
	uf_handler_uninstall();
}

EXPORT int sigsegv_leave_handler(void (*continuation)(void *, void *, void *), void *cont_arg1,
				 void *cont_arg2, void *cont_arg3)
{
	/* Whatever userfault holds for the handler being left goes now; the
	 * kernel needs nothing reset (it tells "on the alternate stack" from
	 * the stack pointer). */
	uf_fault_leave();
	continuation(cont_arg1, cont_arg2, cont_arg3);
	return 1;
}

/* ---- stack overflow ---- */

static _Atomic(stackoverflow_handler_t) g_stk_handler;

static void on_overflow(const struct uf_overflow *ov, void *arg)
{
	(void)arg;
	stackoverflow_handler_t h = atomic_load_explicit(&g_stk_handler, memory_order_acquire);
	if (h)
		h(ov->interrupted_on_alt_stack, (stackoverflow_context_t)ov->ucontext);
}

EXPORT int stackoverflow_install_handler(stackoverflow_handler_t handler, void *extra_stack,
					 size_t extra_stack_size)
{
	if (!handler)
		return -1;
	if (uf_stack_guard_thread_init_stack(extra_stack, extra_stack_size))
		return -1;
	atomic_store_explicit(&g_stk_handler, handler, memory_order_release);
	return uf_stack_guard_install_ctx(on_overflow, NULL) ? -1 : 0;
}

EXPORT void stackoverflow_deinstall_handler(void)
{
	atomic_store_explicit(&g_stk_handler, NULL, memory_order_release);
	uf_stack_guard_uninstall();
	/* libsigsegv turns the calling thread's alternate stack off. */
	uf_stack_guard_thread_fini();
}

/* Exported by libsigsegv.so.2 although no header declares them; kept so
 * the symbol set is the same. Userfault's stack-overflow test does not need
 * the VMA walk, and Linux needs no on-stack flag reset. */
struct vma_struct;
EXPORT int sigsegv_get_vma(uintptr_t address, struct vma_struct *vma)
{
	(void)address, (void)vma;
	return -1;
}
EXPORT void sigsegv_reset_onstack_flag(void) {}

/* ---- dispatcher ----
 * Readers (sigsegv_dispatch, in signal context) announce themselves in one
 * of two counters chosen by the epoch, find the area in the published
 * sorted array and copy its handler out before leaving; writers copy the
 * array, publish the copy, and wait out both epochs before freeing what
 * they replaced. A handler that never returns holds nothing. */

struct area {
	uintptr_t start, last; /* last: the area's last byte (it may end at the top) */
	sigsegv_area_handler_t handler;
	void *arg;
};
struct table {
	size_t n;
	struct area *e[];
};
struct state {
	pthread_mutex_t lock;
	_Atomic(struct table *) table;
	_Atomic unsigned epoch;
	_Atomic long readers[2];
	struct state *next; /* in g_states */
};

/* Every dispatcher's state, for the fork child. Pushed once, never removed
 * (libsigsegv has no call that ends a dispatcher, so none is freed). */
static _Atomic(struct state *) g_states;

EXPORT void sigsegv_init(sigsegv_dispatcher *dispatcher)
{
	struct state *s = calloc(1, sizeof(*s));
	if (s) {
		pthread_mutex_init(&s->lock, NULL);
		s->next = atomic_load(&g_states);
		while (!atomic_compare_exchange_weak(&g_states, &s->next, s))
			;
	}
	dispatcher->tree = s;
}

/* In a fork child: the only thread is the one that forked. Readers the
 * parent's other threads had announced never leave here, so the child's
 * first sigsegv_register or sigsegv_unregister would wait for them
 * forever; and one of them may have held the lock. The table is always
 * whole (replaced by one atomic store); at worst one is never freed. */
static void after_fork_child(void)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	for (struct state *s = atomic_load(&g_states); s; s = s->next) {
		atomic_store(&s->readers[0], 0);
		atomic_store(&s->readers[1], 0);
		s->lock = fresh;
	}
}

/* At load time, once, before any dispatcher exists (as libuserfault's
 * own hook, src/fault.c). */
__attribute__((constructor)) static void at_load(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

static void grace_period(struct state *s)
{
	for (int k = 0; k < 2; k++) {
		unsigned e = atomic_fetch_add(&s->epoch, 1);
		while (atomic_load(&s->readers[e & 1]))
			sched_yield();
	}
}

/* Publishes t (under s->lock) and frees the array it replaces. */
static void publish(struct state *s, struct table *t)
{
	struct table *old = atomic_exchange(&s->table, t);
	grace_period(s);
	free(old);
}

EXPORT void *sigsegv_register(sigsegv_dispatcher *dispatcher, void *address, size_t len,
			      sigsegv_area_handler_t handler, void *handler_arg)
{
	struct state *s = dispatcher->tree;
	if (!s || len == 0)
		return NULL;
	struct area *a = malloc(sizeof(*a));
	if (!a)
		return NULL;
	a->start = (uintptr_t)address;
	a->last = a->start + (len - 1);
	if (a->last < a->start)
		a->last = UINTPTR_MAX; /* past the top: up to the last address */
	a->handler = handler;
	a->arg = handler_arg;
	pthread_mutex_lock(&s->lock);
	struct table *cur = atomic_load(&s->table);
	size_t n = cur ? cur->n : 0, pos = 0;
	while (pos < n && cur->e[pos]->start <= a->start)
		pos++;
	struct table *t = malloc(sizeof(*t) + (n + 1) * sizeof(t->e[0]));
	if (!t) {
		pthread_mutex_unlock(&s->lock);
		free(a);
		return NULL;
	}
	t->n = n + 1;
	if (pos)
		memcpy(t->e, cur->e, pos * sizeof(t->e[0]));
	t->e[pos] = a;
	if (n > pos)
		memcpy(t->e + pos + 1, cur->e + pos, (n - pos) * sizeof(t->e[0]));
	publish(s, t);
	pthread_mutex_unlock(&s->lock);
	return a;
}

EXPORT void sigsegv_unregister(sigsegv_dispatcher *dispatcher, void *ticket)
{
	struct state *s = dispatcher->tree;
	if (!s || !ticket)
		return;
	pthread_mutex_lock(&s->lock);
	struct table *cur = atomic_load(&s->table);
	size_t n = cur ? cur->n : 0, pos = 0;
	while (pos < n && cur->e[pos] != ticket)
		pos++;
	if (pos == n) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	struct table *t = NULL;
	if (n > 1) {
		t = malloc(sizeof(*t) + (n - 1) * sizeof(t->e[0]));
		if (!t) { /* cannot shrink: keep the entry, but make it inert */
			pthread_mutex_unlock(&s->lock);
			return;
		}
		t->n = n - 1;
		memcpy(t->e, cur->e, pos * sizeof(t->e[0]));
		memcpy(t->e + pos, cur->e + pos + 1, (n - pos - 1) * sizeof(t->e[0]));
	}
	publish(s, t);
	pthread_mutex_unlock(&s->lock);
	free(ticket); /* no reader can still see it */
}

/* Signal context. */
EXPORT int sigsegv_dispatch(sigsegv_dispatcher *dispatcher, void *fault_address)
{
	struct state *s = dispatcher->tree;
	if (!s)
		return 0;
	unsigned e;
	for (;;) {
		e = atomic_load(&s->epoch);
		atomic_fetch_add(&s->readers[e & 1], 1);
		if (atomic_load(&s->epoch) == e)
			break;
		atomic_fetch_sub(&s->readers[e & 1], 1);
	}
	uintptr_t addr = (uintptr_t)fault_address;
	sigsegv_area_handler_t h = NULL;
	void *arg = NULL;
	const struct table *t = atomic_load(&s->table);
	if (t) {
		/* The last area starting at or below addr. */
		size_t lo = 0, hi = t->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (t->e[mid]->start <= addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* Of the areas starting at or below addr, the last one that
		 * holds it: usually the nearest, but areas may overlap (one
		 * holding others), so look further down when it does not. */
		for (size_t i = lo; i > 0; i--)
			if (addr <= t->e[i - 1]->last) {
				h = t->e[i - 1]->handler;
				arg = t->e[i - 1]->arg;
				break;
			}
	}
	atomic_fetch_sub(&s->readers[e & 1], 1);
	return h ? h(fault_address, arg) : 0;
}

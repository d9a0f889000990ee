/* SPDX-License-Identifier: MIT */
/*
 * handler.h - the process-wide fault handler, call-out slots, and the
 * per-thread record of call-outs in flight (what a siglongjmp out of user
 * code would otherwise leak). Never installed.
 */
#ifndef UF_HANDLER_H
#define UF_HANDLER_H

#include <signal.h>

#include "internal.h"

/* A {fn, arg} pair that signal handlers read lock-free while another thread
 * replaces it: two buffers, the writer fills the one no reader uses and
 * flips. Readers hold it only while copying, never across the call-out, so a
 * call-out that never returns holds nothing. */
struct uf__slot {
	struct {
		void (*fn)(void);
		void *arg;
		unsigned flags;
	} buf[2];
	_Atomic unsigned cur;       /* index of the published buffer */
	_Atomic long readers[2];
};
struct uf__slot_val {
	void (*fn)(void);
	void *arg;
	unsigned flags;
};
/* Replaces the value (fn NULL: empty). Not signal context; callers
 * serialise (one mutex per slot). */
void uf__slot_set(struct uf__slot *s, void (*fn)(void), void *arg, unsigned flags);
UF_SIGCTX struct uf__slot_val uf__slot_get(struct uf__slot *s);
/* In a fork child: forgets readers the parent's other threads announced
 * (they never leave here, and the next uf__slot_set would wait for them),
 * and resets the slot's mutex (one of them may have held it). */
void uf__slot_after_fork(struct uf__slot *s, pthread_mutex_t *lock);
/* That, for the process-wide handler and for the overflow callback. */
void uf__handler_after_fork(void);
void uf__stack_guard_after_fork(void);

/* In-flight records. Every call-out from fault context pushes one (with
 * the reference it holds, or NULL) and pops it when the user code returns.
 * A record left behind by a siglongjmp is released by uf_fault_leave, at the
 * thread's next fault (its frame is gone: see handler.c), or when the same
 * thread calls uf_area_unregister. Returns the record's depth, or -1 if
 * the table is full (the caller then keeps its reference the old way). */
UF_SIGCTX int uf__inflight_push(_Atomic long *ref, const void *uc);
UF_SIGCTX void uf__inflight_pop(int depth);
/* Drops the records whose frames are gone, seen from code whose stack
 * pointer is sp (an interrupted context's, or the caller's own). */
UF_SIGCTX void uf__inflight_reap(uintptr_t sp);
/* How many of this thread's records hold a reference on ref (a fork
 * child: the only references that can still be dropped). */
long uf__inflight_held(const _Atomic long *ref);

/* 4. The process-wide handler around the stack guard: its first call,
 * the stack guard, its last call. */
UF_SIGCTX int uf__handler_fault(int sig, siginfo_t *si, void *uc);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * registry.h - address -> owner lookup, lock-free for readers in signal
 * context while other threads add and remove entries.
 */
#ifndef UF_REGISTRY_H
#define UF_REGISTRY_H

#include "internal.h"

enum uf__kind {
	UF__KIND_REGION = 1, /* obj is a struct uf_region */
	UF__KIND_AREA = 2,   /* obj is a struct uf_area (raw handler) */
};

struct uf__range {
	uintptr_t start, end; /* [start, end) */
	int kind;
	void *obj;
	_Atomic long *refs; /* optional: users outside a read section */
	pid_t pid;          /* the process that added it */
};

/* Adds [start, end). -EEXIST if it overlaps an entry, -ENOMEM. Region
 * entries a parent process added are dropped first: a fork child does not
 * inherit regions (MADV_DONTFORK), so their addresses are free for its own. */
int uf__registry_add(uintptr_t start, uintptr_t end, int kind, void *obj);
/* The same, with a reference count owned by obj: uf__registry_get takes a
 * reference that outlives the read section (so the caller may run code that
 * never returns, like a user callback leaving by siglongjmp, after dropping
 * it), and uf__registry_remove also waits for the count to reach zero. */
int uf__registry_add_ref(uintptr_t start, uintptr_t end, int kind, void *obj, _Atomic long *refs);
/* Removes the entry of obj and returns only when no signal handler can still
 * be using it (a grace period over the readers). -ENOENT if absent. */
int uf__registry_remove(void *obj);
/* In a fork child (pthread_atfork): forgets the parent's other threads'
 * readers and the write lock one of them may have held. */
void uf__registry_after_fork(void);

/* A read-side critical section. Everything found between enter and exit stays
 * valid (not freed) until exit. Nestable, async-signal-safe, no locks. */
UF_SIGCTX unsigned uf__registry_enter(void);
UF_SIGCTX void uf__registry_exit(unsigned token);
UF_SIGCTX bool uf__registry_find(uintptr_t addr, struct uf__range *out);
/* The same section for code outside the fault handlers (whose sa_mask
 * already holds them back): asynchronous signals wait until exit, so a
 * signal handler can neither leave the section by siglongjmp (its reader
 * would stay counted, and every later writer would wait for it for ever)
 * nor fork inside it (the child's count would go below zero). */
UF_SIGCTX unsigned uf__registry_enter_masked(sigset_t *old);
UF_SIGCTX void uf__registry_exit_masked(unsigned token, const sigset_t *old);
/* Finds addr and, if the entry has a count, takes a reference (drop it with
 * uf__registry_put). No read section needed around it. */
UF_SIGCTX bool uf__registry_get(uintptr_t addr, struct uf__range *out);
UF_SIGCTX void uf__registry_put(const struct uf__range *rg);

#endif

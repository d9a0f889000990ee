/*
 * area.c - raw per-range fault handlers (uf_area_register/unregister).
 *
 * An area is an entry in the registry (registry.c) pointing at a small
 * immutable object {fn, arg} with a reference count. The fault dispatcher
 * finds it lock-free and holds a reference while the handler runs;
 * unregistering waits for the count to drop to zero, so the object can be
 * freed right after. The reference is noted as in flight (handler.c) so a
 * handler left by siglongjmp does not keep it forever.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>

#include "arch/arch.h"
#include "fault.h"
#include "handler.h"
#include "registry.h"

struct uf_area {
	uintptr_t start, end;
	uf_area_fn fn;
	void *arg;
	_Atomic long refs; /* faults running the handler now */
};

int uf_area_register(void *addr, size_t len, uf_area_fn fn, void *arg, uf_area **out)
{
	if (!addr || !len || !fn || !out || (uintptr_t)addr + len < (uintptr_t)addr)
		return -EINVAL;
	int r = uf__fault_init();
	if (r)
		return r;
	struct uf_area *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->start = (uintptr_t)addr;
	a->end = (uintptr_t)addr + len;
	a->fn = fn;
	a->arg = arg;
	atomic_init(&a->refs, 0);
	r = uf__registry_add_ref(a->start, a->end, UF__KIND_AREA, a, &a->refs);
	if (r) {
		free(a);
		return r;
	}
	*out = a;
	return 0;
}

int uf_area_unregister(uf_area *a)
{
	if (!a)
		return -EINVAL;
	/* This thread's own handler calls left by a jump are over (it is not
	 * inside the area's handler): release them before waiting. */
	uf__inflight_reap((uintptr_t)__builtin_frame_address(0));
	/* Returns once no handler still runs a->fn (the reference count is 0). */
	int r = uf__registry_remove(a);
	if (r)
		return r;
	free(a);
	return 0;
}

UF_SIGCTX int uf__area_fault(const struct uf__range *rg, int sig, siginfo_t *si, void *uc)
{
	const struct uf_area *a = rg->obj;
	struct uf_fault f = {
		.addr = si->si_addr,
		.access = uf__arch_access(uc),
		.sig = sig,
		.info = si,
		.ucontext = uc,
	};
	/* The record owns the reference from here on. */
	int d = uf__inflight_push(rg->refs, uc);
	int r = a->fn(&f, a->arg);
	if (d >= 0)
		uf__inflight_pop(d);
	else
		uf__registry_put(rg); /* the table was full: not leave-safe */
	return r == UF_HANDLED ? UF__HANDLED : UF__PASS;
}

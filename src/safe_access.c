/* SPDX-License-Identifier: MIT */
/*
 * safe_access.c - fault-safe memory access: uf_try_read, uf_try_write,
 * uf_probe, and the fault hook that turns a fault inside one of the copy
 * routines of arch/<arch>/copy.S into an -EFAULT return.
 *
 * The success path is the assembly copy and nothing else: no setjmp, no
 * system call, no per-thread state. All the work happens on a fault: the
 * dispatcher (fault.c) calls uf__safe_access_fixup() first; it looks the PC
 * up in the exception table and rewrites PC and return register.
 */
#define _GNU_SOURCE
#include <signal.h>

#include "arch/arch.h"
#include "fault.h"
#include "registry.h"
#include "safe_access.h"

static const struct uf__extable_entry *find_entry(uintptr_t pc)
{
	/* A dozen entries: a linear scan is as fast as anything else. */
	for (const struct uf__extable_entry *e = uf__extable_start; e < uf__extable_end; e++)
		if ((uintptr_t)&e->insn + (intptr_t)e->insn == pc)
			return e;
	return NULL;
}

static inline uintptr_t fixup_addr(const struct uf__extable_entry *e)
{
	return (uintptr_t)&e->fixup + (intptr_t)e->fixup;
}

/* Makes the copy at entry e return -EFAULT (from its fixup). */
UF_SIGCTX static void fail_copy(void *uc, const struct uf__extable_entry *e)
{
	uf__arch_set_ret(uc, (uintptr_t)(intptr_t)-EFAULT);
	uf__arch_set_pc(uc, fixup_addr(e));
}

UF_SIGCTX bool uf__safe_access_fail(void *uc)
{
	uintptr_t pc = uf__arch_pc(uc);
	if (pc < (uintptr_t)uf__safe_text_start || pc >= (uintptr_t)uf__safe_text_end)
		return false;
	const struct uf__extable_entry *e = find_entry(pc);
	if (!e)
		return false;
	fail_copy(uc, e);
	return true;
}

/* The page whose owner (region or area) has already declined an access
 * of this thread's current copy: the copy routines fault on it again while
 * they find the exact first bad byte, and that fault fails without asking
 * the owner again (uf_try_read(3): "if it passes, the copy fails"). Reset
 * by each call (one store, the copy stays a tail call). A copy inside the
 * owner's handler resets it before the outer copy sets it; one in a signal
 * handler between the decline and the retry only makes the retry ask the
 * owner again. The page address | 1 (page 0 too is a page), or 0: none. */
static __thread uintptr_t t_declined __attribute__((tls_model("initial-exec")));

UF_SIGCTX int uf__safe_access_fixup(int sig, siginfo_t *si, void *uc)
{
	uintptr_t pc = uf__arch_pc(uc);
	if (uf__likely(pc < (uintptr_t)uf__safe_text_start || pc >= (uintptr_t)uf__safe_text_end))
		return UF__PASS;
	const struct uf__extable_entry *e = find_entry(pc);
	if (!e)
		return UF__PASS;
	uintptr_t page = uf__align_down((uintptr_t)si->si_addr, uf__page_size()) | 1;
	if (t_declined == page) {
		fail_copy(uc, e);
		return UF__HANDLED;
	}

	/* The address may belong to a userfault region or a raw area whose
	 * handler makes it accessible (load the page, mprotect it): let that
	 * owner serve it first, so the instruction runs again and succeeds.
	 * Only if the owner declines is the copy made to fail. */
	int ret = UF__PASS;
	struct uf__range rg;
	if (uf__registry_get((uintptr_t)si->si_addr, &rg)) {
		if (rg.kind == UF__KIND_REGION)
			ret = uf__region_fault(&rg, sig, si, uc); /* drops the reference */
		else if (rg.kind == UF__KIND_AREA)
			ret = uf__area_fault(&rg, sig, si, uc); /* drops the reference */
		else
			uf__registry_put(&rg);
	}
	if (ret != UF__PASS && ret != UF__DENIED) {
		/* Served, or failed by the owner itself (a region's failed load
		 * moves the copy to its fixup: uf__safe_access_fail). */
		if (uf__arch_pc(uc) == fixup_addr(e))
			t_declined = page;
		return ret;
	}
	t_declined = page;
	fail_copy(uc, e);
	return UF__HANDLED;
}

/* The handler must be installed before the first fault; after the first
 * call this is one load. */
static _Atomic int g_ready;
static inline int ensure_handler(void)
{
	if (uf__likely(atomic_load_explicit(&g_ready, memory_order_acquire)))
		return 0;
	int r = uf__fault_init();
	if (r == 0)
		atomic_store_explicit(&g_ready, 1, memory_order_release);
	return r;
}

static inline bool wraps(const void *p, size_t n) { return (uintptr_t)p + n < (uintptr_t)p; }

UF_SIGCTX int uf_try_read(void *dst, const void *src, size_t n)
{
	/* A range that wraps around the address space is not memory: -EFAULT,
	 * nothing copied. Below 4 KiB no check is needed on the hot path: such
	 * a range starts in the last page, which is kernel space on every
	 * supported architecture, so the very first access faults. */
	if (uf__unlikely(n >= 4096) && (wraps(dst, n) || wraps(src, n)))
		return -EFAULT;
	int r = ensure_handler();
	if (uf__unlikely(r))
		return r;
	t_declined = 0;
	return uf__try_copy(dst, src, n);
}

UF_SIGCTX int uf_try_write(void *dst, const void *src, size_t n)
{
	/* The same routine protects both sides; the name says which side the
	 * caller expects to be doubtful. */
	return uf_try_read(dst, src, n);
}

UF_SIGCTX int uf_probe(const void *addr, size_t n, int access)
{
	if (uf__unlikely(!access || (access & ~(UF_PROBE_READ | UF_PROBE_WRITE))))
		return -EINVAL;
	if (!n)
		return 0;
	if (wraps(addr, n))
		return -EFAULT;
	int r = ensure_handler();
	if (uf__unlikely(r))
		return r;
	size_t ps = uf__page_size();
	uintptr_t p = (uintptr_t)addr, end = p + n;
	t_declined = 0;
	/* One byte per page, starting at addr itself; every later page at its
	 * first byte. Protection is per page, so that decides for all of it. */
	for (;;) {
		if ((access & UF_PROBE_WRITE) ? uf__probe_write1((void *)p) : uf__probe_read1((const void *)p))
			return -EFAULT;
		p = uf__align_down(p, ps) + ps;
		if (p >= end || p == 0)
			return 0;
	}
}

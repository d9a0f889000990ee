/* SPDX-License-Identifier: MIT */
/*
 * fault.h - the process-wide SIGSEGV/SIGBUS entry and the hooks it calls,
 * in dispatch order. Each hook runs in signal context and returns
 * UF__PASS when the fault is not its business.
 */
#ifndef UF_FAULT_H
#define UF_FAULT_H

#include <signal.h>

#include "internal.h"

#define UF__PASS 0
#define UF__HANDLED 1
/* uf__region_fault only: the access breaks the region's protection (a write
 * to a read-only region). Not served; the program gets SIGSEGV, and a
 * fault-safe copy fails. */
#define UF__DENIED 2

/* Installs the handlers once (idempotent, thread-safe). */
UF_SIGCTX int uf__fault_init(void);

/* Whether the process's handler for sig is still ours (not replaced by a
 * handler the program installed after the library). A system call. */
bool uf__fault_handler_current(int sig);

/* The dispatcher; also the body of the public uf_handle_fault(). Returns
 * UF__HANDLED, UF__PASS, or UF__DENIED (a write breaking a region's
 * protection: the program's fault, whatever signal the engine saw). */
UF_SIGCTX int uf__fault_dispatch(int sig, siginfo_t *si, void *uc);

/* Gives the thread a SIGBUS for addr exactly as a failed file-mapping read
 * would: the previously installed SIGBUS handler runs with si_addr = addr,
 * or, without one, the process dies of SIGBUS. Returns if that handler
 * returns (the faulting instruction then runs again). */
UF_SIGCTX void uf__fault_deliver_sigbus(void *addr, void *uc);
/* The same for any fault signal and si_code (e.g. SIGSEGV/SEGV_ACCERR). */
UF_SIGCTX void uf__fault_deliver(int sig, int code, void *addr, void *uc);

/* 1. safe_access.c: is the faulting PC inside one of our copy routines? */
UF_SIGCTX int uf__safe_access_fixup(int sig, siginfo_t *si, void *uc);
/* 2. pager.c: a fault inside a userfault region; rg->obj is the region,
 * referenced: the hook drops the reference (uf__registry_put) before
 * running anything that may not return (error callback, SIGBUS handler). */
struct uf__range;
UF_SIGCTX int uf__region_fault(const struct uf__range *rg, int sig, siginfo_t *si, void *uc);
/* 3. area.c: a user's raw per-range handler; rg->obj is the area,
 * referenced: the hook drops the reference (leave-safe, see handler.c). */
UF_SIGCTX int uf__area_fault(const struct uf__range *rg, int sig, siginfo_t *si, void *uc);
/* 4. handler.c: the process-wide handler, first call; 5. stackguard.c: a
 * stack overflow; 6. handler.c: the process-wide handler, last call.
 * uf__handler_fault runs all three. */
UF_SIGCTX int uf__stack_guard_fault(int sig, siginfo_t *si, void *uc);

#endif

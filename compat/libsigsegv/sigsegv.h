/* SPDX-License-Identifier: MIT */
/*
 * sigsegv.h - the GNU libsigsegv 2.14 interface, implemented on userfault's
 * public API (compat/libsigsegv/sigsegv.c). Source compatible with programs
 * written for libsigsegv; the library built from it (libsigsegv.so.2) is a
 * drop-in for the system's. See README "Replacing libsigsegv".
 */
#ifndef _SIGSEGV_H
#define _SIGSEGV_H

#include <stddef.h>
#include <ucontext.h>
#include <signal.h>

/* glibc 2.34 made SIGSTKSZ a run-time value under _GNU_SOURCE; programs
 * written for libsigsegv size static alternate stacks with it, so it is a
 * constant here, large enough for any signal frame (AVX-512 included). */
#if defined __GLIBC__ && __GLIBC__ >= 2
#undef SIGSTKSZ
#define SIGSTKSZ 65536
#endif

/* Both capabilities are available on every system userfault supports. */
#define HAVE_SIGSEGV_RECOVERY 1
#define HAVE_STACK_OVERFLOW_RECOVERY 1

#ifdef __cplusplus
extern "C" {
#endif

#define LIBSIGSEGV_VERSION 0x020E /* (major << 8) + minor: 2.14 */
extern int libsigsegv_version;    /* the same, of the library loaded */

/* The fault address passed to handlers is exact (not rounded). */
#define SIGSEGV_FAULT_ADDRESS_ALIGNMENT 1UL

/* ---- SIGSEGV handler ----
 * Called for every SIGSEGV/SIGBUS the program does not expect userfault to
 * serve: first with serious == 0 (before the stack overflow check), then,
 * if it returned 0 and the fault was no stack overflow (or the overflow
 * handler returned), with serious == 1. Return nonzero once the access can
 * succeed: it is retried. Return 0 to decline: the fault goes to the
 * SIGSEGV/SIGBUS handler the program installed before this library, or,
 * without one, the process dies of it. */
typedef int (*sigsegv_handler_t)(void *fault_address, int serious);
/* Installs the handler (replacing an earlier one). 0, or -1. */
extern int sigsegv_install_handler(sigsegv_handler_t handler);
extern void sigsegv_deinstall_handler(void);

/* Leaves a handler (SIGSEGV or stack overflow): calls continuation with
 * the three arguments; the continuation is expected to longjmp out. Returns
 * 1 if it returns. */
extern int sigsegv_leave_handler(void (*continuation)(void *, void *, void *), void *cont_arg1,
				 void *cont_arg2, void *cont_arg3);

/* ---- stack overflow handler ----
 * Called on the alternate stack extra_stack (extra_stack_size bytes, made
 * the calling thread's alternate signal stack) when a thread with an
 * alternate stack overflows its stack. Other threads are protected by
 * calling stackoverflow_install_handler themselves (each with its own
 * extra stack). emergency is 1 if the overflow
 * happened while already on the alternate stack (save state and exit). scp
 * is the interrupted context. It must leave (sigsegv_leave_handler or
 * longjmp); if it returns, the SIGSEGV handler gets its serious call. */
typedef ucontext_t *stackoverflow_context_t;
typedef void (*stackoverflow_handler_t)(int emergency, stackoverflow_context_t scp);
/* 0, or -1 (no alternate stack could be installed). */
extern int stackoverflow_install_handler(stackoverflow_handler_t handler, void *extra_stack,
					 size_t extra_stack_size);
extern void stackoverflow_deinstall_handler(void);

/* ---- dispatcher: many areas, one SIGSEGV handler ---- */
typedef int (*sigsegv_area_handler_t)(void *fault_address, void *user_arg);
typedef struct sigsegv_dispatcher {
	void *tree;
} sigsegv_dispatcher;
extern void sigsegv_init(sigsegv_dispatcher *dispatcher);
/* Returns a ticket for sigsegv_unregister, NULL if len is 0 (or no memory). */
extern void *sigsegv_register(sigsegv_dispatcher *dispatcher, void *address, size_t len,
			      sigsegv_area_handler_t handler, void *handler_arg);
extern void sigsegv_unregister(sigsegv_dispatcher *dispatcher, void *ticket);
/* Calls the handler of the area containing fault_address and returns its
 * result; 0 if no area contains it. Where areas overlap, the one starting
 * last answers (of those starting at the same address, the one registered
 * last). Async-signal-safe. */
extern int sigsegv_dispatch(sigsegv_dispatcher *dispatcher, void *fault_address);

#ifdef __cplusplus
}
#endif
#endif /* _SIGSEGV_H */

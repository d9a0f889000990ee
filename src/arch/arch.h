/*
 * arch/arch.h - the architecture interface: what the fault path needs to know
 * about a ucontext. One implementation per folder (x86_64/, aarch64/); the
 * Makefile compiles the one matching the target. No #ifdefs in callers.
 */
#ifndef UF_ARCH_H
#define UF_ARCH_H

#include <stdint.h>

#include "../fmt.h"

/* UF_ACCESS_READ/WRITE/EXEC from the hardware's fault record, or
 * UF_ACCESS_UNKNOWN if the context carries none. */
UF_SIGCTX int uf__arch_access(const void *ucontext);
/* The raw fault record: x86 page-fault error code, aarch64 ESR_EL1.
 * *valid is set to 0 when the kernel did not provide one. */
UF_SIGCTX uint64_t uf__arch_fault_code(const void *ucontext, int *valid);
UF_SIGCTX uintptr_t uf__arch_pc(const void *ucontext);
UF_SIGCTX void uf__arch_set_pc(void *ucontext, uintptr_t pc);
UF_SIGCTX uintptr_t uf__arch_sp(const void *ucontext);
/* Sets the integer return-value register (rax / x0). Used by exception-table
 * fixups in the fault-safe copy routines. */
UF_SIGCTX void uf__arch_set_ret(void *ucontext, uintptr_t v);
/* Name of the architecture, for messages. */
extern const char uf__arch_name[];
/* Appends a decoded description of the fault record to o ("W: write,
 * P: protection ..."). Signal-safe: fmt.h, no stdio. */
UF_SIGCTX void uf__arch_decode(uint64_t code, struct uf__out *o);

#endif

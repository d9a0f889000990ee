/* SPDX-License-Identifier: MIT */
/*
 * stackguard.h - the stack overflow test, for other fault consumers (the
 * crash explanation). Never installed.
 */
#ifndef UF_STACKGUARD_H
#define UF_STACKGUARD_H

#include <signal.h>

#include "internal.h"

/* True if the fault looks like the calling thread running out of stack (see
 * stackguard.c for the rules). Must be called in the faulting thread. */
UF_SIGCTX bool uf__stack_overflow_check(const siginfo_t *si, const void *uc);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * explain.h - pieces of the crash explainer shared with the preloadable
 * crash reporter (src/catch/). Everything here is async-signal-safe: no
 * malloc, no stdio, no locks; /proc/self/maps and ELF symbol tables are
 * read with open/pread into stack buffers.
 */
#ifndef UF_EXPLAIN_H
#define UF_EXPLAIN_H

#include "internal.h"

/*
 * Describes a code address: "0x7f12 in memcpy+0x1f (libc.so.6+0x9a12)".
 * With return_addr set, the symbol is looked up for pc - 1 (a return address
 * points after its call, possibly past the end of the calling function).
 * Returns the length wanted, like snprintf; buf is always NUL-terminated.
 */
UF_SIGCTX int uf__explain_code_addr(uintptr_t pc, int return_addr, char *buf, size_t len);

/* The permissions ("r-xp") of the mapping holding addr; -ENOENT if none. */
UF_SIGCTX int uf__explain_perms(uintptr_t addr, char perms[5]);

/*
 * The return address of the call that led to a jump to a bad address (the
 * word at SP on x86_64, the link register on aarch64), or 0. Only meaningful
 * right after a call into unmapped or non-executable memory.
 */
UF_SIGCTX uintptr_t uf__explain_caller(const void *ucontext);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * safe_access.h - the exception table of the fault-safe copy routines
 * (arch/<arch>/copy.S) and the hooks other files may use. Never installed.
 */
#ifndef UF_SAFE_ACCESS_H
#define UF_SAFE_ACCESS_H

#include "internal.h"

#define UF__HIDDEN __attribute__((visibility("hidden")))

/* One entry per instruction of copy.S that may fault on a caller's address:
 * offsets relative to the field itself (no dynamic relocations needed). */
struct uf__extable_entry {
	int32_t insn;
	int32_t fixup;
};
UF__HIDDEN extern const struct uf__extable_entry uf__extable_start[], uf__extable_end[];
/* All routines below lie in [uf__safe_text_start, uf__safe_text_end). */
UF__HIDDEN extern const char uf__safe_text_start[], uf__safe_text_end[];

/* Copies n bytes. err is 0 or -EFAULT; left is the number of bytes NOT
 * copied. On a fault exactly the bytes before the first inaccessible one (in
 * src or dst) are copied and nothing at or after it is written. No system
 * call, no state. uf__try_copy is the same routine seen as returning err
 * only (so uf_try_read can tail-call it). */
struct uf__copy_ret {
	long err;    /* rax / x0 */
	size_t left; /* rdx / x1 */
};
UF__HIDDEN UF_SIGCTX struct uf__copy_ret uf__copy_safe(void *dst, const void *src, size_t n);
UF__HIDDEN UF_SIGCTX int uf__try_copy(void *dst, const void *src, size_t n);
/* One load / one atomic no-op store of the byte at p: 0 or -EFAULT. */
UF__HIDDEN UF_SIGCTX int uf__probe_read1(const void *p);
UF__HIDDEN UF_SIGCTX int uf__probe_write1(void *p);

/* For fault hooks that decide a fault cannot be served (a region whose store
 * failed, say): if the fault's PC is in one of the routines above, make that
 * routine fail with -EFAULT instead and return true (the caller then returns
 * "handled"); false if the PC is not ours. */
UF_SIGCTX bool uf__safe_access_fail(void *uc);

#endif

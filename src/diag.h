/* SPDX-License-Identifier: MIT */
/* diag.h - hooks into diag.c (USERFAULT_VERBOSE, USERFAULT_STATS,
 * USERFAULT_PUBLISH). Each is one call at the place the decision or event
 * happens; none runs in signal context except the store timing. */
#ifndef UF_DIAG_H
#define UF_DIAG_H

#include "internal.h"

struct uf_region;
/* An engine was refused for a region under UF_ENGINE_AUTO (step: "probe"
 * or "attach"); the next one is tried. */
void uf__diag_refused(int engine, int err, const char *step);
/* A region was mapped with options o and a budget of budget bytes asked. */
void uf__diag_mapped(struct uf_region *r, const struct uf_map_opts *o, size_t budget);
/* At exit, after the exit-time write-back: the STATS lines of the regions
 * still mapped, and the PUBLISH file removed. */
void uf__diag_at_exit(void);
/* A region is about to go away (its write-back succeeded). */
void uf__diag_unmapping(struct uf_region *r);

/* Store-call timing, on once a region wants statistics. */
extern _Atomic bool uf__diag_timing;
UF_SIGCTX uint64_t uf__diag_now_ns(void);
UF_SIGCTX static inline uint64_t uf__diag_start(void)
{
	return atomic_load_explicit(&uf__diag_timing, memory_order_relaxed) ? uf__diag_now_ns() : 0;
}
UF_SIGCTX static inline void uf__diag_stop(_Atomic uint64_t *total, uint64_t t0)
{
	if (t0)
		atomic_fetch_add_explicit(total, uf__diag_now_ns() - t0, memory_order_relaxed);
}

#endif

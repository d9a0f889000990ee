/* SPDX-License-Identifier: MIT */
/* memlimit.h - what the out-of-memory tests (RLIMIT_AS, a memory cgroup)
 * share: a computed store whose every word says its offset, and the
 * SIGBUS / error-callback pair that records how a load failed. */
#ifndef UF_TEST_MEMLIMIT_H
#define UF_TEST_MEMLIMIT_H
#include <setjmp.h>

#include "common.h"

static sigjmp_buf jb;
static _Atomic int cb_err;
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	siglongjmp(jb, 1);
}
static int give_up(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)arg;
	cb_err = err;
	return UF_ERR_SIGBUS;
}

static int fill_fn(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	uint64_t *d = dst;
	for (size_t i = 0; i < len / 8; i++)
		d[i] = off + i * 8 + 1;
	return 0;
}
#endif

/* SPDX-License-Identifier: MIT */
/*
 * inject.h - a fault-injecting store wrapper for the tests.
 *
 * inject_wrap() puts a wrapper in front of any store (a built-in one or a
 * test's own): every read and write goes to the inner store's vtable unless
 * the wrapper decides to fail it. It can fail
 *   - with a probability (parts per million, from a seeded hash of the call
 *     number: the same seed gives the same decisions for the same call order),
 *   - at chosen call numbers (the Nth read or write),
 *   - for calls overlapping a chosen byte range of the store,
 * after doing part of the work first (a read fills half the buffer with
 * garbage, a write writes the first half to the inner store), and it can
 * delay calls (every call, or those overlapping the range). It can also
 * break the store contract on purpose: report success for a read that
 * filled only part of the buffer. Switch it off with inj->on = 0.
 *
 * Store calls may run in a signal handler in the faulting thread: the
 * wrapper uses only atomics and nanosleep.
 *
 * The wrapper owns the caller's reference to the inner store: closing the
 * wrapper store closes it.
 */
#ifndef UF_TEST_INJECT_H
#define UF_TEST_INJECT_H

#include <stdatomic.h>
#include <time.h>

#include "harness.h"
#include "store.h" /* struct uf_store: the inner store's vtable and context */

struct inject {
	_Atomic int on;           /* 0: pass everything through */
	uint64_t seed;
	/* Fields that may change while the store is in use are atomic (handler
	 * threads read them); the rest are set before uf_map. */
	_Atomic unsigned read_fail_ppm; /* probability of failing a read, per million */
	_Atomic unsigned write_fail_ppm;
	_Atomic uint64_t read_fail_at;  /* fail the read with this call number (1-based; 0: none) */
	_Atomic uint64_t write_fail_at;
	_Atomic int fail_next_writes;   /* > 0: fail that many next writes */
	_Atomic int fail_next_reads;
	uint64_t range_lo, range_hi;    /* [lo, hi): calls overlapping it ... */
	int fail_range_reads;           /* ... fail (reads) */
	int fail_range_writes;          /* ... fail (writes) */
	unsigned delay_range_us;        /* ... are delayed this long */
	unsigned delay_us;              /* every call is delayed this long */
	int partial;                    /* a failing call does half its work first */
	int short_read;                 /* contract breach: reads fill only their first half, return 0 */
	int err;                        /* the error injected (default -EIO) */
	unsigned store_flags;           /* uf_store_ops.flags of the wrapper (UF_STORE_NOT_SIGSAFE) */

	/* counters */
	_Atomic uint64_t reads, writes, read_fails, write_fails;

	uf_store *inner;
};

static inline uint64_t inject_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static inline void inject_sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

/* Whether call number n (1-based) of this kind at [off, off+len) fails. */
static inline int inject_decide(struct inject *j, uint64_t n, uint64_t off, size_t len, int write)
{
	if (!atomic_load_explicit(&j->on, memory_order_relaxed))
		return 0;
	int overlaps = off < j->range_hi && off + len > j->range_lo;
	if (overlaps && (j->delay_range_us))
		inject_sleep_us(j->delay_range_us);
	if (j->delay_us)
		inject_sleep_us(j->delay_us);
	if (overlaps && (write ? j->fail_range_writes : j->fail_range_reads))
		return 1;
	_Atomic int *next = write ? &j->fail_next_writes : &j->fail_next_reads;
	int k = atomic_load(next);
	while (k > 0)
		if (atomic_compare_exchange_weak(next, &k, k - 1))
			return 1;
	if (n == atomic_load(write ? &j->write_fail_at : &j->read_fail_at))
		return 1;
	unsigned ppm = write ? j->write_fail_ppm : j->read_fail_ppm;
	return ppm && inject_mix(j->seed ^ (n << 1) ^ (uint64_t)write) % 1000000 < ppm;
}

static int inject_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct inject *j = ctx;
	uint64_t n = atomic_fetch_add(&j->reads, 1) + 1;
	if (inject_decide(j, n, off, len, 0)) {
		atomic_fetch_add(&j->read_fails, 1);
		if (j->partial) /* work done, then the error: the caller must not use it */
			memset(dst, 0xA5, len / 2);
		return j->err ? j->err : -EIO;
	}
	if (atomic_load_explicit(&j->on, memory_order_relaxed) && j->short_read)
		len /= 2; /* the rest of dst keeps whatever it held */
	return j->inner->ops.read(j->inner->ctx, off, dst, len);
}

static int inject_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct inject *j = ctx;
	if (!j->inner->ops.write)
		return -EROFS;
	uint64_t n = atomic_fetch_add(&j->writes, 1) + 1;
	if (inject_decide(j, n, off, len, 1)) {
		atomic_fetch_add(&j->write_fails, 1);
		if (j->partial && len / 2) /* a torn write: the retry must redo it all */
			(void)j->inner->ops.write(j->inner->ctx, off, src, len / 2);
		return j->err ? j->err : -EIO;
	}
	return j->inner->ops.write(j->inner->ctx, off, src, len);
}

static int inject_flush(void *ctx)
{
	struct inject *j = ctx;
	return j->inner->ops.flush ? j->inner->ops.flush(j->inner->ctx) : 0;
}

static void inject_close(void *ctx)
{
	struct inject *j = ctx;
	uf_store_close(j->inner);
}

/* A store in front of inner (whose reference it takes over), configured by
 * *j (which must outlive the store). The injector starts off. */
static inline uf_store *inject_wrap(struct inject *j, uf_store *inner)
{
	const struct uf_store_ops ops = {.struct_size = sizeof(ops),
					 .read = inject_read,
					 .write = inject_write,
					 .flush = inject_flush,
					 .close = inject_close,
					 .flags = j->store_flags};
	j->inner = inner;
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, j, (uint64_t)uf_store_size(inner), &s));
	return s;
}

#endif

/* SPDX-License-Identifier: MIT */
/* common.h - region fixtures shared by the engine tests. */
#ifndef UF_TEST_COMMON_H
#define UF_TEST_COMMON_H

#include <stdbool.h>
#include <sys/mman.h>

#include "harness.h"

struct fixture {
	unsigned char *buf; /* the store's bytes */
	size_t size;
	uf_store *store;
	uf_region *r;
	unsigned char *p; /* the region */
};

/* uf_map_opts.flags for the next fixture_open. */
static unsigned fixture_map_flags;

static inline size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* A memory store holding the pattern, mapped read-write with the engine
 * under test; bs and budget in bytes (0 = defaults). */
static inline void fixture_open(struct fixture *fx, size_t size, size_t bs, size_t budget, int prot)
{
	memset(fx, 0, sizeof(*fx));
	fx->size = size;
	fx->buf = pattern_store(size, &fx->store);
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	o.max_resident = budget;
	o.flags = fixture_map_flags;
	ASSERT_OK(uf_map(fx->store, 0, size, prot, &o, &fx->r));
	fx->p = uf_region_addr(fx->r);
}

/* A store of the test's own ops (ctx NULL) mapped whole with protection
 * prot, the engine under test and the given uf_map_opts.flags; the store
 * in *sp. */
static inline uf_region *map_user_store_prot(const struct uf_store_ops *ops, size_t size, unsigned flags,
					     int prot, uf_store **sp)
{
	uf_store *s;
	ASSERT_OK(uf_store_new(ops, NULL, size, &s));
	*sp = s;
	struct uf_map_opts o = test_map_opts();
	o.flags = flags;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, prot, &o, &r));
	return r;
}

/* The same, read-write. */
static inline uf_region *map_user_store(const struct uf_store_ops *ops, size_t size, unsigned flags,
					uf_store **sp)
{
	return map_user_store_prot(ops, size, flags, PROT_READ | PROT_WRITE, sp);
}

static inline void fixture_close(struct fixture *fx, unsigned flags)
{
	ASSERT_OK(uf_unmap(fx->r, flags));
	ASSERT_OK(uf_store_close(fx->store));
	free(fx->buf);
}

/* The region's AnonHugePages from /proc/self/smaps, in bytes. */
static inline size_t anon_huge(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	ASSERT(f);
	char line[512];
	bool in = false;
	size_t kb = 0, total = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %zu kB", &kb) == 1)
			total += kb << 10;
	}
	fclose(f);
	return total;
}

/* Whether a read-only region whose budget holds it, over a signal-safe
 * store, reads in huge-page windows here (uf_map(3)). */
static inline bool huge_expected(uf_region *r)
{
	const char *off = getenv("USERFAULT_THP");
	return uf_region_engine(r) == UF_ENGINE_UFFD && thp_on_request() && !(off && !strcmp(off, "0"));
}

static inline struct uf_stats stats_of(uf_region *r)
{
	struct uf_stats st;
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	ASSERT_OK(uf_stats(r, &st));
	return st;
}

/* Uninstrumented byte compare: a store's bytes are written by handler
 * threads as they write blocks back, ordered after a checker's reads only
 * by the kernel (the fault that hands them the work), which TSan cannot
 * see. */
__attribute__((no_sanitize("thread"))) static inline bool same_bytes(const unsigned char *a,
								      const unsigned char *b,
								      size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* After a uf_sync: the blocks of the store, then of the region (nb blocks
 * of bs bytes), whose bytes differ from shadow's; the first few are named.
 * The store comes first, all of it: reading the region loads blocks, and
 * the evictions that causes would write back (and so hide) a write the
 * sync missed in a block checked later. */
static inline size_t fixture_check_shadow(const struct fixture *fx, const unsigned char *shadow,
					  size_t nb, size_t bs)
{
	size_t bad = 0;
	for (size_t b = 0; b < nb; b++)
		if (!same_bytes(fx->buf + b * bs, shadow + b * bs, bs) && bad++ < 5)
			fprintf(stderr, "block %zu: the store lacks a write\n", b);
	for (size_t b = 0; b < nb; b++)
		if (memcmp(fx->p + b * bs, shadow + b * bs, bs) && bad++ < 5)
			fprintf(stderr, "block %zu: the region lacks a write\n", b);
	return bad;
}

/* Resident set of the process in bytes, from /proc/self/statm. */
static inline size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	ASSERT(f);
	unsigned long size, res;
	ASSERT_EQ(fscanf(f, "%lu %lu", &size, &res), 2);
	fclose(f);
	return res * page_size();
}

/* A store of 64-bit words (ctx: the uint64_t array), each read and written
 * atomically, so a checker can read the store while write-backs run without
 * seeing a torn value. No locks: store calls may run in signal context. */
static inline int word_store_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	const uint64_t *words = ctx;
	uint64_t *d = dst;
	for (size_t i = 0; i < len / 8; i++)
		d[i] = __atomic_load_n(&words[off / 8 + i], __ATOMIC_RELAXED);
	return 0;
}

static inline int word_store_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	uint64_t *words = ctx;
	const uint64_t *s = src;
	for (size_t i = 0; i < len / 8; i++)
		__atomic_store_n(&words[off / 8 + i], s[i], __ATOMIC_RELAXED);
	return 0;
}

/* One thread's share of a shadowed random walk over words: thread t of n
 * owns the words k with k % n == t and, iters times, writes a random value
 * to one of them (and to the shadow) or checks one against the shadow.
 * Returns false (after saying which word) on a mismatch or once *failed is
 * set by another thread. */
static inline bool shadow_walk(volatile uint64_t *w, uint64_t *shadow, size_t nwords, unsigned n,
			       unsigned t, uint64_t seed, int iters, _Atomic int *failed)
{
	for (int i = 0; i < iters && !*failed; i++) {
		size_t k = (xorshift64(&seed) % (nwords / n)) * n + t;
		if (xorshift64(&seed) & 1) {
			uint64_t v = xorshift64(&seed);
			w[k] = v;
			shadow[k] = v;
		} else if (w[k] != shadow[k]) {
			fprintf(stderr, "thread %u word %zu: got %llx want %llx\n", t, k,
				(unsigned long long)w[k], (unsigned long long)shadow[k]);
			*failed = 1;
		}
	}
	return !*failed;
}

#endif

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
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = test_engine();
	o.block_size = bs;
	o.max_resident = budget;
	o.flags = fixture_map_flags;
	ASSERT_OK(uf_map(fx->store, 0, size, prot, &o, &fx->r));
	fx->p = uf_region_addr(fx->r);
}

static inline void fixture_close(struct fixture *fx, unsigned flags)
{
	ASSERT_OK(uf_unmap(fx->r, flags));
	ASSERT_OK(uf_store_close(fx->store));
	free(fx->buf);
}

static inline struct uf_stats stats_of(uf_region *r)
{
	struct uf_stats st;
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	ASSERT_OK(uf_stats(r, &st));
	return st;
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

#endif

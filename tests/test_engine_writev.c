/* SPDX-License-Identifier: MIT */
/* Batched write-back. A user store with the vectored op (uf_store_ops.writev)
 * gets the dirty blocks of a uf_sync in one call, in offset order, never in
 * write calls; a failing batch leaves every block of it dirty (uf_sync says
 * the error) and a later sync writes them all; more dirty blocks than a
 * batch holds take several calls. A store without writev (an older
 * struct_size) gets one write per contiguous run (one per block when it
 * is called in place and blocks are written from snapshots: asynchronous
 * tracking). Each with the store
 * signal-safe (called in the syncing thread) and UF_STORE_NOT_SIGSAFE (one
 * request to a store thread per batch). */
#include <pthread.h>

#include "common.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1 /* the pager writes back from snapshots under TSan */
#else
#define UNDER_TSAN 0
#endif

struct vstore {
	unsigned char *buf;
	size_t size;
	_Atomic long writes, writevs, pieces, max_n, bad_order;
	_Atomic int fail; /* writev: write the first half, then fail */
};

static int v_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct vstore *v = ctx;
	memcpy(dst, v->buf + off, len);
	return 0;
}

static int v_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct vstore *v = ctx;
	v->writes++;
	memcpy(v->buf + off, src, len);
	return 0;
}

static int v_writev(void *ctx, const struct uf_store_vec *vec, unsigned n)
{
	struct vstore *v = ctx;
	v->writevs++;
	v->pieces += n;
	if (n > v->max_n)
		v->max_n = n;
	for (unsigned i = 1; i < n; i++)
		if (vec[i].off < vec[i - 1].off + vec[i - 1].len)
			v->bad_order++;
	unsigned upto = v->fail ? n / 2 : n;
	for (unsigned i = 0; i < upto; i++)
		memcpy(v->buf + vec[i].off, vec[i].buf, vec[i].len);
	return v->fail ? -EIO : 0;
}

static struct vstore vs;

static uf_region *open_store(size_t size, bool with_writev, unsigned flags, unsigned char **p)
{
	memset(&vs, 0, sizeof(vs));
	vs.size = size;
	vs.buf = malloc(size);
	ASSERT(vs.buf);
	for (size_t i = 0; i < size; i++)
		vs.buf[i] = pattern_byte(i);
	struct uf_store_ops ops = {.struct_size = sizeof(ops),
				   .read = v_read,
				   .write = v_write,
				   .flags = flags,
				   .writev = v_writev};
	if (!with_writev) /* a caller built before writev existed */
		ops.struct_size = offsetof(struct uf_store_ops, writev);
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, &vs, size, &s));
	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	ASSERT_OK(uf_store_close(s)); /* the region keeps it */
	*p = uf_region_addr(r);
	return r;
}

static void close_store(uf_region *r)
{
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	free(vs.buf);
}

/* Writes one byte into each listed page (after reading every page). */
static void dirty(unsigned char *p, size_t ps, const size_t *pages, size_t n, unsigned char val)
{
	for (size_t i = 0; i < n; i++)
		p[pages[i] * ps + 7] = (unsigned char)(val + i);
}

static void check_store(size_t ps, const size_t *pages, size_t n, unsigned char val)
{
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(vs.buf[pages[i] * ps + 7], (unsigned char)(val + i));
}

static void read_all(unsigned char *p, size_t size, size_t ps)
{
	volatile unsigned char *vp = p;
	unsigned sum = 0;
	for (size_t i = 0; i < size; i += ps)
		sum += vp[i];
	(void)sum;
}

static void batched(unsigned flags)
{
	size_t ps = page_size(), n = 64, size = n * ps;
	unsigned char *p;
	uf_region *r = open_store(size, true, flags, &p);
	read_all(p, size, ps);
	static const size_t pages[] = {1, 2, 3, 10, 20, 21, 63};
	size_t np = sizeof(pages) / sizeof(pages[0]);

	/* one batch, in one writev call, no write calls */
	dirty(p, ps, pages, np, 0x40);
	ASSERT_EQ(stats_of(r).dirty, np);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(vs.writevs, 1);
	ASSERT_EQ(vs.pieces, (long)np);
	ASSERT_EQ(vs.writes, 0);
	ASSERT_EQ(vs.bad_order, 0);
	check_store(ps, pages, np, 0x40);
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_EQ(stats_of(r).writebacks, np);

	/* a failing batch: every block stays dirty, the error comes back */
	dirty(p, ps, pages, np, 0x60);
	vs.fail = 1;
	ASSERT_EQ(uf_sync(r, NULL, 0), -EIO);
	ASSERT_EQ(stats_of(r).dirty, np);
	ASSERT_EQ(stats_of(r).writebacks, np);
	/* a write after the failed sync is tracked as before */
	p[pages[np - 1] * ps + 8] = 0x5A;
	vs.fail = 0;
	long calls = vs.writevs;
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(vs.writevs, calls + 1);
	check_store(ps, pages, np, 0x60); /* all of them, the half written too */
	ASSERT_EQ(vs.buf[pages[np - 1] * ps + 8], 0x5A);
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_EQ(stats_of(r).writebacks, 2 * np);
	/* nothing dirty: no call */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(vs.writevs, calls + 1);
	ASSERT_EQ(vs.writes, 0);
	close_store(r);

	/* more dirty blocks than one batch: several calls, each in order */
	n = 2200; /* 1100 dirty: more than a batch (1024) */
	size = n * ps;
	r = open_store(size, true, flags, &p);
	read_all(p, size, ps);
	for (size_t i = 0; i < n; i += 2)
		p[i * ps] = (unsigned char)~pattern_byte(i * ps);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(vs.pieces, (long)n / 2);
	ASSERT_GE(vs.writevs, 2);
	ASSERT_LE(vs.max_n, 1024);
	ASSERT_EQ(vs.bad_order, 0);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(vs.buf[i * ps], (unsigned char)(i % 2 ? pattern_byte(i * ps) : ~pattern_byte(i * ps)));
	ASSERT_EQ(stats_of(r).dirty, 0);
	close_store(r);
}

static void runs(unsigned flags)
{
	size_t ps = page_size(), n = 64, size = n * ps;
	unsigned char *p;
	uf_region *r = open_store(size, false, flags, &p);
	read_all(p, size, ps);
	static const size_t pages[] = {1, 2, 3, 10, 20, 21, 63};
	size_t np = sizeof(pages) / sizeof(pages[0]);
	dirty(p, ps, pages, np, 0x20);
	/* in place (no store threads) from snapshots: one by one */
	bool one_by_one = (stats_of(r).async_writes != 0 || UNDER_TSAN) && !(flags & UF_STORE_NOT_SIGSAFE);
	ASSERT_OK(uf_sync(r, NULL, 0));
	/* 1-3, 10, 20-21, 63: four runs, four write calls; blocks a store
	 * called in place gets from snapshots (asynchronous tracking) go
	 * one by one, as before batching */
	ASSERT_EQ(vs.writes, one_by_one ? (long)np : 4);
	ASSERT_EQ(vs.writevs, 0);
	check_store(ps, pages, np, 0x20);
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_EQ(stats_of(r).writebacks, np);
	close_store(r);
}

int main(void)
{
	test_init(120);
	batched(0);
	batched(UF_STORE_NOT_SIGSAFE);
	runs(0);
	runs(UF_STORE_NOT_SIGSAFE);
	printf("ok\n");
	return 0;
}

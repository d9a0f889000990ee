/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api.c - libFuzzer harness: the input is decoded into one uf_map with
 * hostile arguments (every engine, block sizes, budgets, flag bits, offsets
 * and lengths that are 0, unaligned, past the store, near SIZE_MAX) and a
 * sequence of calls on the region with hostile ranges (NULL, outside the
 * region, addr + len overflowing, every flag bit), against a model of the
 * region's bytes and of the store. Checked: every call returns 0, a count
 * or a negative errno; a failing call changes nothing (the region still
 * reads back as the model says); uf_sync and uf_evict put the region's
 * bytes in the store; uf_discard brings the store's bytes back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "userfault.h"

struct in {
	const uint8_t *p;
	size_t n;
};
static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->n--)
		v = v << 8 | *in->p++;
	return v;
}
#define PICK(in, tab) ((tab)[take(in, 1) % (sizeof(tab) / sizeof((tab)[0]))])

#define CHECK(c, ...)                                                            \
	do {                                                                     \
		if (!(c)) {                                                      \
			fprintf(stderr, "fuzz_api: %s: ", #c);                   \
			fprintf(stderr, __VA_ARGS__);                            \
			fprintf(stderr, "\n");                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static int is_errno(long long e) { return e < 0 && e > -4096; }
#define CHECK_RET(e, what) CHECK((e) >= 0 || is_errno(e), "%s returned %lld", what, (long long)(e))

static size_t ps;
static uint8_t byte_at(uint64_t off) { return (uint8_t)(off * 0x9E3779B97F4A7C15ull >> 56) ^ (uint8_t)off; }

struct model {
	uf_region *r;
	uint8_t *base;
	size_t len, bs, data; /* data: bytes of the region backed by the store */
	uint8_t *view;        /* what the region must read */
	uint8_t *store;       /* the memory store's buffer (checked directly) */
	uint64_t off;
	int writable, rdonly_store; /* writes only where they can be written back:
				     * a dirty block of a read-only store is never
				     * evicted, so a budget full of them fails faults */
};

/* The blocks uf_sync & co. act on for (addr, len), as documented: NULL
 * means the region's start, len 0 to its end. */
static int blocks_of(const struct model *m, void *addr, size_t len, size_t *b0, size_t *b1)
{
	uintptr_t base = (uintptr_t)m->base, a = addr ? (uintptr_t)addr : base;
	if (!addr && !len)
		len = m->len;
	if (a < base || a >= base + m->len || len > base + m->len - a)
		return 0;
	if (!len)
		len = base + m->len - a;
	*b0 = (a - base) / m->bs;
	*b1 = (a + len - base + m->bs - 1) / m->bs;
	return 1;
}

static void check_view(const struct model *m, size_t from, size_t to)
{
	for (size_t i = from; i < to && i < m->data; i++)
		CHECK(m->base[i] == m->view[i], "region byte %zu = %#x, model %#x", i, m->base[i],
		      m->view[i]);
}

static void check_store(const struct model *m, size_t b0, size_t b1)
{
	for (size_t i = b0 * m->bs; i < b1 * m->bs && i < m->data; i++)
		CHECK(m->store[m->off + i] == m->view[i], "store byte %zu = %#x, region %#x",
		      (size_t)m->off + i, m->store[m->off + i], m->view[i]);
}

static void range_arg(struct in *in, const struct model *m, void **addr, size_t *len)
{
	size_t k = m->len ? (size_t)take(in, 4) % m->len : 0;
	uint8_t *b = m->base;
	void *addrs[] = {NULL, b, b + k, b + m->len, b - 1, b + m->len - 1, (void *)1,
			 (void *)UINTPTR_MAX, b + (k | 1), b + k / m->bs * m->bs};
	*addr = PICK(in, addrs);
	uintptr_t a = (uintptr_t)*addr;
	size_t lens[] = {0, 1, m->bs, m->len, m->len - k, SIZE_MAX, SIZE_MAX - a + 1, (size_t)take(in, 4),
			 m->len + 1, ps - 1};
	*len = PICK(in, lens);
}

static void ops(struct in *in, struct model *m)
{
	for (int n = 0; n < 48 && in->n; n++) {
		unsigned op = (unsigned)take(in, 1) % 10;
		void *addr;
		size_t len, b0, b1;
		long long e;
		if (op <= 1) { /* read or write a byte */
			if (!m->data)
				continue;
			size_t i = (size_t)take(in, 4) % m->data;
			if (op == 1 && m->writable && !m->rdonly_store) {
				m->base[i] = m->view[i] = (uint8_t)take(in, 1);
			} else {
				CHECK(m->base[i] == m->view[i], "byte %zu = %#x, model %#x", i, m->base[i],
				      m->view[i]);
			}
			continue;
		}
		range_arg(in, m, &addr, &len);
		int valid = blocks_of(m, addr, len, &b0, &b1);
		switch (op) {
		case 2:
			e = uf_sync(m->r, addr, len);
			CHECK_RET(e, "uf_sync");
			CHECK(e <= 0, "uf_sync returned %lld", e);
			if (!e) {
				CHECK(valid, "uf_sync(%p, %zu) accepted a range outside the region", addr, len);
				check_store(m, b0, b1);
			}
			break;
		case 3:
			e = uf_discard(m->r, addr, len);
			CHECK_RET(e, "uf_discard");
			if (!e) {
				CHECK(valid, "uf_discard(%p, %zu) accepted a range outside", addr, len);
				for (size_t i = b0 * m->bs; i < b1 * m->bs && i < m->data; i++)
					m->view[i] = m->store[m->off + i];
			}
			break;
		case 4:
			e = uf_evict(m->r, addr, len);
			CHECK_RET(e, "uf_evict");
			if (!e) {
				CHECK(valid, "uf_evict(%p, %zu) accepted a range outside", addr, len);
				check_store(m, b0, b1);
			}
			break;
		case 5:
			e = uf_prefetch(m->r, addr, len);
			CHECK_RET(e, "uf_prefetch");
			CHECK(e < 0 || valid, "uf_prefetch(%p, %zu) accepted a range outside", addr, len);
			break;
		case 6: {
			struct uf_stats st[2];
			memset(st, 0xAB, sizeof(st));
			size_t sizes[] = {sizeof(st[0]), 0, 8, 16, 4096, 4097, sizeof(st[0]) + 8, SIZE_MAX};
			st[0].struct_size = PICK(in, sizes);
			if (st[0].struct_size > sizeof(st[0]))
				st[0].struct_size = st[0].struct_size > 4096 ? st[0].struct_size : sizeof(st[0]);
			e = uf_stats(m->r, &st[0]);
			CHECK_RET(e, "uf_stats");
			break;
		}
		case 7: {
			unsigned flags = (unsigned)take(in, 4) | 2u; /* never a valid set */
			e = uf_unmap(m->r, flags);
			CHECK(e == -EINVAL, "uf_unmap(flags %#x) = %lld", flags, e);
			break;
		}
		case 8: {
			int acc = (int)take(in, 1) % 8 - 2;
			/* A probe with the write bit in its access mask is a write of
			 * nothing: it dirties the block.
			 * A read-only store cannot take dirty blocks back, so a budget
			 * full of them fails the next fault with -EROFS (documented):
			 * probe for reading there, as the harness writes nothing. */
			if (m->rdonly_store && acc > 0 && (acc & 2))
				acc = (acc & ~2) ? (acc & ~2) : 1; /* the write bit off */
			e = uf_probe(addr, len, acc);
			CHECK(e == 0 || e == -EFAULT || e == -EINVAL, "uf_probe = %lld", e);
			break;
		}
		default: {
			uint8_t tmp[64];
			size_t n2 = len < sizeof(tmp) ? len : sizeof(tmp);
			e = uf_try_read(tmp, addr, n2);
			CHECK(e == 0 || e == -EFAULT, "uf_try_read = %lld", e);
			break;
		}
		}
		/* whatever happened, the region still reads back as modelled */
		size_t k = m->data ? (size_t)take(in, 4) % m->data : 0;
		check_view(m, k, k + 64);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	struct in in = {data, size};
	size_t ssize = 16 * ps + (take(&in, 1) & 1 ? ps / 2 : 0);
	uint8_t *buf = malloc(ssize);
	if (!buf)
		return 0;
	for (size_t i = 0; i < ssize; i++)
		buf[i] = byte_at(i);
	unsigned sflags_t[] = {0, UF_STORE_RDONLY, 2, ~0u};
	unsigned sflags = PICK(&in, sflags_t);
	uf_store *s = (uf_store *)1;
	long long e = uf_store_mem(buf, ssize, sflags, &s);
	CHECK_RET(e, "uf_store_mem");
	if (e) {
		CHECK(s == (uf_store *)1, "uf_store_mem failed but wrote *out");
		free(buf);
		return 0;
	}

	struct uf_map_opts o;
	uf_map_opts_init(&o);
	int engines[] = {UF_ENGINE_AUTO, UF_ENGINE_UFFD, UF_ENGINE_UFFD_THREAD, UF_ENGINE_SIGNAL,
			 UF_ENGINE_SIGNAL, UF_ENGINE_UFFD, -1, 4};
	o.engine = PICK(&in, engines);
	size_t bss[] = {0, ps, 2 * ps, 4 * ps, 3 * ps, ps / 2, (size_t)64 << 20, (size_t)128 << 20,
			SIZE_MAX, (size_t)1 << 63};
	o.block_size = PICK(&in, bss);
	size_t budgets[] = {0, 1, ps, 2 * ps, 4 * ps, 8 * ps, (size_t)1 << 40, SIZE_MAX};
	o.max_resident = PICK(&in, budgets);
	unsigned flags_t[] = {0, UF_MAP_NO_READAHEAD, UF_MAP_WP_FAULTS, 3, 4, 0x80000000u,
			      (unsigned)take(&in, 4)};
	o.flags = PICK(&in, flags_t);
	size_t ssz[] = {sizeof(o), sizeof(o), 0, 8, offsetof(struct uf_map_opts, engine), 4096, 4097};
	o.struct_size = PICK(&in, ssz);
	uint64_t offs[] = {0, 0, ps, 1, ssize, 15 * ps, 16 * ps, UINT64_MAX - ps + 1, 3 * ps};
	uint64_t off = PICK(&in, offs);
	size_t lens[] = {0, 1, ps, 3 * ps + 5, ssize, ssize - (off < ssize ? off : 0), 17 * ps,
			 SIZE_MAX, (size_t)1 << 62, ((size_t)1 << 63) - 1, (size_t)take(&in, 3)};
	size_t len = PICK(&in, lens);
	int prots[] = {PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_WRITE, 0,
		       PROT_READ | PROT_EXEC, 0x100 | PROT_READ, (int)take(&in, 4)};
	int prot = PICK(&in, prots);

	uf_region *r = (uf_region *)1;
	e = uf_map(s, off, len, prot, &o, &r);
	CHECK_RET(e, "uf_map");
	CHECK(e <= 0, "uf_map returned %lld", e);
	if (e) {
		CHECK(r == (uf_region *)1, "uf_map failed (%lld) but wrote *out", e);
		uf_store_close(s);
		free(buf);
		return 0;
	}
	struct model m = {.r = r, .base = uf_region_addr(r), .len = uf_region_size(r), .store = buf,
			  .off = off, .writable = !!(prot & PROT_WRITE),
			  .rdonly_store = !!(sflags & UF_STORE_RDONLY)};
	struct uf_stats st;
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	CHECK(uf_stats(r, &st) == 0, "uf_stats");
	m.bs = st.block_size;
	CHECK(m.len >= len && m.len % ps == 0, "region size %zu for len %zu", m.len, len);
	/* bytes the store backs; the rest of the last page reads 0, and pages
	 * wholly past the store's end raise SIGBUS (never touched here) */
	m.data = ssize - off < len ? ssize - off : len;
	m.view = malloc(m.len);
	CHECK(m.view, "malloc");
	memcpy(m.view, buf + off, m.data);
	ops(&in, &m);
	check_view(&m, 0, m.data);
	e = uf_unmap(r, 0);
	if (e) {
		CHECK(e == -EROFS && m.rdonly_store, "uf_unmap = %lld", e);
		check_view(&m, 0, m.data);
		CHECK(uf_unmap(r, UF_UNMAP_DISCARD) == 0, "uf_unmap(DISCARD)");
	} else if (m.writable) {
		check_store(&m, 0, (m.len + m.bs - 1) / m.bs);
	}
	uf_store_close(s);
	free(m.view);
	free(buf);
	return 0;
}

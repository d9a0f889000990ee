/* SPDX-License-Identifier: MIT */
/* store_mem.c - a caller-owned memory buffer as a store. */
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct mem {
	unsigned char *buf;
	unsigned flags;
};

static int mem_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	memcpy(dst, ((struct mem *)ctx)->buf + off, len);
	return 0;
}

static const void *mem_peek(void *ctx, uint64_t off, size_t len)
{
	(void)len;
	return ((struct mem *)ctx)->buf + off;
}

static int mem_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct mem *m = ctx;
	if (m->flags & UF_STORE_RDONLY)
		return -EROFS;
	memcpy(m->buf + off, src, len);
	return 0;
}

static void mem_close(void *ctx) { free(ctx); }

int uf_store_mem(void *buf, size_t size, unsigned flags, uf_store **out)
{
	if (!buf || !size || !out || (flags & ~UF_STORE_RDONLY))
		return -EINVAL;
	if ((uintptr_t)buf + (size - 1) < (uintptr_t)buf)
		return -EINVAL; /* wraps around the address space */
	struct mem *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->buf = buf;
	m->flags = flags;
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = mem_read, .write = mem_write, .close = mem_close};
	int r = uf_store_new(&ops, m, size, out);
	if (r)
		free(m);
	else {
		(*out)->fills = true; /* mem_read copies every byte */
		(*out)->peek = mem_peek;
	}
	return r;
}

/* SPDX-License-Identifier: MIT */
/* store_fn.c - lazily computed blocks: a fill function as a read-only store. */
#include <stdlib.h>

#include "store.h"

struct fn {
	uf_fill_fn fill;
	void *ctx;
};

static int fn_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct fn *f = ctx;
	return f->fill(f->ctx, off, dst, len);
}

static void fn_close(void *ctx) { free(ctx); }

int uf_store_fn(uf_fill_fn fill, void *ctx, uint64_t size, uf_store **out)
{
	if (!fill || !size || !out)
		return -EINVAL;
	struct fn *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fill = fill;
	f->ctx = ctx;
	/* No write op: write-back reports -EROFS, so written blocks are never
	 * dropped silently. */
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = fn_read, .close = fn_close};
	int r = uf_store_new(&ops, f, size, out);
	if (r)
		free(f);
	return r;
}

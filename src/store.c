/* SPDX-License-Identifier: MIT */
/* store.c - the generic store object: user vtable, reference counting. */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "store.h"

int uf_store_new(const struct uf_store_ops *ops, void *ctx, uint64_t size, uf_store **out)
{
	if (!ops || !out || !ops->read || ops->struct_size < offsetof(struct uf_store_ops, flush) ||
	    ops->struct_size > 4096)
		return -EINVAL;
	if (size == 0 || size > (UINT64_MAX >> 1))
		return -EINVAL;
	uf_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Copy what the caller's struct has; fields it predates stay NULL. */
	size_t n = ops->struct_size < sizeof(s->ops) ? ops->struct_size : sizeof(s->ops);
	memcpy(&s->ops, ops, n);
	s->ops.struct_size = sizeof(s->ops);
	s->ctx = ctx;
	s->size = size;
	atomic_init(&s->refs, 1);
	*out = s;
	return 0;
}

void uf__store_ref(uf_store *s) { atomic_fetch_add(&s->refs, 1); }

void uf__store_unref(uf_store *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->ops.close)
		s->ops.close(s->ctx);
	free(s);
}

int uf_store_close(uf_store *s)
{
	if (!s)
		return -EINVAL;
	uf__store_unref(s);
	return 0;
}

int64_t uf_store_size(const uf_store *s) { return s ? (int64_t)s->size : -EINVAL; }

UF_SIGCTX int uf__store_read(uf_store *s, uint64_t off, void *dst, size_t len)
{
	uint64_t t0 = uf__diag_start();
	int r = s->ops.read(s->ctx, off, dst, len);
	uf__diag_stop(&s->ns_read, t0);
	return r > 0 ? 0 : r; /* positive counts from sloppy stores mean success */
}

UF_SIGCTX int uf__store_write(uf_store *s, uint64_t off, const void *src, size_t len)
{
	if (!s->ops.write)
		return -EROFS;
	uint64_t t0 = uf__diag_start();
	int r = s->ops.write(s->ctx, off, src, len);
	uf__diag_stop(&s->ns_write, t0);
	return r > 0 ? 0 : r;
}

int uf__store_flush(uf_store *s) { return s->ops.flush ? s->ops.flush(s->ctx) : 0; }

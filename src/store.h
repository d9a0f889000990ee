/* SPDX-License-Identifier: MIT */
/* store.h - the store object shared by the built-in stores and the pager. */
#ifndef UF_STORE_H
#define UF_STORE_H

#include "internal.h"

struct uf_store {
	struct uf_store_ops ops; /* copied, so the caller's struct may go away */
	void *ctx;
	uint64_t size;
	_Atomic int refs; /* the caller's reference + one per region */
	_Atomic uint64_t ns_read, ns_write; /* time in read/write (diag.h), when timed */
};

void uf__store_ref(uf_store *s);
void uf__store_unref(uf_store *s);
/* Signal-safe wrappers: never called under a pager lock. */
UF_SIGCTX int uf__store_read(uf_store *s, uint64_t off, void *dst, size_t len);
UF_SIGCTX int uf__store_write(uf_store *s, uint64_t off, const void *src, size_t len);
int uf__store_flush(uf_store *s);

#endif

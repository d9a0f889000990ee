/* SPDX-License-Identifier: MIT */
/* uffd.h - userfaultfd plumbing shared by the two userfaultfd engines. */
#ifndef UF_UFFD_H
#define UF_UFFD_H

#include "internal.h"
#include "uffd_compat.h"

struct uf__uffd_caps {
	int err;           /* 0, or why userfaultfd cannot be used here */
	bool user_only;    /* only UFFD_USER_MODE_ONLY descriptors are allowed */
	uint64_t features; /* what UFFDIO_API offers */
};

/* What this process may use (probed once). */
const struct uf__uffd_caps *uf__uffd_caps(void);
/* A new descriptor with the API handshake done for features (a subset of
 * caps->features). Returns the fd or -errno. */
int uf__uffd_open(uint64_t features, int flags);
UF_SIGCTX int uf__uffd_copy(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode);
UF_SIGCTX int uf__uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode);
/* The same, saying on failure how many bytes (from the start) were moved. */
UF_SIGCTX int uf__uffd_move_part(int fd, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode,
				 size_t *done);
UF_SIGCTX int uf__uffd_wp(int fd, uintptr_t start, size_t len, uint64_t mode);
int uf__uffd_register(int fd, uintptr_t start, size_t len, uint64_t mode, uint64_t *ioctls);
/* This process's /proc/self/pagemap (opened on first use), or -1. */
int uf__pagemap_fd(void);
/* In a fork child: forgets the parent's pagemap descriptor. */
void uf__pagemap_after_fork(void);
/* PAGEMAP_SCAN for pages written since write-protected (WP_ASYNC ranges):
 * fills vec, returns the count or -errno; with reprotect, protects them
 * again atomically. */
UF_SIGCTX long uf__pagemap_written(uintptr_t start, uintptr_t end, bool reprotect,
				   struct page_region *vec, size_t vlen, uintptr_t *walk_end);
/* Whether [start, end) is mapped by huge pages only (PAGEMAP_SCAN). */
UF_SIGCTX bool uf__pagemap_huge(uintptr_t start, uintptr_t end);

#endif

/* Engine operations over a region served by userfaultfd, shared by the
 * in-thread and the handler-thread engines (engine_uffd.c). They differ
 * only in whether installs wake threads blocked in the kernel. */
struct uf_region;
#define UF__UFFD_MOVE 0x1u   /* r->eng_flags: install/park by UFFDIO_MOVE */
#define UF__UFFD_WP 0x2u     /* registered for write-protect tracking */
#define UF__UFFD_NOWAKE 0x4u /* nobody sleeps in the kernel (SIGBUS mode) */
#define UF__UFFD_ASYNC 0x8u  /* write tracking by WP_ASYNC + PAGEMAP_SCAN */
int uf__uffd_attach(struct uf_region *r, uint64_t features);
void uf__uffd_detach(struct uf_region *r);
UF_SIGCTX void *uf__uffd_frame_buf(struct uf_region *r, uint32_t f, uint64_t blk);
UF_SIGCTX int uf__uffd_install(struct uf_region *r, uint32_t f, uint64_t blk, size_t len, bool writable);
UF_SIGCTX int uf__uffd_park(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
UF_SIGCTX int uf__uffd_protect(struct uf_region *r, uint64_t blk, size_t len, bool on);
UF_SIGCTX void uf__uffd_release(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
UF_SIGCTX int uf__uffd_park_run(struct uf_region *r, uint32_t f0, uint64_t b0, size_t len, size_t *done);
UF_SIGCTX void uf__uffd_release_run(struct uf_region *r, uint32_t f0, unsigned n);
UF_SIGCTX int uf__uffd_zap(struct uf_region *r, uint32_t f, uint64_t blk, size_t len);
UF_SIGCTX void *uf__uffd_stage_get(struct uf_region *r, size_t len, unsigned *token);
UF_SIGCTX void uf__uffd_stage_put(struct uf_region *r, unsigned token);
UF_SIGCTX int uf__uffd_install_clean(struct uf_region *r, uint64_t blk, size_t len, const void *src);
UF_SIGCTX int uf__uffd_install_frames(struct uf_region *r, uint32_t f0, uint64_t blk, size_t len,
				      size_t *done);
UF_SIGCTX int uf__uffd_written(struct uf_region *r, uint64_t blk, size_t len);
long uf__uffd_written_scan(struct uf_region *r, uint64_t b0, uint64_t b1, bool protect, uint64_t *out,
			   size_t max);

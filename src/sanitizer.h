/* SPDX-License-Identifier: MIT */
/*
 * sanitizer.h - annotations for orderings the sanitizers cannot see.
 *
 * Some happens-before edges of the library go through the kernel: a thread
 * touches a page, the kernel queues a userfaultfd message, a handler thread
 * reads it and serves the fault with what uf_map set up. ThreadSanitizer
 * sees neither side of that edge; these calls name it. Each use says which
 * kernel ordering it stands for. They compile to nothing without the
 * sanitizer.
 */
#ifndef UF_SANITIZER_H
#define UF_SANITIZER_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#endif

#ifdef __SANITIZE_THREAD__
#define UF__TSAN 1
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* The releasing side: everything this thread did so far happens before
 * whatever follows a uf__tsan_acquire(obj) in another thread. */
#define uf__tsan_release(obj) __tsan_release((void *)(obj))
#define uf__tsan_acquire(obj) __tsan_acquire((void *)(obj))
#else
#define UF__TSAN 0
#define uf__tsan_release(obj) ((void)(obj))
#define uf__tsan_acquire(obj) ((void)(obj))
#endif

#endif

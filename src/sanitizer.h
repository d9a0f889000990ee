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
/* Reads this thread makes meanwhile race with the program's writes by
 * design (the content check of a page another thread may write: the
 * write is what it looks for); TSan is not to report them. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define uf__tsan_ignore_reads_begin() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define uf__tsan_ignore_reads_end() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define UF__TSAN 0
#define uf__tsan_release(obj) ((void)(obj))
#define uf__tsan_acquire(obj) ((void)(obj))
#define uf__tsan_ignore_reads_begin() ((void)0)
#define uf__tsan_ignore_reads_end() ((void)0)
#endif

/* Valgrind memcheck (built with its header, UF_HAVE_VALGRIND from
 * mk/valgrind.mk; a few instructions that do nothing on the CPU when not
 * under valgrind). Memcheck marks a PROT_NONE mapping unaddressable and
 * reports every access to it (one "Invalid read/write" per block first
 * touched), before the access faults and the library serves it; a later
 * mprotect that opens it makes it addressable again, but the report is
 * made. uf__vg_served(addr, len): the program may touch these bytes, the
 * library serves every access (faults included). Memcheck's view only;
 * the kernel's protection is unchanged. */
#ifdef UF_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#define uf__vg_served(addr, len) ((void)VALGRIND_MAKE_MEM_DEFINED((addr), (len)))
#define uf__on_valgrind() (RUNNING_ON_VALGRIND != 0)
#else
#define uf__vg_served(addr, len) ((void)(addr), (void)(len))
#define uf__on_valgrind() 0
#endif

#endif

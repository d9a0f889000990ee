/* SPDX-License-Identifier: MIT */
/*
 * internal.h - helpers shared by every source file: atomics, futex, a tiny
 * spinlock, assertions, system-call wrappers. Never installed.
 */
#ifndef UF_INTERNAL_H
#define UF_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "userfault.h"

#define UF_SIGCTX  /* marks a function that runs in signal context */

#define uf__likely(x) __builtin_expect(!!(x), 1)
#define uf__unlikely(x) __builtin_expect(!!(x), 0)
#define UF__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Tiered assertions (mimalloc style): compiled out unless UF_DEBUG, never
 * allocate, safe in signal context. */
void uf__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#if defined(UF_DEBUG) && UF_DEBUG > 0
#define uf__assert(x) ((x) ? (void)0 : uf__assert_fail(#x, __FILE__, __LINE__))
#else
#define uf__assert(x) ((void)0)
#endif

/* Async-signal-safe write of a NUL-terminated string to fd. */
UF_SIGCTX void uf__write_str(int fd, const char *s);

static inline size_t uf__page_size(void)
{
	static _Atomic size_t ps; /* several threads may fill it: same value */
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);
	if (uf__unlikely(!v)) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

/* The largest block a region (and so a store's unit) may have. */
#define UF_MAX_BLOCK_SIZE ((size_t)64 << 20)

static inline bool uf__is_pow2(size_t x) { return x && !(x & (x - 1)); }
static inline size_t uf__align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
static inline uintptr_t uf__align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t)(a - 1); }

/* ---- futex: the only way a thread waits for another in the pager ---- */
UF_SIGCTX int uf__futex_wait(_Atomic uint32_t *addr, uint32_t expect);
UF_SIGCTX void uf__futex_wake_all(_Atomic uint32_t *addr);

/* ---- spinlock: held for a handful of instructions only, never across a
 * system call, a store call, or an access to region memory, so a faulting
 * thread can never spin on a lock its own interrupted code holds. ---- */
typedef struct {
	_Atomic uint32_t v;
} uf__spinlock;
UF_SIGCTX void uf__spin_lock_slow(uf__spinlock *l);
/* The CPU's spin-wait hint (pause, yield). */
UF_SIGCTX static inline void uf__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}
UF_SIGCTX static inline void uf__spin_lock(uf__spinlock *l)
{
	uint32_t z = 0;
	if (uf__likely(atomic_compare_exchange_weak_explicit(&l->v, &z, 1, memory_order_acquire,
							     memory_order_relaxed)))
		return;
	uf__spin_lock_slow(l);
}
UF_SIGCTX static inline void uf__spin_unlock(uf__spinlock *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* ---- system calls: -errno convention in one place ---- */
static inline int uf__neg_errno(long ret) { return ret < 0 ? -errno : (int)ret; }
UF_SIGCTX pid_t uf__gettid(void);
/* Sends sig with info to the calling thread (si_addr kept). */
UF_SIGCTX int uf__raise_info(int sig, const siginfo_t *info);

/* getpid() without a system call: cached, refreshed in fork children. */
extern pid_t uf__pid;
UF_SIGCTX static inline pid_t uf__self_pid(void) { return uf__pid; }

/* In a fork child: a mutex another thread of the parent may have held,
 * unlocked and new (that thread does not exist here). */
static inline void uf__mutex_reset_after_fork(pthread_mutex_t *m)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	*m = fresh;
}

/* ---- signals that may arrive asynchronously ----
 * Every signal but the synchronous ones a faulting instruction raises
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS). The fault handler runs
 * with these blocked (its sa_mask), and so do the region calls that own
 * frames or locks: a signal handler that touches a region can then never
 * interrupt the library half-way and wait for what its own thread holds. It
 * runs when the call returns, and is served like any other access. */
UF_SIGCTX void uf__async_sigset(sigset_t *set);
/* Blocks them in the calling thread (old mask in *old) / restores *old. */
UF_SIGCTX void uf__async_block(sigset_t *old);
UF_SIGCTX void uf__async_restore(const sigset_t *old);
/* Deferred cancellation waits while the library holds state a cancelled
 * thread would abandon (a block loading, a lock, a registry reference): a
 * store call's pread or nanosleep is a cancellation point. Release acts on
 * a cancel that came meanwhile only once the caller holds nothing. */
UF_SIGCTX void uf__cancel_hold(int *old);
UF_SIGCTX void uf__cancel_release(int old);

/* Versioned structs (struct_size first): how many bytes of a caller's
 * struct of struct_size bytes to take or fill, that is the end of the last
 * field it holds whole (ends[]: each field's end, UF__END, in order), so a
 * struct_size that stops inside a field leaves that field at its default
 * rather than half copied. */
#define UF__END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))
/* The size T would have if f were its last field (a field added after f
 * that grows T trips the _Static_assert beside each ends[]). */
#define UF__ALIGN_END(T, f) ((UF__END(T, f) + _Alignof(T) - 1) / _Alignof(T) * _Alignof(T))
static inline size_t uf__whole_fields(size_t struct_size, const size_t *ends, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && ends[i] <= struct_size; i++)
		k = ends[i];
	return k;
}

/* Reads a small file (a /proc or /sys one) into buf, NUL-terminated: its
 * length, or -errno (-EIO if it is empty). One read: such files give
 * everything that fits in one go. Not signal context. */
long uf__read_small_file(const char *path, char *buf, size_t len);

/* Anonymous private mapping, MAP_NORESERVE; NULL on failure (errno set). */
void *uf__map_anon(size_t len, int prot);

/* Environment lookup through the options table (options.c): every variable
 * the library reads is listed there and in userfault(7). Never in signal
 * context. _on: set, non-empty and not "0". */
const char *uf__getenv(const char *name);
bool uf__getenv_on(const char *name);
bool uf__getenv_off(const char *name);
bool uf__getenv_num(const char *name, unsigned long lo, unsigned long *out);

#endif

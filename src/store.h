/* SPDX-License-Identifier: MIT */
/* store.h - the store object shared by the built-in stores and the pager. */
#ifndef UF_STORE_H
#define UF_STORE_H

#include "internal.h"

struct uf__store_pool; /* store threads of a UF_STORE_NOT_SIGSAFE store (store.c) */

/* A call handed to a store thread (store.c); the caller owns the record
 * until done is set. */
struct uf__store_req {
	struct uf__store_req *next;
	int op;
	uint64_t off;
	void *buf;
	size_t len;
	int result;
	_Atomic uint32_t done; /* futex word: 0 while pending */
	uint64_t began_ms;     /* CLOCK_MONOTONIC ms the call began, if before the hand-off */
	/* Optional (uf__store_read_async): run by the store thread once the
	 * call is done, instead of setting done; it owns the record then. */
	void (*then)(struct uf__store_req *q);
};

/* The largest size a store may have (uf_store_new refuses more). */
#define UF__STORE_SIZE_MAX (UINT64_MAX >> 1)

struct uf_store {
	struct uf_store_ops ops; /* copied, so the caller's struct may go away */
	void *ctx;
	uint64_t size;
	_Atomic int refs; /* the caller's reference + one per region */
	_Atomic uint64_t ns_read, ns_write; /* time in read/write (diag.h), when timed */
	/* Set by built-in stores whose read fills every byte or fails. Reads
	 * of other stores get a zeroed buffer first: a store that breaks its
	 * contract (success, buffer half filled) must show zeros, never the
	 * bytes a reused frame or staging buffer held for another block. */
	bool fills;
	/* A write ended since the last flush began (set after each write
	 * call, taken by each flush): a background pass that wrote nothing
	 * then skips its flush (uf__store_flush_if_written). */
	_Atomic bool unflushed;
	struct uf__store_pool *pool; /* NULL: calls run in the calling thread */
	/* Optional, internal, for a store with a pool: a signal-safe attempt
	 * at a read in the calling thread (the Redis store's one-block GET on
	 * a spare socket). 0: done; anything else: hand the call to a store
	 * thread as usual, which then gives the real answer. */
	int (*fast_read)(void *ctx, uint64_t off, void *dst, size_t len);
	/* Optional, internal, for a store whose bytes sit in memory (the
	 * memory store): where [off, off + len) is, so an engine can install
	 * a clean block straight from it instead of a copy in a staging
	 * buffer. Signal-safe; NULL: read as usual. */
	const void *(*peek)(void *ctx, uint64_t off, size_t len);
	/* Optional, internal: the unit the store reads and writes in (the
	 * Redis store's block size). uf_map refuses a region whose offset or
	 * block size is not a multiple of it. 0: any. */
	size_t unit;
	/* The latest read of this store that a fault in its callback ended
	 * (store.c, uf__store_guard_fail), until a read of those bytes
	 * succeeds: for uf_explain's account of the SIGBUS it caused, on
	 * whichever thread the read ran. A seqlock: seq is odd while written. */
	struct {
		_Atomic uint32_t seq;
		_Atomic uint64_t off, len; /* len 0: none */
		_Atomic uintptr_t addr, pc;
		_Atomic int sig, err;
	} fault;
};

/* The store's bytes at [off, off + len) in place, or NULL. */
UF_SIGCTX static inline const void *uf__store_peek(uf_store *s, uint64_t off, size_t len)
{
	return s->peek && !s->pool && off + len <= s->size ? s->peek(s->ctx, off, len) : NULL;
}

void uf__store_ref(uf_store *s);
void uf__store_unref(uf_store *s);
/* Signal-safe wrappers: never called under a pager lock. For a store with
 * a pool they hand the call to a store thread and sleep until it is done. */
UF_SIGCTX int uf__store_read(uf_store *s, uint64_t off, void *dst, size_t len);
UF_SIGCTX int uf__store_write(uf_store *s, uint64_t off, const void *src, size_t len);
/* A batch of writes (write-back), in normal context: one call of the
 * store's writev, or one write per contiguous run; one request to a store
 * thread for a store with a pool. 0, or the first error (the caller keeps
 * the whole batch dirty). */
int uf__store_writev(uf_store *s, const struct uf_store_vec *v, unsigned n);
/* The same, overlapped: for a store with store threads the batch is handed
 * to thread 0 and the call returns 1 at once (q, v and the bytes must stay
 * until uf__store_writev_wait); otherwise it is written here and 0 is
 * returned. Either way uf__store_writev_wait(q) then gives the result.
 * Normal context, with asynchronous signals blocked (uf_sync). */
int uf__store_writev_start(uf_store *s, const struct uf_store_vec *v, unsigned n,
			   struct uf__store_req *q);
int uf__store_writev_wait(uf_store *s, struct uf__store_req *q);
int uf__store_flush(uf_store *s);
/* The flush, only if a write ended since the last one began; else 0. */
int uf__store_flush_if_written(uf_store *s);
/* A read handed to a store thread without waiting for it (background
 * read-ahead): q->then(q) runs on that thread when it is done, with
 * q->result set, and owns q from then on. Only for a store with store
 * threads of this process, called from a thread that is not one of them:
 * otherwise returns false and queues nothing. Signal-safe. */
UF_SIGCTX bool uf__store_read_async(uf_store *s, struct uf__store_req *q, uint64_t off, void *dst,
				    size_t len, void (*then)(struct uf__store_req *q));

/* True while the calling thread runs with every asynchronous signal
 * blocked for sure: serving a region fault (the fault handler's sa_mask),
 * a handler thread of the uffd-thread engine or the background writer
 * (their masks), or inside the API's range calls, uf_unmap and the exit
 * write-back (which block them). Calls of signal-safe stores are guarded
 * only then (below). Store code that needs them blocked (a claimed socket
 * must not be left by a handler's siglongjmp) then saves two
 * rt_sigprocmask calls per load. */
extern __thread bool uf__t_async_blocked __attribute__((tls_model("initial-exec")));

/* On a store thread: its index (0 .. threads-1; 0 serves writes and
 * flush), for stores that keep per-thread state such as connections.
 * -1 on any other thread. */
int uf__store_thread_slot(void);
/* On a store thread inside a store call: when that call began
 * (CLOCK_MONOTONIC, ms), if it began before it was handed over (a fast
 * read that failed first); else 0. A store's retry window counts from it. */
uint64_t uf__store_call_began_ms(void);
/* Whether the calling thread is inside a guarded call of a signal-safe
 * store's callback (store.c), in which a fault the library does not serve
 * must not go on to code that may leave by siglongjmp. Signal-safe. */
extern __thread struct uf__store_guard *uf__t_store_guard __attribute__((tls_model("initial-exec")));
UF_SIGCTX static inline bool uf__store_guarded(void) { return uf__t_store_guard != NULL; }
/* Only when uf__store_guarded(), from the handler of a fault inside that
 * call (uc its context), holding nothing: the call fails with err (-EFAULT
 * if err is none of the errnos). addr and sig: the fault (sig 0: a load of
 * another region at addr failed), noted for a read (uf__store_fault_at).
 * Does not return. */
UF_SIGCTX __attribute__((noreturn)) void uf__store_guard_fail(const void *uc, int err, uintptr_t addr,
							       int sig);
/* Whether the latest read of s's bytes at off was ended by a fault in its
 * callback (s->fault), and what that was. Signal-safe. */
struct uf__store_fault {
	uintptr_t addr, pc; /* the fault's address and instruction */
	int sig;	    /* SIGSEGV, SIGBUS; 0: another region's load failed */
	int err;	    /* what the read failed with */
};
UF_SIGCTX bool uf__store_fault_at(uf_store *s, uint64_t off, struct uf__store_fault *out);
/* Whether the calling thread is one of s's store threads. Signal-safe. */
bool uf__store_own_thread(const uf_store *s);

#endif

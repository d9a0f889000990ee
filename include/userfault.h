/* SPDX-License-Identifier: MIT */
/*
 * userfault.h - serve your own page faults.
 *
 * The whole public surface of libuserfault. Every function returns 0 (or a
 * count) on success and a negative errno on failure; uf_strerror() turns that
 * into text. Option structs carry their own size (set by the *_init helper) so
 * fields can be added without breaking callers.
 */
#ifndef USERFAULT_H
#define USERFAULT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* siginfo_t is POSIX, not ISO C: <signal.h> declares it only with POSIX
 * features on (the default, -std=gnu*, C++, or _POSIX_C_SOURCE >= 199309L).
 * Under a strict ISO mode (-std=c99 -pedantic) the calls and the field that
 * take one take a void pointer instead: the same ABI, and the header still
 * compiles. (__siginfo_t_defined: glibc's guard for the type; musl declares
 * it whenever a POSIX or BSD feature macro is on, its default.) */
#if defined(__siginfo_t_defined) || defined(__cplusplus) || \
	(!defined(__GLIBC__) && (defined(_POSIX_SOURCE) || defined(_POSIX_C_SOURCE) || \
				 defined(_XOPEN_SOURCE) || defined(_GNU_SOURCE) || defined(_BSD_SOURCE)))
#define UF_SIGINFO siginfo_t
#else
#define UF_SIGINFO void
#endif

#if defined(__GNUC__)
#define UF_API __attribute__((visibility("default")))
#else
#define UF_API
#endif

/* The version. The Makefile derives the SONAME from the same numbers. */
#define UF_VERSION_MAJOR 0
#define UF_VERSION_MINOR 2
#define UF_VERSION_PATCH 0

/* Returns the runtime version as MAJOR*10000 + MINOR*100 + PATCH. */
UF_API int uf_version(void);
/* Human text for a negative errno returned by any uf_* call. Never NULL. */
UF_API const char *uf_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Stores: where the bytes of a region come from and go back to.             */

typedef struct uf_store uf_store;
typedef struct uf_region uf_region;

/*
 * A user-implemented backing store. read/write return 0 or a negative errno.
 * read must fill exactly len bytes (the pager never asks past the store size);
 * a read that returns 0 without filling them leaves zeros in the rest, never
 * bytes of another block or region.
 * Store calls may run in the faulting thread inside a signal handler (the
 * default engine serves faults there): use only what is safe at the point
 * the faulting code was interrupted (pread/pwrite are fine, a lock the
 * faulting code may hold is not). They may run in several threads at once.
 * A fault inside such a callback that the library does not serve (a stray
 * pointer) ends the callback there and fails the store call with -EFAULT,
 * and the load, write-back or flush with it; no other handler's code runs
 * for the fault (a program handler installed after the library's is
 * entered, but its uf_handle_fault does not return; see uf_store_new(3)).
 * A callback must hold nothing where it may fault, must return (not leave
 * by siglongjmp), and must not overflow its stack (one that runs off the
 * alternate signal stack of a fault handler kills the process, saying so).
 *
 * A store whose calls are not async-signal-safe (they allocate, take locks,
 * use a client library: hiredis, zlib, OpenSSL) sets UF_STORE_NOT_SIGSAFE in
 * flags. Its read, write and flush calls then run on store threads that
 * uf_store_new starts for it (threads of them, 0 = 4), while the thread
 * that needs the data waits without spinning (in its fault handler, if it
 * is a fault). Reads run on any of the threads, several at once; writes and
 * flush run on one of them, in the order they were issued, so a flush
 * follows every write that returned before it was called. The threads block
 * every signal but the synchronous ones and stop when the store is closed
 * (close runs in the thread that lets go last, after they stopped). A store
 * thread that faults on a region of its own store gets -EDEADLK for that
 * load (SIGBUS or the error callback; -EFAULT from uf_try_read) instead of
 * waiting for itself, under the uffd and signal engines (under uffd-thread
 * a store must not touch the region it serves at all). In a
 * fork child the calls run in the calling thread (the threads are not
 * copied; the child serves no region faults, see uf_map).
 */
#define UF_STORE_NOT_SIGSAFE 0x1u /* uf_store_ops.flags: run calls on store threads */
/*
 * Write-back in batches. uf_sync hands the store the dirty blocks of its
 * range in batches, in offset order: blocks that follow each other both in
 * the store and in memory go as one larger write call (except under the
 * uffd engine's asynchronous write tracking, where a signal-safe store
 * without writev gets one write call per block). A store may also
 * take a whole batch, scattered blocks included, in one writev call: n
 * pieces (n >= 1), in increasing off, not overlapping, each a whole block
 * (the last block of the region or of the store may be shorter: a region
 * never writes store bytes outside itself). It returns 0 when every piece is
 * written, or a negative errno; on an error the pager keeps every block of
 * the batch dirty and writes them all again on a later sync (so pieces
 * that did reach the store are written twice: harmless). Without writev
 * (NULL, or a struct_size that predates it) a batch becomes write calls.
 * writev runs where write would (on store thread 0 for a NOT_SIGSAFE
 * store, in order with write and flush).
 */
struct uf_store_vec {
	uint64_t off;    /* store offset */
	const void *buf; /* len bytes */
	size_t len;
};
struct uf_store_ops {
	size_t struct_size; /* sizeof(struct uf_store_ops) */
	int (*read)(void *ctx, uint64_t off, void *dst, size_t len);
	int (*write)(void *ctx, uint64_t off, const void *src, size_t len); /* NULL: read-only */
	int (*flush)(void *ctx);  /* optional: make written data durable */
	void (*close)(void *ctx); /* optional: called when the last user lets go */
	unsigned flags;           /* UF_STORE_NOT_SIGSAFE; 0 for older callers */
	unsigned threads;         /* store threads for a NOT_SIGSAFE store; 0 = 4, at most 64 */
	/* optional, since 0.2: a batch of writes in one call (see above) */
	int (*writev)(void *ctx, const struct uf_store_vec *vec, unsigned n);
};

UF_API int uf_store_new(const struct uf_store_ops *ops, void *ctx, uint64_t size,
			uf_store **out);

/* uf_store_mem flags */
#define UF_STORE_RDONLY 0x1u /* writes to the store fail with -EROFS */
/* A caller-owned memory buffer (not copied; must outlive the store). */
UF_API int uf_store_mem(void *buf, size_t size, unsigned flags, uf_store **out);
/* A file: pread/pwrite on fd (dup'ed, so the caller may close its copy).
 * The store size is the file size at creation. An O_RDONLY fd makes a
 * read-only store (writes -EROFS); O_WRONLY is -EBADF, and O_APPEND is
 * -EINVAL unless flags has UF_STORE_RDONLY. */
UF_API int uf_store_file(int fd, unsigned flags, uf_store **out);

/* Lazily computed blocks: fill(ctx, off, dst, len) is called once per block
 * load (one call may cover several blocks); it must produce the same bytes
 * for the same offset every time. The store is read-only: written blocks
 * cannot be written back (uf_sync says -EROFS) and so are never evicted;
 * they stay until uf_discard or uf_unmap(UF_UNMAP_DISCARD). A fault that
 * needs a frame when every evictable one is such a block fails with -EROFS
 * (SIGBUS or the error callback). */
typedef int (*uf_fill_fn)(void *ctx, uint64_t off, void *dst, size_t len);
UF_API int uf_store_fn(uf_fill_fn fill, void *ctx, uint64_t size, uf_store **out);

/*
 * A Redis or Redis Cluster store (built when hiredis is present; otherwise
 * uf_store_redis returns -ENOTSUP). One key per block, "<prefix>:<block
 * number in decimal>", holding exactly block_size bytes; a block with no
 * key reads as zeros (sparse, like a hole in a file), and a block written
 * back as all zeros is deleted. "<prefix>:meta" holds the size and block
 * size: opening an existing store with another block size (or size) fails
 * with -EINVAL. A cluster is found from any seed (CLUSTER SLOTS) and
 * followed through MOVED/ASK redirections and failovers. The store's calls
 * run on store threads (UF_STORE_NOT_SIGSAFE), each with one connection
 * per node; multi-block reads (read-ahead, uf_prefetch) are one pipeline
 * per node. A call that meets a server that is down, slow or restarting
 * retries until retry_timeout_ms, then fails (SIGBUS or the error callback
 * for a load; uf_sync returns the error and keeps the blocks dirty).
 * See docs/REDIS.md and uf_store_redis(3).
 */
struct uf_redis_opts {
	size_t struct_size;          /* set by uf_redis_opts_init */
	const char *seeds;           /* "host:port[,host:port...]" or "/path/redis.sock" */
	const char *prefix;          /* key prefix, 1..200 bytes, required */
	size_t block_size;           /* power of two, 512..64 MiB; 0: the stored one, or 4096 */
	uint64_t size;               /* a multiple of block_size; 0: the stored one */
	const char *user;            /* ACL user for AUTH; NULL: "default" */
	const char *password;        /* NULL: no AUTH */
	unsigned connect_timeout_ms; /* one connection attempt; default 1000 */
	unsigned command_timeout_ms; /* one reply; default 5000 */
	unsigned retry_timeout_ms;   /* how long a failing call retries; default 10000; 0: never */
	unsigned wait_replicas;      /* flush: WAIT for this many replicas of each written master */
	unsigned wait_timeout_ms;    /* the WAIT's timeout; default 5000 */
	unsigned threads;            /* store threads; 0 = 4 */
	unsigned flags;              /* UF_STORE_RDONLY */
	char *errbuf;                /* optional: why uf_store_redis failed, in words */
	size_t errbuf_len;
};
UF_API void uf_redis_opts_init(struct uf_redis_opts *opts);
UF_API int uf_store_redis(const struct uf_redis_opts *opts, uf_store **out);

/* Drops the caller's reference; the store lives on while regions use it. */
UF_API int uf_store_close(uf_store *store);
UF_API int64_t uf_store_size(const uf_store *store);

/* ------------------------------------------------------------------------ */
/* Regions                                                                   */

enum uf_engine {
	UF_ENGINE_AUTO = 0,        /* best available; USERFAULT_ENGINE overrides */
	UF_ENGINE_UFFD = 1,        /* userfaultfd, faults served in the faulting thread (SIGBUS mode) */
	UF_ENGINE_UFFD_THREAD = 2, /* userfaultfd, faults served by a handler thread */
	UF_ENGINE_SIGNAL = 3       /* SIGSEGV + mprotect, no userfaultfd needed */
};

/*
 * Called in the faulting thread (signal context) when a block cannot be
 * loaded. err is the store's negative errno. Return UF_ERR_RETRY to try the
 * load again, or UF_ERR_SIGBUS to deliver SIGBUS (the default without a
 * callback). The callback may also leave with siglongjmp (to a
 * sigsetjmp(env, 1), which restores the signal mask: it runs with
 * asynchronous signals blocked). Nothing is in flight when it runs, on any
 * engine: the failed load was abandoned first and the library holds no
 * lock or reference, so leaving costs nothing; the block stays unloaded
 * and the next access to it faults and loads it again. The same holds for
 * a SIGBUS handler that leaves by siglongjmp. Not called for a load that
 * fails inside uf_try_read, uf_try_write or uf_probe: they return -EFAULT
 * at once. A failing block fails alone:
 * when a read-ahead batch cannot be read, the faulting block is loaded by
 * itself, and only accesses to blocks the store cannot read fail.
 */
#define UF_ERR_SIGBUS 0
#define UF_ERR_RETRY 1
typedef int (*uf_error_fn)(uf_region *r, void *addr, int err, void *arg);

/* uf_map_opts.flags */
#define UF_MAP_NO_READAHEAD 0x1u /* never load more than the faulting block */
/* Track writes with one write-protect fault per first write to a clean
 * block even where the kernel could track them without a fault (uffd engine,
 * WP_ASYNC + PAGEMAP_SCAN). Asynchronous tracking makes first writes ~4x and
 * syncs ~1.7x cheaper but read faults that evict under a budget ~1.3x
 * dearer (bench/bench_write_tracking); read-mostly regions may prefer this. */
#define UF_MAP_WP_FAULTS 0x2u

struct uf_map_opts {
	size_t struct_size;   /* set by uf_map_opts_init */
	size_t block_size;    /* power of two, page size..64 MiB; 0 = page size */
	size_t max_resident;  /* RAM budget in bytes; 0 = min(len, RAM/2); < 1 block: -EINVAL; raised to 4 blocks */
	int engine;           /* enum uf_engine */
	unsigned flags;       /* UF_MAP_* */
	uf_error_fn on_error; /* optional */
	void *error_arg;
	/* Background write-back: dirty blocks are written back at most this
	 * many milliseconds after the previous pass (0 = only by uf_sync,
	 * eviction, uf_unmap and process exit). Bounds what _exit or a crash
	 * can lose; failed blocks stay dirty for the next pass or uf_sync. */
	unsigned writeback_ms;
};
UF_API void uf_map_opts_init(struct uf_map_opts *opts);

/*
 * Maps len bytes of store starting at store offset off (page aligned) with
 * protection prot (PROT_READ, with PROT_WRITE and/or PROT_EXEC or not).
 * Pages are loaded on first touch. Access to pages wholly past the end of the store raises
 * SIGBUS, as with a file mapping. opts may be NULL.
 */
UF_API int uf_map(uf_store *store, uint64_t off, size_t len, int prot,
		  const struct uf_map_opts *opts, uf_region **out);
UF_API void *uf_region_addr(const uf_region *r);
/* The mapped length: len rounded up to whole pages; 0 for NULL. */
UF_API size_t uf_region_size(const uf_region *r);
/* The engine serving the region (enum uf_engine, never AUTO). */
UF_API int uf_region_engine(const uf_region *r);
UF_API const char *uf_engine_name(int engine);

/* What the kernel lets this process use (detected at run time). */
#define UF_FEATURE_UFFD 0x01u           /* userfaultfd can be opened */
#define UF_FEATURE_UFFD_USER_ONLY 0x02u /* ... but only UFFD_USER_MODE_ONLY */
#define UF_FEATURE_SIGBUS 0x04u         /* in-thread engine possible */
#define UF_FEATURE_WP 0x08u             /* write tracking by write-protect */
#define UF_FEATURE_WP_ASYNC 0x10u       /* ... without a fault per first write */
#define UF_FEATURE_MOVE 0x20u           /* UFFDIO_MOVE (frames moved, not copied) */
#define UF_FEATURE_POISON 0x40u         /* UFFDIO_POISON (handler-thread errors) */
UF_API unsigned uf_engine_features(void);

/* The four range calls take [addr, addr+len), which must lie inside the
 * region (-EINVAL otherwise); addr NULL means the region's start and len 0
 * the rest of the region (so NULL, 0 is all of it). See uf_sync(3). */

/* Writes dirty blocks overlapping [addr, addr+len) back, in offset order,
 * then flushes the store. Returns the first error; failed blocks stay dirty. */
UF_API int uf_sync(uf_region *r, void *addr, size_t len);
/* Drops local changes and cached copies; the next access reads the store. */
UF_API int uf_discard(uf_region *r, void *addr, size_t len);
/* Loads the blocks of the range now, no more per call than the budget keeps
 * mapped (uf_prefetch(3)). Returns how many blocks it made or found
 * resident; a failed load ends the call, which returns the count before
 * it, or the error if there was none. */
UF_API int uf_prefetch(uf_region *r, void *addr, size_t len);
/* Writes back (if dirty) and releases the blocks of the range. */
UF_API int uf_evict(uf_region *r, void *addr, size_t len);

struct uf_stats {
	size_t struct_size;    /* set by uf_stats_init (or to sizeof(struct uf_stats)) */
	int engine;            /* enum uf_engine */
	uint64_t faults;       /* faults served (missing + write-protect) */
	uint64_t loads;        /* blocks read from the store (not read calls) */
	uint64_t evictions;    /* blocks whose frame was released */
	uint64_t writebacks;   /* blocks written to the store (not write calls) */
	uint64_t write_faults; /* first writes to clean blocks that faulted (0 when async_writes) */
	uint64_t reactivations;/* evicted-but-kept frames brought back without a store read */
	uint64_t resident;     /* blocks holding RAM now (mapped or kept) */
	uint64_t resident_peak;
	uint64_t dirty;        /* blocks with changes not yet written back */
	uint64_t max_resident; /* the budget, in blocks */
	size_t block_size;
	int async_writes;      /* 1: first writes are not faults (WP_ASYNC + PAGEMAP_SCAN) */
};
/* Zeroes st and sets its struct_size, as uf_map_opts_init does for options. */
UF_API void uf_stats_init(struct uf_stats *st);
UF_API int uf_stats(const uf_region *r, struct uf_stats *st);

/* uf_unmap flags */
#define UF_UNMAP_DISCARD 0x1u /* drop dirty blocks instead of writing them back */
/* Writes dirty blocks back (unless UF_UNMAP_DISCARD) and unmaps. If write-back
 * fails, returns the error and leaves the region mapped and intact.
 * At normal process exit (exit() or a return from main) every region still
 * mapped is written back as uf_sync would; a region whose write-back fails
 * then is reported on stderr with its address and the error. _exit() and
 * fatal signals write nothing back: see uf_map_opts.writeback_ms. */
UF_API int uf_unmap(uf_region *r, unsigned flags);

/*
 * For programs that install their own SIGSEGV/SIGBUS handler after userfault:
 * call this first from it. Returns 1 if the fault was ours and is served
 * (return from your handler), 0 if it is not ours, including a write that
 * breaks a region's protection (a write to a read-only region), on every
 * engine; 0 for a NULL info or ucontext. It does not return for a fault
 * inside a signal-safe store's callback that the library does not serve:
 * it jumps back to the library, which fails that store call with -EFAULT.
 * SIGSEGV and SIGBUS are unblocked while it serves a fault (a handler
 * without SA_NODEFER is entered again for a fault inside the service).
 * (A handler installed after the
 * library that gets 0 for such a write sees the signal the engine raised:
 * SIGBUS under uffd, SIGSEGV with SEGV_ACCERR under the others; one
 * installed before it always gets SIGSEGV.) A handler that does not call it
 * gets every fault of the regions unserved, on every engine: a missing
 * page reaches it as SIGBUS
 * (uffd, uffd-thread) or SIGSEGV (signal) at the faulting address.
 *
 * Signals: while the library serves a fault, and during uf_sync,
 * uf_discard, uf_evict, uf_prefetch, uf_stats and uf_unmap, asynchronous
 * signals (all but SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) are
 * blocked in that thread; a handler that touches a region then runs when
 * the library is done and is served like any other access (it never waits
 * on its own thread); a signal that arrives while a slow store call serves
 * a fault waits for that call. (Under uffd-thread a handler thread serves
 * the fault while the faulting thread sleeps in the kernel: a signal to the
 * faulting thread runs its handler at once, whose access to the block
 * being loaded waits for that load, and the interrupted access then
 * faults again.) A store callback that touches the block it
 * is loading (or needs a frame while every frame is in flight) fails at
 * once instead of waiting for itself: the store call and its load fail
 * with -EDEADLK (SIGBUS at the access that needed the load, or the error
 * callback), or uf_try_read returns -EFAULT, under the in-thread engines;
 * under uffd-thread store callbacks must not touch the region they serve
 * at all.
 */
UF_API int uf_handle_fault(int sig, UF_SIGINFO *info, void *ucontext);

/* ------------------------------------------------------------------------ */
/* Fault-safe access                                                         */

/*
 * Copy n bytes from src to dst. Returns 0, or -EFAULT if some byte of src
 * cannot be read or some byte of dst cannot be written (unmapped, PROT_NONE,
 * read-only, past the end of a mapped file, kernel or non-canonical address,
 * a range that wraps around the address space).
 * On -EFAULT, with k the first offset at which src[k] cannot be read or
 * dst[k] cannot be written: dst[0..k) holds src[0..k) and dst[k..n) is
 * untouched (nothing at or past the faulting byte is written).
 * Both sides are protected in both calls; the name says which one is in
 * doubt. No system call, no setjmp when nothing faults (an exception table
 * of small assembly routines, as in the kernel). Async-signal-safe; works
 * in any thread and in signal handlers (SIGSEGV/SIGBUS must not be blocked
 * there). Inside a userfault region the page is loaded and the copy goes on;
 * inside a raw area the area's handler runs first.
 */
UF_API int uf_try_read(void *dst, const void *src, size_t n);
UF_API int uf_try_write(void *dst, const void *src, size_t n);
#define UF_PROBE_READ 0x1
#define UF_PROBE_WRITE 0x2
/*
 * 0 if every page of [addr, addr+n) allows the access (UF_PROBE_READ and/or
 * UF_PROBE_WRITE) the way a real load/store of this thread sees it, -EFAULT
 * otherwise (also for a range that wraps); -EINVAL for an access mask that
 * is 0 or has other bits; 0 for n == 0 with a good mask. A write probe is an atomic read-modify-write of zero: it
 * never changes the bytes, even while other threads write them, but it is a
 * real write access (it breaks copy-on-write sharing and marks a
 * write-tracked page dirty). Probing a userfault region loads its pages.
 */
UF_API int uf_probe(const void *addr, size_t n, int access);

/* ------------------------------------------------------------------------ */
/* Stack overflow                                                            */

/*
 * Called on the alternate signal stack of the thread that overflowed its
 * stack, with the faulting address. It may leave with siglongjmp (the guard
 * stays armed: the next overflow is caught the same way); if it returns,
 * the process dies of the fault as it would without the library.
 * An overflow is a SIGSEGV no more than the overflow distance below the
 * interrupted stack pointer (nor more than 1 MiB + 64 KiB above it: a large
 * frame) that lies in the calling thread's pthread guard area or below it
 * down to the distance, or for the main thread below [stack] past
 * RLIMIT_STACK down to the distance, or, for a stack the library does not
 * know, at or up to 64 KiB below the stack pointer.
 * A NULL or wild pointer is never reported, even into a guard page, while
 * the stack pointer is further away than the distance.
 */
typedef void (*uf_overflow_fn)(void *fault_addr, void *arg);
/* Installs fn (replacing an earlier callback of either kind) and the fault
 * handler, and calls uf_stack_guard_thread_init() for the calling thread.
 * -EINVAL if fn is NULL. */
UF_API int uf_stack_guard_install(uf_overflow_fn fn, void *arg);
/* What the context-taking callback is told. */
struct uf_overflow {
	void *addr;      /* faulting address */
	UF_SIGINFO *info;
	void *ucontext;  /* the interrupted context (a ucontext_t *) */
	int on_alt_stack;             /* 1: the callback runs on an alternate signal stack */
	int interrupted_on_alt_stack; /* 1: the overflowing code itself ran on the alternate
				       * stack (a signal handler overflowed): save state and exit */
};
typedef void (*uf_overflow_ctx_fn)(const struct uf_overflow *ov, void *arg);
/* The same as uf_stack_guard_install with a callback that gets the context. */
UF_API int uf_stack_guard_install_ctx(uf_overflow_ctx_fn fn, void *arg);
/* Removes the callback: overflows then go on as if none were installed
 * (process-wide handler's last call, previous handler, death). A callback
 * already running finishes. Alternate stacks stay. Always 0. */
UF_API int uf_stack_guard_uninstall(void);
/* Like uf_stack_guard_thread_init, with the caller's memory as the calling
 * thread's alternate stack (sigaltstack on exactly [stack, stack+size)),
 * replacing the one the library made. The memory must stay valid until the
 * thread exits or calls uf_stack_guard_thread_fini. -EINVAL (NULL, size
 * below sysconf(_SC_MINSIGSTKSZ), wrapping range), -EBUSY (running on the
 * current alternate stack). */
UF_API int uf_stack_guard_thread_init_stack(void *stack, size_t size);
/* The overflow distance: how far below a thread's guard (and below its
 * stack pointer) a stack probe or a large frame may touch first and still
 * count as an overflow. Default 2 MiB (frames up to 1 MiB probed from either
 * end), or USERFAULT_STACK_DISTANCE (bytes, k/m/g suffix) read at the first
 * stack-guard call. Rounded up to pages; -EINVAL outside [page size, 1 GiB].
 * Set it before threads call uf_stack_guard_thread_init: their alternate
 * stacks keep a guard of the distance they were made with. */
UF_API int uf_stack_guard_set_distance(size_t bytes);
UF_API size_t uf_stack_guard_distance(void);
/* Protects the calling thread; every thread to protect calls it once (new
 * threads do not inherit alternate stacks). Gives the thread a 64 KiB
 * alternate signal stack between PROT_NONE guards (64 KiB below it, the
 * overflow distance above it, so a probe that skips the thread's own guard
 * faults instead of landing in it), unless it already has one (a
 * sanitizer's, say: kept and used), and records its stack guard area.
 * Idempotent; the stack is released at thread exit, or by _fini (-EBUSY if
 * called while running on it). */
UF_API int uf_stack_guard_thread_init(void);
UF_API int uf_stack_guard_thread_fini(void);

/* ------------------------------------------------------------------------ */
/* Raw per-range fault handlers                                              */

#define UF_ACCESS_UNKNOWN 0
#define UF_ACCESS_READ 1
#define UF_ACCESS_WRITE 2
#define UF_ACCESS_EXEC 3
#define UF_PASS 0    /* not mine: try the next handler */
#define UF_HANDLED 1 /* fixed: re-run the faulting instruction */
#define UF_PHASE_FIRST 0 /* process-wide handler: before the stack-overflow check */
#define UF_PHASE_LAST 1  /* ... after it (the overflow callback declined or returned) */
struct uf_fault {
	void *addr;      /* faulting address */
	int access;      /* UF_ACCESS_* */
	int sig;         /* SIGSEGV or SIGBUS */
	UF_SIGINFO *info;
	void *ucontext;
	int phase;       /* UF_PHASE_*: process-wide handler only; 0 for areas */
};
/*
 * Runs in signal context, in the faulting thread, for every SIGSEGV/SIGBUS
 * whose address is in the area. Return UF_HANDLED once the access can
 * succeed (mprotect, map over it, ...): the instruction runs again. Return
 * UF_PASS to let the fault go on (process-wide handler, stack guard, the
 * previous handler, death).
 * It may leave with siglongjmp instead (the faulting instruction is then
 * abandoned, nothing retried): call uf_fault_leave() first. Without it the
 * area stays referenced by this thread until the thread's next fault (any
 * SIGSEGV or SIGBUS in it) or its next uf_area_unregister call (either
 * sees the call is gone and releases it); uf_area_unregister in another
 * thread waits for that.
 */
typedef int (*uf_area_fn)(const struct uf_fault *f, void *arg);
typedef struct uf_area uf_area;
/* Sends faults in [addr, addr+len) to fn. Any thread, any time, while
 * other threads fault. -EINVAL (NULL addr/fn/out, len 0, wrapping range),
 * -EEXIST (overlaps an area or a userfault region), -ENOMEM. */
UF_API int uf_area_register(void *addr, size_t len, uf_area_fn fn, void *arg, uf_area **out);
/* Returns once no thread runs the area's handler any more, and frees the
 * area. Not from the area's own handler. -EINVAL for NULL. */
UF_API int uf_area_unregister(uf_area *a);

/* ------------------------------------------------------------------------ */
/* The process-wide handler and leaving handlers                             */

/* uf_handler_install when */
#define UF_HANDLER_FIRST 0x1u /* call it before the stack-overflow check */
#define UF_HANDLER_LAST 0x2u  /* call it after (libsigsegv's "serious" call) */
/*
 * One handler for every SIGSEGV/SIGBUS raised by the kernel that userfault
 * does not serve itself: not a fault-safe access, not served by a region,
 * not UF_HANDLED by an area. Address 0 and unmapped addresses included, and
 * regions and areas keep working. It runs in signal context in the faulting
 * thread with f->phase UF_PHASE_FIRST, then (if it passed) the stack guard
 * looks at the fault, then it runs again with UF_PHASE_LAST, each call only
 * if asked for in when. UF_HANDLED: the instruction runs again; UF_PASS: the
 * fault goes on (stack guard, the handler installed before userfault's,
 * death). It may leave with siglongjmp (nothing is retried): it holds
 * nothing, and uf_fault_leave() is harmless there.
 * Installing replaces the previous handler. -EINVAL: fn NULL, when 0 or
 * unknown bits.
 */
UF_API int uf_handler_install(uf_area_fn fn, void *arg, unsigned when);
/* No new call starts once it returns; a call already running finishes.
 * Always 0. */
UF_API int uf_handler_uninstall(void);
/*
 * Call it in a handler (area, process-wide, overflow callback, error
 * callback) right before leaving it by siglongjmp or longjmp: it releases
 * what the library holds for the innermost fault call-out of this thread
 * (for an area, its reference), so uf_area_unregister never waits for it.
 * Async-signal-safe; harmless when nothing is held. Leave with siglongjmp
 * to a sigsetjmp(env, 1) point so the signal mask is restored.
 */
UF_API void uf_fault_leave(void);

/* ------------------------------------------------------------------------ */
/* Crash explanation                                                         */

/* Writes one readable paragraph about the fault into buf (always
 * NUL-terminated). Returns the length it wanted (like snprintf) or -errno.
 * Async-signal-safe. */
UF_API int uf_explain(const UF_SIGINFO *info, const void *ucontext, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* USERFAULT_H */

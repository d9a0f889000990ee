/* SPDX-License-Identifier: MIT */
/*
 * store.c - the generic store object: user vtable, reference counting, and
 * the store threads of stores whose calls are not async-signal-safe.
 *
 * Store threads. The pager calls uf__store_read/write in whatever context
 * it runs, often inside the faulting thread's signal handler. For a store
 * flagged UF_STORE_NOT_SIGSAFE the call becomes a request record on the
 * caller's stack, pushed on a lock-free stack (one CAS, no allocation, no
 * lock: fine in signal context), and the caller sleeps on the record's
 * futex word until a store thread has run the call. Store threads take the
 * whole stack at once (an exchange, so no ABA), put it in issue order under
 * a mutex only they use, and serve it. Writes and flush go on a second
 * stack served only by thread 0, in order, so a flush (a Redis WAIT on the
 * connections that wrote) sees every write issued before it.
 *
 * Guarded calls. A callback of a signal-safe store runs in the calling
 * thread, often inside its fault handler, while the pager owns what the call
 * is for (the frame being loaded, a victim being written). A fault inside
 * the callback that the library does not serve itself would go on to the
 * program's handler or a call-out, which may leave by siglongjmp and strand
 * all of that. So every such call, made with asynchronous signals blocked
 * (always, in practice: fault context, the library's threads and the API's
 * range calls), has a recovery point (_setjmp, no system call), and
 * uf__store_guard_fail() jumps back to it: the call fails with the fault's
 * error, as if the callback had returned it, and the pager takes its usual
 * failure path.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "arch/arch.h"
#include "diag.h"
#include "store.h"
#include "threads.h"

enum { OP_READ, OP_WRITE, OP_WRITEV, OP_FLUSH };

/* Requests are struct uf__store_req (store.h): buf is the struct uf_store_vec array
 * and len its count for OP_WRITEV. */

/* A FIFO of requests taken from a push stack; only store threads touch it,
 * under the pool mutex. */
struct fifo {
	struct uf__store_req *head, *tail;
};

struct uf__store_pool {
	uf_store *store;
	_Atomic(struct uf__store_req *) reads;  /* pushed by anyone, LIFO */
	_Atomic(struct uf__store_req *) writes; /* writes and flush, thread 0 only */
	_Atomic uint32_t seq;         /* bumped on every push: workers sleep on it */
	_Atomic uint32_t sleepers;
	_Atomic bool stop;
	pthread_mutex_t mu; /* among store threads only: never taken by a caller */
	struct fifo rq, wq;
	pid_t pid; /* the process whose threads these are */
	unsigned n, started;
	pthread_t th[];
};

static __thread struct uf__store_pool *t_pool __attribute__((tls_model("initial-exec")));
static __thread int t_slot __attribute__((tls_model("initial-exec"))) = -1;

__thread bool uf__t_async_blocked __attribute__((tls_model("initial-exec")));

static __thread uint64_t t_began_ms __attribute__((tls_model("initial-exec")));

int uf__store_thread_slot(void) { return t_pool ? t_slot : -1; }
uint64_t uf__store_call_began_ms(void) { return t_pool ? t_began_ms : 0; }

UF_SIGCTX static uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}
UF_SIGCTX bool uf__store_own_thread(const uf_store *s) { return t_pool && t_pool == s->pool; }

/* Moves a push stack into f in push order. Under p->mu. */
static void drain(_Atomic(struct uf__store_req *) *stack, struct fifo *f)
{
	struct uf__store_req *lifo = atomic_exchange_explicit(stack, NULL, memory_order_acquire), *rev = NULL;
	while (lifo) {
		struct uf__store_req *n = lifo->next;
		lifo->next = rev;
		rev = lifo;
		lifo = n;
	}
	if (!rev)
		return;
	if (f->tail)
		f->tail->next = rev;
	else
		f->head = rev;
	while (rev->next)
		rev = rev->next;
	f->tail = rev;
}

static struct uf__store_req *fifo_pop(struct fifo *f)
{
	struct uf__store_req *q = f->head;
	if (q) {
		f->head = q->next;
		if (!f->head)
			f->tail = NULL;
	}
	return q;
}

/* A batch for a store without writev: one write per run of pieces that
 * follow each other both in the store and in memory. Stops at the first
 * error (the caller keeps the whole batch dirty). */
UF_SIGCTX static int write_runs(uf_store *s, const struct uf_store_vec *v, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		uint64_t off = v[i].off;
		const char *buf = v[i].buf;
		size_t len = v[i].len;
		for (i++; i < n && v[i].off == off + len && v[i].buf == buf + len; i++)
			len += v[i].len;
		int r = s->ops.write(s->ctx, off, buf, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* After every write call, whatever its result (a failed write may still
 * have written some of it). */
UF_SIGCTX static inline int wrote(uf_store *s, int r)
{
	atomic_store_explicit(&s->unflushed, true, memory_order_release);
	return r;
}

UF_SIGCTX static int call_writev(uf_store *s, const struct uf_store_vec *v, unsigned n)
{
	if (s->ops.writev)
		return s->ops.writev(s->ctx, v, n);
	return write_runs(s, v, n);
}

/* A store callback's return as the library's: positive counts from sloppy
 * stores mean success, and a negative value that is no errno (below -4095)
 * is -EIO, so that it cannot be mistaken for one of the pager's own
 * verdicts (UF__E_PROT, UF__E_PAST_END in region.h). */
UF_SIGCTX static inline int ret_of(int r)
{
	return r >= 0 ? 0 : r < -4095 ? -EIO : r;
}

UF_SIGCTX static int call(uf_store *s, struct uf__store_req *q)
{
	int r;
	t_began_ms = q->began_ms;
	switch (q->op) {
	case OP_READ:
		r = s->ops.read(s->ctx, q->off, q->buf, q->len);
		break;
	case OP_WRITE:
		r = wrote(s, s->ops.write(s->ctx, q->off, q->buf, q->len));
		break;
	case OP_WRITEV:
		r = wrote(s, call_writev(s, q->buf, (unsigned)q->len));
		break;
	default:
		r = s->ops.flush ? s->ops.flush(s->ctx) : 0;
		break;
	}
	t_began_ms = 0;
	return ret_of(r);
}

/* The innermost guarded call of this thread (a callback that touches
 * another region nests one). */
struct uf__store_guard {
	jmp_buf jb;
	struct uf__store_guard *outer;
	uf_store *store;
	const struct uf__store_req *q;
	int err;
};
__thread struct uf__store_guard *uf__t_store_guard __attribute__((tls_model("initial-exec")));
#define t_guard uf__t_store_guard

/* s->fault (store.h): a writer that finds it being written skips (it is
 * a diagnostic); len 0 clears it. */
UF_SIGCTX static void fault_note(uf_store *s, uint64_t off, uint64_t len, uintptr_t addr, uintptr_t pc,
				 int sig, int err)
{
	uint32_t q = atomic_load_explicit(&s->fault.seq, memory_order_relaxed);
	if ((q & 1) || !atomic_compare_exchange_strong(&s->fault.seq, &q, q + 1))
		return;
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->fault.off, off, memory_order_relaxed);
	atomic_store_explicit(&s->fault.len, len, memory_order_relaxed);
	atomic_store_explicit(&s->fault.addr, addr, memory_order_relaxed);
	atomic_store_explicit(&s->fault.pc, pc, memory_order_relaxed);
	atomic_store_explicit(&s->fault.sig, sig, memory_order_relaxed);
	atomic_store_explicit(&s->fault.err, err, memory_order_relaxed);
	atomic_store_explicit(&s->fault.seq, q + 2, memory_order_release);
}

UF_SIGCTX bool uf__store_fault_at(uf_store *s, uint64_t off, struct uf__store_fault *out)
{
	for (int tries = 0; tries < 4; tries++) {
		uint32_t q = atomic_load_explicit(&s->fault.seq, memory_order_acquire);
		if (q & 1)
			continue;
		uint64_t o = atomic_load_explicit(&s->fault.off, memory_order_relaxed);
		uint64_t l = atomic_load_explicit(&s->fault.len, memory_order_relaxed);
		out->addr = atomic_load_explicit(&s->fault.addr, memory_order_relaxed);
		out->pc = atomic_load_explicit(&s->fault.pc, memory_order_relaxed);
		out->sig = atomic_load_explicit(&s->fault.sig, memory_order_relaxed);
		out->err = atomic_load_explicit(&s->fault.err, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->fault.seq, memory_order_relaxed) == q)
			return off - o < l;
	}
	return false;
}

UF_SIGCTX static int guarded_call(uf_store *s, struct uf__store_req *q)
{
	struct uf__store_guard g;
	g.outer = t_guard;
	g.store = s;
	g.q = q;
	if (_setjmp(g.jb)) {
		/* Back from uf__store_guard_fail: read through the pointer,
		 * not the locals, which a jump may have left stale. */
		struct uf__store_guard *h = t_guard;
		t_guard = h->outer;
		t_began_ms = 0;
		if (h->q->op == OP_WRITE || h->q->op == OP_WRITEV)
			wrote(h->store, 0); /* it may have written some of it */
		return h->err;
	}
	t_guard = &g;
	atomic_signal_fence(memory_order_seq_cst);
	int r = call(s, q);
	atomic_signal_fence(memory_order_seq_cst);
	t_guard = g.outer;
	/* A read that returned, of bytes whose last read a fault ended: the
	 * note is out of date. */
	uint64_t fl = atomic_load_explicit(&s->fault.len, memory_order_relaxed);
	if (uf__unlikely(fl) && q->op == OP_READ) {
		uint64_t fo = atomic_load_explicit(&s->fault.off, memory_order_relaxed);
		if (q->off < fo + fl && fo < q->off + q->len)
			fault_note(s, 0, 0, 0, 0, 0, 0);
	}
	return r;
}

/* A call of a signal-safe store, in this thread. Guarded only while
 * asynchronous signals are blocked: otherwise a fault could be in the
 * handler of one that interrupted the callback, and the jump would strand
 * that handler instead. */
UF_SIGCTX static int direct(uf_store *s, struct uf__store_req *q)
{
	return uf__t_async_blocked ? guarded_call(s, q) : call(s, q);
}

UF_SIGCTX void uf__store_guard_fail(const void *uc, int err, uintptr_t addr, int sig)
{
	struct uf__store_guard *g = t_guard;
	g->err = err < 0 && err >= -4095 ? err : -EFAULT;
	if (g->q->op == OP_READ)
		fault_note(g->store, g->q->off, g->q->len, addr, uf__arch_pc(uc), sig, g->err);
	/* The jump skips the sigreturn that would have restored the mask of
	 * the interrupted callback: the mask the call was made with (no
	 * asynchronous handler ran inside it). */
	pthread_sigmask(SIG_SETMASK, &((const ucontext_t *)uc)->uc_sigmask, NULL);
	_longjmp(g->jb, 1);
}

static void *worker(void *arg)
{
	struct uf__store_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	int slot = (int)p->started++;
	pthread_mutex_unlock(&p->mu);
	t_pool = p;
	t_slot = slot;
	for (;;) {
		uint32_t seq = atomic_load(&p->seq);
		pthread_mutex_lock(&p->mu);
		struct uf__store_req *q = NULL;
		if (slot == 0) {
			drain(&p->writes, &p->wq);
			q = fifo_pop(&p->wq);
		}
		if (!q) {
			drain(&p->reads, &p->rq);
			q = fifo_pop(&p->rq);
		}
		pthread_mutex_unlock(&p->mu);
		if (q) {
			q->result = call(p->store, q);
			if (q->then) { /* asynchronous: the hook owns the record */
				q->then(q);
				continue;
			}
			/* The record may be gone once done is seen: wake by address
			 * only (a stale wake is a spurious wake-up, which every futex
			 * waiter tolerates). */
			atomic_store_explicit(&q->done, 1, memory_order_release);
			uf__futex_wake_all(&q->done);
			continue;
		}
		/* Stop only with both queues empty: nothing is ever left waiting
		 * (a closing store has no users left anyway). */
		if (atomic_load(&p->stop))
			break;
		atomic_fetch_add(&p->sleepers, 1);
		uf__futex_wait(&p->seq, seq); /* returns at once if a push came */
		atomic_fetch_sub(&p->sleepers, 1);
	}
	return NULL;
}

UF_SIGCTX static void pool_kick(struct uf__store_pool *p)
{
	atomic_fetch_add(&p->seq, 1);
	if (atomic_load(&p->sleepers))
		uf__futex_wake_all(&p->seq);
}

static void pool_stop(struct uf__store_pool *p)
{
	atomic_store(&p->stop, true);
	pool_kick(p);
	if (p->pid == getpid())
		for (unsigned i = 0; i < p->n; i++)
			pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int pool_start(uf_store *s, unsigned n)
{
	struct uf__store_pool *p = calloc(1, sizeof(*p) + n * sizeof(pthread_t));
	if (!p)
		return -ENOMEM;
	p->store = s;
	p->pid = getpid();
	pthread_mutex_init(&p->mu, NULL);
	/* Store threads take no asynchronous signals (the program's handlers
	 * expect its own threads); the synchronous ones cannot be blocked. */
	sigset_t all, old;
	uf__async_sigset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = 0;
	for (; p->n < n; p->n++) {
		e = uf__thread_create(&p->th[p->n], NULL, worker, p);
		if (e)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pool_stop(p);
		return e;
	}
	s->pool = p;
	return 0;
}

/* Pushes q for the store threads. */
UF_SIGCTX static void pool_push(struct uf__store_pool *p, struct uf__store_req *q)
{
	_Atomic(struct uf__store_req *) *stack = q->op == OP_READ ? &p->reads : &p->writes;
	struct uf__store_req *head = atomic_load_explicit(stack, memory_order_relaxed);
	do
		q->next = head;
	while (!atomic_compare_exchange_weak_explicit(stack, &head, q, memory_order_release,
						      memory_order_relaxed));
}

/* Runs q on a store thread and waits for it. */
UF_SIGCTX static int pool_call(uf_store *s, struct uf__store_req *q)
{
	struct uf__store_pool *p = s->pool;
	/* getpid, not the fault handler's cached pid: that one is set only
	 * once a region is mapped. A system call costs nothing next to the
	 * hand-off. */
	if (p->pid != getpid())
		return call(s, q); /* a fork child: the threads stayed behind */
	if (uf__store_own_thread(s))
		return -EDEADLK; /* a store thread faulted on its own store's region */
	pool_push(p, q);
	/* The record lives on this stack until a store thread is done with
	 * it: no handler of an asynchronous signal may leave this frame by
	 * siglongjmp meanwhile, so they wait (the synchronous ones cannot
	 * be blocked, and a fault here would be ours to serve anyway). */
	sigset_t all, old;
	uf__async_sigset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pool_kick(p);
	while (!atomic_load_explicit(&q->done, memory_order_acquire))
		uf__futex_wait(&q->done, 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return q->result;
}

int uf_store_new(const struct uf_store_ops *ops, void *ctx, uint64_t size, uf_store **out)
{
	if (!ops || !out || !ops->read || ops->struct_size < offsetof(struct uf_store_ops, flush) ||
	    ops->struct_size > 4096)
		return -EINVAL;
	if (size == 0 || size > UF__STORE_SIZE_MAX)
		return -EINVAL;
	uf_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Copy what the caller's struct has; fields it predates stay 0/NULL. */
	typedef struct uf_store_ops T;
	static const size_t ends[] = {UF__END(T, struct_size), UF__END(T, read),   UF__END(T, write),
				      UF__END(T, flush),       UF__END(T, close),  UF__END(T, flags),
				      UF__END(T, threads),     UF__END(T, writev)};
	_Static_assert(UF__ALIGN_END(T, writev) == sizeof(T), "ends[] lists every field");
	memcpy(&s->ops, ops, uf__whole_fields(ops->struct_size, ends, UF__ARRAY_SIZE(ends)));
	s->ops.struct_size = sizeof(s->ops);
	if ((s->ops.flags & ~UF_STORE_NOT_SIGSAFE) || s->ops.threads > 64) {
		free(s);
		return -EINVAL;
	}
	s->ctx = ctx;
	s->size = size;
	atomic_init(&s->refs, 1);
	/* Started here, in normal context, never lazily from a fault. */
	if (s->ops.flags & UF_STORE_NOT_SIGSAFE) {
		int e = pool_start(s, s->ops.threads ? s->ops.threads : 4);
		if (e) {
			free(s);
			return e;
		}
	}
	*out = s;
	return 0;
}

void uf__store_ref(uf_store *s) { atomic_fetch_add(&s->refs, 1); }

void uf__store_unref(uf_store *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->pool)
		pool_stop(s->pool);
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
	if (!s->fills)
		memset(dst, 0, len);
	uint64_t t0 = uf__diag_start();
	if (uf__unlikely(s->pool)) {
		uint64_t began = 0;
		if (s->fast_read) {
			began = mono_ms();
			if (s->fast_read(s->ctx, off, dst, len) == 0)
				return 0;
		}
		struct uf__store_req q = {.op = OP_READ, .off = off, .buf = dst, .len = len,
					  .began_ms = began};
		int e = pool_call(s, &q);
		uf__diag_stop(&s->ns_read, t0);
		return e;
	}
	struct uf__store_req q = {.op = OP_READ, .off = off, .buf = dst, .len = len};
	int e = direct(s, &q);
	uf__diag_stop(&s->ns_read, t0);
	return e;
}

UF_SIGCTX int uf__store_write(uf_store *s, uint64_t off, const void *src, size_t len)
{
	if (!s->ops.write)
		return -EROFS;
	uint64_t t0 = uf__diag_start();
	if (uf__unlikely(s->pool)) {
		struct uf__store_req q = {.op = OP_WRITE, .off = off, .buf = (void *)src, .len = len};
		int e = pool_call(s, &q);
		uf__diag_stop(&s->ns_write, t0);
		return e;
	}
	struct uf__store_req q = {.op = OP_WRITE, .off = off, .buf = (void *)src, .len = len};
	int e = direct(s, &q);
	uf__diag_stop(&s->ns_write, t0);
	return e;
}

UF_SIGCTX bool uf__store_read_async(uf_store *s, struct uf__store_req *q, uint64_t off, void *dst,
				    size_t len, void (*then)(struct uf__store_req *q))
{
	struct uf__store_pool *p = s->pool;
	/* getpid as in pool_call: a fork child has no store threads. */
	if (!p || t_pool == p || p->pid != getpid())
		return false;
	if (!s->fills)
		memset(dst, 0, len);
	*q = (struct uf__store_req){.op = OP_READ, .off = off, .buf = dst, .len = len, .then = then};
	pool_push(p, q);
	pool_kick(p);
	return true;
}

int uf__store_writev_start(uf_store *s, const struct uf_store_vec *v, unsigned n,
			   struct uf__store_req *q)
{
	*q = (struct uf__store_req){.op = OP_WRITEV, .buf = (void *)v, .len = n};
	struct uf__store_pool *p = s->pool;
	if (!s->ops.write || !n || !p || p->pid != getpid() || t_pool == p) {
		q->result = uf__store_writev(s, v, n);
		atomic_store_explicit(&q->done, 1, memory_order_relaxed);
		return 0;
	}
	pool_push(p, q);
	pool_kick(p);
	return 1;
}

int uf__store_writev_wait(uf_store *s, struct uf__store_req *q)
{
	while (!atomic_load_explicit(&q->done, memory_order_acquire))
		uf__futex_wait(&q->done, 0);
	int r = q->result;
	return ret_of(r);
}

int uf__store_writev(uf_store *s, const struct uf_store_vec *v, unsigned n)
{
	if (!s->ops.write)
		return -EROFS;
	if (n == 0)
		return 0;
	uint64_t t0 = uf__diag_start();
	int r;
	if (s->pool) {
		/* The whole batch is one request: one hand-off, one wake-up. */
		struct uf__store_req q = {.op = OP_WRITEV, .buf = (void *)v, .len = n};
		r = pool_call(s, &q);
	} else {
		struct uf__store_req q = {.op = OP_WRITEV, .buf = (void *)v, .len = n};
		r = direct(s, &q);
	}
	uf__diag_stop(&s->ns_write, t0);
	return ret_of(r);
}

int uf__store_flush(uf_store *s)
{
	if (!s->ops.flush)
		return 0;
	/* Taken before the call: a write that ends during it sets it again. */
	atomic_exchange_explicit(&s->unflushed, false, memory_order_acq_rel);
	int e;
	if (s->pool) {
		struct uf__store_req q = {.op = OP_FLUSH};
		e = pool_call(s, &q);
	} else {
		struct uf__store_req q = {.op = OP_FLUSH};
		e = direct(s, &q);
	}
	if (e)
		atomic_store(&s->unflushed, true); /* the next pass tries again */
	return e;
}

int uf__store_flush_if_written(uf_store *s)
{
	return atomic_load_explicit(&s->unflushed, memory_order_acquire) ? uf__store_flush(s) : 0;
}

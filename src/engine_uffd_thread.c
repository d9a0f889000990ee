/* SPDX-License-Identifier: MIT */
/*
 * engine_uffd_thread.c - userfaultfd with handler threads.
 *
 * The region is registered without UFFD_FEATURE_SIGBUS: a missing page (or
 * a write to a write-protected one) puts the faulting thread to sleep in the
 * kernel and queues a message. Handler threads read the messages, serve
 * them through the pager (uf__pager_fault) and wake the sleeper. Because the
 * sleeper can be the kernel itself copying to or from user memory, system
 * calls that touch a missing page (read(fd, region, n), write(fd, region, n))
 * block and succeed under this engine, where the other engines fail them
 * with EFAULT. Store calls run only in handler threads and API callers,
 * never in a signal handler. Installing, parking and write protection are
 * the shared userfaultfd operations of engine_uffd.c, without their
 * wake-ups: the handler wakes the sleeper after the pager returns.
 *
 * Threads: a pool per region, each waiting in its own epoll set on the
 * region's uffd with EPOLLEXCLUSIVE, so one message wakes one thread. Per
 * region rather than one process-wide thread: a slow or failing store in
 * one region never stalls faults in another, a store that reads another
 * uffd-thread region cannot deadlock, several slow loads of one region
 * proceed at once, and the threads live and die with the region (no global
 * state to fork or tear down). The pool starts at one thread per CPU (at
 * most 4) and grows by one whenever a handler takes a message while no
 * other is idle (up to MAX_THREADS): a handler serving a slow block, or
 * waiting in the pager for a block another handler loads, then never
 * holds up a fault on any other block. A pool only grows as far as faults
 * are ever in service at once. A handler does not start the thread itself:
 * it asks the pool's grower thread and serves its message at once.
 * pthread_create allocates, and the faulting thread may hold malloc's
 * lock (a signal handler that touches the region while its thread is in
 * malloc, one arena for all threads): a handler waiting for it would
 * never wake it.
 *
 * Reads of missing pages take the pager's batched path: read-ahead, one
 * store read into a staging slot that stays populated (no fresh page per
 * fault), one UFFDIO_COPY for the run.
 *
 * Errors. A failed load must reach the faulting thread as SIGBUS with
 * si_addr (or its error callback). The handler poisons the page with
 * UFFDIO_POISON (kernel 6.6+) while it still owns the block (the pager calls
 * our release op on the load's failure path, with the block still
 * LOADING), records the error in a small table, and wakes the sleeper. Its
 * access then raises SIGBUS in its own thread (si_code BUS_MCEERR_AR on
 * kernels from 6.6, BUS_ADRERR on recent ones); fault.c passes
 * it to thr_sigbus() (the engine's sigbus hook), which delivers the recorded error the
 * way the other engines do. Any other touch of a still-poisoned page (a
 * later one, another thread's) asks a handler thread to load it again
 * first: a retry, as with a file mapping. Installing a block clears the
 * poison of its pages. A system call that hits a poisoned page fails with
 * EFAULT; it succeeds again once the page was loaded (the program touched
 * it, or uf_prefetch).
 *   Without UFFD_FEATURE_POISON the faulting thread is sent SIGBUS with
 * rt_tgsigqueueinfo (si_code SI_QUEUE, si_addr set): the error callback is
 * not called, and the signal goes to the handler installed before ours, or
 * kills the process.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "arch/arch.h"
#include "diag.h"
#include "fault.h"
#include "region.h"
#include "registry.h"
#include "safe_access.h"
#include "safe_access.h"
#include "sanitizer.h"
#include "uffd.h"
#include "threads.h"

#define MAX_THREADS 32
#define START_THREADS 4
#define GROWER_STACK (256u << 10) /* it only calls pthread_create and epoll */
#define NO_BLOCK UINT64_MAX

/* Poison records: one word per poisoned page, page address | state | -err.
 * Written by handler threads, read (and the FRESH bit cleared) by faulting
 * threads in signal context: lock-free, one CAS per change. A slot whose
 * poison was cleared keeps the address (CLEARED), so a thread whose SIGBUS
 * was raised just before the clearing still recognises the page as ours. */
#define NREC 256
#define R_FRESH 0x100ull     /* error not yet delivered to anyone */
#define R_PENDING 0x200ull   /* poisoned, error not yet filled in */
#define R_CLEARED 0x400ull   /* poison gone (page filled): retry the access */
#define R_ADDR(w) ((uintptr_t)(w) & ~(uintptr_t)0xfff)
#define R_LIVE(w) ((w) != 0 && !((w) & R_CLEARED))
/* Who the FRESH error is for: the faulting thread id << 16 | the exact
 * fault address's offset in the page (when the kernel reports them). Any
 * other access (another thread, or the same thread after a system call
 * that got EFAULT on the poison) loads the page again instead of being told
 * about an old failure. */
#define AUX(tid, off) (((uint64_t)(tid) << 16) | ((off) & 0xffff))
/* Above the identity (thread ids are below 2^22), aux carries the error of
 * the failed load: -errno (1..4095), or AUX_PAST_END. Written with the aux
 * word before the record's CAS publishes it, as the identity is. */
#define AUX_ERR_SHIFT 40
#define AUX_ID(a) ((a) & ((1ull << AUX_ERR_SHIFT) - 1))
#define AUX_PAST_END 0x1000ull

/* A retry request from a faulting thread's signal handler to the handler
 * threads; lives on the requester's stack until done is set. */
struct req {
	struct req *next;
	uintptr_t addr;
	int access;
	int result;
	_Atomic uint32_t done;
};

struct handler {
	struct uf_region *r;
	pthread_t th;
	int ep;
	bool started;
	/* The fault being served, so that release() can recognise the load
	 * failure of this very block (only this thread writes these). */
	uint64_t cur_blk;
	uintptr_t cur_addr;
	uint64_t cur_aux; /* AUX() of the fault */
	int cur_rec; /* record release() poisoned, or -1 */
};

struct thr_priv {
	int evfd;                  /* stop flag and retry requests */
	_Atomic bool stopping;
	bool poison;               /* UFFDIO_POISON usable */
	bool tid;                  /* messages carry the faulting thread id */
	bool exact;                /* ... and the exact fault address */
	int pagemap;               /* /proc/self/pagemap (uffd.c's), or -1 */
	_Atomic(struct req *) reqs;
	_Atomic uint32_t nlive;    /* live (uncleared) records */
	_Atomic uint64_t rec[NREC];
	_Atomic uint64_t aux[NREC]; /* AUX() of a FRESH record, set before it */
	pthread_mutex_t grow_lock; /* nthreads, starting threads, stopping */
	_Atomic unsigned nthreads;
	_Atomic uint32_t grow_seq; /* futex word: bumped to ask the grower */
	pthread_t grower;
	bool grower_started;
	_Atomic unsigned idle;     /* handlers waiting in epoll_wait */
	_Atomic bool spinning;     /* a handler polls the userfaultfd (handler_main) */
	unsigned spin_us;          /* how long it may (USERFAULT_THREAD_SPIN_US) */
	struct handler h[MAX_THREADS];
};

/* The handler a thread is, if it is one (initial-exec: safe to read in a
 * signal handler, no allocation on first use). */
static __thread struct handler *t_self __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ */
/* small ioctls                                                         */

UF_SIGCTX static int uwake(int fd, uintptr_t a, size_t len)
{
	struct uffdio_range rg = {.start = a, .len = len};
	return ioctl(fd, UFFDIO_WAKE, &rg) ? -errno : 0;
}

UF_SIGCTX static int upoison(int fd, uintptr_t a, size_t len, bool wake)
{
	struct uffdio_poison p = {.range = {.start = a, .len = len},
				  .mode = wake ? 0 : UFFDIO_POISON_MODE_DONTWAKE};
	return ioctl(fd, UFFDIO_POISON, &p) ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* poison records                                                       */

/* The record of page a: a live one if any, else its CLEARED tombstone. */
UF_SIGCTX static int rec_find(struct thr_priv *p, uintptr_t a)
{
	int dead = -1;
	for (int i = 0; i < NREC; i++) {
		uint64_t w = atomic_load_explicit(&p->rec[i], memory_order_acquire);
		if (w && R_ADDR(w) == a) {
			if (R_LIVE(w))
				return i;
			dead = i;
		}
	}
	return dead;
}

/* A live record for page a with state bits st (and aux, for FRESH), or -1
 * if the table is full. *was_live: the page had a live record already, so
 * it is poisoned already (a second fault on it was queued before the
 * first one's poison landed). */
UF_SIGCTX static int rec_insert(struct thr_priv *p, uintptr_t a, uint64_t st, uint64_t aux, bool *was_live)
{
	uint64_t nw = (uint64_t)a | st;
	int i = rec_find(p, a);
	*was_live = false;
	if (i >= 0) {
		uint64_t w = atomic_load(&p->rec[i]);
		atomic_store(&p->aux[i], aux);
		if (R_ADDR(w) == a && atomic_compare_exchange_strong(&p->rec[i], &w, nw)) {
			*was_live = R_LIVE(w);
			if (!R_LIVE(w))
				atomic_fetch_add(&p->nlive, 1);
			return i;
		}
	}
	for (i = 0; i < NREC; i++) {
		uint64_t w = atomic_load(&p->rec[i]);
		if (w != 0 && R_LIVE(w))
			continue;
		/* Racy against another inserter of this slot only in aux, which
		 * can then make one access load again: harmless. */
		atomic_store(&p->aux[i], aux);
		if (atomic_compare_exchange_strong(&p->rec[i], &w, nw)) {
			atomic_fetch_add(&p->nlive, 1);
			return i;
		}
	}
	return -1;
}

/* Marks record i cleared if it still is the live word w. */
UF_SIGCTX static bool rec_clear(struct thr_priv *p, int i, uint64_t w)
{
	uint64_t cw = R_ADDR(w) | R_CLEARED;
	if (!R_LIVE(w) || !atomic_compare_exchange_strong(&p->rec[i], &w, cw))
		return false;
	atomic_fetch_sub(&p->nlive, 1);
	return true;
}

static inline uint64_t aux_err(int err)
{
	uint64_t v = err == UF__E_PAST_END ? AUX_PAST_END
		     : err < 0 && err >= -4095 ? (uint64_t)-err
					       : EIO;
	return v << AUX_ERR_SHIFT;
}

UF_SIGCTX static inline int err_of_aux(uint64_t aux)
{
	uint64_t v = aux >> AUX_ERR_SHIFT;
	return v == AUX_PAST_END ? UF__E_PAST_END : -(int)v;
}

/* ------------------------------------------------------------------ */
/* engine operations                                                    */

/* The pager owns the blocks of [a, a + len) (LOADING or PARKED): no one
 * else installs them now. Zap the poison markers on their pages first, or
 * the install would fail with EEXIST. */
UF_SIGCTX static void clear_poison(struct uf_region *r, uintptr_t a, size_t len)
{
	struct thr_priv *p = r->eng_priv;
	if (uf__likely(atomic_load_explicit(&p->nlive, memory_order_acquire) == 0))
		return;
	for (int i = 0; i < NREC; i++) {
		uint64_t w = atomic_load(&p->rec[i]);
		if (R_LIVE(w) && R_ADDR(w) >= a && R_ADDR(w) < a + len) {
			madvise((void *)R_ADDR(w), uf__page_size(), MADV_DONTNEED);
			rec_clear(p, i, w);
		}
	}
}

UF_SIGCTX static int thr_install(struct uf_region *r, uint32_t f, uint64_t blk, size_t len,
				 bool writable)
{
	clear_poison(r, (uintptr_t)uf__blk_addr(r, blk), len);
	return uf__uffd_install(r, f, blk, len, writable);
}

/* A run of clean blocks from a staging slot, in one UFFDIO_COPY. It does
 * not wake the sleepers either: serve_msg wakes the faulting page once the
 * pager has published the run and balanced its lists, so the program never
 * runs ahead of the pager's bookkeeping (a thread woken early touches
 * blocks that are about to be parked, and the reactivation order decides
 * which block the next load evicts: test_engine_fn_store's hot block). */
UF_SIGCTX static int thr_install_clean(struct uf_region *r, uint64_t blk, size_t len, const void *src)
{
	clear_poison(r, (uintptr_t)uf__blk_addr(r, blk), len);
	return uf__uffd_install_clean(r, blk, len, src);
}

/* A window through its frames' own pages (pager.c, load_recycled): the
 * same, by move where it can. */
UF_SIGCTX static int thr_install_frames(struct uf_region *r, uint32_t f0, uint64_t blk, size_t len,
					size_t *done)
{
	clear_poison(r, (uintptr_t)uf__blk_addr(r, blk), len);
	return uf__uffd_install_frames(r, f0, blk, len, done);
}

/* Called by the pager when a frame stops holding blk. On the failure path
 * of the load this handler thread is doing for a fault, poison the faulting
 * page now, while the block is still ours: nobody can install it between
 * the failure and the poison, so the poison never lands on good data. The
 * sleeper stays asleep until the error is recorded (serve_msg). */
UF_SIGCTX static void thr_release(struct uf_region *r, uint32_t f, uint64_t blk, size_t len)
{
	struct handler *h = t_self;
	struct thr_priv *p = r->eng_priv;
	/* The frame's slot may hold the block's bytes (parked, or a load that
	 * failed): the frame owns no RAM while it holds no block. */
	uf__uffd_release(r, f, blk, len);
	if (!h || h->r != r || h->cur_blk != blk || !p->poison)
		return;
	bool was;
	int i = rec_insert(p, h->cur_addr, R_PENDING, 0, &was);
	if (i < 0)
		return;
	int e = upoison(r->uffd, h->cur_addr, uf__page_size(), false);
	/* EEXIST with a live record: the earlier failure's poison is there. */
	if (e && !(e == -EEXIST && was)) {
		rec_clear(p, i, atomic_load(&p->rec[i]));
		return;
	}
	h->cur_rec = i;
}

/* ------------------------------------------------------------------ */
/* the handler threads                                                  */

/* The last resort without UFFDIO_POISON: a signal to the faulting thread
 * (it wakes from the fault and runs the signal's handler). */
static void signal_thread(uintptr_t addr, uint32_t tid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = SI_QUEUE; /* the kernel lets only itself send si_code > 0 */
	si.si_addr = (void *)addr;
	if (!tid || syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)tid, SIGBUS, &si))
		kill(getpid(), SIGBUS);
}

/* A fault the pager could not serve: make the faulting thread see err. */
static void fail_fault(struct uf_region *r, struct handler *h, uintptr_t page, int err, bool wp,
		       uint32_t tid)
{
	struct thr_priv *p = r->eng_priv;
	size_t ps = uf__page_size();
	if (h->cur_rec >= 0) {
		/* release() poisoned the page: fill in the error, then wake. */
		int i = h->cur_rec;
		uint64_t w = atomic_load(&p->rec[i]);
		atomic_store(&p->aux[i], h->cur_aux | aux_err(err));
		while (R_ADDR(w) == page && (w & R_PENDING) &&
		       !atomic_compare_exchange_weak(&p->rec[i], &w, page | R_FRESH))
			;
		uwake(r->uffd, page, ps); /* if the poison was cleared meanwhile: retry */
		return;
	}
	/* No load failed under our ownership (past the store's end, or no
	 * victim could be written back): poison now. A write-protect fault
	 * sits on a present page, which cannot be poisoned. */
	if (p->poison && !wp) {
		bool was;
		int i = rec_insert(p, page, R_FRESH, h->cur_aux | aux_err(err), &was);
		if (i >= 0) {
			int e = upoison(r->uffd, page, ps, true);
			if (e == -EEXIST && was) {
				/* Poisoned by an earlier failure already. */
				uwake(r->uffd, page, ps);
				return;
			}
			if (e == 0)
				return;
			rec_clear(p, i, atomic_load(&p->rec[i]));
			if (e == -EEXIST) {
				/* Filled meanwhile by another thread: just retry. */
				uwake(r->uffd, page, ps);
				return;
			}
		}
	}
	signal_thread(page, tid);
}

static void serve_msg(struct uf_region *r, struct handler *h, const struct uffd_msg *m)
{
	size_t ps = uf__page_size();
	uintptr_t page = (uintptr_t)m->arg.pagefault.address & ~(uintptr_t)(ps - 1);
	uint64_t fl = m->arg.pagefault.flags;
	bool wp = fl & UFFD_PAGEFAULT_FLAG_WP;
	int access = (wp || (fl & UFFD_PAGEFAULT_FLAG_WRITE)) ? UF_ACCESS_WRITE : UF_ACCESS_READ;
	if (page < r->base || page >= r->base + r->len) {
		/* The frame pool is registered for write-protect only (for
		 * UFFDIO_MOVE); a page moved there may carry the bit. */
		if (wp)
			uf__uffd_wp(r->uffd, page, ps, 0);
		uwake(r->uffd, page, ps);
		return;
	}
	h->cur_blk = (page - r->base) >> r->bshift;
	h->cur_addr = page;
	struct thr_priv *p = r->eng_priv;
	h->cur_aux = AUX(p->tid ? m->arg.pagefault.feat.ptid : 0,
			 p->exact ? m->arg.pagefault.address : 0);
	h->cur_rec = -1;
	if (!wp && p->poison && !uf__fault_handler_current(SIGBUS)) {
		/* The program replaced our handler without calling
		 * uf_handle_fault: as under the in-thread engines, the fault
		 * is not served but reaches its handler as SIGBUS. The record
		 * carries no error, so an access that does go through
		 * uf_handle_fault loads the block (thr_sigbus). */
		bool was;
		int i = rec_insert(p, page, 0, h->cur_aux, &was);
		if (i < 0) {
			/* Every record is taken (by such faults: that handler
			 * never comes back to us to release them). Unserved
			 * all the same: the signal itself, not the poison. */
			signal_thread(page, m->arg.pagefault.feat.ptid);
			return;
		}
		if (upoison(r->uffd, page, ps, true) == 0)
			return;
		if (!was)
			rec_clear(p, i, atomic_load(&p->rec[i]));
	}
	int e = uf__pager_fault(r, page, access);
	h->cur_blk = NO_BLOCK;
	h->cur_addr = 0;
	if (e == 0) {
		/* Also when the pager installed nothing (someone else loaded the
		 * block first, or a racing fault already opened it). */
		uwake(r->uffd, page, ps);
		return;
	}
	fail_fault(r, h, page, e, wp, m->arg.pagefault.feat.ptid);
}

static void serve_requests(struct uf_region *r, struct thr_priv *p)
{
	uint64_t n;
	if (read(p->evfd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another handler took the count; look anyway. */
	}
	if (atomic_load(&p->stopping)) {
		/* The count may have held thr_detach's wake-up too: every
		 * handler was woken by it, and the others, finding it gone,
		 * would sleep on for ever. Put it back (stopping is set before
		 * that write, so a wake-up taken here is always restored). */
		n = 1;
		if (write(p->evfd, &n, sizeof(n)) < 0) {
			/* only EAGAIN (counter full): it is readable anyway */
		}
	}
	struct req *q = atomic_exchange(&p->reqs, NULL);
	while (q) {
		struct req *next = q->next; /* q is gone once done is set */
		q->result = uf__pager_fault(r, q->addr, q->access);
		atomic_store_explicit(&q->done, 1, memory_order_release);
		uf__futex_wake_all(&q->done);
		q = next;
	}
}

static int start_thread(struct uf_region *r, struct thr_priv *p, struct handler *h);

static bool want_thread(struct thr_priv *p)
{
	return atomic_load_explicit(&p->idle, memory_order_relaxed) == 0 &&
	       atomic_load_explicit(&p->nthreads, memory_order_relaxed) < MAX_THREADS &&
	       !atomic_load_explicit(&p->stopping, memory_order_relaxed);
}

/* Called by a handler that took a message: if no other handler is idle,
 * ask the grower for one, so that this handler being slow (a slow store
 * read, or a wait for a block another handler loads) never leaves a
 * message unserved. Allocation-free: the faulting thread may hold malloc's
 * locks. */
static void grow(struct thr_priv *p)
{
	if (!want_thread(p))
		return;
	atomic_fetch_add(&p->grow_seq, 1);
	uf__futex_wake_all(&p->grow_seq);
}

/* The grower: starts a handler when asked and none is idle by then (the
 * one that asked may have finished meanwhile). */
static void *grower_main(void *arg)
{
	struct uf_region *r = arg;
	struct thr_priv *p = r->eng_priv;
	for (;;) {
		uint32_t seq = atomic_load(&p->grow_seq);
		if (atomic_load(&p->stopping))
			break;
		if (want_thread(p)) {
			pthread_mutex_lock(&p->grow_lock);
			unsigned n = atomic_load(&p->nthreads);
			if (n < MAX_THREADS && !atomic_load(&p->stopping)) {
				if (start_thread(r, p, &p->h[n]) == 0) {
					atomic_store(&p->nthreads, n + 1);
				} else if (p->h[n].ep >= 0) { /* no thread: the pool stays */
					close(p->h[n].ep);
					p->h[n].ep = -1;
				}
			}
			pthread_mutex_unlock(&p->grow_lock);
		}
		/* The new handler is not idle yet: start another only when
		 * asked again (at once if asked meanwhile). */
		uf__futex_wait(&p->grow_seq, seq);
	}
	return NULL;
}

static uint64_t now_us(void) { return uf__diag_now_ns() / 1000u; }

/*
 * A thread that faults in a loop faults again a few microseconds after it
 * is woken; a handler that sleeps in epoll_wait meanwhile costs a wake-up
 * of an idle vCPU on top (on the KVM guests here 20-60 us, more than the
 * fault itself: rand-read 64 us a fault without this, 23-32 with it,
 * docs/PERFORMANCE.md). So when the queue runs empty, one handler at a
 * time keeps polling the userfaultfd for up to spin_us, while the last gap
 * between messages was shorter than that: a poll that times out stops the
 * polling until a short gap is seen again, so a program that faults
 * seldom costs no CPU. Requests and stopping end the poll at once.
 */
static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct uf_region *r = h->r;
	struct thr_priv *p = r->eng_priv;
	t_self = h;
	uf__t_async_blocked = true; /* the mask it was created with */
	uint64_t quiet_since = 0; /* when the queue last ran empty */
	for (;;) {
		struct epoll_event ev[2];
		atomic_fetch_add_explicit(&p->idle, 1, memory_order_relaxed);
		int n = epoll_wait(h->ep, ev, 2, -1);
		atomic_fetch_sub_explicit(&p->idle, 1, memory_order_relaxed);
		if (n < 0 && errno != EINTR)
			break;
		if (atomic_load(&p->stopping))
			break;
		for (int i = 0; i < n; i++)
			if (ev[i].data.u32 == 1)
				serve_requests(r, p);
		bool fast = p->spin_us && quiet_since && now_us() - quiet_since < p->spin_us;
		bool spun = false;
		uint64_t spin_end = 0, empty_at = 0;
		/* Drain one message at a time, so other threads can take the next. */
		for (;;) {
			struct uffd_msg m;
			ssize_t got = read(r->uffd, &m, sizeof(m));
			if (got < 0 && errno == EINTR)
				continue;
			if (got != (ssize_t)sizeof(m)) { /* EAGAIN: empty */
				uint64_t t = now_us();
				if (!empty_at)
					empty_at = t;
				if (!fast)
					break;
				if (!spun) {
					bool no = false;
					if (!atomic_compare_exchange_strong(&p->spinning, &no, true))
						break;
					spun = true;
					spin_end = t + p->spin_us;
				}
				if (t >= spin_end || atomic_load(&p->stopping) ||
				    atomic_load_explicit(&p->reqs, memory_order_relaxed)) {
					fast = false;
					break;
				}
				uf__cpu_relax();
				continue;
			}
			if (spun) { /* caught one: the next poll may catch one too */
				atomic_store(&p->spinning, false);
				spun = false;
			}
			empty_at = 0;
			/* The message comes from a thread that touched the region,
			 * so after uf_map set r up (uf__tsan_release there). */
			uf__tsan_acquire(r);
			if (m.event == UFFD_EVENT_PAGEFAULT) {
				grow(p);
				serve_msg(r, h, &m);
			}
			/* The faulting thread resumes after this (the kernel wakes
			 * it) and may go on to call uf_sync & co.: they acquire r. */
			uf__tsan_release(r);
		}
		if (spun)
			atomic_store(&p->spinning, false);
		/* The gap the next wake-up measures starts when the queue ran
		 * empty, not when a poll gave up: after a poll that timed out the
		 * gap is at least spin_us, and the next one does not poll. */
		quiet_since = empty_at ? empty_at : now_us();
	}
	t_self = NULL;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* the fault-path hook (pager.c's uf__region_fault)                     */

/* Asks a handler thread to serve the fault again and waits for the result.
 * Deferred cancellation waits meanwhile (write is a cancellation point):
 * the record on this stack is on p->reqs until done is set, and a handler
 * thread writes into it. */
UF_SIGCTX static int request(struct uf_region *r, uintptr_t addr, int access)
{
	int cs;
	uf__cancel_hold(&cs);
	struct thr_priv *p = r->eng_priv;
	struct req q = {.addr = addr, .access = access};
	struct req *head = atomic_load(&p->reqs);
	do
		q.next = head;
	while (!atomic_compare_exchange_weak(&p->reqs, &head, &q));
	uint64_t one = 1;
	if (write(p->evfd, &one, sizeof(one)) < 0) {
		/* only EAGAIN (counter full): the handlers are awake anyway */
	}
	while (!atomic_load_explicit(&q.done, memory_order_acquire))
		uf__futex_wait(&q.done, 0);
	uf__cancel_release(cs);
	return q.result;
}

/* Whether the page holds a PTE marker (poison shows in /proc/self/pagemap
 * as a swap entry that is not present); true when that cannot be read. */
UF_SIGCTX static bool page_has_marker(const struct thr_priv *p, uintptr_t page)
{
	uint64_t e;
	int cs;
	uf__cancel_hold(&cs); /* pread is a cancellation point; we hold a reference */
	bool ok = p->pagemap >= 0 &&
		  pread(p->pagemap, &e, sizeof(e), (off_t)(page / uf__page_size() * sizeof(e))) == sizeof(e);
	uf__cancel_release(cs);
	if (!ok)
		return true;
	return (e >> 62) == 1; /* PM_SWAP without PM_PRESENT */
}

/* The engine's sigbus hook: a thread of this region (rg, referenced: dropped
 * here) took SIGBUS on a page a handler thread poisoned after a failed load
 * (BUS_MCEERR_AR on older kernels, BUS_ADRERR on 6.18). Delivers the load's
 * error to this thread (error callback or SIGBUS), or retries the load.
 * UF__PASS if the poison is not ours (a real memory error). */
UF_SIGCTX static int thr_sigbus(const struct uf__range *rg, siginfo_t *si, void *uc)
{
	struct uf_region *r = rg->obj;
	struct thr_priv *p = r->eng_priv;
	uintptr_t addr = (uintptr_t)si->si_addr;
	uintptr_t page = addr & ~(uintptr_t)(uf__page_size() - 1);
	int access = uf__arch_access(uc);
	int err;
	/* The reference keeps the region (and its handler threads) alive while
	 * we wait for a handler; it is dropped before anything that may leave
	 * by siglongjmp. */
	for (;;) {
		int i = rec_find(p, page);
		if (i < 0 && !page_has_marker(p, page)) {
			/* Our poison, gone since the fault: another thread loaded
			 * the block (zapping the marker, clearing its record) and
			 * the record's slot went to another page before we looked.
			 * No marker is left: access again (the page is there, or
			 * the access faults as usual). */
			uf__registry_put(rg);
			return UF__HANDLED;
		}
		if (i < 0) {
			uf__registry_put(rg);
			return UF__PASS; /* not our poison: a real memory error */
		}
		uint64_t w = atomic_load(&p->rec[i]);
		if (R_ADDR(w) != page)
			continue;
		if (!R_LIVE(w)) {
			uf__registry_put(rg);
			return UF__HANDLED; /* filled since the fault: access again */
		}
		if (w & R_PENDING) {
			sched_yield(); /* its handler is filling in the error */
			continue;
		}
		uint64_t aux = atomic_load(&p->aux[i]);
		uint64_t me = AUX(p->tid ? (uint64_t)uf__gettid() : 0, p->exact ? addr : 0);
		if ((w & R_FRESH) && AUX_ID(aux) == me) {
			/* The failure this very access caused. */
			if (!atomic_compare_exchange_strong(&p->rec[i], &w, w & ~R_FRESH))
				continue;
			err = err_of_aux(aux);
			if (!err) /* aux raced with another insert (rec_insert): load again */
				err = request(r, page, access);
		} else {
			/* An old failure, or someone else's: load again first. */
			err = request(r, page, access);
		}
		break;
	}
	/* As uf__pager_fault_error, with the retry served by a handler. Inside
	 * uf_try_read/uf_try_write the copy just fails with -EFAULT. */
	if (err && uf__safe_access_fail(uc)) {
		uf__registry_put(rg);
		return UF__HANDLED;
	}
	/* Inside a store callback: that store call fails (store.c). */
	if (err && uf__store_guarded()) {
		uf__registry_put(rg);
		uf__store_guard_fail(uc, err, addr, 0);
	}
	/* The callback and the SIGBUS handler may leave by siglongjmp: no
	 * reference is held while they run. A retry takes one again (the
	 * region may have been unmapped meanwhile: then just access again). */
	uf_error_fn cb = r->on_error;
	void *cb_arg = r->error_arg;
	struct uf__range cur = *rg;
	while (err != 0 && err != UF__E_PAST_END && cb) {
		uf__registry_put(&cur);
		if (cb(r, (void *)addr, err, cb_arg) != UF_ERR_RETRY) {
			uf__fault_deliver_sigbus((void *)addr, uc);
			return UF__HANDLED;
		}
		if (!uf__registry_get(addr, &cur))
			return UF__HANDLED;
		if (cur.obj != r) {
			uf__registry_put(&cur);
			return UF__HANDLED;
		}
		err = request(r, page, access);
	}
	uf__registry_put(&cur);
	if (err)
		uf__fault_deliver_sigbus((void *)addr, uc);
	return UF__HANDLED;
}

/* ------------------------------------------------------------------ */
/* attach / detach                                                      */

static int thr_probe(void)
{
	return uf__uffd_caps()->err;
}

static void thr_detach(struct uf_region *r)
{
	struct thr_priv *p = r->eng_priv;
	if (p) {
		/* Under the lock: no handler starts another after this. */
		pthread_mutex_lock(&p->grow_lock);
		atomic_store(&p->stopping, true);
		pthread_mutex_unlock(&p->grow_lock);
		uint64_t one = 1;
		if (p->evfd >= 0 && write(p->evfd, &one, sizeof(one)) < 0) {
		}
		if (p->grower_started) { /* first: it starts no handler after this */
			atomic_fetch_add(&p->grow_seq, 1);
			uf__futex_wake_all(&p->grow_seq);
			pthread_join(p->grower, NULL);
		}
		for (unsigned i = 0; i < MAX_THREADS; i++) {
			if (p->h[i].started)
				pthread_join(p->h[i].th, NULL);
			if (p->h[i].ep >= 0)
				close(p->h[i].ep);
		}
		if (p->evfd >= 0)
			close(p->evfd);
		pthread_mutex_destroy(&p->grow_lock);
		free(p);
		r->eng_priv = NULL;
	}
	uf__uffd_detach(r);
}

/* Starts one of the pool's threads. It takes no asynchronous signal meant
 * for the program; synchronous faults cannot be blocked anyway. */
static int spawn(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg,
		 const char *name)
{
	sigset_t all, old;
	uf__async_sigset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = uf__thread_create(th, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return e;
	pthread_setname_np(*th, name);
	return 0;
}

static int start_thread(struct uf_region *r, struct thr_priv *p, struct handler *h)
{
	h->r = r;
	h->cur_blk = NO_BLOCK;
	h->cur_rec = -1;
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep < 0)
		return -errno;
	/* EPOLLEXCLUSIVE: a message wakes one handler, not the whole pool. */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0};
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, r->uffd, &ev)) {
		ev.events = EPOLLIN; /* before Linux 4.5 */
		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, r->uffd, &ev))
			return -errno;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 1};
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, p->evfd, &ev))
		return -errno;
	int e = spawn(&h->th, NULL, handler_main, h, "uf-fault");
	if (e)
		return e;
	h->started = true;
	return 0;
}

static int thr_attach(struct uf_region *r)
{
	const struct uf__uffd_caps *c = uf__uffd_caps();
	if (c->err)
		return c->err;
	uint64_t feat = c->features &
			(UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EXACT_ADDRESS);
	/* Installs do not wake: serve_msg wakes the sleeper once the pager has
	 * returned, so the thread never runs ahead of the block's bookkeeping
	 * (a write acknowledged before the block is marked dirty could be
	 * missed by an immediate uf_sync). */
	r->eng_flags = UF__UFFD_NOWAKE;
	int e = uf__uffd_attach(r, feat);
	if (e)
		return e;
	if (!r->writable && (r->eng_flags & UF__UFFD_WP)) {
		/* The shared attach maps read-only regions writable and relies on
		 * write protection to turn a write into a fault we report as
		 * SIGSEGV. Here such a write would arrive as a message in a
		 * handler thread, which cannot hand the writer a SIGSEGV: make the
		 * mapping really read-only so the kernel refuses the write itself,
		 * and install by copy (MOVE needs writable mappings). */
		if (mprotect((void *)r->base, r->len, r->prot)) {
			e = -errno;
			uf__uffd_detach(r);
			return e;
		}
		r->eng_flags &= ~(UF__UFFD_WP | UF__UFFD_MOVE);
	}
	struct thr_priv *p = calloc(1, sizeof(*p));
	if (!p) {
		uf__uffd_detach(r);
		return -ENOMEM;
	}
	r->eng_priv = p;
	pthread_mutex_init(&p->grow_lock, NULL);
	p->evfd = -1;
	/* How long a handler polls before it sleeps (handler_main). */
	unsigned long spin;
	p->spin_us = 100;
	if (uf__getenv_num("USERFAULT_THREAD_SPIN_US", 0, &spin))
		p->spin_us = spin > 10000 ? 10000 : (unsigned)spin;
	for (unsigned i = 0; i < MAX_THREADS; i++)
		p->h[i].ep = -1;
	p->poison = feat & UFFD_FEATURE_POISON;
	p->tid = feat & UFFD_FEATURE_THREAD_ID;
	p->exact = feat & UFFD_FEATURE_EXACT_ADDRESS;
	p->pagemap = uf__pagemap_fd(); /* opened now: thr_sigbus reads it */
	/* uf__uffd_attach applied MADV_DONTFORK to the region and the pool. */
	p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->evfd < 0) {
		e = -errno;
		goto fail;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus < 1 ? 1 : cpus > START_THREADS ? START_THREADS : (unsigned)cpus;
	pthread_mutex_lock(&p->grow_lock);
	for (unsigned i = 0; i < n && !e; i++) {
		e = start_thread(r, p, &p->h[i]);
		if (!e)
			atomic_store(&p->nthreads, i + 1);
	}
	pthread_mutex_unlock(&p->grow_lock);
	if (e)
		goto fail;
	pthread_attr_t ga;
	pthread_attr_init(&ga);
	pthread_attr_setstacksize(&ga, GROWER_STACK);
	e = spawn(&p->grower, &ga, grower_main, r, "uf-grow");
	pthread_attr_destroy(&ga);
	if (e)
		goto fail;
	p->grower_started = true;
	return 0;
fail:
	thr_detach(r);
	return e;
}

const struct uf__engine_ops uf__engine_uffd_thread = {
	.name = "uffd-thread",
	.id = UF_ENGINE_UFFD_THREAD,
	.probe = thr_probe,
	.attach = thr_attach,
	.detach = thr_detach,
	.frame_buf = uf__uffd_frame_buf,
	.install = thr_install,
	.park = uf__uffd_park,
	.release = thr_release,
	.park_run = uf__uffd_park_run,
	.release_run = uf__uffd_release_run, /* victims only: never a faulting block */
	.zap = uf__uffd_zap,
	.protect = uf__uffd_protect,
	.stage_get = uf__uffd_stage_get,
	.stage_put = uf__uffd_stage_put,
	.install_clean = thr_install_clean,
	.install_frames = thr_install_frames,
	.sigbus = thr_sigbus,
};

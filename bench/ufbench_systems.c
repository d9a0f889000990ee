/* SPDX-License-Identifier: MIT */
/*
 * ufbench_systems.c - the systems under test behind one region API:
 *
 *   kernel-tmpfs  the same bytes in a memfd, mmap'ed MAP_SHARED (page cache
 *                 hot: the parent wrote them)
 *   kernel-anon   fresh anonymous memory (the kernel's allocate + zero cost)
 *   libsigsegv    the classic user-space pager, written the way a user of GNU
 *                 libsigsegv writes it: a PROT_NONE region; the handler
 *                 mprotects the faulting page read-write and memcpys it from
 *                 the store; under a budget it evicts first-in first-out with
 *                 mprotect(PROT_NONE) + madvise(MADV_DONTNEED)
 *   copy-design   the hand-written userfaultfd pager (ufbench_copy.c)
 *   userfault     uf_map over uf_store_mem of the same bytes (uf_store_fn of
 *                 the same pattern for regions larger than RAM; with
 *                 UFBENCH_STORE=file, uf_store_file of the memfd)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef HAVE_LIBSIGSEGV
#include <sigsegv.h>
#endif

#include "ufbench.h"

#ifdef UFBENCH_WEAK_UF
/* Development aid: lets ufbench link against a library that does not have
 * the core yet; userfault is then reported unavailable. */
#pragma weak uf_map
#pragma weak uf_map_opts_init
#pragma weak uf_store_mem
#pragma weak uf_store_fn
#pragma weak uf_store_file
#pragma weak uf_store_close
#pragma weak uf_region_addr
#pragma weak uf_region_engine
#pragma weak uf_sync
#pragma weak uf_stats
#pragma weak uf_unmap
#pragma weak uf_strerror
#endif

const char *ufb_system_name(int system)
{
	static const char *const n[UFB_NSYSTEMS] = {
		[UFB_KERNEL_TMPFS] = "kernel-tmpfs",
		[UFB_KERNEL_ANON] = "kernel-anon",
		[UFB_LIBSIGSEGV] = "libsigsegv",
		[UFB_COPY] = "copy-design",
		[UFB_USERFAULT] = "userfault",
	};
	_Static_assert(UFB_NSYSTEMS == 5, "name every system");
	return system >= 0 && system < UFB_NSYSTEMS ? n[system] : "?";
}

const char *ufb_engine_name(int engine)
{
	switch (engine) {
	case UF_ENGINE_AUTO: return "auto";
	case UF_ENGINE_UFFD: return "uffd";
	case UF_ENGINE_UFFD_THREAD: return "uffd-thread";
	case UF_ENGINE_SIGNAL: return "signal";
	}
	return "?";
}

void ufb_sys_label(const struct ufb_sys *s, char *buf, size_t len)
{
	if (s->system == UFB_USERFAULT)
		snprintf(buf, len, "userfault/%s", ufb_engine_name(s->engine));
	else
		snprintf(buf, len, "%s", ufb_system_name(s->system));
}

bool ufb_have_libsigsegv(void)
{
#ifdef HAVE_LIBSIGSEGV
	return true;
#else
	return false;
#endif
}

/* ------------------------------------------------------------------------ */
/* The classic pager (libsigsegv).                                           */

enum { ABSENT = 0, CLEAN = 1, DIRTY = 2 };

struct ufb_classic {
	char *base;
	size_t len, unit;
	const char *store;   /* NULL: the pattern function */
	char *wstore;        /* writable store (write tracking), else NULL */
	bool track;          /* load read-only; the first write faults again */
	uint8_t *state;      /* per unit, track only */
	size_t cap;          /* budget in units, 0 = none */
	uint64_t *fifo;      /* resident units, oldest first (budget only) */
	size_t head, count;
	uint64_t *dirty;     /* dirty units in order of first write (track only) */
	size_t ndirty;
	atomic_flag lock;    /* fifo and dirty list; never held across a fault */
	_Atomic uint64_t faults, evictions, wfaults;
	struct ufb_result *res;
	void *map;
	size_t maplen;
};

/* The one region the handler serves (one at a time per process). */
static struct ufb_classic *volatile g_classic;

#ifdef HAVE_LIBSIGSEGV
/* Signal context. */
static void lock(struct ufb_classic *c)
{
	while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
		;
}
static void unlock(struct ufb_classic *c) { atomic_flag_clear_explicit(&c->lock, memory_order_release); }

/* Signal context: a system call failed; the pager cannot go on (the fault
 * would repeat forever). Report where, then leave the measuring child. */
static void classic_fail(struct ufb_classic *c, const char *what, int err)
{
	struct ufb_result *res = c->res;
	uint64_t n = atomic_load(&c->faults);
	res->ns = ufb_t0_ns ? ufb_now_ns() - ufb_t0_ns : 0;
	res->pages = n;
	res->vma_count = ufb_vma_count();
	res->peak_rss = ufb_peak_rss();
	const char *en = strerrorname_np(err);
	ufb_msg(res, what, en ? en : "error", -1, " after ");
	ufb_msg_num(res, (long long)n);
	ufb_msg_add(res, " pages loaded");
	if (err == ENOMEM)
		ufb_msg_add(res, " (VMA limit vm.max_map_count)");
	res->status = UFB_FAILED;
	_exit(0);
}

/* Signal context. */
static void classic_evict_one(struct ufb_classic *c)
{
	uint64_t v = c->fifo[c->head];
	c->head = (c->head + 1) % c->cap;
	c->count--;
	char *p = c->base + v * c->unit;
	if (c->track && c->state[v] == DIRTY)
		memcpy(c->wstore + v * c->unit, p, c->unit);
	if (mprotect(p, c->unit, PROT_NONE))
		classic_fail(c, "evict: mprotect: ", errno);
	madvise(p, c->unit, MADV_DONTNEED);
	if (c->track)
		c->state[v] = ABSENT;
	atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
}

/* Signal context. */
static int classic_on_fault(void *fault_address, int serious)
{
	struct ufb_classic *c = g_classic;
	uintptr_t a = (uintptr_t)fault_address, b;
	if (!c)
		return 0;
	b = (uintptr_t)c->base;
	if (a < b || a >= b + c->len)
		return 0;
	uint64_t idx = (a - b) / c->unit;
	char *p = c->base + idx * c->unit;

	if (c->track && c->state[idx] == CLEAN) { /* first write to a loaded page */
		if (mprotect(p, c->unit, PROT_READ | PROT_WRITE))
			classic_fail(c, "mprotect: ", errno);
		c->state[idx] = DIRTY;
		lock(c);
		c->dirty[c->ndirty++] = idx;
		unlock(c);
		atomic_fetch_add_explicit(&c->wfaults, 1, memory_order_relaxed);
		return 1;
	}
	if (c->cap) {
		lock(c);
		if (c->count == c->cap)
			classic_evict_one(c);
		c->fifo[(c->head + c->count) % c->cap] = idx;
		c->count++;
		unlock(c);
	}
	if (mprotect(p, c->unit, PROT_READ | PROT_WRITE))
		classic_fail(c, "mprotect: ", errno);
	if (c->store)
		memcpy(p, c->store + idx * c->unit, c->unit);
	else
		ufb_fill(idx * c->unit, p, c->unit);
	if (c->track) {
		if (mprotect(p, c->unit, PROT_READ))
			classic_fail(c, "mprotect: ", errno);
		c->state[idx] = CLEAN;
	}
	atomic_fetch_add_explicit(&c->faults, 1, memory_order_relaxed);
	return 1;
}
#endif

int ufb_classic_init(void)
{
#ifdef HAVE_LIBSIGSEGV
	static bool done;
	if (!done && sigsegv_install_handler(classic_on_fault) < 0)
		return -ENOSYS;
	done = true;
	return 0;
#else
	return -ENOSYS;
#endif
}

#ifdef HAVE_LIBSIGSEGV
/* The handler's data lives in mmap'ed memory (libsigsegv: no malloc). */
static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
#endif

static int classic_open(struct ufb_region *r, const struct ufb_src *src,
			const struct ufb_region_opts *o, struct ufb_result *res)
{
#ifndef HAVE_LIBSIGSEGV
	(void)r, (void)src, (void)o;
	ufb_msg(res, "built without libsigsegv (no <sigsegv.h>)", "", -1, "");
	return UFB_UNAVAILABLE;
#else
	if (ufb_classic_init() < 0) {
		ufb_msg(res, "sigsegv_install_handler failed", "", -1, "");
		return UFB_UNAVAILABLE;
	}
	if (g_classic) {
		ufb_msg(res, "one classic region at a time", "", -1, "");
		return UFB_FAILED;
	}
	size_t ps = ufb_page_size();
	size_t unit = o->block_size > ps ? o->block_size : ps;
	struct ufb_classic *c = map_anon(sizeof(*c));
	if (!c)
		goto nomem;
	memset(c, 0, sizeof(*c));
	atomic_flag_clear(&c->lock);
	c->unit = unit;
	c->len = r->len;
	c->res = res;
	c->store = src->buf;
	c->track = o->track_writes;
	if (c->track) {
		c->wstore = src->buf;
		c->state = map_anon(r->len / unit);
		c->dirty = map_anon(r->len / unit * sizeof(uint64_t));
		if (!c->state || !c->dirty)
			goto nomem;
	}
	if (o->budget) {
		c->cap = o->budget / unit ? o->budget / unit : 1;
		c->fifo = map_anon(c->cap * sizeof(uint64_t));
		if (!c->fifo)
			goto nomem;
	}
	/* Aligned to the unit, so one mprotect covers one unit. */
	c->maplen = r->len + unit;
	c->map = mmap(NULL, c->maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		goto nomem;
	}
	c->base = (char *)(((uintptr_t)c->map + unit - 1) & ~(uintptr_t)(unit - 1));
	r->cp = c;
	r->addr = c->base;
	g_classic = c;
	return UFB_OK;
nomem:
	ufb_msg(res, "classic pager: mmap failed", "", -1, "");
	r->cp = c;
	ufb_region_close(r);
	return UFB_FAILED;
#endif
}

static void classic_close(struct ufb_classic *c)
{
	if (g_classic == c)
		g_classic = NULL;
	size_t units = c->len / c->unit;
	if (c->map)
		munmap(c->map, c->maplen);
	if (c->state)
		munmap(c->state, units);
	if (c->dirty)
		munmap(c->dirty, units * sizeof(uint64_t));
	if (c->fifo)
		munmap(c->fifo, c->cap * sizeof(uint64_t));
	munmap(c, sizeof(*c));
}

/* What a classic pager's msync looks like: copy each dirty page back in the
 * order it was dirtied and write-protect it again. */
static int classic_sync(struct ufb_classic *c)
{
	if (!c->track)
		return 0;
	for (size_t i = 0; i < c->ndirty; i++) {
		uint64_t v = c->dirty[i];
		char *p = c->base + v * c->unit;
		memcpy(c->wstore + v * c->unit, p, c->unit);
		if (mprotect(p, c->unit, PROT_READ))
			return -errno;
		c->state[v] = CLEAN;
	}
	c->ndirty = 0;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* userfault                                                                 */

/* Signal context (served in the faulting thread by the default engine). */
static int pattern_fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	ufb_fill(off, dst, len);
	return 0;
}

static bool engine_missing(int err)
{
	return err == -ENOSYS || err == -EOPNOTSUPP || err == -EPERM || err == -EACCES ||
	       err == -EPROTONOSUPPORT || err == -ENODEV;
}

static int uf_open(struct ufb_region *r, const struct ufb_src *src, const struct ufb_region_opts *o,
		   struct ufb_result *res)
{
#ifdef UFBENCH_WEAK_UF
	if (!uf_map || !uf_map_opts_init || !uf_store_mem || !uf_store_fn || !uf_stats) {
		ufb_msg(res, "libuserfault lacks the core (uf_map)", "", -1, "");
		return UFB_UNAVAILABLE;
	}
#endif
	int err;
	const char *kind = getenv("UFBENCH_STORE");
	unsigned ro = (o->prot & PROT_WRITE) ? 0 : UF_STORE_RDONLY;
	if (kind && !strcmp(kind, "file") && src->memfd >= 0)
		err = uf_store_file(src->memfd, ro, &r->st);
	else if (src->buf)
		err = uf_store_mem(src->buf, src->size, ro, &r->st);
	else
		err = uf_store_fn(pattern_fill, NULL, src->size, &r->st);
	if (err < 0) {
		ufb_msg(res, "uf_store: ", uf_strerror(err), -1, "");
		return UFB_FAILED;
	}
	struct uf_map_opts mo;
	uf_map_opts_init(&mo);
	mo.engine = r->sys.engine;
	mo.block_size = o->block_size;
	mo.max_resident = o->budget;
	mo.flags = o->uf_flags;
	err = uf_map(r->st, 0, r->len, o->prot, &mo, &r->ur);
	uf_store_close(r->st); /* the region keeps its own reference */
	r->st = NULL;
	if (err < 0) {
		r->ur = NULL;
		ufb_msg(res, "uf_map: ", uf_strerror(err), -1, "");
		return engine_missing(err) ? UFB_UNAVAILABLE : UFB_FAILED;
	}
	r->addr = uf_region_addr(r->ur);
	res->engine_used = uf_region_engine(r->ur);
	return UFB_OK;
}

/* ------------------------------------------------------------------------ */

int ufb_region_open(struct ufb_region *r, const struct ufb_sys *s, const struct ufb_src *src,
		    const struct ufb_region_opts *o, struct ufb_result *res)
{
	memset(r, 0, sizeof(*r));
	r->sys = *s;
	r->len = src->size;
	r->prot = o->prot;
	r->fd = -1;
	res->engine_used = s->engine;
	switch (s->system) {
	case UFB_KERNEL_TMPFS:
		if (src->memfd < 0) {
			ufb_msg(res, "no tmpfs copy of the data in this scenario", "", -1, "");
			return UFB_UNAVAILABLE;
		}
		r->map = mmap(NULL, r->len, o->prot, MAP_SHARED, src->memfd, 0);
		if (r->map == MAP_FAILED) {
			ufb_msg(res, "mmap memfd: ", strerror(errno), -1, "");
			return UFB_FAILED;
		}
		r->maplen = r->len;
		r->addr = r->map;
		return UFB_OK;
	case UFB_KERNEL_ANON:
		r->map = mmap(NULL, r->len, o->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r->map == MAP_FAILED) {
			ufb_msg(res, "mmap anon: ", strerror(errno), -1, "");
			return UFB_FAILED;
		}
		/* Per-page costs: no transparent huge pages (none by default here). */
		madvise(r->map, r->len, MADV_NOHUGEPAGE);
		r->maplen = r->len;
		r->addr = r->map;
		return UFB_OK;
	case UFB_LIBSIGSEGV:
		return classic_open(r, src, o, res);
	case UFB_COPY:
		return ufb_copy_open(r, src, o, res);
	case UFB_USERFAULT:
		return uf_open(r, src, o, res);
	}
	return UFB_FAILED;
}

int ufb_region_sync(struct ufb_region *r)
{
	switch (r->sys.system) {
	case UFB_KERNEL_TMPFS:
		return msync(r->addr, r->len, MS_SYNC) ? -errno : 0;
	case UFB_KERNEL_ANON:
		return 0;
	case UFB_LIBSIGSEGV:
		return classic_sync(r->cp);
	case UFB_COPY:
		return 0;
	case UFB_USERFAULT:
		return uf_sync(r->ur, r->addr, r->len);
	}
	return -EINVAL;
}

void ufb_region_stats(struct ufb_region *r, struct ufb_result *res)
{
	if (r->sys.system == UFB_LIBSIGSEGV && r->cp) {
		res->faults = atomic_load(&r->cp->faults) + atomic_load(&r->cp->wfaults);
		res->loads = atomic_load(&r->cp->faults);
		res->evictions = atomic_load(&r->cp->evictions);
		res->write_faults = atomic_load(&r->cp->wfaults);
	} else if (r->sys.system == UFB_COPY && r->cc) {
		ufb_copy_stats(r, res);
	} else if (r->sys.system == UFB_USERFAULT && r->ur) {
		struct uf_stats st;
		memset(&st, 0, sizeof(st));
		st.struct_size = sizeof(st);
		if (uf_stats(r->ur, &st) == 0) {
			res->faults = st.faults;
			res->loads = st.loads;
			res->evictions = st.evictions;
			res->reactivations = st.reactivations;
			res->write_faults = st.write_faults;
			res->engine_used = st.engine;
		}
	}
}

void ufb_region_close(struct ufb_region *r)
{
	switch (r->sys.system) {
	case UFB_KERNEL_TMPFS:
	case UFB_KERNEL_ANON:
		if (r->map && r->map != MAP_FAILED)
			munmap(r->map, r->maplen);
		break;
	case UFB_LIBSIGSEGV:
		if (r->cp)
			classic_close(r->cp);
		break;
	case UFB_COPY:
		if (r->cc)
			ufb_copy_close(r);
		break;
	case UFB_USERFAULT:
		/* The measurements synced what they wanted written. */
		if (r->ur)
			uf_unmap(r->ur, UF_UNMAP_DISCARD);
		if (r->st)
			uf_store_close(r->st);
		break;
	}
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* SPDX-License-Identifier: MIT */
/*
 * ufbench_scenarios.c - the scenarios. prepare() runs once in the parent
 * (data, access trace, cache simulations); run() is one measurement in a
 * freshly forked child, so every system starts from the same state, first
 * touches happen on fresh mappings, and VmHWM is the measurement's own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ufbench.h"

static uint64_t ops_all(size_t pages) { return pages; }
static uint64_t ops_quarter(size_t pages) { return pages / 4 ? pages / 4 : 1; }
static uint64_t ops_half(size_t pages) { return pages / 2 ? pages / 2 : 1; }
static uint64_t ops_4x(size_t pages) { return 4 * (uint64_t)pages; }
static uint64_t ops_16th(size_t pages) { return pages / 16 ? pages / 16 : 1; }
static uint64_t ops_million(size_t pages) { (void)pages; return 1000000; }

void ufb_data_free(struct ufb_data *d)
{
	if (d->buf)
		munmap(d->buf, d->size);
	if (d->memfd >= 0)
		close(d->memfd);
	free(d->trace);
	memset(d, 0, sizeof(*d));
	d->memfd = -1;
}

/* ---- parent side ---- */

static int make_data(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	d->size = cfg->size;
	d->memfd = ufb_make_memfd(cfg->size);
	if (d->memfd < 0)
		return d->memfd;
	/* Same bytes as the memfd, in private memory: the store of the pagers. */
	d->buf = ufb_make_buf(cfg->size);
	return d->buf ? 0 : -ENOMEM;
}

static int prep_seq(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	d->ntrace = cfg->size / ufb_page_size();
	if (cfg->ops < d->ntrace)
		d->ntrace = cfg->ops;
	return make_data(cfg, d); /* trace NULL: pages in address order */
}

static int prep_rand(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	uint64_t pages = cfg->size / ufb_page_size();
	d->ntrace = cfg->ops < pages ? cfg->ops : pages;
	d->trace = ufb_trace_distinct(pages, d->ntrace, cfg->seed);
	if (!d->trace)
		return -ENOMEM;
	return make_data(cfg, d);
}

static int prep_zipf(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	uint64_t pages = cfg->size / ufb_page_size();
	uint64_t cap = cfg->budget / ufb_page_size();
	d->ntrace = cfg->ops;
	d->trace = ufb_trace_zipf(pages, d->ntrace, 0.99, cfg->seed);
	if (!d->trace)
		return -ENOMEM;
	d->lru_miss = ufb_sim_lru(d->trace, d->ntrace, pages, cap);
	d->fifo_miss = ufb_sim_fifo(d->trace, d->ntrace, pages, cap);
	d->clock_miss = ufb_sim_clock(d->trace, d->ntrace, pages, cap);
	return make_data(cfg, d);
}

static int prep_write(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	/* No shared data: every child writes into its own fresh copy. */
	uint64_t pages = cfg->size / ufb_page_size();
	d->size = cfg->size;
	d->ntrace = cfg->ops < pages ? cfg->ops : pages;
	d->trace = ufb_trace_distinct(pages, d->ntrace, cfg->seed);
	return d->trace ? 0 : -ENOMEM;
}

static int prep_sparse(const struct ufb_cfg *cfg, struct ufb_data *d)
{
	/* No data at all: the bytes are the pattern function of the offset. */
	d->size = cfg->size;
	d->ntrace = cfg->ops;
	d->trace = ufb_trace_uniform(cfg->size / ufb_page_size(), d->ntrace, cfg->seed);
	return d->trace ? 0 : -ENOMEM;
}

/* ---- child side ---- */

/* Progress and the time limit, every 256 accesses. */
static inline bool stop_now(struct ufb_result *res, uint64_t i)
{
	if (i & 255)
		return false;
	res->done = i;
	if (ufb_expired(i)) {
		res->truncated = 1;
		return true;
	}
	return false;
}

/* A small region of the same system, touched and closed before the timed
 * one: installs handlers, opens userfaultfd, starts helper threads, fills
 * pools. Every system gets the same. */
static void warm_up(const struct ufb_sys *s, const struct ufb_src *src, const struct ufb_region_opts *o)
{
	struct ufb_src w = *src;
	struct ufb_region_opts wo = *o;
	struct ufb_result scratch;
	struct ufb_region r;
	size_t ps = ufb_page_size();
	memset(&scratch, 0, sizeof(scratch));
	if (w.size > (1u << 20))
		w.size = 1u << 20;
	wo.budget = 0;
	if (ufb_region_open(&r, s, &w, &wo, &scratch) != UFB_OK)
		return;
	uint64_t sum = 0;
	for (size_t off = 0; off < w.size; off += ps) {
		if (s->system == UFB_KERNEL_ANON)
			ufb_fill(off, r.addr + off, ps);
		sum += *(volatile uint64_t *)(r.addr + off);
	}
	(void)sum;
	ufb_region_close(&r);
}

static void finish(struct ufb_region *r, struct ufb_result *res)
{
	ufb_region_stats(r, res);
	res->vma_count = ufb_vma_count();
	res->peak_rss = ufb_peak_rss();
}

static int open_measured(struct ufb_region *r, const struct ufb_sys *s, const struct ufb_src *src,
			 const struct ufb_region_opts *o, struct ufb_result *res)
{
	warm_up(s, src, o);
	ufb_reset_peak_rss();
	uint64_t t = ufb_now_ns();
	int st = ufb_region_open(r, s, src, o, res);
	res->setup_ns = ufb_now_ns() - t;
	if (st != UFB_OK)
		res->status = st;
	return st;
}

/* seq-read, rand-read, zipf-read: read every byte of each page in trace
 * order (address order without a trace) and check the sum. */
static void run_read(const struct ufb_cfg *cfg, const struct ufb_data *d, const struct ufb_sys *s,
		     int variant, struct ufb_result *res)
{
	(void)variant;
	size_t ps = ufb_page_size();
	if (s->system == UFB_KERNEL_ANON) {
		ufb_msg(res, "anonymous memory does not hold the bytes; see kernel-tmpfs", "", -1, "");
		res->status = UFB_UNAVAILABLE;
		return;
	}
	struct ufb_src src = {d->buf, d->memfd, d->size};
	struct ufb_region_opts o = {cfg->read_prot, cfg->budget, cfg->block_size, cfg->uf_flags, false};
	if (s->system == UFB_KERNEL_TMPFS)
		o.budget = 0; /* the page cache has no per-mapping budget */
	struct ufb_region r;
	if (open_measured(&r, s, &src, &o, res) != UFB_OK)
		return;
	const uint64_t *t = d->trace;
	uint64_t n = d->ntrace, i, sum = 0;
	res->planned = n;
	ufb_start();
	for (i = 0; i < n; i++) {
		if (stop_now(res, i))
			break;
		uint64_t p = t ? t[i] : i;
		sum += ufb_sum(r.addr + p * ps, ps);
	}
	uint64_t t1 = ufb_now_ns();
	res->ns = t1 - ufb_t0_ns;
	res->pages = res->done = i;
	res->checksum = sum;
	finish(&r, res);
	ufb_region_close(&r);

	uint64_t want = 0;
	for (uint64_t k = 0; k < i; k++)
		want += ufb_sum(d->buf + (t ? t[k] : k) * ps, ps);
	if (want != sum) {
		ufb_msg(res, "checksum mismatch: the region returned wrong bytes", "", -1, "");
		res->status = UFB_FAILED;
		return;
	}
	res->status = UFB_OK;
}

/* threads: rand-read split over 1 or N threads (disjoint pages). */
struct worker {
	pthread_barrier_t *bar;
	const char *addr;
	const uint64_t *t;
	uint64_t n, done, sum;
	uint64_t t0, t1; /* own clock: with 2 vCPUs the main thread may not run
			  * again until a worker is done */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t ps = ufb_page_size();
	uint64_t i, sum = 0;
	pthread_barrier_wait(w->bar);
	w->t0 = ufb_now_ns();
	for (i = 0; i < w->n; i++) {
		if ((i & 255) == 0 && ufb_expired(i))
			break;
		sum += ufb_sum(w->addr + w->t[i] * ps, ps);
	}
	w->t1 = ufb_now_ns();
	w->done = i;
	w->sum = sum;
	return NULL;
}

static void run_threads(const struct ufb_cfg *cfg, const struct ufb_data *d, const struct ufb_sys *s,
			int variant, struct ufb_result *res)
{
	size_t ps = ufb_page_size();
	int nt = variant == 0 ? 1 : cfg->threads;
	struct ufb_src src = {d->buf, d->memfd, d->size};
	struct ufb_region_opts o = {cfg->read_prot, s->system == UFB_KERNEL_TMPFS ? 0 : cfg->budget,
				    cfg->block_size, cfg->uf_flags, false};
	struct ufb_region r;
	if (open_measured(&r, s, &src, &o, res) != UFB_OK)
		return;
	struct worker w[64];
	pthread_t th[64];
	pthread_barrier_t bar;
	if (nt < 1 || nt > 64)
		nt = nt < 1 ? 1 : 64;
	pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
	uint64_t per = d->ntrace / (uint64_t)nt;
	for (int k = 0; k < nt; k++) {
		w[k] = (struct worker){&bar, r.addr, d->trace + per * (uint64_t)k,
				       k == nt - 1 ? d->ntrace - per * (uint64_t)k : per, 0, 0, 0, 0};
		if (pthread_create(&th[k], NULL, worker_main, &w[k])) {
			ufb_msg(res, "pthread_create failed", "", -1, "");
			res->status = UFB_FAILED;
			_exit(0); /* threads already waiting on the barrier */
		}
	}
	res->planned = d->ntrace;
	ufb_start();
	pthread_barrier_wait(&bar);
	uint64_t done = 0, sum = 0, t0 = UINT64_MAX, t1 = 0;
	for (int k = 0; k < nt; k++) {
		pthread_join(th[k], NULL);
		done += w[k].done;
		sum += w[k].sum;
		res->truncated |= w[k].done < w[k].n;
		t0 = w[k].t0 < t0 ? w[k].t0 : t0;
		t1 = w[k].t1 > t1 ? w[k].t1 : t1;
	}
	/* From the first worker's start to the last one's end. */
	res->ns = t1 - t0;
	pthread_barrier_destroy(&bar);
	res->pages = res->done = done;
	finish(&r, res);
	ufb_region_close(&r);

	uint64_t want = 0;
	for (int k = 0; k < nt; k++)
		for (uint64_t i = 0; i < w[k].done; i++)
			want += ufb_sum(d->buf + w[k].t[i] * ps, ps);
	if (want != sum) {
		ufb_msg(res, "checksum mismatch: the region returned wrong bytes", "", -1, "");
		res->status = UFB_FAILED;
		return;
	}
	res->status = UFB_OK;
}

/* write-sync: all pages loaded, then 1/16 of them written at random (the
 * first write of a clean page), then everything synced to the store. */
static void run_write(const struct ufb_cfg *cfg, const struct ufb_data *d, const struct ufb_sys *s,
		      int variant, struct ufb_result *res)
{
	(void)variant;
	size_t ps = ufb_page_size();
	struct ufb_src src = {NULL, -1, d->size};
	if (s->system == UFB_KERNEL_TMPFS) {
		src.memfd = ufb_make_memfd(d->size);
		if (src.memfd < 0) {
			ufb_msg(res, "memfd: ", strerror(-src.memfd), -1, "");
			res->status = UFB_FAILED;
			return;
		}
	} else if (s->system != UFB_KERNEL_ANON) {
		src.buf = ufb_make_buf(d->size); /* this child's own store */
		if (!src.buf) {
			ufb_msg(res, "no memory for the store", "", -1, "");
			res->status = UFB_FAILED;
			return;
		}
	}
	struct ufb_region_opts o = {PROT_READ | PROT_WRITE, 0, cfg->block_size, cfg->uf_flags, true};
	struct ufb_region r;
	if (open_measured(&r, s, &src, &o, res) != UFB_OK)
		return;
	uint64_t pages = d->size / ps, i, sum = 0;
	/* Load every page first (not timed): the figure is the first write of
	 * a clean resident page. Anonymous memory has nothing to load: its
	 * first write is the kernel's allocate + zero. */
	if (s->system != UFB_KERNEL_ANON)
		for (uint64_t p = 0; p < pages; p++)
			sum += *(volatile uint64_t *)(r.addr + p * ps);
	(void)sum;
	const uint64_t *t = d->trace;
	uint64_t n = d->ntrace;
	res->planned = n;
	ufb_start();
	for (i = 0; i < n; i++) {
		if (stop_now(res, i))
			break;
		*(volatile uint64_t *)(r.addr + t[i] * ps) = ~ufb_word(t[i] * ps);
	}
	uint64_t t1 = ufb_now_ns();
	res->ns = t1 - ufb_t0_ns;
	res->pages = res->done = i;
	if (s->system != UFB_KERNEL_ANON) {
		int err = ufb_region_sync(&r);
		res->ns2 = ufb_now_ns() - t1;
		res->pages2 = pages;
		if (err < 0) {
			ufb_msg(res, "sync: ", strerror(-err), -1, "");
			res->status = UFB_FAILED;
		}
	}
	finish(&r, res);
	/* The store must hold what was written. */
	uint64_t bad = 0, first_bad = 0;
	for (uint64_t k = 0; k < i; k++) {
		uint64_t v = 0;
		if (src.buf)
			v = *(uint64_t *)(src.buf + t[k] * ps);
		else if (src.memfd < 0 || pread(src.memfd, &v, 8, (off_t)(t[k] * ps)) != 8)
			continue; /* anonymous memory: nothing to check */
		if (v != ~ufb_word(t[k] * ps) && !bad++)
			first_bad = k;
	}
	ufb_region_close(&r);
	if (src.buf)
		munmap(src.buf, d->size);
	if (src.memfd >= 0)
		close(src.memfd);
	if (res->status == UFB_FAILED)
		return;
	if (bad) {
		ufb_msg(res, "pages not written back by sync: ", "", (long long)bad, " (first: write #");
		ufb_msg_num(res, (long long)first_bad);
		ufb_msg_add(res, ", page ");
		ufb_msg_num(res, (long long)t[first_bad]);
		ufb_msg_add(res, ")");
		res->status = UFB_FAILED;
		return;
	}
	res->status = UFB_OK;
}

/* huge-sparse: random single faults over a huge region under a budget. */
static void run_sparse(const struct ufb_cfg *cfg, const struct ufb_data *d, const struct ufb_sys *s,
		       int variant, struct ufb_result *res)
{
	(void)variant;
	size_t ps = ufb_page_size();
	struct ufb_src src = {NULL, -1, d->size};
	bool anon = s->system == UFB_KERNEL_ANON;
	/* The kernel has no budget for anonymous memory: it is the reference
	 * for time and VMAs; its RSS grows with every page. */
	struct ufb_region_opts o = {anon ? PROT_READ | PROT_WRITE : PROT_READ, anon ? 0 : cfg->budget,
				    cfg->block_size, cfg->uf_flags, false};
	struct ufb_region r;
	if (open_measured(&r, s, &src, &o, res) != UFB_OK)
		return;
	const uint64_t *t = d->trace;
	uint64_t n = d->ntrace, i, bad = 0;
	res->planned = n;
	ufb_start();
	for (i = 0; i < n; i++) {
		if (stop_now(res, i))
			break;
		uint64_t off = t[i] * ps;
		if (anon)
			ufb_fill(off, r.addr + off, ps);
		bad += *(volatile uint64_t *)(r.addr + off) != ufb_word(off);
	}
	res->ns = ufb_now_ns() - ufb_t0_ns;
	res->pages = res->done = i;
	finish(&r, res);
	ufb_region_close(&r);
	if (bad) {
		ufb_msg(res, "wrong bytes in pages: ", "", (long long)bad, "");
		res->status = UFB_FAILED;
		return;
	}
	res->status = UFB_OK;
}

int ufb_variant_threads(const struct ufb_scenario *sc, const struct ufb_cfg *cfg, int variant)
{
	if (sc->nvariants < 2)
		return 1;
	return variant == 0 ? 1 : cfg->threads;
}

#define GiB ((size_t)1 << 30)
#define MiB ((size_t)1 << 20)
const struct ufb_scenario ufb_scenarios[] = {
	{"seq-read", "read every byte of each page in address order, no budget pressure", "read", NULL,
	 256 * MiB, ops_all, 0, 0, 1,
	 {[UFB_KERNEL_TMPFS] = true, [UFB_LIBSIGSEGV] = true, [UFB_COPY] = true},
	 prep_seq, run_read, 0},
	{"rand-read", "read one whole page at each of N distinct random pages (N = 1/4 of the region)",
	 "read", NULL, 256 * MiB, ops_quarter, 0, 0, 1,
	 {[UFB_KERNEL_TMPFS] = true, [UFB_LIBSIGSEGV] = true, [UFB_COPY] = true}, prep_rand, run_read, 0},
	{"zipf-read", "Zipf(0.99) page reads (4 x pages), budget 10% of the pages; miss ratio vs LRU/FIFO",
	 "read", NULL, 256 * MiB, ops_4x, UFB_BUDGET_PCT(10), UF_MAP_NO_READAHEAD, 1,
	 {[UFB_KERNEL_TMPFS] = true, [UFB_LIBSIGSEGV] = true, [UFB_COPY] = true}, prep_zipf, run_read, 0},
	{"write-sync", "first write to 1/16 of the resident pages at random, then sync the region",
	 "first-write", "sync", 256 * MiB, ops_16th, 0, 0, 1,
	 {[UFB_KERNEL_TMPFS] = true, [UFB_KERNEL_ANON] = true, [UFB_LIBSIGSEGV] = true}, prep_write,
	 run_write, 0},
	{"threads", "rand-read of 1/2 of the pages split over 1 and over --threads threads", "read", NULL,
	 256 * MiB, ops_half, 0, 0, 2,
	 {[UFB_KERNEL_TMPFS] = true, [UFB_LIBSIGSEGV] = true, [UFB_COPY] = true}, prep_rand,
	 run_threads, 0},
	{"huge-sparse", "1 TiB region, 1 GiB budget, 1,000,000 uniformly random faults (forked child)",
	 "fault", NULL, 1024 * GiB, ops_million, 1 * GiB, 0, 1,
	 {[UFB_KERNEL_ANON] = true, [UFB_LIBSIGSEGV] = true}, prep_sparse, run_sparse, 3},
};
const int ufb_nscenarios = (int)(sizeof(ufb_scenarios) / sizeof(ufb_scenarios[0]));

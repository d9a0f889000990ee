/* SPDX-License-Identifier: MIT */
/*
 * ufbench.h - shared declarations of ufbench, the benchmark that compares
 * userfault with the kernel and with the classic SIGSEGV+mprotect pager.
 *
 * ufbench.c            options, the driver (one forked child per measurement),
 *                      aggregation, ratios, targets, output
 * ufbench_systems.c    the systems under test behind one small region API
 * ufbench_copy.c       the copy design (hand-written uffd SIGBUS + UFFDIO_COPY pager)
 * ufbench_scenarios.c  the scenarios (run in the measuring child)
 * ufbench_util.c       clock, data pattern, traces, cache simulators, /proc
 */
#ifndef UFBENCH_H
#define UFBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "userfault.h"

/* ---- systems ---- */
enum ufb_system {
	UFB_KERNEL_TMPFS, /* the same bytes in a memfd (tmpfs), mmap'ed, page cache hot */
	UFB_KERNEL_ANON,  /* anonymous memory: the kernel's own first-touch cost */
	UFB_LIBSIGSEGV,   /* classic pager: libsigsegv + mprotect + memcpy */
	UFB_COPY,         /* the copy design: uffd SIGBUS mode + store read + UFFDIO_COPY */
	UFB_USERFAULT,    /* uf_map over a memory (or function) store */
	UFB_NSYSTEMS
};

struct ufb_sys {
	int system; /* enum ufb_system */
	int engine; /* enum uf_engine; UFB_USERFAULT only */
};

const char *ufb_system_name(int system);
const char *ufb_engine_name(int engine); /* "auto", "uffd", "uffd-thread", "signal" */
/* "userfault/uffd", "kernel-tmpfs", ... */
void ufb_sys_label(const struct ufb_sys *s, char *buf, size_t len);
bool ufb_have_libsigsegv(void);

/* ---- one measurement, written by the measuring child into shared memory ---- */
enum ufb_status {
	UFB_PENDING = 0,
	UFB_OK,
	UFB_UNAVAILABLE, /* the system or engine is not offered here */
	UFB_FAILED,      /* ran, then a call failed (message says where) */
	UFB_CRASHED,     /* the child died of a signal */
	UFB_TIMEOUT,     /* the child did not finish in time and was killed */
};
const char *ufb_status_name(int status);

struct ufb_result {
	volatile int status;
	char msg[240];
	int engine_used;       /* what AUTO resolved to, for userfault */
	uint64_t pages, ns;    /* primary metric: ns over pages */
	uint64_t pages2, ns2;  /* secondary metric (write-sync: the sync) */
	volatile uint64_t done;/* accesses completed (progress; < planned if cut) */
	uint64_t planned;
	int truncated;         /* stopped at the time limit */
	uint64_t loads, faults, evictions, reactivations, write_faults;
	long vma_count;        /* lines of /proc/self/maps at the end */
	long peak_rss;         /* VmHWM of the child, bytes (reset before the run) */
	uint64_t setup_ns;     /* map/open, not included in ns */
	uint64_t checksum;     /* of the bytes read; verified in the child */
};

/* ---- configuration of one scenario run ---- */
struct ufb_cfg {
	size_t size;        /* region bytes */
	size_t block_size;  /* userfault block (and classic unit); 0 = page */
	size_t budget;      /* RAM budget bytes; 0 = none */
	uint64_t ops;       /* accesses */
	int threads;        /* for a threaded variant */
	double time_limit;  /* seconds per measurement before it is cut short */
	uint64_t seed;
	unsigned uf_flags;  /* extra UF_MAP_* flags */
	int read_prot;      /* the read scenarios' mapping: PROT_READ, or with
			     * --writable PROT_READ | PROT_WRITE */
	int reps, warmup;   /* measured rounds; discarded rounds before them */
};

/* Data shared by the parent with every measuring child of a scenario. */
struct ufb_data {
	size_t size;
	int memfd;           /* tmpfs copy of the bytes (-1 if none) */
	char *buf;           /* private anonymous copy of the same bytes (NULL if none) */
	uint64_t *trace;     /* page indices in access order */
	uint64_t ntrace;
	double lru_miss, fifo_miss, clock_miss; /* zipf-read: simulated on the trace */
};

/* ---- scenarios ---- */
#define UFB_MAX_VARIANTS 2
struct ufb_scenario {
	const char *name;
	const char *desc;
	const char *metric, *metric2; /* names of the two figures (metric2 may be NULL) */
	size_t def_size;
	uint64_t (*def_ops)(size_t pages);
	size_t def_budget;       /* bytes; UFB_BUDGET_PCT(n) for a share of the region */
	unsigned uf_flags;
	int nvariants;           /* threads: 1 thread, N threads */
	bool baseline[UFB_NSYSTEMS]; /* which non-userfault systems run */
	/* Parent: build data and trace. */
	int (*prepare)(const struct ufb_cfg *cfg, struct ufb_data *d);
	/* Child: one measurement. variant indexes nvariants. */
	void (*run)(const struct ufb_cfg *cfg, const struct ufb_data *d, const struct ufb_sys *s,
		    int variant, struct ufb_result *res);
	int def_reps; /* 0: the global default (5) */
};
#define UFB_BUDGET_PCT_FLAG ((size_t)1 << 63)
/* a share of the region, stored in hundredths of a percent */
#define UFB_BUDGET_PCT(n) (UFB_BUDGET_PCT_FLAG | (size_t)(n) * 100)
extern const struct ufb_scenario ufb_scenarios[];
extern const int ufb_nscenarios;
int ufb_variant_threads(const struct ufb_scenario *sc, const struct ufb_cfg *cfg, int variant);
void ufb_data_free(struct ufb_data *d);

/* ---- regions: every system behind one API (ufbench_systems.c) ---- */
struct ufb_classic;
struct ufb_region {
	struct ufb_sys sys;
	char *addr;
	size_t len;
	int prot;
	/* kernel */
	void *map;     /* what to munmap */
	size_t maplen;
	int fd;        /* child-owned memfd to close, or -1 */
	/* libsigsegv */
	struct ufb_classic *cp;
	/* the copy design */
	struct ufb_copy *cc;
	/* userfault */
	uf_store *st;
	uf_region *ur;
};

/* Where a region's bytes come from: a memory buffer (with its tmpfs twin),
 * or the pattern function (huge regions). */
struct ufb_src {
	char *buf;    /* NULL: bytes are ufb_fill() of the offset */
	int memfd;    /* tmpfs copy for the kernel system; -1 if none */
	size_t size;
};

struct ufb_region_opts {
	int prot;          /* PROT_READ or PROT_READ|PROT_WRITE */
	size_t budget;     /* bytes, 0 = none */
	size_t block_size; /* 0 = page */
	unsigned uf_flags;
	bool track_writes; /* classic pager: load read-only, catch first writes */
};

/* Returns UFB_OK, UFB_UNAVAILABLE or UFB_FAILED (res->msg set). */
int ufb_region_open(struct ufb_region *r, const struct ufb_sys *s, const struct ufb_src *src,
		    const struct ufb_region_opts *o, struct ufb_result *res);
/* Write dirty data back (userfault: uf_sync; classic: dirty list; tmpfs:
 * msync). 0 or -errno. */
int ufb_region_sync(struct ufb_region *r);
/* Fills loads/faults/evictions/... of res from the system's counters. */
void ufb_region_stats(struct ufb_region *r, struct ufb_result *res);
void ufb_region_close(struct ufb_region *r);
/* The copy design (ufbench_copy.c), behind the same calls. */
int ufb_copy_open(struct ufb_region *r, const struct ufb_src *src, const struct ufb_region_opts *o,
		  struct ufb_result *res);
void ufb_copy_stats(struct ufb_region *r, struct ufb_result *res);
void ufb_copy_close(struct ufb_region *r);
/* Installs the libsigsegv handler once in this process (child). */
int ufb_classic_init(void);

/* ---- utilities (ufbench_util.c) ---- */
uint64_t ufb_now_ns(void);  /* the timed parts' clock (UFBENCH_CLOCK) */
uint64_t ufb_wall_ns(void); /* CLOCK_MONOTONIC */
size_t ufb_page_size(void);

/* The data pattern: the 8-byte word at store offset off (multiple of 8). */
static inline uint64_t ufb_word(uint64_t off)
{
	uint64_t x = (off + 0x51ed2701u) * 0x9E3779B97F4A7C15ull;
	return x ^ (x >> 29);
}
void ufb_fill(uint64_t off, void *dst, size_t len); /* async-signal-safe */
uint64_t ufb_sum(const void *p, size_t len);        /* reads every byte */

uint64_t ufb_rand(uint64_t *state); /* splitmix64 */
/* n distinct page indices in [0, pages), random order. */
uint64_t *ufb_trace_distinct(uint64_t pages, uint64_t n, uint64_t seed);
/* n uniform page indices in [0, pages) (repeats allowed). */
uint64_t *ufb_trace_uniform(uint64_t pages, uint64_t n, uint64_t seed);
/* n Zipf(alpha) page references; ranks are scattered over the pages. */
uint64_t *ufb_trace_zipf(uint64_t pages, uint64_t n, double alpha, uint64_t seed);
/* Exact miss ratios of a cache of cap pages over the trace. */
double ufb_sim_lru(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap);
double ufb_sim_fifo(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap);
double ufb_sim_clock(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap);

/* /proc/self: async-signal-safe (open/read/close only). */
long ufb_vma_count(void);
long ufb_peak_rss(void); /* VmHWM in bytes */
void ufb_reset_peak_rss(void);

/* A memfd of size bytes holding the pattern; -errno on failure. */
int ufb_make_memfd(size_t size);
/* A private anonymous copy of the pattern; NULL on failure. */
char *ufb_make_buf(size_t size);

/* Async-signal-safe message building: msg = a b [num if >= 0] c. */
void ufb_msg(struct ufb_result *res, const char *a, const char *b, long long num, const char *c);
void ufb_msg_add(struct ufb_result *res, const char *s);
void ufb_msg_num(struct ufb_result *res, long long num);

int ufb_parse_size(const char *s, size_t *out); /* 4096, 8K, 256M, 1T, 10% (pct flag) */
void ufb_fmt_size(size_t n, char *buf, size_t len);

/* Time limit of the measurement, checked in the access loops. */
extern uint64_t ufb_deadline_ns;
/* Start of the timed part (the classic pager's failure path reads it). */
extern uint64_t ufb_t0_ns;
/* Time limit of a measurement's timed part (0: none). */
extern uint64_t ufb_limit_ns;
/* Starts the timed part: sets ufb_t0_ns and the deadline. */
void ufb_start(void);
static inline bool ufb_expired(uint64_t i)
{
	return (i & 255) == 0 && ufb_deadline_ns && ufb_now_ns() > ufb_deadline_ns;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * demo - a 64 GiB lazily computed array under a 256 MiB RAM budget.
 *
 * Element i of the array is hash(i). Nothing is computed until touched: a
 * page fault runs fill() for the block, and the pager keeps at most 256 MiB
 * resident. The demo scans 2 GiB sequentially, then reads 300,000 random
 * elements across the whole 64 GiB, checks every value, and prints what the
 * pager did.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "userfault.h"

#define VIRT_SIZE ((uint64_t)64 << 30)
#define BUDGET ((size_t)256 << 20)
#define SEQ_BYTES ((uint64_t)2 << 30)
#define RANDOM_READS 300000

static inline uint64_t value_at(uint64_t i)
{
	uint64_t x = i + 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* The store: called in the faulting thread for each block it needs. */
static int fill(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	uint64_t *w = dst, first = off / 8;
	for (size_t k = 0; k < len / 8; k++)
		w[k] = value_at(first + k);
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(const char *what, uint64_t done, uint64_t total, double t0)
{
	double dt = now() - t0;
	fprintf(stderr, "\r  %-10s %5.1f%%  %8.1f s", what, 100.0 * (double)done / (double)total, dt);
}

static void report(const char *what, uf_region *r, double secs, uint64_t bytes, uint64_t accesses)
{
	struct uf_stats st;
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	uf_stats(r, &st);
	fprintf(stderr, "\r%60s\r", "");
	printf("%-10s %8.2f s  %9.1f MiB/s  %7.0f ns/access   faults %-9" PRIu64 " loads %-9" PRIu64
	       " evictions %-9" PRIu64 " reactivated %-7" PRIu64 " resident peak %" PRIu64 " MiB\n",
	       what, secs, (double)bytes / secs / (1 << 20), secs * 1e9 / (double)accesses, st.faults,
	       st.loads, st.evictions, st.reactivations, st.resident_peak * st.block_size >> 20);
}

int main(void)
{
	uf_store *store;
	int e = uf_store_fn(fill, NULL, VIRT_SIZE, &store);
	if (e) {
		fprintf(stderr, "uf_store_fn: %s\n", uf_strerror(e));
		return 1;
	}
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.max_resident = BUDGET;
	uf_region *r;
	e = uf_map(store, 0, VIRT_SIZE, PROT_READ, &o, &r);
	if (e) {
		fprintf(stderr, "uf_map: %s\n", uf_strerror(e));
		return 1;
	}
	const uint64_t *a = uf_region_addr(r);
	printf("userfault %d.%d.%d demo: %" PRIu64 " GiB lazily computed array, %zu MiB budget, "
	       "engine %s, block %zu KiB\n",
	       UF_VERSION_MAJOR, UF_VERSION_MINOR, UF_VERSION_PATCH, VIRT_SIZE >> 30, BUDGET >> 20,
	       uf_engine_name(uf_region_engine(r)), (size_t)4096 / 1024);

	/* sequential pass */
	uint64_t n = SEQ_BYTES / 8, bad = 0;
	double t0 = now();
	for (uint64_t i = 0; i < n; i++) {
		if (a[i] != value_at(i))
			bad++;
		if ((i & ((1 << 23) - 1)) == 0)
			progress("sequential", i, n, t0);
	}
	report("sequential", r, now() - t0, SEQ_BYTES, n / 512);

	/* random pass over the whole array */
	uint64_t seed = 88172645463325252ull, total = VIRT_SIZE / 8;
	t0 = now();
	for (uint64_t k = 0; k < RANDOM_READS; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint64_t i = seed % total;
		if (a[i] != value_at(i))
			bad++;
		if ((k & 16383) == 0)
			progress("random", k, RANDOM_READS, t0);
	}
	report("random", r, now() - t0, (uint64_t)RANDOM_READS * 4096, RANDOM_READS);

	struct uf_stats st;
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	uf_stats(r, &st);
	printf("verified: %s (%" PRIu64 " wrong values); resident now %" PRIu64 " MiB of a %zu MiB budget\n",
	       bad ? "FAILED" : "all values correct", bad, st.resident * st.block_size >> 20, BUDGET >> 20);
	uf_unmap(r, 0);
	uf_store_close(store);
	return bad ? 1 : 0;
}

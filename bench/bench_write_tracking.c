/* SPDX-License-Identifier: MIT */
/*
 * bench_write_tracking.c - what asynchronous write tracking (the uffd
 * engine's default where the kernel has WP_ASYNC + PAGEMAP_SCAN) buys and
 * costs against one write-protect fault per first write
 * (USERFAULT_WP_ASYNC=0), side by side, rounds interleaved:
 *
 *   first-write  ns per first write to a resident clean page (1/16 of a
 *                256 MiB region, random order)
 *   sync         ns per page of region for the uf_sync that follows
 *   rw-miss      ns per read fault on a writable region under a budget of
 *                1/8 (random pages: every fault loads a block and parks or
 *                evicts another; asynchronous tracking pays a hash of each
 *                loaded block and a PAGEMAP_SCAN + hash per park)
 *
 * Prints the median of the rounds for each mode and the ratio async/sync.
 * Usage: bench_write_tracking [rounds]   (default 5)
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "userfault.h"

#define SIZE ((size_t)256 << 20)
#define MAX_ROUNDS 31

static volatile unsigned long sink; /* keeps the reads */

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uf_region *map(uf_store *s, bool async, size_t budget, int *is_async)
{
	setenv("USERFAULT_WP_ASYNC", async ? "1" : "0", 1);
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = UF_ENGINE_UFFD;
	o.max_resident = budget;
	o.flags = UF_MAP_NO_READAHEAD;
	uf_region *r;
	int e = uf_map(s, 0, SIZE, PROT_READ | PROT_WRITE, &o, &r);
	if (e) {
		fprintf(stderr, "uf_map (uffd engine): %s\n", strerror(-e));
		exit(1);
	}
	struct uf_stats st = {.struct_size = sizeof(st)};
	uf_stats(r, &st);
	*is_async = st.async_writes;
	return r;
}

/* One round of one mode: out[0] first write, out[1] sync, out[2] rw-miss. */
static void round_of(uf_store *s, bool async, double out[3], int *is_async)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), np = SIZE / ps;
	uint64_t seed = 0x2545F4914F6CDD1Dull;

	uf_region *r = map(s, async, SIZE, is_async);
	volatile unsigned char *p = uf_region_addr(r);
	unsigned long sum = 0;
	for (size_t i = 0; i < np; i++)
		sum += p[i * ps];
	size_t nw = np / 16;
	double t0 = now_ns();
	for (size_t i = 0; i < nw; i++)
		p[(next(&seed) % np) * ps + 8] = (unsigned char)i;
	double t1 = now_ns();
	if (uf_sync(r, NULL, 0))
		exit(1);
	double t2 = now_ns();
	out[0] = (t1 - t0) / (double)nw;
	out[1] = (t2 - t1) / (double)np;
	uf_unmap(r, UF_UNMAP_DISCARD);

	r = map(s, async, SIZE / 8, is_async);
	p = uf_region_addr(r);
	size_t nr = np / 2;
	t0 = now_ns();
	for (size_t i = 0; i < nr; i++)
		sum += p[(next(&seed) % np) * ps];
	t1 = now_ns();
	struct uf_stats st = {.struct_size = sizeof(st)};
	uf_stats(r, &st);
	out[2] = (t1 - t0) / (double)(st.loads ? st.loads : 1);
	uf_unmap(r, UF_UNMAP_DISCARD);
	sink = sum;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 5;
	unsigned char *buf = malloc(SIZE);
	if (!buf)
		return 1;
	memset(buf, 0x5a, SIZE);
	uf_store *s;
	if (uf_store_mem(buf, SIZE, 0, &s))
		return 1;
	static double v[2][3][MAX_ROUNDS];
	int got[2] = {0, 0};
	for (int k = 0; k < rounds; k++)
		for (int m = 0; m < 2; m++) { /* interleaved: sync mode, then async */
			double out[3];
			round_of(s, m == 1, out, &got[m]);
			for (int j = 0; j < 3; j++)
				v[m][j][k] = out[j];
		}
	if (!got[1]) {
		printf("this kernel has no WP_ASYNC + PAGEMAP_SCAN: both rows are write-protect faults\n");
	}
	const char *name[3] = {"first-write ns/write", "sync ns/page of region", "rw-miss ns/load"};
	printf("%-24s %12s %12s %8s   (median of %d interleaved rounds)\n", "", "wp-fault", "async",
	       "ratio", rounds);
	for (int j = 0; j < 3; j++) {
		double med[2];
		for (int m = 0; m < 2; m++) {
			qsort(v[m][j], (size_t)rounds, sizeof(double), cmp);
			med[m] = v[m][j][rounds / 2];
		}
		printf("%-24s %12.1f %12.1f %7.2fx\n", name[j], med[0], med[1], med[1] / med[0]);
	}
	uf_store_close(s);
	free(buf);
	return 0;
}

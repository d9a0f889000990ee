/* SPDX-License-Identifier: MIT */
/*
 * bench_first_write.c - what a first write to a missing page costs when
 * the region's range may get transparent huge pages.
 *
 *   bench_first_write [ROUNDS] [WRITES]
 *
 * Maps a 1 GiB writable region (a function store of zeros) and writes one
 * byte into WRITES fresh 2 MiB ranges, each a missing-page fault of its
 * own; ns per write, medians of ROUNDS, two variants alternated round by
 * round:
 *   as-mapped   the region as uf_map leaves it (the userfaultfd engines mark
 *               it MADV_NOHUGEPAGE unless it uses huge-page windows)
 *   hugepage    the region marked MADV_HUGEPAGE afterwards: what every
 *               mapping is where /sys/kernel/mm/transparent_hugepage/enabled
 *               is "always" and the library did not opt out. The kernel
 *               then allocates and zeroes a huge page for each such fault
 *               before it finds the range is ours, and frees it.
 * The engine is the default one (USERFAULT_ENGINE chooses another).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "userfault.h"

#define LEN ((size_t)1 << 30)

static int zeros(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off;
	memset(dst, 0, len);
	return 0;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double one(int huge, unsigned writes)
{
	uf_store *s;
	uf_region *r;
	if (uf_store_fn(zeros, NULL, LEN, &s) || uf_map(s, 0, LEN, PROT_READ | PROT_WRITE, NULL, &r)) {
		fprintf(stderr, "bench_first_write: uf_map failed\n");
		exit(1);
	}
	uf_store_close(s);
	volatile char *p = uf_region_addr(r);
	if (huge && madvise((void *)p, LEN, MADV_HUGEPAGE)) {
		fprintf(stderr, "bench_first_write: MADV_HUGEPAGE refused (no THP in this kernel)\n");
		exit(1);
	}
	size_t step = LEN / writes & ~((size_t)(2 << 20) - 1);
	double t0 = now_ns();
	for (unsigned i = 0; i < writes; i++)
		p[(size_t)i * step + 4096] = 1;
	double t = (now_ns() - t0) / writes;
	uf_unmap(r, UF_UNMAP_DISCARD);
	return t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	unsigned writes = argc > 2 ? (unsigned)atoi(argv[2]) : 500;
	if (rounds < 1 || rounds > 1000 || writes < 1 || writes > 512) {
		fprintf(stderr, "usage: bench_first_write [ROUNDS (1-1000)] [WRITES (1-512)]\n");
		return 2;
	}
	double *v[2];
	for (int k = 0; k < 2; k++)
		v[k] = calloc((size_t)rounds, sizeof(double));
	one(0, writes); /* warm-up */
	for (int i = 0; i < rounds; i++)
		for (int k = 0; k < 2; k++) {
			int h = (i & 1) ? 1 - k : k;
			v[h][i] = one(h, writes);
		}
	printf("1 GiB region, %u first writes each in a fresh 2 MiB range, %d rounds; ns per write\n",
	       writes, rounds);
	printf("%-10s %9s %9s %9s\n", "variant", "median", "min", "max");
	const char *name[2] = {"as-mapped", "hugepage"};
	for (int k = 0; k < 2; k++) {
		qsort(v[k], (size_t)rounds, sizeof(double), cmp);
		printf("%-10s %9.0f %9.0f %9.0f\n", name[k], v[k][rounds / 2], v[k][0], v[k][rounds - 1]);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_install_floor.c - what installing a sequential scan's pages costs
 * the kernel, per 4 KiB page, without any pager around it: the floor under
 * the in-thread engine's seq-read (issue 11).
 *
 *   build/bench/bench_install_floor [rounds [MiB]]     (default 7, 256)
 *
 * Every variant fills the same region from the same private buffer (the
 * store), 64 pages (256 KiB) per batch, then checksums the batch as the
 * seq-read scenario does; variants are interleaved round by round (order
 * rotated), each on fresh mappings, one warm-up round discarded, medians.
 * No signals: with 64-page batches a SIGBUS is 1/64 of a fault per page.
 * Timed by the thread's CPU clock (BENCH_WALL=1: wall clock).
 * BENCH_ONLY=name,name runs only those variants (for perf record).
 *
 *   tmpfs        the bytes already in a memfd, MAP_SHARED, read scan (the
 *                kernel-tmpfs system: page cache hot, fault-around)
 *   scan         checksum of memory already resident (the scan alone)
 *   populate     MADV_POPULATE_WRITE of fresh anonymous memory + memcpy from
 *                the store: the physical floor of any private-memory pager
 *   copy         memcpy into a hot staging buffer + UFFDIO_COPY(MODE_WP):
 *                what the in-thread engine does
 *   move         MADV_POPULATE_WRITE of a 64-page pool + memcpy into it +
 *                one UFFDIO_MOVE into the region
 *   move+wp      move, then UFFDIO_WRITEPROTECT of the batch (a clean block
 *                must end protected for exact write tracking)
 *   copy-direct  UFFDIO_COPY(MODE_WP) straight from the store buffer (no
 *                staging memcpy: one copy into a fresh page, the least any
 *                private-memory pager can do for a page it has never held)
 * With a budget (the region holds W MiB, every batch evicts the oldest):
 *   copy-evict   MADV_DONTNEED of the evicted batch + memcpy + UFFDIO_COPY
 *   move-recycle UFFDIO_MOVE of the evicted batch's pages out into the pool
 *                (recycled frames, no allocation or zeroing) + memcpy into
 *                them + UFFDIO_MOVE in + UFFDIO_WRITEPROTECT
 * The same one page per ioctl (a random fault's load under a budget):
 *   copy1-evict  per page: MADV_DONTNEED of the evicted page + memcpy into a
 *                hot staging page + UFFDIO_COPY(MODE_WP)
 *   park1-evict  per page: UFFDIO_MOVE of the evicted page into the pool, then
 *                MADV_DONTNEED of it (the pager's eviction under asynchronous
 *                tracking) + memcpy into a hot staging page + UFFDIO_COPY
 *   move1-recycle per page: UFFDIO_MOVE of the evicted page into the pool +
 *                memcpy into it + UFFDIO_MOVE in + UFFDIO_WRITEPROTECT
 * With transparent huge pages (MADV_HUGEPAGE), 2 MiB batches:
 *   populate-thp MADV_POPULATE_WRITE of a 2 MiB-aligned huge range + memcpy
 *   move-thp+wp  a 2 MiB huge pool page populated + memcpy + one UFFDIO_MOVE
 *                (the kernel moves the PMD) + UFFDIO_WRITEPROTECT
 * A shmem-backed region (a memfd mapped MAP_SHARED; the region backing
 * issue 11 names as the way under 1.5x tmpfs), 64-page batches:
 *   shm-continue pwrite of the store's bytes into the memfd (a full-page
 *                write allocates page cache without zeroing it) + one
 *                UFFDIO_CONTINUE of the batch (MODE_MINOR registration)
 *   shm-stage    the same after a memcpy into a hot staging buffer (what a
 *                store callback filling our buffer would cost)
 *   shm-copy     UFFDIO_COPY straight from the store into the shmem region
 *                (MODE_MISSING registration)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst, src, len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

#define PS 4096u
#define BATCH 64u
#define BLEN ((size_t)BATCH * PS)

enum { V_TMPFS, V_SCAN, V_POP, V_COPY, V_MOVE, V_MOVEWP, V_COPYEV, V_MOVEREC, V_POPTHP, V_MOVETHP,
       V_COPYDIRECT, V_COPY1EV, V_PARK1EV, V_MOVE1REC, V_SHMCONT, V_SHMSTAGE, V_SHMCOPY, NV };
static const char *names[NV] = {"tmpfs", "scan", "populate", "copy", "move", "move+wp",
				"copy-evict", "move-recycle", "populate-thp", "move-thp+wp", "copy-direct",
				"copy1-evict", "park1-evict", "move1-recycle", "shm-continue", "shm-stage",
				"shm-copy"};
#define HLEN ((size_t)2 << 20)

static size_t g_len, g_win;
static char *g_store;
static int g_memfd;
static volatile uint64_t g_sink;

/* Thread CPU time by default (user + system time of this thread: the guest
 * is shared, and wall time would count the time other work held the CPU);
 * BENCH_WALL=1 for CLOCK_MONOTONIC. */
static clockid_t g_clock = CLOCK_THREAD_CPUTIME_ID;

static double now(void)
{
	struct timespec t;
	clock_gettime(g_clock, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_install_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* 2 MiB aligned, huge pages allowed (leaks the alignment slack: a bench). */
static char *anon_huge(size_t len)
{
	char *p = mmap(NULL, len + HLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	p = (char *)(((uintptr_t)p + HLEN - 1) & ~(uintptr_t)(HLEN - 1));
	madvise(p, len, MADV_HUGEPAGE);
	return p;
}

static uint64_t sum(const char *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t s = 0;
	for (size_t i = 0; i < len / 8; i++)
		s += w[i];
	return s;
}

/* A userfaultfd with SIGBUS and the given features; need names them. */
static int uffd_with(__u64 features, const char *need)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		die("userfaultfd");
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_SIGBUS | features};
	if (ioctl(fd, UFFDIO_API, &api))
		die(need);
	return fd;
}

static int uffd_new(void)
{
	return uffd_with(UFFD_FEATURE_MOVE | UFFD_FEATURE_PAGEFAULT_FLAG_WP,
			 "UFFDIO_API (needs MOVE and WP: Linux 6.8+)");
}

static void reg(int fd, void *p, size_t len, __u64 mode)
{
	struct uffdio_register r = {.range = {(uintptr_t)p, len}, .mode = mode};
	if (ioctl(fd, UFFDIO_REGISTER, &r))
		die("UFFDIO_REGISTER");
}

static void do_copy(int fd, char *dst, const char *src, size_t len, __u64 mode)
{
	struct uffdio_copy c = {.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = mode};
	if (ioctl(fd, UFFDIO_COPY, &c))
		die("UFFDIO_COPY");
}

static void do_move(int fd, char *dst, char *src, size_t len)
{
	struct uffdio_move m = {.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len,
				.mode = UFFDIO_MOVE_MODE_DONTWAKE};
	if (ioctl(fd, UFFDIO_MOVE, &m))
		die("UFFDIO_MOVE");
}

static void do_wp(int fd, char *p, size_t len)
{
	struct uffdio_writeprotect w = {.range = {(uintptr_t)p, len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &w))
		die("UFFDIO_WRITEPROTECT");
}

/* One variant over the whole region; ns per page (timed part only). */
static double run(int v)
{
	size_t n = g_len / BLEN;
	uint64_t s = 0;
	double t0, t1;
	if (v == V_TMPFS) {
		char *m = mmap(NULL, g_len, PROT_READ, MAP_SHARED, g_memfd, 0);
		if (m == MAP_FAILED)
			die("mmap memfd");
		t0 = now();
		for (size_t b = 0; b < n; b++)
			s += sum(m + b * BLEN, BLEN);
		t1 = now();
		munmap(m, g_len);
		g_sink += s;
		return (t1 - t0) / (g_len / PS);
	}
	if (v == V_SHMCONT || v == V_SHMSTAGE || v == V_SHMCOPY) {
		int mfd = memfd_create("floor-region", MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, (off_t)g_len))
			die("memfd");
		char *m = mmap(NULL, g_len, PROT_READ, MAP_SHARED, mfd, 0);
		if (m == MAP_FAILED)
			die("mmap memfd");
		int fd = uffd_with(UFFD_FEATURE_MINOR_SHMEM, "UFFDIO_API (needs MINOR_SHMEM)");
		reg(fd, m, g_len, v == V_SHMCOPY ? UFFDIO_REGISTER_MODE_MISSING : UFFDIO_REGISTER_MODE_MINOR);
		char *stage = anon(BLEN);
		madvise(stage, BLEN, MADV_POPULATE_WRITE);
		t0 = now();
		for (size_t b = 0; b < n; b++) {
			char *d = m + b * BLEN;
			const char *src = g_store + b * BLEN;
			if (v == V_SHMCOPY) {
				do_copy(fd, d, src, BLEN, UFFDIO_COPY_MODE_DONTWAKE);
			} else {
				if (v == V_SHMSTAGE) {
					memcpy(stage, src, BLEN);
					src = stage;
				}
				if (pwrite(mfd, src, BLEN, (off_t)(b * BLEN)) != (ssize_t)BLEN)
					die("pwrite");
				struct uffdio_continue c = {.range = {(uintptr_t)d, BLEN},
							    .mode = UFFDIO_CONTINUE_MODE_DONTWAKE};
				if (ioctl(fd, UFFDIO_CONTINUE, &c))
					die("UFFDIO_CONTINUE");
			}
			s += sum(d, BLEN);
		}
		t1 = now();
		close(fd);
		munmap(stage, BLEN);
		munmap(m, g_len);
		close(mfd);
		g_sink += s;
		return (t1 - t0) / (g_len / PS);
	}
	if (v == V_POPTHP || v == V_MOVETHP) {
		char *r = anon_huge(g_len);
		char *pool = NULL;
		int fd = -1;
		if (v == V_MOVETHP) {
			fd = uffd_new();
			reg(fd, r, g_len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
			pool = anon_huge(HLEN);
			reg(fd, pool, HLEN, UFFDIO_REGISTER_MODE_WP);
		}
		t0 = now();
		for (size_t b = 0; b < g_len / HLEN; b++) {
			char *d = r + b * HLEN;
			char *fill = v == V_MOVETHP ? pool : d;
			if (madvise(fill, HLEN, MADV_POPULATE_WRITE))
				die("MADV_POPULATE_WRITE");
			memcpy(fill, g_store + b * HLEN, HLEN);
			if (v == V_MOVETHP) {
				do_move(fd, d, pool, HLEN);
				do_wp(fd, d, HLEN);
			}
			s += sum(d, HLEN);
		}
		t1 = now();
		if (fd >= 0)
			close(fd);
		munmap(r, g_len);
		if (pool)
			munmap(pool, HLEN);
		g_sink += s;
		return (t1 - t0) / (g_len / PS);
	}
	char *r = anon(g_len);
	if (v == V_SCAN || v == V_POP) {
		if (v == V_SCAN) {
			madvise(r, g_len, MADV_POPULATE_WRITE);
			memcpy(r, g_store, g_len);
		}
		t0 = now();
		for (size_t b = 0; b < n; b++) {
			char *d = r + b * BLEN;
			if (v == V_POP) {
				if (madvise(d, BLEN, MADV_POPULATE_WRITE))
					die("MADV_POPULATE_WRITE");
				memcpy(d, g_store + b * BLEN, BLEN);
			}
			s += sum(d, BLEN);
		}
		t1 = now();
		munmap(r, g_len);
		g_sink += s;
		return (t1 - t0) / (g_len / PS);
	}
	int fd = uffd_new();
	reg(fd, r, g_len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
	char *pool = anon(BLEN);
	/* Like the engine: the pool is registered write-protect-only with the
	 * same uffd, so both ends of a MOVE have equal flags. */
	reg(fd, pool, BLEN, UFFDIO_REGISTER_MODE_WP);
	madvise(pool, BLEN, MADV_POPULATE_WRITE); /* the staging slot is hot */
	char *spare = anon(PS); /* park1-evict's frame slot */
	reg(fd, spare, PS, UFFDIO_REGISTER_MODE_WP);
	size_t wb = g_win / BLEN; /* budget in batches */
	t0 = now();
	for (size_t b = 0; b < n; b++) {
		char *d = r + b * BLEN;
		const char *src = g_store + b * BLEN;
		switch (v) {
		case V_COPY:
			memcpy(pool, src, BLEN);
			do_copy(fd, d, pool, BLEN, UFFDIO_COPY_MODE_WP | UFFDIO_COPY_MODE_DONTWAKE);
			break;
		case V_COPYDIRECT:
			do_copy(fd, d, src, BLEN, UFFDIO_COPY_MODE_WP | UFFDIO_COPY_MODE_DONTWAKE);
			break;
		case V_COPYEV:
			if (b >= wb)
				madvise(d - wb * BLEN, BLEN, MADV_DONTNEED);
			memcpy(pool, src, BLEN);
			do_copy(fd, d, pool, BLEN, UFFDIO_COPY_MODE_WP | UFFDIO_COPY_MODE_DONTWAKE);
			break;
		case V_MOVE:
		case V_MOVEWP:
			if (madvise(pool, BLEN, MADV_POPULATE_WRITE))
				die("MADV_POPULATE_WRITE");
			memcpy(pool, src, BLEN);
			do_move(fd, d, pool, BLEN);
			if (v == V_MOVEWP)
				do_wp(fd, d, BLEN);
			break;
		case V_COPY1EV:
		case V_PARK1EV:
		case V_MOVE1REC:
			for (size_t i = 0; i < BLEN; i += PS) {
				char *ev = d - wb * BLEN + i;
				if (v != V_MOVE1REC) {
					if (b >= wb && v == V_COPY1EV)
						madvise(ev, PS, MADV_DONTNEED);
					if (b >= wb && v == V_PARK1EV) {
						do_move(fd, spare, ev, PS);
						madvise(spare, PS, MADV_DONTNEED);
					}
					memcpy(pool, src + i, PS);
					do_copy(fd, d + i, pool, PS,
						UFFDIO_COPY_MODE_WP | UFFDIO_COPY_MODE_DONTWAKE);
					continue;
				}
				if (b >= wb)
					do_move(fd, pool + i, ev, PS);
				else if (madvise(pool + i, PS, MADV_POPULATE_WRITE))
					die("MADV_POPULATE_WRITE");
				memcpy(pool + i, src + i, PS);
				do_move(fd, d + i, pool + i, PS);
				do_wp(fd, d + i, PS);
			}
			break;
		case V_MOVEREC:
			if (b >= wb)
				do_move(fd, pool, d - wb * BLEN, BLEN); /* an evicted batch's frames */
			else if (madvise(pool, BLEN, MADV_POPULATE_WRITE))
				die("MADV_POPULATE_WRITE");
			memcpy(pool, src, BLEN);
			do_move(fd, d, pool, BLEN);
			do_wp(fd, d, BLEN);
			break;
		}
		s += sum(d, BLEN);
	}
	t1 = now();
	close(fd);
	munmap(pool, BLEN);
	munmap(spare, PS);
	munmap(r, g_len);
	g_sink += s;
	return (t1 - t0) / (g_len / PS);
}

/* Whether name is one of the comma-separated list's entries. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *c = list; *c; c += *c == ',') {
		size_t k = strcspn(c, ",");
		if (k == n && !strncmp(c, name, n))
			return true;
		c += k;
	}
	return false;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 256;
	if (rounds < 1 || rounds > 99 || mib < 4) {
		fprintf(stderr, "usage: bench_install_floor [rounds [MiB]]\n");
		return 2;
	}
	const char *wall = getenv("BENCH_WALL");
	if (wall && !strcmp(wall, "1"))
		g_clock = CLOCK_MONOTONIC;
	g_len = mib << 20;
	g_win = g_len / 4;
	g_store = anon(g_len);
	for (size_t i = 0; i < g_len / 8; i++)
		((uint64_t *)g_store)[i] = i * 0x9E3779B97F4A7C15ull;
	g_memfd = memfd_create("floor", MFD_CLOEXEC);
	if (g_memfd < 0 || ftruncate(g_memfd, (off_t)g_len))
		die("memfd");
	for (size_t o = 0; o < g_len;) {
		ssize_t w = pwrite(g_memfd, g_store + o, g_len - o, (off_t)o);
		if (w <= 0)
			die("pwrite");
		o += (size_t)w;
	}
	static double ns[NV][100];
	bool on[NV];
	const char *only = getenv("BENCH_ONLY");
	for (int v = 0; v < NV; v++) /* tmpfs always: the reference */
		on[v] = !only || !*only || v == V_TMPFS || listed(only, names[v]);
	for (int k = -1; k < rounds; k++)
		for (int j = 0; j < NV; j++) {
			int v = (j + (k < 0 ? 0 : k)) % NV;
			if (!on[v])
				continue;
			double x = run(v);
			if (k >= 0)
				ns[v][k] = x;
		}
	double la[3] = {0};
	if (getloadavg(la, 3) < 0)
		la[0] = -1;
	printf("%zu MiB, %u-page batches, %d rounds (+1 warm-up), load %.2f; %s ns per 4 KiB page\n",
	       mib, BATCH, rounds, la[0], g_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU");
	printf("%-13s %8s %8s %8s %10s\n", "variant", "median", "min", "max", "vs tmpfs");
	double tm = 0;
	for (int v = 0; v < NV; v++) {
		if (!on[v])
			continue;
		qsort(ns[v], (size_t)rounds, sizeof(double), cmpd);
		double med = ns[v][rounds / 2];
		if (v == V_TMPFS)
			tm = med;
		printf("%-13s %8.0f %8.0f %8.0f %9.2fx\n", names[v], med, ns[v][0], ns[v][rounds - 1],
		       med / tm);
	}
	return g_sink == 42; /* keep the sums */
}

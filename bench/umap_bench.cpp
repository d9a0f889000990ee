/* SPDX-License-Identifier: MIT */
/*
 * umap_bench.cpp - ufbench's read scenarios against LLNL UMap, in one driver
 * so both libraries run the same loop, trace and clock.
 *
 * Built only when the build is pointed at a UMap install (its include/umap
 * and lib/libumap.so):  make UMAP_DIR=/tmp/umap-install build/bench/umap_bench
 *
 *   umap_bench --system umap|userfault|userfault-file [--page-size 64K]
 *              [--order rand|seq] [--size 256M] [--ops N] [--reps 5]
 *              [--seed N] [--file /dev/shm/umap_bench.dat] [--engine uffd|uffd-thread|auto]
 *
 * The workload is ufbench's rand-read (seq-read with --order seq): a region
 * of --size bytes whose bytes are ufb_word() of the offset, --ops distinct
 * 4 KiB pages (default: all of them) read whole, in the order of
 * ufb_trace_distinct(pages, ops, seed) with ufbench's default seed, each
 * page summed with ufb_sum(); figure = ns of the loop / pages read.
 *
 *   umap            UMap over the tmpfs file --file (UMAP_PAGESIZE = --page-size,
 *                   UMAP_BUFSIZE = 2 x the region's UMap pages: no eviction)
 *   userfault       uf_map over uf_store_mem of a private copy of the bytes,
 *                   block = --page-size, no budget: what ufbench measures
 *   userfault-file  uf_map over uf_store_file of the same tmpfs file UMap reads
 *
 * Every rep runs in a freshly forked child (as in ufbench): the region, its
 * threads and the first touches are the rep's own. Each child first maps a
 * 1 MiB warm-up region of the same system and touches it (ufbench's warm-up).
 * UMap's warm-up region stays mapped: this UMap keeps an fd-to-region entry
 * after uunmap() and re-creates its buffer and workers on the next umap()
 * once no region is left, so a map-unmap-map sequence is not safe with it.
 * Both clocks are reported: wall (CLOCK_MONOTONIC) and the child's CPU time
 * (all its threads: UMap's fill and fault threads count).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <getopt.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include <umap/umap.h>

#include "userfault.h"

namespace {

const uint64_t DEFAULT_SEED = 0x75666265ull; /* ufbench's ("ufbe") */
const size_t WARM_SIZE = 1u << 20;

enum System { SYS_UMAP, SYS_UF_MEM, SYS_UF_FILE };

struct Opts {
	System system = SYS_UF_MEM;
	size_t size = 256u << 20;
	size_t page_size = 64u << 10; /* UMap page = userfault block */
	uint64_t ops = 0;             /* 0: every page */
	int reps = 5;
	uint64_t seed = DEFAULT_SEED;
	bool seq = false;
	int engine = UF_ENGINE_UFFD;
	std::string file = "/dev/shm/umap_bench.dat";
};

/* ---- the pattern, trace and sum of ufbench: bench/ufbench_util.c, linked in ---- */
extern "C" {
void ufb_fill(uint64_t off, void *dst, size_t len);
uint64_t ufb_sum(const void *p, size_t len);
uint64_t *ufb_trace_distinct(uint64_t pages, uint64_t n, uint64_t seed);
}

uint64_t now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

[[noreturn]] void die(const char *what, int err)
{
	fprintf(stderr, "umap_bench: %s: %s\n", what, strerror(err));
	exit(2);
}

std::vector<uint64_t> trace_distinct(uint64_t pages, uint64_t n, uint64_t seed)
{
	uint64_t *t = ufb_trace_distinct(pages, n, seed);
	if (!t)
		die("trace", ENOMEM);
	std::vector<uint64_t> v(t, t + (n < pages ? n : pages));
	free(t);
	return v;
}

size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; break;
	case 0: break;
	default: fprintf(stderr, "umap_bench: bad size %s\n", s); exit(2);
	}
	return (size_t)v;
}

/* The data file in tmpfs: UMap's store (and userfault-file's). */
int make_file(const std::string &path, size_t size)
{
	int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path.c_str(), errno);
	if (ftruncate(fd, (off_t)size) < 0)
		die("ftruncate", errno);
	void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap", errno);
	ufb_fill(0, p, size);
	munmap(p, size);
	return fd;
}

struct Region {
	char *addr = nullptr;
	uf_region *ur = nullptr;
};

/* ---- the systems; in the child ---- */
Region uf_open(const Opts &o, char *buf, int fd, size_t len)
{
	uf_store *st;
	int err = o.system == SYS_UF_MEM ? uf_store_mem(buf, len, UF_STORE_RDONLY, &st)
					 : uf_store_file(fd, UF_STORE_RDONLY, &st);
	if (err < 0) {
		fprintf(stderr, "umap_bench: uf_store: %s\n", uf_strerror(err));
		exit(2);
	}
	struct uf_map_opts mo;
	uf_map_opts_init(&mo);
	mo.engine = o.engine;
	mo.block_size = o.page_size;
	Region r;
	err = uf_map(st, 0, len, PROT_READ, &mo, &r.ur);
	uf_store_close(st);
	if (err < 0) {
		fprintf(stderr, "umap_bench: uf_map: %s\n", uf_strerror(err));
		exit(2);
	}
	r.addr = static_cast<char *>(uf_region_addr(r.ur));
	return r;
}

Region umap_open(int fd, size_t len)
{
	Region r;
	void *p = umap(nullptr, len, PROT_READ, UMAP_PRIVATE, fd, 0);
	if (p == UMAP_FAILED) {
		fprintf(stderr, "umap_bench: umap failed\n");
		exit(2);
	}
	r.addr = static_cast<char *>(p);
	return r;
}

struct Result {
	uint64_t wall_ns, cpu_ns, pages;
	int ok;
};

/* One rep: warm up, map, read the trace, check, unmap. */
void child(const Opts &o, const std::vector<uint64_t> &trace, char *buf, int fd, int warm_fd,
	   Result *res)
{
	const size_t ps = 4096;
	if (o.system == SYS_UMAP) {
		char v[32];
		snprintf(v, sizeof(v), "%zu", o.page_size);
		setenv("UMAP_PAGESIZE", v, 1);
		/* Budget twice the UMap pages of both regions: eviction starts
		 * at 90 % of the buffer, which is then never reached. */
		snprintf(v, sizeof(v), "%zu", 2 * (o.size + WARM_SIZE) / o.page_size);
		setenv("UMAP_BUFSIZE", v, 1);
	}
	size_t warm = std::min(WARM_SIZE, o.size);
	Region w = o.system == SYS_UMAP ? umap_open(warm_fd, warm) : uf_open(o, buf, fd, warm);
	volatile uint64_t s0 = 0;
	for (size_t off = 0; off < warm; off += ps)
		s0 += *(volatile uint64_t *)(w.addr + off);
	if (o.system != SYS_UMAP)
		uf_unmap(w.ur, 0);

	Region r = o.system == SYS_UMAP ? umap_open(fd, o.size) : uf_open(o, buf, fd, o.size);
	uint64_t s = 0;
	uint64_t n = trace.size();
	uint64_t c0 = now(CLOCK_PROCESS_CPUTIME_ID), t0 = now(CLOCK_MONOTONIC);
	if (o.seq) {
		for (uint64_t i = 0; i < n; i++)
			s += ufb_sum(r.addr + i * ps, ps);
	} else {
		for (uint64_t i = 0; i < n; i++)
			s += ufb_sum(r.addr + trace[i] * ps, ps);
	}
	uint64_t t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);

	std::vector<char> scratch(ps);
	uint64_t want = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t p = o.seq ? i : trace[i];
		ufb_fill(p * ps, scratch.data(), ps);
		want += ufb_sum(scratch.data(), ps);
	}
	res->wall_ns = t1 - t0;
	res->cpu_ns = c1 - c0;
	res->pages = n;
	res->ok = want == s;
	/* Unmapping is not timed; the child exits right after (UMap's
	 * teardown of its last region is not exercised). */
	if (o.system != SYS_UMAP)
		uf_unmap(r.ur, 0);
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void usage(void)
{
	fprintf(stderr,
		"usage: umap_bench --system umap|userfault|userfault-file [--page-size 64K] [--order rand|seq]\n"
		"                  [--size 256M] [--ops N] [--reps 5] [--seed N] [--file PATH]\n"
		"                  [--engine uffd|uffd-thread|auto]\n");
	exit(2);
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	static const struct option lo[] = {
		{"system", required_argument, nullptr, 's'}, {"page-size", required_argument, nullptr, 'P'},
		{"block-size", required_argument, nullptr, 'P'}, {"order", required_argument, nullptr, 'o'},
		{"size", required_argument, nullptr, 'S'}, {"ops", required_argument, nullptr, 'n'},
		{"reps", required_argument, nullptr, 'r'}, {"seed", required_argument, nullptr, 'x'},
		{"file", required_argument, nullptr, 'f'}, {"engine", required_argument, nullptr, 'e'},
		{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, nullptr)) != -1) {
		switch (c) {
		case 's':
			if (!strcmp(optarg, "umap")) o.system = SYS_UMAP;
			else if (!strcmp(optarg, "userfault")) o.system = SYS_UF_MEM;
			else if (!strcmp(optarg, "userfault-file")) o.system = SYS_UF_FILE;
			else usage();
			break;
		case 'P': o.page_size = parse_size(optarg); break;
		case 'o':
			if (!strcmp(optarg, "seq")) o.seq = true;
			else if (!strcmp(optarg, "rand")) o.seq = false;
			else usage();
			break;
		case 'S': o.size = parse_size(optarg); break;
		case 'n': o.ops = strtoull(optarg, nullptr, 0); break;
		case 'r': o.reps = atoi(optarg); break;
		case 'x': o.seed = strtoull(optarg, nullptr, 0); break;
		case 'f': o.file = optarg; break;
		case 'e':
			if (!strcmp(optarg, "uffd")) o.engine = UF_ENGINE_UFFD;
			else if (!strcmp(optarg, "uffd-thread")) o.engine = UF_ENGINE_UFFD_THREAD;
			else if (!strcmp(optarg, "auto")) o.engine = UF_ENGINE_AUTO;
			else usage();
			break;
		default: usage();
		}
	}
	const size_t ps = 4096;
	if (o.reps < 1 || o.page_size < ps || o.page_size % ps || o.size % o.page_size)
		usage();
	uint64_t pages = o.size / ps;
	if (!o.ops || o.ops > pages)
		o.ops = pages;

	/* Parent: the bytes (file and private copy) and the trace, once. */
	int fd = make_file(o.file, o.size);
	std::string warm_path = o.file + ".warm";
	int warm_fd = make_file(warm_path, std::min(WARM_SIZE, o.size));
	char *buf = nullptr;
	if (o.system == SYS_UF_MEM) {
		void *p = mmap(nullptr, o.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap", errno);
		buf = static_cast<char *>(p);
		ufb_fill(0, buf, o.size);
	}
	std::vector<uint64_t> trace = o.seq ? std::vector<uint64_t>(o.ops) : trace_distinct(pages, o.ops, o.seed);

	void *shm = mmap(nullptr, sizeof(Result) * o.reps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		die("mmap", errno);
	Result *res = static_cast<Result *>(shm);
	const char *name = o.system == SYS_UMAP ? "umap" : o.system == SYS_UF_MEM ? "userfault" : "userfault-file";
	std::vector<double> wall, cpu;
	int bad = 0;
	for (int i = 0; i < o.reps; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		fflush(nullptr);
		pid_t pid = fork();
		if (pid < 0)
			die("fork", errno);
		if (pid == 0) {
			child(o, trace, buf, fd, warm_fd, &res[i]);
			_exit(0);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) || !res[i].ok || !res[i].pages) {
			fprintf(stderr, "umap_bench: rep %d failed (status 0x%x, checksum %s)\n", i, status,
				res[i].ok ? "ok" : "wrong");
			bad++;
			continue;
		}
		wall.push_back((double)res[i].wall_ns / res[i].pages);
		cpu.push_back((double)res[i].cpu_ns / res[i].pages);
		printf("rep %d: %s wall %.0f ns/page, cpu %.0f ns/page\n", i, name, wall.back(), cpu.back());
	}
	unlink(o.file.c_str());
	unlink(warm_path.c_str());
	if (wall.empty())
		return 1;
	double la[3] = {0, 0, 0};
	getloadavg(la, 3);
	/* One line for scripts: system, page, order, pages read, median wall and
	 * CPU ns per 4 KiB page, min/max wall, load average. */
	printf("result: %s page %zuK %s pages %" PRIu64 " wall %.0f cpu %.0f min %.0f max %.0f load %.2f\n",
	       name, o.page_size >> 10, o.seq ? "seq" : "rand", o.ops, median(wall), median(cpu),
	       *std::min_element(wall.begin(), wall.end()), *std::max_element(wall.begin(), wall.end()), la[0]);
	return bad ? 1 : 0;
}

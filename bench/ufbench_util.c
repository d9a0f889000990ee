/* SPDX-License-Identifier: MIT */
/* ufbench_util.c - clock, data pattern, access traces, cache simulators,
 * /proc readers and small parsers for ufbench. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ufbench.h"

uint64_t ufb_deadline_ns;
uint64_t ufb_t0_ns;
uint64_t ufb_limit_ns;

void ufb_start(void)
{
	ufb_t0_ns = ufb_now_ns();
	ufb_deadline_ns = ufb_limit_ns ? ufb_t0_ns + ufb_limit_ns : 0;
}

uint64_t ufb_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The clock of the timed parts. UFBENCH_CLOCK=cpu: the measuring process's
 * CPU time (user + system, all its threads: a handler thread's work
 * counts), for comparisons on a guest where other work takes the CPUs and
 * wall time mostly measures waiting. Not for the threads scenario (two
 * threads' CPU time add up). */
static clockid_t meter_clock(void)
{
	static int c = -1;
	if (c < 0) {
		const char *e = getenv("UFBENCH_CLOCK");
		c = e && !strcmp(e, "cpu") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
	}
	return (clockid_t)c;
}

uint64_t ufb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(meter_clock(), &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

size_t ufb_page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* Signal context (the classic pager fills pages with it). */
void ufb_fill(uint64_t off, void *dst, size_t len)
{
	uint64_t *w = dst;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = ufb_word(off + 8 * i);
}

uint64_t ufb_sum(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i + 4 <= len / 8; i += 4) {
		a += w[i];
		b += w[i + 1];
		c += w[i + 2];
		d += w[i + 3];
	}
	return a + b + c + d;
}

uint64_t ufb_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rand_below(uint64_t *st, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)ufb_rand(st) * n) >> 64);
}

uint64_t *ufb_trace_distinct(uint64_t pages, uint64_t n, uint64_t seed)
{
	if (n > pages)
		n = pages;
	uint64_t *perm = malloc(pages * sizeof(*perm));
	if (!perm)
		return NULL;
	for (uint64_t i = 0; i < pages; i++)
		perm[i] = i;
	uint64_t st = seed;
	/* Partial Fisher-Yates: the first n are a uniform random sample. */
	for (uint64_t i = 0; i < n; i++) {
		uint64_t j = i + rand_below(&st, pages - i);
		uint64_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	return perm;
}

uint64_t *ufb_trace_uniform(uint64_t pages, uint64_t n, uint64_t seed)
{
	uint64_t *t = malloc((n ? n : 1) * sizeof(*t));
	if (!t)
		return NULL;
	uint64_t st = seed;
	for (uint64_t i = 0; i < n; i++)
		t[i] = rand_below(&st, pages);
	return t;
}

uint64_t *ufb_trace_zipf(uint64_t pages, uint64_t n, double alpha, uint64_t seed)
{
	double *cdf = malloc(pages * sizeof(*cdf));
	uint64_t *perm = ufb_trace_distinct(pages, pages, seed ^ 0x5bd1e995u);
	uint64_t *t = malloc((n ? n : 1) * sizeof(*t));
	if (!cdf || !perm || !t) {
		free(cdf);
		free(perm);
		free(t);
		return NULL;
	}
	double s = 0;
	for (uint64_t k = 0; k < pages; k++) {
		s += 1.0 / pow((double)(k + 1), alpha);
		cdf[k] = s;
	}
	uint64_t st = seed;
	for (uint64_t i = 0; i < n; i++) {
		double u = (double)(ufb_rand(&st) >> 11) * (1.0 / 9007199254740992.0) * s;
		uint64_t lo = 0, hi = pages - 1;
		while (lo < hi) { /* first rank with cdf >= u */
			uint64_t mid = (lo + hi) / 2;
			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		t[i] = perm[lo]; /* popular ranks land on scattered pages */
	}
	free(cdf);
	free(perm);
	return t;
}

#define NIL UINT32_MAX
double ufb_sim_lru(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap)
{
	uint32_t *prev = malloc(pages * sizeof(*prev)), *next = malloc(pages * sizeof(*next));
	uint8_t *in = calloc(pages, 1);
	if (!prev || !next || !in || !n || !cap) {
		free(prev);
		free(next);
		free(in);
		return NAN;
	}
	uint32_t head = NIL, tail = NIL; /* head = most recent */
	uint64_t count = 0, miss = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t p = (uint32_t)t[i];
		if (in[p]) { /* unlink */
			if (prev[p] != NIL)
				next[prev[p]] = next[p];
			else
				head = next[p];
			if (next[p] != NIL)
				prev[next[p]] = prev[p];
			else
				tail = prev[p];
		} else {
			miss++;
			if (count == cap) { /* drop the least recent */
				uint32_t v = tail;
				tail = prev[v];
				if (tail != NIL)
					next[tail] = NIL;
				else
					head = NIL;
				in[v] = 0;
				count--;
			}
			in[p] = 1;
			count++;
		}
		prev[p] = NIL;
		next[p] = head;
		if (head != NIL)
			prev[head] = p;
		head = p;
		if (tail == NIL)
			tail = p;
	}
	free(prev);
	free(next);
	free(in);
	return (double)miss / (double)n;
}

double ufb_sim_fifo(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap)
{
	uint64_t *ring = malloc(cap * sizeof(*ring));
	uint8_t *in = calloc(pages, 1);
	if (!ring || !in || !n || !cap) {
		free(ring);
		free(in);
		return NAN;
	}
	uint64_t head = 0, count = 0, miss = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t p = t[i];
		if (in[p])
			continue;
		miss++;
		if (count == cap) {
			in[ring[head]] = 0;
			head = (head + 1) % cap;
			count--;
		}
		ring[(head + count) % cap] = p;
		count++;
		in[p] = 1;
	}
	free(ring);
	free(in);
	return (double)miss / (double)n;
}

/* CLOCK (second chance): the policy family DESIGN.md asks the pager for. */
double ufb_sim_clock(const uint64_t *t, uint64_t n, uint64_t pages, uint64_t cap)
{
	uint64_t *slot = malloc(cap * sizeof(*slot));
	uint8_t *in = calloc(pages, 1), *ref = calloc(pages, 1);
	if (!slot || !in || !ref || !n || !cap) {
		free(slot);
		free(in);
		free(ref);
		return NAN;
	}
	uint64_t hand = 0, count = 0, miss = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t p = t[i];
		if (in[p]) {
			ref[p] = 1;
			continue;
		}
		miss++;
		if (count < cap) {
			slot[count++] = p;
		} else {
			while (ref[slot[hand]]) {
				ref[slot[hand]] = 0;
				hand = (hand + 1) % cap;
			}
			in[slot[hand]] = 0;
			slot[hand] = p;
			hand = (hand + 1) % cap;
		}
		in[p] = 1;
		ref[p] = 0;
	}
	free(slot);
	free(in);
	free(ref);
	return (double)miss / (double)n;
}

/* Signal context (called from the classic pager's failure path). */
long ufb_vma_count(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[8192];
	long lines = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

/* Signal context. */
long ufb_peak_rss(void)
{
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	const char *p = strstr(buf, "VmHWM:");
	if (!p)
		return -1;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	long kb = 0;
	while (*p >= '0' && *p <= '9')
		kb = kb * 10 + (*p++ - '0');
	return kb * 1024;
}

void ufb_reset_peak_rss(void)
{
	/* "5" resets the peak resident set size (proc(5), clear_refs). */
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "5", 1) < 0) {
	}
	close(fd);
}

int ufb_make_memfd(size_t size)
{
	int fd = memfd_create("ufbench-data", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	ufb_fill(0, p, size);
	munmap(p, size);
	return fd;
}

char *ufb_make_buf(size_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	ufb_fill(0, p, size);
	return p;
}

/* Signal context: no stdio. */
static size_t put_str(char *d, size_t at, size_t cap, const char *s)
{
	while (s && *s && at + 1 < cap)
		d[at++] = *s++;
	d[at] = 0;
	return at;
}

void ufb_msg_add(struct ufb_result *res, const char *s)
{
	put_str(res->msg, strlen(res->msg), sizeof(res->msg), s);
}

void ufb_msg_num(struct ufb_result *res, long long num)
{
	char tmp[24];
	int i = (int)sizeof(tmp) - 1;
	bool neg = num < 0;
	unsigned long long u = neg ? 0ull - (unsigned long long)num : (unsigned long long)num;
	tmp[i] = 0;
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u && i > 1);
	if (neg)
		tmp[--i] = '-';
	ufb_msg_add(res, tmp + i);
}

void ufb_msg(struct ufb_result *res, const char *a, const char *b, long long num, const char *c)
{
	res->msg[0] = 0;
	ufb_msg_add(res, a);
	ufb_msg_add(res, b);
	if (num >= 0)
		ufb_msg_num(res, num);
	ufb_msg_add(res, c);
}

int ufb_parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (*end == '%') {
		if (end[1] || v > 100)
			return -EINVAL;
		*out = UFB_BUDGET_PCT_FLAG | (size_t)(v * 100 + 0.5); /* hundredths of a percent */
		return 0;
	}
	double m = 1;
	switch (*end) {
	case 'k': case 'K': m = 1024.0; end++; break;
	case 'm': case 'M': m = 1024.0 * 1024; end++; break;
	case 'g': case 'G': m = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': m = 1024.0 * 1024 * 1024 * 1024; end++; break;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	*out = (size_t)(v * m);
	return 0;
}

void ufb_fmt_size(size_t n, char *buf, size_t len)
{
	static const char u[] = "KMGT";
	int i = -1;
	while (n >= 1024 && n % 1024 == 0 && i < 3) {
		n /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%zu", n);
	else
		snprintf(buf, len, "%zu%c", n, u[i]);
}

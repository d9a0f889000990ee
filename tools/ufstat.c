/* SPDX-License-Identifier: MIT */
/*
 * ufstat - what a running process's userfault regions are doing.
 *
 *   ufstat [-i SECONDS] [-n COUNT] PID
 *
 * Reads /dev/shm/userfault-PID, which the library keeps up to date (every
 * 250 ms) in a process started with USERFAULT_PUBLISH=1 (src/publish.h).
 * Read-only: no ptrace, no signal, nothing written. The file is created by
 * the process with mode 0600, so only its user (and root) can read it;
 * ufstat also checks that the file belongs to the user running PID.
 * Prints one table per interval: faults/s and loads/s over the interval,
 * then the totals and the current resident and dirty blocks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <userfault.h>

#include "../src/publish.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ufstat [-i SECONDS] [-n COUNT] PID\n"
		   "Prints the userfault regions of process PID: faults/s, loads, evictions,\n"
		   "resident and dirty blocks, time in the store. PID must run with\n"
		   "USERFAULT_PUBLISH=1 (the library then keeps " UF__PUB_DIR "/" UF__PUB_PREFIX "PID).\n"
		   "-i: seconds between tables (default 1); -n: tables to print (default 1).\n");
}

/* A consistent copy of the file (seqlock reader); 0 or -errno. */
static int snapshot(int fd, struct uf__pub *out)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t s0, s1;
		if (pread(fd, &s0, sizeof(s0), offsetof(struct uf__pub, seq)) != sizeof(s0))
			return -EIO;
		if (s0 & 1) {
			usleep(1000);
			continue;
		}
		if (pread(fd, out, sizeof(*out), 0) != (ssize_t)sizeof(*out))
			return -EIO;
		if (pread(fd, &s1, sizeof(s1), offsetof(struct uf__pub, seq)) != sizeof(s1))
			return -EIO;
		if (s0 == s1 && out->seq == s0)
			return memcmp(out->magic, UF__PUB_MAGIC, sizeof(UF__PUB_MAGIC)) ? -EPROTO : 0;
	}
	return -EAGAIN;
}

static const char *size_str(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "K", "M", "G", "T", "P"};
	int u = 0;
	while (v >= 10240 && u < 5) {
		v >>= 10;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 "%s", v, unit[u]);
	return buf;
}

static void print_table(const struct uf__pub *p, const struct uf__pub *prev, double dt)
{
	printf("%-16s %6s %-11s %10s %9s %12s %12s %10s %9s %8s %10s\n", "region", "size", "engine",
	       "faults/s", "loads/s", "faults", "loads", "evictions", "resident", "dirty", "store ms");
	for (uint32_t i = 0; i < p->nregions && i < UF__PUB_SLOTS; i++) {
		const struct uf__pub_region *r = &p->r[i];
		if (!r->used)
			continue;
		const struct uf__pub_region *q = prev && prev->r[i].used && prev->r[i].base == r->base ? &prev->r[i] : NULL;
		char fs[32] = "-", ls[32] = "-", sz[16];
		if (q && dt > 0) {
			snprintf(fs, sizeof(fs), "%.0f", (double)(r->faults - q->faults) / dt);
			snprintf(ls, sizeof(ls), "%.0f", (double)(r->loads - q->loads) / dt);
		}
		printf("%#-16" PRIx64 " %6s %-11s %10s %9s %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %9" PRIu64
		       " %8" PRIu64 " %10.1f\n",
		       r->base, size_str(r->len, sz, sizeof(sz)), uf_engine_name(r->engine), fs, ls, r->faults,
		       r->loads, r->evictions, r->resident, r->dirty,
		       (double)(r->store_read_ns + r->store_write_ns) / 1e6);
	}
	if (p->dropped)
		printf("(%u more regions not shown: every slot was taken when they were mapped)\n", p->dropped);
}

/* A day: time_t holds it, and nobody waits longer for one table. */
#define INTERVAL_MAX 86400.0

int main(int argc, char **argv)
{
	double interval = 1;
	long count = 1;
	int c;
	char *end;
	while ((c = getopt(argc, argv, "i:n:h")) != -1) {
		switch (c) {
		case 'i':
			interval = strtod(optarg, &end);
			if (end == optarg || *end || !isfinite(interval) || interval > INTERVAL_MAX)
				interval = -1; /* not a number: a usage error below */
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (end == optarg || *end || errno)
				count = 0; /* a usage error below */
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || !(interval >= 0) || count < 1) {
		usage(stderr);
		return 2;
	}
	/* The process publishes every 250 ms: a shorter interval (0 too, as
	 * ufstat(1) says) would see the same sample twice (no rates). */
	if (interval < 0.25)
		interval = 0.25;
	long pid = strtol(argv[optind], &end, 10);
	if (*end || pid <= 0) {
		usage(stderr);
		return 2;
	}
	char path[128], proc[64];
	snprintf(path, sizeof(path), UF__PUB_DIR "/" UF__PUB_PREFIX "%ld", pid);
	snprintf(proc, sizeof(proc), "/proc/%ld", pid);
	struct stat ps, fs;
	if (stat(proc, &ps)) {
		fprintf(stderr, "ufstat: no process %ld\n", pid);
		return 1;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			fprintf(stderr, "ufstat: %s: not there: process %ld does not publish its regions "
					"(start it with USERFAULT_PUBLISH=1) or has none mapped yet\n", path, pid);
		else
			fprintf(stderr, "ufstat: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* Someone else's file under that name is not the process's word. */
	if (fstat(fd, &fs) || !S_ISREG(fs.st_mode) || fs.st_uid != ps.st_uid ||
	    fs.st_size < (off_t)sizeof(struct uf__pub)) {
		fprintf(stderr, "ufstat: %s is not a statistics file of process %ld's user\n", path, pid);
		return 1;
	}
	struct uf__pub *cur = malloc(sizeof(*cur)), *prev = malloc(sizeof(*prev));
	if (!cur || !prev)
		return 1;
	int e = snapshot(fd, prev);
	if (e || prev->pid != pid) {
		fprintf(stderr, "ufstat: %s: %s\n", path, e ? strerror(-e) : "written by another process");
		return 1;
	}
	for (long n = 0; n < count; n++) {
		struct timespec t = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
		nanosleep(&t, NULL);
		e = snapshot(fd, cur);
		/* The same publication as last time (the interval ended just
		 * before the next one): wait for it, up to two periods. */
		for (int k = 0; !e && k < 50 && cur->time_ns == prev->time_ns; k++) {
			struct timespec w = {0, 10 * 1000 * 1000};
			nanosleep(&w, NULL);
			e = snapshot(fd, cur);
		}
		if (e) {
			fprintf(stderr, "ufstat: %s: %s\n", path, strerror(-e));
			return 1;
		}
		double dt = (double)(cur->time_ns - prev->time_ns) / 1e9;
		if (n)
			printf("\n");
		printf("process %ld, %u region slot%s, sampled over %.2f s\n", pid, cur->nregions,
		       cur->nregions == 1 ? "" : "s", dt);
		print_table(cur, prev, dt);
		fflush(stdout);
		struct uf__pub *tmp = prev;
		prev = cur;
		cur = tmp;
	}
	close(fd);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * redisbench.c - the Redis store against a pipelined hiredis client and
 * redis-benchmark, on the same servers in the same run: a standalone
 * redis-server and a cluster of 3 masters with 1 replica each, started
 * here on loopback (tests/redis_servers.h) and killed at the end.
 *
 *   sequential scan (read-ahead pipelines)  vs  pipelined GET, 64 deep
 *   random 4 KiB fault (no read-ahead)      vs  one GET round trip
 *   write-back (uf_sync of dirty blocks)    vs  pipelined SET, 64 deep
 *
 * Usage: redisbench [--mb N] [--faults N] [--reps N] [--standalone-only]
 * Every figure is the best of --reps rounds (default 3), client and store
 * measured one after the other in each round; the CPU lines say, summed
 * over the rounds, how much CPU each side used per block and how busy the
 * servers were (what limits a ratio: a CPU or waiting).
 * Built by mk/redis.mk when hiredis is present.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <time.h>

#include "redis_servers.h"
#include "../src/redis_cluster.c"

#define BS 4096
#define DEPTH 64

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A tiny cluster-aware pipelined client: one connection per master. */
struct client {
	int n;
	int ports[8];
	redisContext *c[8];
	struct rc_map map;
	bool cluster;
};

static void client_open(struct client *cl, const int *ports, int n, bool cluster)
{
	memset(cl, 0, sizeof(*cl));
	uf__rc_map_init(&cl->map);
	cl->cluster = cluster;
	cl->n = n;
	for (int i = 0; i < n; i++) {
		cl->ports[i] = ports[i];
		cl->c[i] = redisConnect("127.0.0.1", ports[i]);
		ASSERT(cl->c[i] && !cl->c[i]->err);
		ASSERT_EQ(uf__rc_node(&cl->map, "127.0.0.1", ports[i]), i);
	}
	if (cluster) {
		redisReply *r = redisCommand(cl->c[0], "CLUSTER SLOTS");
		ASSERT(r);
		ASSERT_OK(uf__rc_apply_slots(&cl->map, r, 0));
		freeReplyObject(r);
		ASSERT_EQ(cl->map.nnodes, (unsigned)n); /* masters only */
	}
}

static int node_of(struct client *cl, const char *key, size_t len)
{
	return cl->cluster ? uf__rc_slot_node(&cl->map, uf__rc_key_slot(key, len)) : 0;
}

/* GET (set == false) or SET every block key "<prefix>:<i>", DEPTH commands
 * in flight per node; returns seconds. */
static double pipelined(struct client *cl, const char *prefix, size_t nblk, bool set, const void *val)
{
	int inflight[8] = {0};
	double t0 = now_s();
	for (size_t i = 0; i <= nblk; i++) {
		int node = -1;
		if (i < nblk) {
			char key[64];
			int kl = snprintf(key, sizeof(key), "%s:%zu", prefix, i);
			node = node_of(cl, key, (size_t)kl);
			if (set)
				redisAppendCommand(cl->c[node], "SET %b %b", key, (size_t)kl, val, (size_t)BS);
			else
				redisAppendCommand(cl->c[node], "GET %b", key, (size_t)kl);
			inflight[node]++;
		}
		for (int k = 0; k < cl->n; k++) {
			/* keep at most DEPTH in flight; drain all at the end */
			while (inflight[k] && (inflight[k] >= DEPTH || i == nblk)) {
				redisReply *r;
				ASSERT_EQ(redisGetReply(cl->c[k], (void **)&r), REDIS_OK);
				ASSERT(set ? r->type == REDIS_REPLY_STATUS : (r->type == REDIS_REPLY_STRING && r->len == BS));
				freeReplyObject(r);
				inflight[k]--;
			}
		}
	}
	return now_s() - t0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of n samples (sorts them). Medians, because on a shared
 * 2-vCPU guest a few samples wait milliseconds for a CPU. */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* Median seconds of one GET round trip over n random blocks. */
static double round_trip(struct client *cl, const char *prefix, size_t nblk, int n)
{
	uint64_t sd = 7;
	double *v = malloc((size_t)n * sizeof(*v));
	for (int i = 0; i < n; i++) {
		char key[64];
		int kl = snprintf(key, sizeof(key), "%s:%llu", prefix, (unsigned long long)(xorshift64(&sd) % nblk));
		double t0 = now_s();
		redisReply *r = redisCommand(cl->c[node_of(cl, key, (size_t)kl)], "GET %b", key, (size_t)kl);
		v[i] = now_s() - t0;
		ASSERT(r && r->type == REDIS_REPLY_STRING);
		freeReplyObject(r);
	}
	double m = median(v, n);
	free(v);
	return m;
}

static uf_store *store(const char *seeds, const char *prefix, uint64_t size)
{
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = seeds;
	o.prefix = prefix;
	o.size = size;
	return rs_must_store(&o);
}

static uf_region *map_prot(uf_store *s, unsigned flags, int prot)
{
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.flags = flags;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, (size_t)uf_store_size(s), prot, &o, &r));
	return r;
}

static uf_region *map(uf_store *s, unsigned flags) { return map_prot(s, flags, PROT_READ | PROT_WRITE); }

/* Seconds to read one byte of every block of a fresh read-only region of
 * s: the scan without write tracking (no content hash per block). */
static double scan_read_only(uf_store *s, size_t size, unsigned expect)
{
	uf_region *r = map_prot(s, 0, PROT_READ);
	volatile unsigned char *p = uf_region_addr(r);
	double t0 = now_s();
	unsigned scan = 0;
	for (size_t i = 0; i < size; i += BS)
		scan += p[i];
	double t = now_s() - t0;
	ASSERT_EQ(scan, expect);
	ASSERT_OK(uf_unmap(r, 0));
	return t;
}

/* redis-benchmark's requests per second for GET or SET of BS-byte values,
 * pipelined DEPTH deep; 0 if it is not installed. */
static double redis_benchmark(int port, bool cluster, const char *test)
{
	if (!rs_have("redis-benchmark"))
		return 0;
	char out[4096];
	rs_sh(out, sizeof(out),
	      "redis-benchmark -h 127.0.0.1 -p %d %s -t %s -d %d -P %d -n 20000 -c 4 -r 10000 -q 2>/dev/null | tr '\\r' '\\n' | tail -2",
	      port, cluster ? "--cluster" : "", test, BS, DEPTH);
	const char *p = strstr(out, ": ");
	return p ? atof(p + 2) : 0;
}

/* Median seconds of one random 4 KiB fault, over nf distinct random blocks
 * of a fresh region without read-ahead. */
static double random_faults(uf_store *s, size_t nblk, int nf, uint64_t seed, unsigned *sum)
{
	uf_region *r = map(s, UF_MAP_NO_READAHEAD);
	volatile unsigned char *p = uf_region_addr(r);
	size_t *order = malloc(nblk * sizeof(*order));
	for (size_t i = 0; i < nblk; i++)
		order[i] = i;
	for (size_t i = nblk; i > 1; i--) { /* distinct random blocks */
		size_t j = xorshift64(&seed) % i, t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	if (nf > (int)nblk)
		nf = (int)nblk;
	double *fv = malloc((size_t)nf * sizeof(*fv));
	for (int i = 0; i < nf; i++) {
		double t0 = now_s();
		*sum += p[order[i] * BS];
		fv[i] = now_s() - t0;
	}
	double m = median(fv, nf);
	free(fv);
	free(order);
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	return m;
}

static double min_d(double a, double b) { return a < b ? a : b; }

/* Where the time of a phase goes, summed over the rounds: wall seconds,
 * CPU seconds of this process (the client; or the mapping thread and the
 * store's threads) and of the servers' main threads (/proc/PID/schedstat,
 * nanoseconds on a CPU). Servers busy well below 1 while this process is
 * not using a CPU either means the phase waits on wake-ups; both near
 * their share of the 2 vCPUs means it is CPU-bound. */
struct cpu_use {
	double wall, self, srv;
};

static double servers_cpu(void)
{
	double t = 0;
	for (int i = 0; i < rs_nsrv; i++) {
		char path[64];
		unsigned long long ns = 0;
		snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)rs_srv[i].pid);
		FILE *f = rs_srv[i].pid > 0 ? fopen(path, "r") : NULL;
		if (f) {
			if (fscanf(f, "%llu", &ns) != 1)
				ns = 0;
			fclose(f);
		}
		t += (double)ns * 1e-9;
	}
	return t;
}

static struct cpu_use cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (struct cpu_use){now_s(), (double)t.tv_sec + (double)t.tv_nsec * 1e-9, servers_cpu()};
}

static void cpu_add(struct cpu_use *acc, struct cpu_use from)
{
	struct cpu_use to = cpu_now();
	acc->wall += to.wall - from.wall;
	acc->self += to.self - from.self;
	acc->srv += to.srv - from.srv;
}

/* "client x us, servers y us a block; servers busy z" of two phases. */
static void cpu_print(const char *what, const struct cpu_use *a, const struct cpu_use *b, double blocks)
{
	printf("   %-34s %5.2f / %5.2f us here, %5.2f / %5.2f us in the servers a block; servers busy %.2f / %.2f\n",
	       what, a->self / blocks * 1e6, b->self / blocks * 1e6, a->srv / blocks * 1e6,
	       b->srv / blocks * 1e6, a->srv / a->wall, b->srv / b->wall);
}

/* reps rounds, each measuring the client and then the store, so both see
 * the same load; every figure is the best round's (the least disturbed on a
 * shared machine; latencies are the medians of each round). */
static void run(const char *name, const char *seeds, const int *masters, int nm, bool cluster,
		size_t mb, int nfaults, int reps)
{
	size_t nblk = mb * 1024 * 1024 / BS, size = nblk * BS;
	struct client cl;
	client_open(&cl, masters, nm, cluster);
	unsigned char *val = malloc(BS);
	for (size_t j = 0; j < BS; j++)
		val[j] = (unsigned char)(j * 7 + 1);
	/* the store's own layout, written by the client; the timed SETs and
	 * the store's write-back both overwrite existing keys */
	uf_store *s = store(seeds, "b", size);
	pipelined(&cl, "b", nblk, true, val);
	double t_set = 1e9, t_get = 1e9, t_rtt = 1e9, t_scan = 1e9, t_wb = 1e9, t_fault = 1e9, t_ro = 1e9;
	/* per round: the store's figure over the client's, for the median of
	 * the rounds' ratios (each round measures both back to back) */
	double *q_scan = calloc((size_t)reps, sizeof(double)), *q_fault = calloc((size_t)reps, sizeof(double)),
	       *q_wb = calloc((size_t)reps, sizeof(double)), *q_ro = calloc((size_t)reps, sizeof(double));
	ASSERT(q_scan && q_fault && q_wb && q_ro);
	uf_region *r = map(s, 0);
	int engine = uf_region_engine(r);
	volatile unsigned char *p = uf_region_addr(r);
	unsigned sum = 0;
	struct cpu_use u_get = {0}, u_scan = {0}, u_set = {0}, u_wb = {0};
	for (int rep = 0; rep < reps; rep++) {
		struct cpu_use c0 = cpu_now();
		double r_set = pipelined(&cl, "b", nblk, true, val);
		cpu_add(&u_set, c0);
		c0 = cpu_now();
		double r_get = pipelined(&cl, "b", nblk, false, NULL);
		cpu_add(&u_get, c0);
		double r_rtt = round_trip(&cl, "b", nblk, nfaults);
		t_set = min_d(t_set, r_set);
		t_get = min_d(t_get, r_get);
		t_rtt = min_d(t_rtt, r_rtt);

		ASSERT_OK(uf_evict(r, NULL, 0)); /* clean: nothing to write */
		c0 = cpu_now();
		double t0 = now_s();
		unsigned scan = 0;
		for (size_t i = 0; i < size; i += BS)
			scan += p[i];
		cpu_add(&u_scan, c0);
		q_scan[rep] = r_get / (now_s() - t0);
		t_scan = min_d(t_scan, now_s() - t0);
		ASSERT_EQ(scan, (unsigned)nblk * val[0]);
		double r_ro = scan_read_only(s, size, (unsigned)nblk * val[0]);
		q_ro[rep] = r_get / r_ro;
		t_ro = min_d(t_ro, r_ro);
		/* every block dirty (its second byte flipped), then one sync
		 * writes them all */
		for (size_t i = 0; i < size; i += BS)
			p[i + 1] ^= 0x55;
		c0 = cpu_now();
		t0 = now_s();
		ASSERT_OK(uf_sync(r, NULL, 0));
		cpu_add(&u_wb, c0);
		q_wb[rep] = r_set / (now_s() - t0);
		t_wb = min_d(t_wb, now_s() - t0);
		double r_fault = random_faults(s, nblk, nfaults, 11 + (uint64_t)rep, &sum);
		q_fault[rep] = r_fault / r_rtt;
		t_fault = min_d(t_fault, r_fault);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));

	double mbs = (double)size / (1 << 20);
	double rb_get = redis_benchmark(masters[0], cluster, "get");
	double rb_set = redis_benchmark(masters[0], cluster, "set");
	double la[3] = {0};
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
			la[0] = la[1] = la[2] = 0;
		fclose(f);
	}
	printf("\n== %s: %zu MiB, %zu blocks of %d bytes, pipelines %d deep, engine %s, best of %d, load %.2f %.2f %.2f\n",
	       name, mb, nblk, BS, DEPTH, uf_engine_name(engine), reps, la[0], la[1], la[2]);
	printf("   %-34s %10.1f MB/s\n", "sequential scan (read-ahead)", mbs / t_scan);
	printf("   %-34s %10.1f MB/s   scan/GET = %.2f (median of rounds %.2f)\n", "pipelined GET (hiredis)",
	       mbs / t_get, t_get / t_scan, median(q_scan, reps));
	cpu_print("CPU, GET / scan:", &u_get, &u_scan, (double)nblk * reps);
	printf("   %-34s %10.1f MB/s   scan/GET = %.2f (median of rounds %.2f)\n",
	       "the scan, read-only region", mbs / t_ro, t_get / t_ro, median(q_ro, reps));
	printf("   %-34s %10.1f us\n", "random 4 KiB fault (median)", t_fault * 1e6);
	printf("   %-34s %10.1f us     fault/RTT = %.2f (median of rounds %.2f)\n", "one GET round trip (median)",
	       t_rtt * 1e6, t_fault / t_rtt, median(q_fault, reps));
	printf("   %-34s %10.1f MB/s\n", "write-back (uf_sync)", mbs / t_wb);
	printf("   %-34s %10.1f MB/s   sync/SET = %.2f (median of rounds %.2f)\n", "pipelined SET (hiredis)",
	       mbs / t_set, t_set / t_wb, median(q_wb, reps));
	cpu_print("CPU, SET / write-back:", &u_set, &u_wb, (double)nblk * reps);
	free(q_scan);
	free(q_ro);
	free(q_fault);
	free(q_wb);
	if (rb_get > 0)
		printf("   %-34s %10.1f MB/s GET, %.1f MB/s SET\n", "redis-benchmark -P 64 -c 4",
		       rb_get * BS / 1048576.0, rb_set * BS / 1048576.0);
	(void)sum;
	free(val);
	for (int i = 0; i < nm; i++)
		redisFree(cl.c[i]);
}

int main(int argc, char **argv)
{
	size_t mb = 32;
	int nfaults = 2000, reps = 3;
	bool standalone_only = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mb") && i + 1 < argc)
			mb = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--faults") && i + 1 < argc)
			nfaults = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
		else if (!strcmp(argv[i], "--standalone-only"))
			standalone_only = true;
		else {
			fprintf(stderr, "usage: %s [--mb N] [--faults N] [--reps N] [--standalone-only]\n", argv[0]);
			return 2;
		}
	}
	test_init(600);
	rs_init();
	char ver[128];
	rs_sh(ver, sizeof(ver), "redis-server --version | cut -d' ' -f3");
	printf("redisbench: redis-server %s", ver);
	int k = rs_start(NULL);
	char seeds[128];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%d", rs_srv[k].port);
	run("standalone", seeds, &rs_srv[k].port, 1, false, mb, nfaults, reps);
	rs_stop(k);
	if (!standalone_only) {
		int first = rs_cluster(3);
		int masters[8];
		ASSERT_EQ(rs_masters(first, 6, masters), 3);
		snprintf(seeds, sizeof(seeds), "127.0.0.1:%d", masters[0]);
		run("cluster, 3 masters + 3 replicas", seeds, masters, 3, true, mb, nfaults, reps);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * redis_demo.c - map a dataset held by a Redis Cluster, larger than the
 * region's RAM budget.
 *
 * Starts a local cluster of three masters (redis-server and redis-cli from
 * the redis-server / redis-tools packages, loopback only, a temporary
 * directory, stopped at the end), writes a 64 MiB array through a region
 * held to 4 MiB of RAM, syncs it, then maps it again from a new store and
 * checks every element. Needs libuserfault built with hiredis.
 *
 *   build/examples/redis_demo [MiB]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <userfault.h>

#define NSERVERS 3
static pid_t servers[NSERVERS];
static char dir[64] = "/tmp/uf-redis-demo.XXXXXX";

static void stop_servers(void)
{
	for (int i = 0; i < NSERVERS; i++)
		if (servers[i] > 0) {
			kill(servers[i], SIGKILL);
			waitpid(servers[i], NULL, 0);
		}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void start_cluster(int base_port)
{
	for (int i = 0; i < NSERVERS; i++) {
		char port[16], sub[96];
		snprintf(port, sizeof(port), "%d", base_port + i);
		snprintf(sub, sizeof(sub), "%s/%d", dir, i);
		mkdir(sub, 0700);
		if ((servers[i] = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the demo */
			execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
			       "--dir", sub, "--save", "", "--logfile", "redis.log", "--cluster-enabled",
			       "yes", "--cluster-config-file", "nodes.conf", (char *)NULL);
			_exit(127);
		}
	}
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "for i in $(seq 100); do redis-cli -p %d ping >/dev/null 2>&1 && redis-cli -p %d ping >/dev/null 2>&1 "
		 "&& redis-cli -p %d ping >/dev/null 2>&1 && break; sleep 0.05; done; "
		 "redis-cli --cluster create 127.0.0.1:%d 127.0.0.1:%d 127.0.0.1:%d --cluster-yes >/dev/null && "
		 "for i in $(seq 200); do redis-cli -p %d cluster info | grep -q cluster_state:ok && exit 0; sleep 0.05; done; exit 1",
		 base_port, base_port + 1, base_port + 2, base_port, base_port + 1, base_port + 2, base_port);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not start a Redis Cluster (are redis-server and redis-tools installed?)\n");
		exit(1);
	}
}

static uf_store *open_store(const char *seeds, uint64_t size)
{
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = seeds;         /* any node: the rest is found with CLUSTER SLOTS */
	o.prefix = "demo:array"; /* keys demo:array:0, demo:array:1, ... and demo:array:meta */
	o.size = size;           /* 0 when opening: taken from demo:array:meta */
	char why[256] = "";
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	uf_store *s;
	int err = uf_store_redis(&o, &s);
	if (err) {
		fprintf(stderr, "uf_store_redis: %s: %s\n", uf_strerror(err), why);
		exit(1);
	}
	return s;
}

static uf_region *map_budget(uf_store *s, size_t budget)
{
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.max_resident = budget;
	uf_region *r;
	int err = uf_map(s, 0, (size_t)uf_store_size(s), PROT_READ | PROT_WRITE, &o, &r);
	if (err) {
		fprintf(stderr, "uf_map: %s\n", uf_strerror(err));
		exit(1);
	}
	return r;
}

static void print_stats(const char *what, uf_region *r)
{
	struct uf_stats st = {.struct_size = sizeof(st)};
	uf_stats(r, &st);
	printf("%-8s loads %" PRIu64 ", write-backs %" PRIu64 ", evictions %" PRIu64
	       ", peak resident %" PRIu64 " of %" PRIu64 " blocks allowed\n",
	       what, st.loads, st.writebacks, st.evictions, st.resident_peak, st.max_resident);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64, budget = 4 << 20;
	uint64_t size = (uint64_t)mib << 20, n = size / 8;
	if (!mkdtemp(dir))
		return 1;
	atexit(stop_servers);
	int port = 30000 + (int)(getpid() % 20000);
	fflush(stdout);
	start_cluster(port);
	char seeds[64];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%d", port);
	printf("cluster of %d masters on 127.0.0.1:%d..%d; a %zu MiB array, %zu MiB of RAM\n",
	       NSERVERS, port, port + NSERVERS - 1, mib, budget >> 20);

	/* write: every block is loaded (a hole: zeros), written, and written
	 * back to its master when evicted or synced */
	uf_store *s = open_store(seeds, size);
	uf_region *r = map_budget(s, budget);
	uint64_t *a = uf_region_addr(r);
	for (uint64_t i = 0; i < n; i++)
		a[i] = i * i;
	int err = uf_sync(r, NULL, 0);
	if (err) {
		fprintf(stderr, "uf_sync: %s\n", uf_strerror(err));
		return 1;
	}
	print_stats("written:", r);
	uf_unmap(r, 0);
	uf_store_close(s);

	/* read it back through a new store: size and block size from the meta key */
	s = open_store(seeds, 0);
	r = map_budget(s, budget);
	a = uf_region_addr(r);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n; i++)
		bad += a[i] != i * i;
	print_stats("read:", r);
	uf_unmap(r, 0);
	uf_store_close(s);
	fflush(stdout); /* before redis-cli writes to the same stdout */
	for (int i = 0; i < NSERVERS; i++) {
		char cmd[96];
		snprintf(cmd, sizeof(cmd), "printf 'keys on :%d: '; redis-cli -p %d DBSIZE", port + i, port + i);
		if (system(cmd) != 0)
			return 1;
	}
	printf("%s: %" PRIu64 " of %" PRIu64 " elements wrong\n", bad ? "FAILED" : "ok", bad, n);
	return bad != 0;
}

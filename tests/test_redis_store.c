/* SPDX-License-Identifier: MIT */
/* The Redis store against one real redis-server (started here, killed at
 * the end): sparse reads, write-back visible to redis-cli, read-back after
 * reopening, zero blocks deleted, discard, eviction under a budget, four
 * threads against a shadow model, and the failures: wrong block size,
 * wrong password, a key of another type, a value of the wrong length, no
 * server at open, a server killed and restarted under a workload. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common.h"
#include "redis_servers.h"

#define BS 4096
static char seed[64];

/* Defaults on the test server, with this prefix and size. */
static void opts_on_seed(struct uf_redis_opts *o, const char *prefix, uint64_t size)
{
	uf_redis_opts_init(o);
	o->seeds = seed;
	o->prefix = prefix;
	o->size = size;
}

static uf_store *open_store(const char *prefix, uint64_t size, size_t bs, int *err, char *why)
{
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = seed;
	o.prefix = prefix;
	o.size = size;
	o.block_size = bs;
	o.retry_timeout_ms = 2000;
	static char buf[512];
	o.errbuf = why ? why : buf;
	o.errbuf_len = 512;
	uf_store *s = NULL;
	*err = uf_store_redis(&o, &s);
	return s;
}

/* uf_store_redis on seed sd with a short retry (and a command timeout, if
 * nonzero), the reason in why[512]; the store or NULL, the error in *err. */
static uf_store *open_seed(const char *sd, unsigned cmd_ms, char *why, int *err)
{
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = sd;
	o.prefix = "x";
	o.size = BS;
	o.retry_timeout_ms = 300;
	o.command_timeout_ms = cmd_ms;
	o.errbuf = why;
	o.errbuf_len = 512;
	why[0] = 0;
	uf_store *s = NULL;
	*err = uf_store_redis(&o, &s);
	return s;
}

static uf_store *must_open(const char *prefix, uint64_t size)
{
	int e;
	char why[512] = "";
	uf_store *s = open_store(prefix, size, 0, &e, why);
	if (e)
		FAIL("uf_store_redis(%s) = %d (%s): %s", prefix, e, uf_strerror(e), why);
	return s;
}

static uf_region *map(uf_store *s, size_t budget, uf_error_fn on_error)
{
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	o.on_error = on_error;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, (size_t)uf_store_size(s), PROT_READ | PROT_WRITE, &o, &r));
	return r;
}

/* redis-cli --raw GET: the value, without the newline redis-cli adds. */
static size_t cli_get(int port, const char *key, char *out, size_t cap)
{
	size_t n = rs_sh(out, cap, "redis-cli -p %d --raw GET '%s'", port, key);
	if (n && out[n - 1] == '\n')
		out[--n] = 0;
	return n;
}

static long cli_int(int port, const char *cmd)
{
	char out[64];
	rs_sh(out, sizeof(out), "redis-cli -p %d %s", port, cmd);
	return atol(out);
}

static void fill_block(unsigned char *p, uint64_t blk)
{
	for (size_t j = 0; j < BS; j++)
		p[j] = pattern_byte(blk * BS + j) | 1;
}

/* ---- loads that fail: the error callback leaves by siglongjmp ---- */
static sigjmp_buf jb;
static _Atomic int load_err;
static int on_error(uf_region *r, void *addr, int err, void *arg)
{
	load_err = err;
	siglongjmp(jb, 1);
}
/* Reads one byte at p; 0 or the load's error. */
static int touch(volatile unsigned char *p)
{
	load_err = 0;
	if (sigsetjmp(jb, 1) == 0)
		(void)*p;
	return load_err;
}

static void basics(int port)
{
	size_t nblk = 256, size = nblk * BS;
	uf_store *s = must_open("t1", size);
	ASSERT_EQ(uf_store_size(s), (int64_t)size);
	uf_region *r = map(s, 16 * BS, NULL);
	unsigned char *p = uf_region_addr(r);
	/* a new store is sparse: zeros, and no keys but the metadata */
	for (size_t i = 0; i < size; i += 512)
		ASSERT_EQ(p[i], 0);
	ASSERT_EQ(cli_int(port, "DBSIZE"), 1);
	/* write everything through a budget of 16 blocks: evictions write back */
	for (size_t b = 0; b < nblk; b++)
		fill_block(p + b * BS, b);
	ASSERT_OK(uf_sync(r, NULL, 0));
	struct uf_stats st = stats_of(r);
	ASSERT_GT(st.evictions, 0);
	ASSERT_LE(st.resident_peak, st.max_resident);
	ASSERT_EQ(st.dirty, 0);
	if (cli_int(port, "DBSIZE") != (long)nblk + 1) {
		char keys[8192];
		rs_sh(keys, sizeof(keys), "redis-cli -p %d KEYS '*' | sort -t: -k2 -n | tr '\\n' ' '", port);
		FAIL("DBSIZE %ld, keys %s", cli_int(port, "DBSIZE"), keys);
	}
	char got[BS + 16];
	unsigned char want[BS];
	fill_block(want, 77);
	ASSERT_EQ(cli_get(port, "t1:77", got, sizeof(got)), BS);
	ASSERT_EQ(memcmp(got, want, BS), 0);
	/* a block written back as zeros loses its key */
	memset(p + 3 * BS, 0, BS);
	ASSERT_OK(uf_sync(r, p + 3 * BS, BS));
	ASSERT_EQ(cli_int(port, "EXISTS t1:3"), 0);
	/* discard drops local changes; the next read sees the server's bytes */
	p[7 * BS] ^= 0xff;
	ASSERT_OK(uf_discard(r, p + 7 * BS, BS));
	fill_block(want, 7);
	ASSERT_EQ(memcmp(p + 7 * BS, want, BS), 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));

	/* read back with another store: size and block size from the metadata */
	s = must_open("t1", 0);
	ASSERT_EQ(uf_store_size(s), (int64_t)size);
	r = map(s, 32 * BS, NULL);
	p = uf_region_addr(r);
	ASSERT_OK(uf_prefetch(r, p, 32 * BS)); /* one pipeline for 32 blocks */
	for (size_t b = 0; b < nblk; b++) {
		if (b == 3) {
			for (size_t j = 0; j < BS; j++)
				ASSERT_EQ(p[b * BS + j], 0);
			continue;
		}
		fill_block(want, b);
		if (memcmp(p + b * BS, want, BS))
			FAIL("block %zu differs after reopening", b);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));

	/* another block size or size: refused, nothing changed */
	int e;
	char why[512] = "";
	ASSERT(!open_store("t1", 0, 8192, &e, why));
	ASSERT_EQ(e, -EINVAL);
	ASSERT(strstr(why, "block size 4096"));
	ASSERT(!open_store("t1", 2 * size, 0, &e, why));
	ASSERT_EQ(e, -EINVAL);
	ASSERT(!open_store("nosuch", 0, 0, &e, why));
	ASSERT_EQ(e, -ENOENT);
	ASSERT_EQ(cli_int(port, "DBSIZE"), (long)nblk); /* block 3 has no key */
	printf("basics ok\n");
}

/* ---- the metadata key: small block sizes reopen, anything not ours is
 * -EBADMSG and left alone; a seed that never answers ---- */
static void meta_checks(int port)
{
	int e;
	char why[512] = "";
	/* 512-byte blocks, a size that is no multiple of 4096: reopening with
	 * block size 0 takes the stored one */
	uf_store *s = open_store("t5", 3 * 512, 512, &e, why);
	ASSERT_OK(e);
	ASSERT_OK(uf_store_close(s));
	s = open_store("t5", 3 * 512, 0, &e, why);
	if (e)
		FAIL("reopen with the stored block size: %d %s", e, why);
	ASSERT_EQ(uf_store_size(s), 3 * 512);
	ASSERT_OK(uf_store_close(s));
	s = open_store("t5", 0, 0, &e, why);
	ASSERT_OK(e);
	ASSERT_EQ(uf_store_size(s), 3 * 512);
	ASSERT_OK(uf_store_close(s));
	/* a new store whose size does not fit the default block size */
	ASSERT(!open_store("t5new", 3 * 512, 0, &e, why));
	ASSERT_EQ(e, -EINVAL);
	ASSERT_EQ(cli_int(port, "EXISTS t5new:meta"), 0);

	/* sizes uf_store_new refuses: refused before anything is written */
	const uint64_t huge[] = {(uint64_t)1 << 63, UINT64_MAX - 4095};
	for (unsigned i = 0; i < 2; i++) {
		ASSERT(!open_store("t5huge", huge[i], 4096, &e, why));
		ASSERT_EQ(e, -EINVAL);
		ASSERT_EQ(cli_int(port, "EXISTS t5huge:meta"), 0);
	}
	/* blocks past what a region may map (64 MiB): refused, nothing written */
	ASSERT(!open_store("t5big", (uint64_t)128 << 20, (size_t)128 << 20, &e, why));
	ASSERT_EQ(e, -EINVAL);
	ASSERT_EQ(cli_int(port, "EXISTS t5big:meta"), 0);
	/* a read-only open does not create a store */
	{
		struct uf_redis_opts o;
		uf_redis_opts_init(&o);
		o.seeds = seed;
		o.prefix = "t5ro";
		o.size = 8 * BS;
		o.flags = UF_STORE_RDONLY;
		o.errbuf = why;
		o.errbuf_len = 512;
		uf_store *ro = NULL;
		ASSERT_EQ(uf_store_redis(&o, &ro), -ENOENT);
		ASSERT(!ro && strstr(why, "read-only"));
		ASSERT_EQ(cli_int(port, "EXISTS t5ro:meta"), 0);
		o.flags = 0;
		ASSERT_OK(uf_store_redis(&o, &ro)); /* created */
		ASSERT_OK(uf_store_close(ro));
		o.flags = UF_STORE_RDONLY;
		ASSERT_OK(uf_store_redis(&o, &ro)); /* and now opened read-only */
		ASSERT_OK(uf_store_close(ro));
	}
	/* seeds: an empty piece, an IPv6 address without brackets */
	{
		char sd[96];
		const char *const fmt[] = {"%s,", ",%s", "%s,,%s", "::1:%.0s6379"};
		for (unsigned i = 0; i < 4; i++) {
			snprintf(sd, sizeof(sd), fmt[i], seed, seed);
			ASSERT(!open_seed(sd, 0, why, &e));
			if (e != -EINVAL || !strstr(why, "bad seed address"))
				FAIL("seeds \"%s\": %d (%s)", sd, e, why);
		}
	}
	/* A region laid out across the store's blocks: refused at map time
	 * (every load failed): offset, block size and length. */
	{
		uf_store *s8 = open_store("t5u", 8 * 8192, 8192, &e, why);
		ASSERT_OK(e);
		struct uf_map_opts mo = test_map_opts();
		uf_region *r8;
		ASSERT_EQ(uf_map(s8, 0, 8 * 8192, PROT_READ, &mo, &r8), -EINVAL); /* 4 KiB blocks */
		mo.block_size = 8192;
		ASSERT_EQ(uf_map(s8, 4096, 4 * 8192, PROT_READ, &mo, &r8), -EINVAL);
		ASSERT_EQ(uf_map(s8, 0, 8192 + 4096, PROT_READ, &mo, &r8), -EINVAL);
		ASSERT_OK(uf_map(s8, 8192, 2 * 8192, PROT_READ, &mo, &r8));
		ASSERT_EQ(((volatile unsigned char *)uf_region_addr(r8))[8192 + 5], 0);
		ASSERT_OK(uf_unmap(r8, 0));
		mo.block_size = 16384;
		ASSERT_OK(uf_map(s8, 0, 8 * 8192, PROT_READ, &mo, &r8));
		ASSERT_OK(uf_unmap(r8, 0));
		ASSERT_OK(uf_store_close(s8));
	}

	static const char *const bad[] = {
		"userfault-redis 1 size=0 block=4096",      /* empty */
		"userfault-redis 1 size=9223372036854775808 block=4096", /* 2^63 */
		"userfault-redis 1 size=4096 block=3",      /* not a power of two */
		"userfault-redis 1 size=4096 block=256",    /* below 512 */
		"userfault-redis 1 size=134217728 block=134217728", /* above 64 MiB */
		"userfault-redis 1 size=4096 block=4096junk",
		"userfault-redis 1 size=-4096 block=4096",
		"userfault-redis 1 size=04096 block=4096",
		"userfault-redis 1 size=6144 block=4096",   /* not whole blocks */
		"userfault-redis 2 size=4096 block=4096",
		"something else",
	};
	char out[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rs_sh(out, sizeof(out), "redis-cli -p %d SET t6:meta '%s'", port, bad[i]);
		why[0] = 0;
		ASSERT(!open_store("t6", 0, 0, &e, why));
		if (e != -EBADMSG || !strstr(why, "not a userfault store"))
			FAIL("meta \"%s\": %d (%s)", bad[i], e, why);
		ASSERT(!open_store("t6", 4096, 4096, &e, why)); /* never overwritten */
		ASSERT_EQ(e, -EBADMSG);
		ASSERT_EQ(cli_get(port, "t6:meta", out, sizeof(out)), strlen(bad[i]));
		ASSERT_EQ(strcmp(out, bad[i]), 0);
	}
	cli_int(port, "DEL t6:meta");
	ASSERT_EQ(cli_int(port, "RPUSH t6:meta x"), 1); /* not a string at all */
	ASSERT(!open_store("t6", 4096, 0, &e, why));
	if (e != -EBADMSG || !strstr(why, "not a userfault store"))
		FAIL("a list as meta: %d (%s)", e, why);
	cli_int(port, "DEL t6:meta");

	/* a seed that accepts connections (the kernel's backlog) but never
	 * answers: the error names it */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT(ls >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	ASSERT_EQ(bind(ls, (struct sockaddr *)&sin, sl), 0);
	ASSERT_EQ(listen(ls, 16), 0);
	ASSERT_EQ(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
	char sd[64], want[96];
	snprintf(sd, sizeof(sd), "127.0.0.1:%d", ntohs(sin.sin_port));
	snprintf(want, sizeof(want), "cannot connect to %s", sd);
	s = open_seed(sd, 200, why, &e);
	ASSERT(!s);
	if (e != -EAGAIN || !strstr(why, want))
		FAIL("silent seed: %d, errbuf \"%s\"", e, why);
	close(ls);
	/* A unix socket path that does not exist: the last connection error,
	 * -ENOENT (docs/REDIS.md), and errbuf names the path. */
	s = open_seed("/nonexistent-uf-dir/redis.sock", 0, why, &e);
	ASSERT(!s);
	if (e != -ENOENT || !strstr(why, "cannot connect to /nonexistent-uf-dir/redis.sock"))
		FAIL("missing unix socket: %d (%s)", e, why);
	/* A standalone replica as the only seed: reads never go to replicas,
	 * so it is passed over (retried), and errbuf says why; promoted, it
	 * serves. */
	{
		char extra[64], rsd[64];
		snprintf(extra, sizeof(extra), "--replicaof 127.0.0.1 %d", port);
		int k = rs_start(extra);
		snprintf(rsd, sizeof(rsd), "127.0.0.1:%d", rs_srv[k].port);
		ASSERT(!open_seed(rsd, 0, why, &e));
		if (e != -EAGAIN || !strstr(why, "is a replica"))
			FAIL("a replica as the seed: %d (%s)", e, why);
		rs_sh(out, sizeof(out), "redis-cli -p %d REPLICAOF NO ONE", rs_srv[k].port);
		s = open_seed(rsd, 0, why, &e);
		if (e)
			FAIL("the promoted replica: %d (%s)", e, why);
		ASSERT_OK(uf_store_close(s));
		rs_stop(k);
	}
	printf("meta ok\n");
}

/* ---- WAIT: slower than the command timeout, and in a fork child ---- */
static void wait_checks(void)
{
	/* No replica: every WAIT meets fewer than wait_replicas. */
	struct uf_redis_opts o;
	opts_on_seed(&o, "t7", 16 * BS);
	o.wait_replicas = 1;
	o.wait_timeout_ms = 700;
	o.command_timeout_ms = 200; /* shorter than the WAIT: not a lost connection */
	char why[512] = "";
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	uf_store *s = NULL;
	int e = uf_store_redis(&o, &s);
	if (e)
		FAIL("uf_store_redis: %d %s", e, why);
	uf_region *r = map(s, 0, NULL);
	unsigned char *p = uf_region_addr(r);
	p[0] = 1;
	ASSERT_EQ(uf_sync(r, NULL, 0), -ETIMEDOUT);
	ASSERT_EQ(uf_sync(r, NULL, 0), -ETIMEDOUT); /* the next flush waits again */
	/* A fork child's calls run in the calling thread: its flush too. */
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		uf_region *r2;
		struct uf_map_opts mo = test_map_opts();
		if (uf_map(s, 0, 16 * BS, PROT_READ | PROT_WRITE, &mo, &r2))
			_exit(2);
		((unsigned char *)uf_region_addr(r2))[BS] = 2;
		int e2 = uf_sync(r2, NULL, 0);
		if (e2 != -ETIMEDOUT) {
			fprintf(stderr, "child uf_sync: %d\n", e2);
			_exit(3);
		}
		uf_unmap(r2, UF_UNMAP_DISCARD);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	printf("wait ok\n");
}

/* ---- four threads, random reads and writes, shadow model ---- */
static void threads(void)
{
	size_t size = 128 * BS;
	uf_store *s = must_open("t2", size);
	uf_region *r = map(s, 12 * BS, NULL);
	uint64_t *shadow = rs_shadow_threads(uf_region_addr(r), size, 4, 3000);
	ASSERT_GT(stats_of(r).evictions, 0);
	ASSERT_OK(uf_unmap(r, 0)); /* writes back */
	ASSERT_OK(uf_store_close(s));
	s = must_open("t2", 0);
	r = map(s, 0, NULL);
	ASSERT_EQ(memcmp(uf_region_addr(r), shadow, size), 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(shadow);
	printf("threads ok\n");
}

/* ---- keys the store did not write ---- */
static void bad_keys(int port)
{
	uf_store *s = must_open("t3", 8 * BS);
	rs_sh(NULL, 0, "redis-cli -p %d RPUSH t3:1 x >/dev/null", port);
	rs_sh(NULL, 0, "redis-cli -p %d SET t3:2 short >/dev/null", port);
	uf_region *r = map(s, 0, on_error);
	unsigned char *p = uf_region_addr(r);
	ASSERT_EQ(touch(p), 0);
	ASSERT_EQ(touch(p + BS), -EPROTO);     /* a list: WRONGTYPE */
	ASSERT_EQ(touch(p + 2 * BS), -EBADMSG); /* 5 bytes, not a block */
	p[0] = 1;
	ASSERT_OK(uf_sync(r, NULL, 0));
	char out[64];
	rs_sh(out, sizeof(out), "redis-cli -p %d TYPE t3:1", port);
	ASSERT(!strncmp(out, "list", 4));
	ASSERT_EQ(cli_get(port, "t3:2", out, sizeof(out)), 5);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("bad keys ok\n");
}

static void password(void)
{
	int k = rs_start("--requirepass s3cret");
	char sd[64];
	snprintf(sd, sizeof(sd), "127.0.0.1:%d", rs_srv[k].port);
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = sd;
	o.prefix = "pw";
	o.size = 4 * BS;
	o.password = "wrong";
	char why[512] = "";
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	uf_store *s = NULL;
	ASSERT_EQ(uf_store_redis(&o, &s), -EACCES);
	ASSERT(strstr(why, "WRONGPASS") || strstr(why, "invalid"));
	o.password = NULL; /* no AUTH at all: NOAUTH */
	ASSERT_EQ(uf_store_redis(&o, &s), -EACCES);
	ASSERT(s == NULL);
	o.password = "s3cret";
	ASSERT_OK(uf_store_redis(&o, &s));
	o.user = "default";
	uf_store *s2;
	ASSERT_OK(uf_store_redis(&o, &s2)); /* AUTH user password */
	ASSERT_OK(uf_store_close(s2));
	uf_region *r = map(s, 0, NULL);
	((unsigned char *)uf_region_addr(r))[5] = 9;
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	rs_stop(k);
	printf("password ok\n");
}

static _Atomic int late_err = 1;
/* Batched write-back: one uf_sync of 300 scattered and contiguous dirty
 * blocks (some written as zeros over existing keys) reaches the server
 * pipelined: every block visible to redis-cli, the zero ones deleted. A
 * batch that fails (the server is down) keeps every block of it dirty,
 * and the next sync, once the server is back, writes them all. */
/* How many keys start with prefix (other tests' keys share the server). */
static long cli_count(int port, const char *prefix)
{
	char out[64];
	rs_sh(out, sizeof(out), "redis-cli -p %d --scan --pattern '%s*' | wc -l", port, prefix);
	return atol(out);
}

static void batched(int k)
{
	int port = rs_srv[k].port;
	size_t nblk = 1024, size = nblk * BS;
	int e;
	uf_store *s = open_store("tb", size, 0, &e, NULL);
	ASSERT_OK(e);
	uf_region *r = map(s, 0, on_error);
	unsigned char *p = uf_region_addr(r);
	for (size_t b = 0; b < 64; b++) /* keys for the zeros to delete */
		fill_block(p + b * BS, b);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(cli_count(port, "tb:"), 64 + 1);
	uint64_t wb0 = stats_of(r).writebacks;
	size_t ndirty = 0, nzero = 0, nnew = 0;
	for (size_t b = 0; b < nblk; b++) {
		if (b < 64 && b % 4 == 0) {
			memset(p + b * BS, 0, BS);
			nzero++;
		} else if (b % 3 == 0 || (b >= 500 && b < 600)) {
			fill_block(p + b * BS, b + 1000);
			nnew += b >= 64;
		} else {
			continue;
		}
		ndirty++;
	}
	ASSERT_EQ(stats_of(r).dirty, ndirty);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_EQ(stats_of(r).writebacks, wb0 + ndirty);
	char got[BS + 16];
	unsigned char want[BS];
	for (size_t b = 0; b < nblk; b++) {
		char key[32];
		snprintf(key, sizeof(key), "tb:%zu", b);
		if (b < 64 && b % 4 == 0) {
			char cmd[48];
			snprintf(cmd, sizeof(cmd), "EXISTS %s", key);
			ASSERT_EQ(cli_int(port, cmd), 0);
		} else if (b % 3 == 0 || (b >= 500 && b < 600)) {
			if (b % 7)
				continue; /* redis-cli is slow: a sample */
			fill_block(want, b + 1000);
			ASSERT_EQ(cli_get(port, key, got, sizeof(got)), BS);
			ASSERT_EQ(memcmp(got, want, BS), 0);
		}
	}
	/* the 64 first keys less the zeroed, the new ones, the metadata */
	ASSERT_EQ(cli_count(port, "tb:"), (long)(64 - nzero + nnew + 1));

	/* a failed batch: all of it stays dirty */
	for (size_t b = 200; b < 300; b++)
		p[b * BS + 5] ^= 0x5a;
	rs_stop(k);
	ASSERT_LT(uf_sync(r, NULL, 0), 0);
	ASSERT_EQ(stats_of(r).dirty, 100);
	rs_spawn(k); /* empty: no persistence */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(stats_of(r).dirty, 0);
	for (size_t b = 200; b < 300; b += 9) {
		char key[32];
		snprintf(key, sizeof(key), "tb:%zu", b);
		memcpy(want, p + b * BS, BS);
		ASSERT_EQ(cli_get(port, key, got, sizeof(got)), BS);
		ASSERT_EQ(memcmp(got, want, BS), 0);
	}
	ASSERT_EQ(cli_count(port, "tb:"), 100); /* only those: the server came back empty */
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	printf("batched write-back ok\n");
}

static void *touch_late(void *arg)
{
	late_err = touch(arg);
	return NULL;
}

static void server_down(int k)
{
	/* no server at open: retried for retry_timeout_ms, then the error */
	int e;
	char why[512] = "", sd[64];
	snprintf(sd, sizeof(sd), "127.0.0.1:%d", rs_free_port());
	uf_store *s = open_seed(sd, 0, why, &e);
	ASSERT_EQ(e, -ECONNREFUSED);
	ASSERT(strstr(why, "cannot connect"));

	/* killed under a workload: loads fail after the retry timeout (the
	 * error callback), dirty blocks stay dirty and a later sync, once
	 * the server is back (empty: no persistence), writes them */
	int port = rs_srv[k].port;
	s = open_store("t4", 64 * BS, 0, &e, NULL);
	ASSERT_OK(e);
	uf_region *r = map(s, 0, on_error);
	unsigned char *p = uf_region_addr(r);
	for (int b = 0; b < 8; b++)
		p[b * BS] = (unsigned char)(b + 1);
	ASSERT_OK(uf_sync(r, NULL, 0));
	p[0] = 0x42;
	rs_stop(k);
	ASSERT_EQ(touch(p + 20 * BS), -ECONNREFUSED);
	ASSERT_LT(uf_sync(r, NULL, 0), 0);
	ASSERT_EQ(stats_of(r).dirty, 1);
	rs_spawn(k);
	ASSERT_OK(uf_sync(r, NULL, 0));
	char got[BS + 16];
	ASSERT_EQ(cli_get(port, "t4:0", got, sizeof(got)), BS);
	ASSERT_EQ((unsigned char)got[0], 0x42);
	/* a restart within the retry timeout is not an error */
	rs_stop(k);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, touch_late, p + 21 * BS), 0);
	rs_msleep(400);
	rs_spawn(k); /* from the main thread: see rs_spawn */
	pthread_join(th, NULL);
	ASSERT_EQ(late_err, 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("server down ok\n");
}

static uint64_t ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A struct_size short of errbuf_len; a hung server's one-block load ends
 * within retry_timeout_ms plus one command_timeout_ms of the fault (the
 * faulting thread's own GET waits 250 ms at most, and its time counts in
 * the retry window). */
static void timing(int k)
{
	struct uf_redis_opts o;
	opts_on_seed(&o, "t10", 64 * BS);
	uf_store *s = NULL;
	o.struct_size = offsetof(struct uf_redis_opts, errbuf_len);
	ASSERT_EQ(uf_store_redis(&o, &s), -EINVAL);
	ASSERT(s == NULL);
	o.struct_size = offsetof(struct uf_redis_opts, errbuf);
	ASSERT_EQ(uf_store_redis(&o, &s), -EINVAL);

	opts_on_seed(&o, "t10", 64 * BS);
	o.retry_timeout_ms = 1000;
	o.command_timeout_ms = 3000;
	char why[512] = "";
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	int e = uf_store_redis(&o, &s);
	if (e)
		FAIL("uf_store_redis: %d %s", e, why);
	uf_region *r = map(s, 0, on_error);
	volatile unsigned char *p = uf_region_addr(r);
	for (int b = 0; b < 40; b += 7) /* spare sockets for the fast GET */
		ASSERT_EQ(touch(p + b * BS), 0);
	ASSERT_EQ(kill(rs_srv[k].pid, SIGSTOP), 0);
	uint64_t t0 = ms_now();
	e = touch(p + 61 * BS);
	uint64_t took = ms_now() - t0;
	ASSERT_EQ(kill(rs_srv[k].pid, SIGCONT), 0);
	ASSERT_NE(e, 0);
	if (took > 1000 + 3000 + 700)
		FAIL("a load against a stopped server took %llu ms (retry 1000 + command 3000)",
		     (unsigned long long)took);
	ASSERT_EQ(touch(p + 61 * BS), 0); /* served once it runs again */
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));

	printf("timing ok\n");
}

int main(void)
{
	test_init(100);
	rs_init();
	int k = rs_start(NULL);
	snprintf(seed, sizeof(seed), "127.0.0.1:%d", rs_srv[k].port);
	basics(rs_srv[k].port);
	meta_checks(rs_srv[k].port);
	wait_checks();
	threads();
	bad_keys(rs_srv[k].port);
	password();
	batched(k);
	timing(k);
	server_down(k);
	printf("ok\n");
	return 0;
}

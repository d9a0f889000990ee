/* SPDX-License-Identifier: MIT */
/*
 * redis_servers.h - real redis-server processes for the Redis store tests:
 * loopback only, free ports, a temporary directory, and never left
 * running: each server gets PR_SET_PDEATHSIG (it dies with the test, even
 * when the test dies of a signal), an atexit handler kills them (failed
 * assertions exit), and so does the test timeout's SIGALRM handler.
 */
#ifndef UF_TEST_REDIS_SERVERS_H
#define UF_TEST_REDIS_SERVERS_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <pthread.h>

#include "harness.h"

#define RS_MAX 8
struct rsrv {
	int port;
	pid_t pid;
	char dir[256];
	char extra[256]; /* extra arguments it was started with, for restarts */
};
static struct rsrv rs_srv[RS_MAX];
static int rs_nsrv;
static char rs_tmp[128];

/* Async-signal-safe: only kill(). */
static inline void rs_kill_all(void)
{
	for (int i = 0; i < rs_nsrv; i++)
		if (rs_srv[i].pid > 0)
			kill(rs_srv[i].pid, SIGKILL);
}

static inline void rs_cleanup(void)
{
	rs_kill_all();
	for (int i = 0; i < rs_nsrv; i++)
		if (rs_srv[i].pid > 0)
			waitpid(rs_srv[i].pid, NULL, 0);
	if (rs_tmp[0]) {
		char cmd[200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rs_tmp);
		if (system(cmd)) {
		}
	}
}

static inline void rs_timeout(int sig)
{
	(void)sig;
	rs_kill_all();
	static const char m[] = "FAIL: test timed out (redis servers killed)\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	_exit(124);
}

static inline int rs_have(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* After test_init: skips (saying why) unless the packages are there and
 * the library was built with hiredis; sets up the cleanup. */
static inline void rs_init(void)
{
	if (!rs_have("redis-server") || !rs_have("redis-cli"))
		SKIP("redis-server / redis-cli not installed (Debian: redis-server, redis-tools)");
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	uf_store *s;
	if (uf_store_redis(&o, &s) == -ENOTSUP)
		SKIP("libuserfault built without hiredis (Debian: libhiredis-dev, pkg-config)");
	snprintf(rs_tmp, sizeof(rs_tmp), "/tmp/ufredis.XXXXXX");
	ASSERT(mkdtemp(rs_tmp));
	atexit(rs_cleanup);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rs_timeout;
	sigaction(SIGALRM, &sa, NULL);
}

/* A TCP port nobody listens on now (the kernel's choice). */
static inline int rs_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	/* redis cluster also listens on port + 10000 */
	int p = ntohs(a.sin_port);
	return p > 55000 ? rs_free_port() : p;
}

static inline int rs_connectable(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static inline void rs_msleep(unsigned ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&t, NULL);
}

/* Starts (or restarts) server i with its port and directory. Call it from
 * the main thread: PR_SET_PDEATHSIG fires when the thread that forked
 * exits, not the process. */
static inline void rs_spawn(int i)
{
	struct rsrv *v = &rs_srv[i];
	char port[16];
	snprintf(port, sizeof(port), "%d", v->port);
	char *argv[40];
	int n = 0;
	argv[n++] = "redis-server";
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--dir";
	argv[n++] = v->dir;
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--logfile";
	argv[n++] = "redis.log";
	char extra[256];
	snprintf(extra, sizeof(extra), "%s", v->extra);
	for (char *t = strtok(extra, " "); t && n < 38; t = strtok(NULL, " "))
		argv[n++] = t;
	argv[n] = NULL;
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		execvp("redis-server", argv);
		_exit(127);
	}
	v->pid = pid;
	for (int t = 0; t < 500 && !rs_connectable(v->port); t++)
		rs_msleep(10);
	if (!rs_connectable(v->port))
		FAIL("redis-server on port %d did not start (see %s/redis.log)", v->port, v->dir);
}

/* A new server; extra: more redis-server arguments ("--requirepass x"). */
static inline int rs_start(const char *extra)
{
	ASSERT(rs_nsrv < RS_MAX);
	int i = rs_nsrv++;
	struct rsrv *v = &rs_srv[i];
	v->port = rs_free_port();
	snprintf(v->dir, sizeof(v->dir), "%s/%d", rs_tmp, v->port);
	ASSERT_EQ(mkdir(v->dir, 0700), 0);
	snprintf(v->extra, sizeof(v->extra), "%s", extra ? extra : "");
	rs_spawn(i);
	return i;
}

static inline void rs_stop(int i)
{
	if (rs_srv[i].pid > 0) {
		kill(rs_srv[i].pid, SIGKILL);
		waitpid(rs_srv[i].pid, NULL, 0);
		rs_srv[i].pid = 0;
	}
}

/* Runs a shell command line, its output (up to cap-1 bytes) in out; returns
 * the byte count. */
static inline size_t rs_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline size_t rs_sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	ASSERT(f);
	size_t n = 0, k;
	char junk[4096];
	while (out && n + 1 < cap && (k = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += k;
	while (fread(junk, 1, sizeof(junk), f) > 0)
		;
	pclose(f);
	if (out)
		out[n] = 0;
	return n;
}

/* A cluster of nmasters masters with one replica each; returns the index
 * of the first of its 2 * nmasters servers. */
static inline int rs_cluster(int nmasters)
{
	int first = rs_nsrv;
	char addrs[512] = "";
	for (int i = 0; i < 2 * nmasters; i++) {
		int k = rs_start("--cluster-enabled yes --cluster-config-file nodes.conf "
				 "--cluster-node-timeout 1000 --appendonly no");
		size_t l = strlen(addrs);
		snprintf(addrs + l, sizeof(addrs) - l, " 127.0.0.1:%d", rs_srv[k].port);
	}
	char out[8192];
	rs_sh(out, sizeof(out), "redis-cli --cluster create%s --cluster-replicas 1 --cluster-yes 2>&1",
	      addrs);
	if (!strstr(out, "All 16384 slots covered"))
		FAIL("redis-cli --cluster create failed:\n%s", out);
	/* Every node must agree before the test starts. */
	for (int t = 0;; t++) {
		int ok = 1;
		for (int i = first; i < first + 2 * nmasters && ok; i++) {
			rs_sh(out, sizeof(out), "redis-cli -p %d cluster info 2>&1", rs_srv[i].port);
			ok = strstr(out, "cluster_state:ok") != NULL;
		}
		if (ok)
			break;
		if (t > 300)
			FAIL("cluster did not reach cluster_state:ok");
		rs_msleep(50);
	}
	return first;
}

/* The port of each master (role:master) among servers [first, first+n). */
static inline int rs_masters(int first, int n, int *ports)
{
	int k = 0;
	char out[4096];
	for (int i = first; i < first + n; i++) {
		if (rs_srv[i].pid <= 0)
			continue;
		rs_sh(out, sizeof(out), "redis-cli -p %d role 2>/dev/null | head -1", rs_srv[i].port);
		if (!strncmp(out, "master", 6))
			ports[k++] = rs_srv[i].port;
	}
	return k;
}

/* uf_store_redis(o) that must succeed: fails the test saying why. */
static inline uf_store *rs_must_store(struct uf_redis_opts *o)
{
	char why[512] = "";
	o->errbuf = why;
	o->errbuf_len = sizeof(why);
	uf_store *s = NULL;
	int e = uf_store_redis(o, &s);
	o->errbuf = NULL;
	if (e)
		FAIL("uf_store_redis(%s) = %d (%s): %s", o->prefix, e, uf_strerror(e), why);
	return s;
}

/* ---- n threads of random reads and writes against a shadow model:
 * thread t owns the words w with w % n == t, so threads share blocks ---- */
struct rs_shadow {
	volatile uint64_t *w;
	uint64_t *shadow;
	size_t nwords;
	int n, iters;
	_Atomic int failed;
};
struct rs_shadow_arg {
	struct rs_shadow *sh;
	int t;
};
static inline void *rs_shadow_worker(void *arg)
{
	struct rs_shadow_arg *a = arg;
	struct rs_shadow *sh = a->sh;
	uint64_t t = (uint64_t)a->t, sd = 0xabcdef + t * 31;
	for (int i = 0; i < sh->iters && !sh->failed; i++) {
		size_t k = (xorshift64(&sd) % (sh->nwords / (size_t)sh->n)) * (size_t)sh->n + t;
		if (xorshift64(&sd) & 1) {
			uint64_t v = xorshift64(&sd) | 1;
			sh->w[k] = v;
			sh->shadow[k] = v;
		} else if (sh->w[k] != sh->shadow[k]) {
			fprintf(stderr, "thread %d word %zu: got %llx want %llx\n", (int)t, k,
				(unsigned long long)sh->w[k], (unsigned long long)sh->shadow[k]);
			sh->failed = 1;
		}
	}
	return NULL;
}
/* Runs the threads over region p of size bytes (whose store starts as
 * zeros); returns the shadow (malloc'd) after checking every read. */
static inline uint64_t *rs_shadow_threads(void *p, size_t size, int n, int iters)
{
	struct rs_shadow sh = {.w = p, .nwords = size / 8, .n = n, .iters = iters};
	sh.shadow = calloc(sh.nwords, 8);
	ASSERT(sh.shadow && n <= 16);
	pthread_t th[16];
	struct rs_shadow_arg a[16];
	for (int t = 0; t < n; t++) {
		a[t] = (struct rs_shadow_arg){&sh, t};
		ASSERT_EQ(pthread_create(&th[t], NULL, rs_shadow_worker, &a[t]), 0);
	}
	for (int t = 0; t < n; t++)
		pthread_join(th[t], NULL);
	ASSERT_EQ(sh.failed, 0);
	return sh.shadow;
}

#endif

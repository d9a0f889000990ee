/* SPDX-License-Identifier: MIT */
/*
 * store_redis.c - a Redis / Redis Cluster server as a store: one key per
 * block, binary values, a metadata key. Runs on store threads
 * (UF_STORE_NOT_SIGSAFE): hiredis allocates. Each store thread has its own
 * connection to each node; cluster routing lives in redis_cluster.c.
 *
 * Without hiredis (mk/redis.mk did not find it) only the option defaults
 * and a uf_store_redis that says -ENOTSUP are built.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define RS_PREFIX_MAX 200

void uf_redis_opts_init(struct uf_redis_opts *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->struct_size = sizeof(*o);
	o->connect_timeout_ms = 1000;
	o->command_timeout_ms = 5000;
	o->retry_timeout_ms = 10000;
	o->wait_timeout_ms = 5000;
}

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...)
{
	if (!buf || !len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

#ifndef UF_HAVE_HIREDIS

int uf_store_redis(const struct uf_redis_opts *o, uf_store **out)
{
	if (!o || !out || o->struct_size < offsetof(struct uf_redis_opts, errbuf))
		return -EINVAL;
	if (o->struct_size >= offsetof(struct uf_redis_opts, errbuf_len) + sizeof(size_t))
		say(o->errbuf, o->errbuf_len, "libuserfault was built without hiredis: no Redis store");
	return -ENOTSUP;
}

#else /* UF_HAVE_HIREDIS */

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "redis_cluster.h"

#define RS_KEY_MAX (RS_PREFIX_MAX + 32)
#define RS_MAX_SEEDS 16
#define META_FMT "userfault-redis 1 size=%llu block=%zu"

struct pend; /* SET/DEL commands of a node not yet sent (run()) */
struct gbuf; /* replies of plain GETs read without hiredis (lean_get()) */
struct row {
	redisContext *c[RC_MAX_NODES];
	struct pend *pend[RC_MAX_NODES]; /* made on first use, by the row's thread */
	struct gbuf *gb[RC_MAX_NODES];   /* the same */
	/* Masters this row's connections wrote to since the last WAIT, and
	 * those whose connection was lost since (the WAIT of a new connection
	 * would prove nothing). Writes and flush run on store thread 0's row,
	 * or, in a fork child, in the calling thread on the shared last row. */
	bool wrote[RC_MAX_NODES], lost[RC_MAX_NODES];
};

/* Spare sockets for the signal-safe one-block GET (rs_fast_read): connected
 * and authenticated by store threads, claimed by a faulting thread with one
 * compare-and-swap, used with plain send/recv in its fault handler. */
#define FAST_PER_NODE 4
#define FAST_WAIT_MS 250 /* the longest a fast read waits for its reply */
enum { FS_NONE, FS_IDLE, FS_BUSY, FS_OPENING };
struct fsock {
	_Atomic int st;
	int fd;
};

struct rs {
	char prefix[RS_PREFIX_MAX + 1];
	size_t plen;
	size_t bs;
	uint64_t size;
	char *user, *password;
	struct timeval ctv, ttv;
	unsigned retry_ms, wait_n, wait_ms, nthreads;
	struct rc_map map;
	struct rc_node seeds[RS_MAX_SEEDS];
	unsigned nseeds;
	struct fsock fast[RC_MAX_NODES][FAST_PER_NODE];
	pid_t pid; /* the spare sockets are this process's (not a fork child's) */
	pthread_mutex_t other_mu; /* the row of callers that are no store thread */
	pthread_mutex_t err_mu;
	char err[512]; /* the last error, in words (reported by uf_store_redis) */
	struct row rows[];        /* nthreads store threads + one for the others */
};

enum { C_GET, C_SET, C_SETNX, C_DEL, C_SLOTS };

struct op {
	char key[RS_KEY_MAX];
	size_t klen;
	int cmd;
	const void *val; /* SET */
	size_t vlen;
	void *dst; /* GET: bs bytes */
	redisReply *reply; /* C_SLOTS, and GET of the meta key (dst NULL) */
	int node;
	bool ask, done;
};

/* Records the last error in words; store threads may do it at once. */
static void note(struct rs *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct rs *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&s->err_mu);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	pthread_mutex_unlock(&s->err_mu);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static struct timeval tv_ms(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static void key_of(struct rs *s, struct op *op, const char *suffix)
{
	op->klen = (size_t)snprintf(op->key, sizeof(op->key), "%s:%s", s->prefix, suffix);
}

UF_SIGCTX static size_t put_u64(char *p, uint64_t v);

/* "<prefix>:<blk>", without snprintf: once per block of every call. */
static void block_key(struct rs *s, struct op *op, uint64_t blk)
{
	memcpy(op->key, s->prefix, s->plen);
	op->key[s->plen] = ':';
	op->klen = s->plen + 1 + put_u64(op->key + s->plen + 1, blk);
	op->key[op->klen] = 0;
}

/* The calling thread's connections: its own row on a store thread; the
 * shared last row (under other_mu, taken by the caller) elsewhere. */
static struct row *row_of(struct rs *s, int slot) { return &s->rows[slot >= 0 ? (unsigned)slot : s->nthreads]; }

static int errno_of(redisContext *c)
{
	if (c->err == REDIS_ERR_IO && errno)
		return -errno;
	if (c->err == REDIS_ERR_EOF)
		return -ECONNRESET;
	if (c->err == REDIS_ERR_IO)
		return -EIO;
	return -EPROTO;
}

/* Bytes of a connection read past hiredis, for plain GET replies: the
 * block lands in its buffer with one copy (hiredis takes three, a malloc
 * and a memmove of its buffer per reply). Either reader may hold the
 * stream's next bytes, never both: lean_get() reads only when hiredis
 * holds none, and bytes left here are fed to hiredis before it reads. */
#define GB_SIZE (64u << 10)
struct gbuf {
	size_t pos, len;
	char d[GB_SIZE];
};

static void gb_reset(struct gbuf *g) { g->pos = g->len = 0; }

static void drop(struct rs *s, struct row *rw, int node)
{
	if (rw->c[node]) {
		redisFree(rw->c[node]);
		rw->c[node] = NULL;
		if (rw->gb[node])
			gb_reset(rw->gb[node]); /* its bytes were that connection's */
		if (rw->wrote[node])
			rw->lost[node] = true;
	}
}

/* "host:port", or the socket path of a unix-socket node, for messages. */
static const char *addr_str(const struct rc_node *n, char *buf, size_t len)
{
	if (n->port)
		snprintf(buf, len, "%.108s:%d", n->host, n->port);
	else
		snprintf(buf, len, "%.108s", n->host);
	return buf;
}

/* A new connected, authenticated context for node, or NULL with *err set
 * (-EACCES for a refused password: no point retrying). */
static redisContext *connect_node(struct rs *s, int node, int *err)
{
	redisContext *c;
	struct rc_node n;
	char a[128];
	pthread_mutex_lock(&s->map.mu);
	n = s->map.nodes[node];
	pthread_mutex_unlock(&s->map.mu);
	errno = 0;
	c = n.port ? redisConnectWithTimeout(n.host, n.port, s->ctv)
		   : redisConnectUnixWithTimeout(n.host, s->ctv);
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	if (c->err) {
		/* REDIS_ERR_OTHER at connect: the name did not resolve. */
		*err = c->err == REDIS_ERR_OTHER ? -EHOSTUNREACH : errno_of(c);
		note(s, "cannot connect to %s: %.100s", addr_str(&n, a, sizeof(a)), c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, s->ttv);
	if (s->password) {
		redisReply *r = s->user ? redisCommand(c, "AUTH %s %s", s->user, s->password)
					: redisCommand(c, "AUTH %s", s->password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			*err = r ? -EACCES : errno_of(c);
			if (r)
				note(s, "%s refused the login: %.380s", addr_str(&n, a, sizeof(a)),
				     r->str);
			else
				note(s, "cannot connect to %s: no answer to AUTH: %.100s",
				     addr_str(&n, a, sizeof(a)), c->errstr);
			if (r)
				freeReplyObject(r);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(r);
	}
	return c;
}

/* This row's connection to node, made if needed. */
static redisContext *conn(struct rs *s, struct row *rw, int node, int *err)
{
	redisContext *c = rw->c[node];
	if (c && !c->err)
		return c;
	drop(s, rw, node);
	c = connect_node(s, node, err);
	rw->c[node] = c;
	return c;
}

/* Gives node a spare socket for rs_fast_read if it has room for one. On a
 * store thread, after a read went there. */
static void top_up(struct rs *s, int node)
{
	for (int i = 0; i < FAST_PER_NODE; i++) {
		struct fsock *fs = &s->fast[node][i];
		int none = FS_NONE;
		if (!atomic_compare_exchange_strong(&fs->st, &none, FS_OPENING))
			continue;
		int e;
		redisContext *c = connect_node(s, node, &e);
		if (!c) {
			atomic_store(&fs->st, FS_NONE);
			return;
		}
		/* Blocking, with the command timeout on the socket
		 * (redisSetTimeout), but a reply waited for at most FAST_WAIT_MS:
		 * a server that is slower than that is left to the store threads,
		 * whose retries count from the fault (run), so a hung server
		 * costs a load retry_timeout_ms, not a command timeout more. */
		fs->fd = c->fd;
		redisFreeKeepFd(c);
		struct timeval tv = s->ttv;
		if (tv.tv_sec * 1000 + tv.tv_usec / 1000 > FAST_WAIT_MS)
			tv = tv_ms(FAST_WAIT_MS);
		setsockopt(fs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		atomic_store_explicit(&fs->st, FS_IDLE, memory_order_release);
		return;
	}
}

/* Signal-safe send/recv of exactly n bytes. */
UF_SIGCTX static bool xsend(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p = (const char *)p + k;
		n -= (size_t)k;
	}
	return true;
}

UF_SIGCTX static size_t put_u64(char *p, uint64_t v)
{
	char t[24];
	size_t n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	for (size_t i = 0; i < n; i++)
		p[i] = t[n - 1 - i];
	return n;
}

/*
 * The one-block GET in the faulting thread, without a hand-off: only
 * system calls, atomics and the routing arithmetic, so safe in a signal
 * handler. It takes a spare socket of the block's master (as the map says;
 * a byte read that races with a refresh gives the old or the new master,
 * both valid) and succeeds only on the plain answers: the block, or no key
 * (zeros). Anything else (no spare socket, a redirection, an error reply,
 * another length, a broken or slow connection) closes that socket and
 * says -EAGAIN: the store threads then do the read with every rule
 * (retries, redirections, the real error). Asynchronous signals wait
 * meanwhile, so no handler can leave this frame with the socket claimed.
 */
UF_SIGCTX static int rs_fast_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct rs *s = ctx;
	/* The cached pid (set once a region is mapped, as it is for any load)
	 * saves a getpid system call per fault. */
	pid_t me = uf__self_pid();
	if (len != s->bs || off % s->bs || (me ? me : getpid()) != s->pid)
		return -EAGAIN;
	char req[RS_KEY_MAX + 48], *key;
	size_t kl;
	/* The key first: the request's header needs its length. */
	char kbuf[RS_KEY_MAX];
	memcpy(kbuf, s->prefix, s->plen);
	kbuf[s->plen] = ':';
	kl = s->plen + 1 + put_u64(kbuf + s->plen + 1, off / s->bs);
	int node = 0;
	if (s->map.cluster)
		node = __atomic_load_n(&s->map.slot_node[uf__rc_key_slot(kbuf, kl)], __ATOMIC_RELAXED);
	struct fsock *fs = NULL;
	for (int i = 0; i < FAST_PER_NODE && !fs; i++) {
		int idle_st = FS_IDLE;
		if (atomic_compare_exchange_strong(&s->fast[node][i].st, &idle_st, FS_BUSY))
			fs = &s->fast[node][i];
	}
	if (!fs)
		return -EAGAIN;
	/* In a fault handler (or handler thread) they are blocked already. */
	bool mask = !uf__t_async_blocked;
	sigset_t all, old;
	if (mask) {
		sigfillset(&all);
		sigdelset(&all, SIGSEGV);
		sigdelset(&all, SIGBUS);
		pthread_sigmask(SIG_BLOCK, &all, &old);
	}
	size_t rl = 0;
	static const char get[] = "*2\r\n$3\r\nGET\r\n$";
	memcpy(req, get, sizeof(get) - 1);
	rl = sizeof(get) - 1;
	rl += put_u64(req + rl, kl);
	req[rl++] = '\r';
	req[rl++] = '\n';
	key = req + rl;
	memcpy(key, kbuf, kl);
	rl += kl;
	req[rl++] = '\r';
	req[rl++] = '\n';
	/* The answer we take is "$<bs>\r\n", the block and CRLF, or "$-1\r\n"
	 * (no key); every answer is at least 5 bytes and wl > 5. Over
	 * loopback the reply usually comes in one piece: the first recvmsg
	 * takes whatever is there, straight into header, block and CRLF;
	 * once 5 bytes tell which answer it is, the rest is waited for. */
	int e = -EAGAIN;
	char h[32], want[32], crlf[2];
	size_t wl = 0;
	want[wl++] = '$';
	wl += put_u64(want + wl, s->bs);
	want[wl++] = '\r';
	want[wl++] = '\n';
	if (xsend(fs->fd, req, rl)) {
		struct iovec seg[3] = {{h, wl}, {dst, len}, {crlf, 2}};
		size_t total = wl + len + 2, got = 0;
		bool bad = false, hole = false;
		while (got < total && !bad && !hole) {
			struct iovec iov[3];
			int n = 0;
			for (size_t i = 0, at = 0; i < 3; at += seg[i].iov_len, i++) {
				if (got >= at + seg[i].iov_len)
					continue;
				size_t skip = got > at ? got - at : 0;
				iov[n].iov_base = (char *)seg[i].iov_base + skip;
				iov[n++].iov_len = seg[i].iov_len - skip;
			}
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
			ssize_t k = recvmsg(fs->fd, &mh, got >= 5 ? MSG_WAITALL : 0);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break; /* closed, broken, or command_timeout_ms passed */
			size_t before = got;
			got += (size_t)k;
			if (before < 5 && got >= 5) {
				if (!memcmp(h, "$-1\r\n", 5)) {
					hole = got == 5;
					bad = !hole; /* more than one reply: not ours */
				} else if (memcmp(h, want, 5)) {
					bad = true;
				}
			}
		}
		if (hole) {
			memset(dst, 0, len); /* no key: a hole */
			e = 0;
		} else if (!bad && got == total && !memcmp(h, want, wl) && crlf[0] == '\r' &&
			   crlf[1] == '\n') {
			e = 0; /* a short read (a signal, the timeout) falls back */
		}
	}
	if (e == 0) {
		atomic_store_explicit(&fs->st, FS_IDLE, memory_order_release);
	} else {
		close(fs->fd); /* its stream may hold a partial reply */
		atomic_store(&fs->st, FS_NONE);
	}
	if (mask)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

static void append(redisContext *c, struct op *op)
{
	if (op->ask)
		redisAppendCommand(c, "ASKING");
	switch (op->cmd) {
	case C_GET:
		redisAppendCommand(c, "GET %b", op->key, op->klen);
		break;
	case C_SET:
		redisAppendCommand(c, "SET %b %b", op->key, op->klen, op->val, op->vlen);
		break;
	case C_SETNX:
		redisAppendCommand(c, "SET %b %b NX", op->key, op->klen, op->val, op->vlen);
		break;
	case C_DEL:
		redisAppendCommand(c, "DEL %b", op->key, op->klen);
		break;
	case C_SLOTS:
		redisAppendCommand(c, "CLUSTER SLOTS");
		break;
	}
}

static bool starts(const redisReply *r, const char *w)
{
	size_t n = strlen(w);
	return r->len >= n && !memcmp(r->str, w, n);
}

/* What a reply means for op: 0 done, 1 retry now (redirected), 2 retry
 * later (the cluster is changing), or a negative errno that retrying will
 * not cure. */
static int settle(struct rs *s, struct op *op, redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR) {
		struct rc_redirect rd;
		if (uf__rc_parse_redirect(r->str, r->len, &rd)) {
			int idx = rd.ask ? uf__rc_node(&s->map, rd.to.host, rd.to.port) : uf__rc_moved(&s->map, &rd);
			if (idx < 0)
				return idx;
			op->ask = rd.ask;
			op->node = idx;
			return 1;
		}
		/* Said also for the replies that are retried: the words stay
		 * if the retries run out (a replica as the only seed answers
		 * READONLY to every write). */
		note(s, "%.*s: %.280s", (int)op->klen, op->key, r->str);
		if (starts(r, "TRYAGAIN") || starts(r, "CLUSTERDOWN") || starts(r, "LOADING") ||
		    starts(r, "MASTERDOWN") || starts(r, "READONLY") || starts(r, "BUSY"))
			return 2;
		if (starts(r, "WRONGTYPE"))
			return -EPROTO;
		if (starts(r, "NOAUTH") || starts(r, "WRONGPASS") || starts(r, "NOPERM"))
			return -EACCES;
		return -EIO;
	}
	switch (op->cmd) {
	case C_GET:
		if (!op->dst) { /* the caller reads the reply */
			if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
				return -EPROTO;
			return 0;
		}
		if (r->type == REDIS_REPLY_NIL) {
			memset(op->dst, 0, s->bs); /* no key: a hole, zeros */
			return 0;
		}
		if (r->type != REDIS_REPLY_STRING)
			return -EPROTO;
		if (r->len != s->bs) {
			note(s, "%.*s holds %zu bytes, not a %zu-byte block",
				 (int)op->klen, op->key, r->len, s->bs);
			return -EBADMSG;
		}
		memcpy(op->dst, r->str, s->bs);
		return 0;
	case C_SET:
		return r->type == REDIS_REPLY_STATUS ? 0 : -EPROTO;
	case C_SETNX:
		return r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_NIL ? 0 : -EPROTO;
	case C_DEL:
		return r->type == REDIS_REPLY_INTEGER ? 0 : -EPROTO;
	default:
		return 0;
	}
}

/* Asks any reachable node for CLUSTER SLOTS and applies it. */
static void refresh(struct rs *s, struct row *rw)
{
	if (!s->map.cluster)
		return;
	pthread_mutex_lock(&s->map.mu);
	unsigned n = s->map.nnodes;
	pthread_mutex_unlock(&s->map.mu);
	for (unsigned i = 0; i < n; i++) {
		int e;
		redisContext *c = conn(s, rw, (int)i, &e);
		if (!c)
			continue;
		redisReply *r = redisCommand(c, "CLUSTER SLOTS");
		if (!r) {
			drop(s, rw, (int)i);
			continue;
		}
		int ok = r->type == REDIS_REPLY_ARRAY && uf__rc_apply_slots(&s->map, r, (int)i) == 0;
		freeReplyObject(r);
		if (ok)
			return;
	}
}

/* Commands in flight per node: a sliding window, as a pipelining client
 * keeps. hiredis sends a context's buffered commands only when a reply is
 * read, and trims its output buffer with a memmove per write: a window
 * keeps that buffer small (a whole batch in it would be copied over and
 * over) while the server always has work. */
#define RS_DEPTH 64

/* SET and DEL go to the socket straight from the caller's buffers: the
 * command's head (and key) built here, the block as it is, with one
 * writev per node and window. hiredis would format each into a string
 * and copy that into its output buffer: two copies of every block. */
#define RS_HEAD_MAX (RS_KEY_MAX + 48)
struct pend {
	unsigned nops, niov;
	struct iovec iov[3 * RS_DEPTH];
	char head[RS_DEPTH][RS_HEAD_MAX];
};

/* Whether op goes by pend (a plain SET, DEL, or GET of a block; an ASK
 * redirection goes through hiredis with its ASKING). */
static bool direct(const struct op *op)
{
	return !op->ask && (op->cmd == C_SET || op->cmd == C_DEL || (op->cmd == C_GET && op->dst));
}

static void pend_add(struct pend *pd, const struct op *op)
{
	static const char crlf[] = "\r\n";
	char *h = pd->head[pd->nops++];
	size_t n = 0;
	memcpy(h, op->cmd == C_SET ? "*3\r\n$3\r\nSET\r\n$" : op->cmd == C_GET ? "*2\r\n$3\r\nGET\r\n$" : "*2\r\n$3\r\nDEL\r\n$", 14);
	n = 14;
	n += put_u64(h + n, op->klen);
	h[n++] = '\r';
	h[n++] = '\n';
	memcpy(h + n, op->key, op->klen);
	n += op->klen;
	h[n++] = '\r';
	h[n++] = '\n';
	if (op->cmd == C_SET) {
		h[n++] = '$';
		n += put_u64(h + n, op->vlen);
		h[n++] = '\r';
		h[n++] = '\n';
	}
	pd->iov[pd->niov++] = (struct iovec){h, n};
	if (op->cmd == C_SET) {
		pd->iov[pd->niov++] = (struct iovec){(void *)op->val, op->vlen};
		pd->iov[pd->niov++] = (struct iovec){(void *)crlf, 2};
	}
}

/* Sends node's pending commands, after whatever hiredis has buffered
 * for it (the order of commands is the order of replies). */
static int pend_flush(struct row *rw, int node)
{
	struct pend *pd = rw->pend[node];
	redisContext *c = rw->c[node];
	if (!pd || !pd->niov)
		return 0;
	int wdone = 0;
	while (!wdone)
		if (redisBufferWrite(c, &wdone) != REDIS_OK)
			return -1;
	struct iovec *iov = pd->iov;
	unsigned left = pd->niov;
	while (left) {
		ssize_t k = writev(c->fd, iov, (int)left);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* as hiredis would: the context is broken */
			c->err = REDIS_ERR_IO;
			snprintf(c->errstr, sizeof(c->errstr), "%s", strerror(errno ? errno : EIO));
			return -1;
		}
		while (left && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			left--;
		}
		if (left) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	pd->niov = pd->nops = 0;
	return 0;
}

/* lean_get(): the connection broke (c->err says how). */
#define LG_BROKEN 100

static int broke(redisContext *c, int err, const char *why)
{
	int en = errno;
	c->err = err;
	snprintf(c->errstr, sizeof(c->errstr), "%s", why ? why : strerror(en ? en : EIO));
	errno = en;
	return -1;
}

/* At least n unparsed bytes in g, read from node's connection after
 * sending its pending commands (the reply may need them). 0, or -1 with
 * c->err set (broken, closed, or command_timeout_ms passed). */
static int gb_fill(struct row *rw, int node, struct gbuf *g, size_t n)
{
	redisContext *c = rw->c[node];
	if (g->len - g->pos >= n)
		return 0;
	if (pend_flush(rw, node))
		return -1;
	if (g->pos + n > GB_SIZE) {
		memmove(g->d, g->d + g->pos, g->len - g->pos);
		g->len -= g->pos;
		g->pos = 0;
	}
	while (g->len - g->pos < n) {
		ssize_t k = recv(c->fd, g->d + g->len, GB_SIZE - g->len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return broke(c, REDIS_ERR_IO, NULL);
		if (k == 0)
			return broke(c, REDIS_ERR_EOF, "Server closed the connection");
		g->len += (size_t)k;
	}
	return 0;
}

/* The next reply line of g, NUL-terminated in place of its CRLF (*len
 * bytes), consumed; NULL with c->err set. */
static char *gb_line(struct row *rw, int node, struct gbuf *g, size_t *len)
{
	for (size_t want = 3;;) {
		if (gb_fill(rw, node, g, want))
			return NULL;
		char *p = g->d + g->pos, *nl = memchr(p, '\n', g->len - g->pos);
		if (nl) {
			if (nl == p || nl[-1] != '\r') {
				broke(rw->c[node], REDIS_ERR_PROTOCOL, "Protocol error: no CRLF");
				return NULL;
			}
			*len = (size_t)(nl - 1 - p);
			nl[-1] = 0;
			g->pos += *len + 2;
			return p;
		}
		want = g->len - g->pos + 1;
		if (want > GB_SIZE / 2) {
			broke(rw->c[node], REDIS_ERR_PROTOCOL, "Protocol error: reply line too long");
			return NULL;
		}
	}
}

/*
 * Reads the reply of op, a command sent by pend (a plain GET of a block,
 * SET or DEL), and settles it as settle() would (0, 1, 2 or a negative
 * errno), or says LG_BROKEN. A GET's value goes from the connection's
 * buffer into the block with one copy, and what is not read yet is
 * received straight into it; a SET's "+OK" costs no allocation.
 */
static int lean_get(struct rs *s, struct row *rw, int node, struct gbuf *g, struct op *op)
{
	redisContext *c = rw->c[node];
	size_t ll;
	char *l = gb_line(rw, node, g, &ll);
	if (!l)
		return LG_BROKEN;
	redisReply fake;
	memset(&fake, 0, sizeof(fake));
	if (l[0] == '-' || l[0] == '+' || l[0] == ':') {
		fake.type = l[0] == '-' ? REDIS_REPLY_ERROR : l[0] == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_INTEGER;
		fake.str = l + 1;
		fake.len = ll - 1;
		return settle(s, op, &fake);
	}
	char *end;
	long long n = l[0] == '$' ? strtoll(l + 1, &end, 10) : -2;
	if (n < -1 || end == l + 1 || *end) {
		broke(c, REDIS_ERR_PROTOCOL, "Protocol error: not a GET reply");
		return LG_BROKEN;
	}
	if (n == -1) {
		fake.type = REDIS_REPLY_NIL; /* a GET of no key: a hole, zeros */
		return settle(s, op, &fake);
	}
	size_t left = (size_t)n;
	bool fits = op->cmd == C_GET && op->dst && left == s->bs;
	while (left) {
		size_t have = g->len - g->pos < left ? g->len - g->pos : left;
		if (fits)
			memcpy((char *)op->dst + (s->bs - left), g->d + g->pos, have);
		g->pos += have;
		left -= have;
		if (!left)
			break;
		if (!fits) { /* skipped */
			if (gb_fill(rw, node, g, 1))
				return LG_BROKEN;
			continue;
		}
		if (pend_flush(rw, node))
			return LG_BROKEN;
		ssize_t k = recv(c->fd, (char *)op->dst + (s->bs - left), left, MSG_WAITALL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			broke(c, k ? REDIS_ERR_IO : REDIS_ERR_EOF, k ? NULL : "Server closed the connection");
			return LG_BROKEN;
		}
		left -= (size_t)k;
	}
	if (gb_fill(rw, node, g, 2))
		return LG_BROKEN;
	if (memcmp(g->d + g->pos, "\r\n", 2)) {
		broke(c, REDIS_ERR_PROTOCOL, "Protocol error: no CRLF after a value");
		return LG_BROKEN;
	}
	g->pos += 2;
	if (fits)
		return 0;
	fake.type = REDIS_REPLY_STRING; /* of another length: settle says so */
	fake.len = (size_t)n;
	fake.str = (char *)"";
	return settle(s, op, &fake);
}

/* The replies of one round of run(): per node, the ops in flight, oldest
 * first (a ring of RS_DEPTH). */
struct round {
	uint32_t ring[RC_MAX_NODES][RS_DEPTH];
	unsigned head[RC_MAX_NODES], count[RC_MAX_NODES];
	bool sent[RC_MAX_NODES], down[RC_MAX_NODES];
	bool later, again;
	int last, fatal;
};

/* Reads the reply of node's oldest op in flight and settles it. A broken
 * connection is dropped with everything in flight on it (not done: the
 * next round sends them again). */
static void reap(struct rs *s, struct row *rw, struct op *ops, struct round *rd, int node)
{
	struct op *op = &ops[rd->ring[node][rd->head[node]]];
	rd->head[node] = (rd->head[node] + 1) % RS_DEPTH;
	rd->count[node]--;
	redisContext *c = rw->c[node];
	redisReply *r = NULL;
	struct gbuf *g = rw->gb[node];
	int v;
	if (direct(op) && c->reader->pos == c->reader->len &&
	    (g || (g = rw->gb[node] = calloc(1, sizeof(*g))))) {
		v = lean_get(s, rw, node, g, op);
		if (v == LG_BROKEN)
			goto broken;
		goto settled;
	}
	if (g && g->len > g->pos) { /* the stream's next bytes, hiredis's now */
		if (redisReaderFeed(c->reader, g->d + g->pos, g->len - g->pos) != REDIS_OK)
			goto broken;
		gb_reset(g);
	}
	/* A reply read already needs nothing sent: the commands pending go
	 * out together once the replies read run out, one writev for many
	 * instead of one per reply (a SET's reply is 5 bytes: one read takes
	 * hundreds). A pipelining hiredis client sends the same way. */
	if (!op->ask && redisReaderGetReply(c->reader, (void **)&r) != REDIS_OK)
		goto broken; /* a protocol error: -EPROTO */
	if (!r) {
		if (pend_flush(rw, node))
			goto broken;
		if (op->ask) {
			if (redisGetReply(c, (void **)&r) != REDIS_OK)
				goto broken;
			freeReplyObject(r);
			op->ask = false; /* ASK holds for this one command */
		}
		if (redisGetReply(c, (void **)&r) != REDIS_OK)
			goto broken;
	}
	v = settle(s, op, r);
settled:
	if (v == 0) {
		op->done = true;
		if (op->cmd == C_SET || op->cmd == C_DEL)
			rw->wrote[node] = true;
		/* Kept only where the caller reads it: a SET, SETNX or DEL
		 * reply (dst NULL too) kept was never freed (valgrind: 48 bytes
		 * a write-back). */
		if (op->cmd == C_SLOTS || (op->cmd == C_GET && !op->dst))
			op->reply = r;
		else
			freeReplyObject(r);
		return;
	}
	freeReplyObject(r);
	if (v == 1) {
		rd->again = true;
	} else if (v == 2) {
		rd->later = true;
		rd->last = -EAGAIN;
	} else if (!rd->fatal) {
		rd->fatal = v;
	}
	return;
broken:
	rd->last = errno_of(c);
	drop(s, rw, node);
	rd->later = true;
	rd->down[node] = true;
	rd->count[node] = 0;
}

/*
 * Runs ops, pipelined per node: up to RS_DEPTH commands in flight on each,
 * every node's sent before the remaining replies are read, so the nodes
 * work at once; each node's commands go in the order of ops. Redirected
 * commands go again at once; on a lost connection or a cluster in change
 * everything not done is retried with a growing pause after a topology
 * refresh, until retry_ms have passed. Every reply of a pipeline is read
 * even after an error, so a connection never keeps stale replies.
 */
static int run(struct rs *s, int slot, struct op *ops, size_t n)
{
	struct row *rw = row_of(s, slot);
	/* retry_timeout_ms counts from the start of the store call, which
	 * may have begun with the faulting thread's own GET (rs_fast_read). */
	uint64_t t = now_ms(), began = uf__store_call_began_ms();
	uint64_t deadline = (began && began <= t ? began : t) + s->retry_ms;
	unsigned pause = 10;
	struct round *rd = malloc(sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	int last = -ETIMEDOUT;
	for (;;) {
		for (size_t i = 0; i < n; i++)
			if (!ops[i].done && !ops[i].ask && s->map.cluster)
				ops[i].node = uf__rc_slot_node(&s->map, uf__rc_key_slot(ops[i].key, ops[i].klen));
			else if (!ops[i].done && !ops[i].ask)
				ops[i].node = 0;
		memset(rd, 0, sizeof(*rd));
		rd->last = last;
		for (size_t i = 0; i < n; i++) {
			struct op *op = &ops[i];
			int node = op->node;
			if (op->done || rd->down[node])
				continue;
			redisContext *c = rw->c[node];
			if (!rd->sent[node]) {
				int e = 0;
				c = conn(s, rw, node, &e);
				if (!c) {
					if (e == -EACCES || e == -ENOMEM) {
						rd->fatal = e;
						break;
					}
					rd->last = e;
					rd->later = true;
					rd->down[node] = true; /* one attempt per round */
					continue;
				}
				rd->sent[node] = true;
			}
			if (rd->count[node] == RS_DEPTH)
				reap(s, rw, ops, rd, node);
			if (rd->down[node])
				continue;
			if (direct(op)) {
				if (!rw->pend[node] && !(rw->pend[node] = malloc(sizeof(struct pend)))) {
					rd->fatal = -ENOMEM;
					break;
				}
				if (!rd->count[node])
					rw->pend[node]->niov = rw->pend[node]->nops = 0;
				pend_add(rw->pend[node], op);
			} else {
				if (pend_flush(rw, node)) {
					rd->last = errno_of(c);
					drop(s, rw, node);
					rd->later = true;
					rd->down[node] = true;
					rd->count[node] = 0;
					continue;
				}
				append(c, op);
			}
			rd->ring[node][(rd->head[node] + rd->count[node]) % RS_DEPTH] = (uint32_t)i;
			rd->count[node]++;
		}
		/* Send what every node has buffered, then read the rest. Blocking
		 * writes cannot stall: a server keeps reading while replies queue. */
		for (int k = 0; k < RC_MAX_NODES; k++) {
			int wdone = 0;
			while (rd->count[k] && !rd->down[k] && !wdone)
				if (pend_flush(rw, k) || redisBufferWrite(rw->c[k], &wdone) != REDIS_OK) {
					rd->last = errno_of(rw->c[k]);
					drop(s, rw, k);
					rd->later = true;
					rd->down[k] = true;
					rd->count[k] = 0;
				}
		}
		for (int k = 0; k < RC_MAX_NODES; k++)
			while (rd->count[k])
				reap(s, rw, ops, rd, k);
		last = rd->last;
		if (rd->fatal) {
			int e = rd->fatal;
			free(rd);
			return e;
		}
		bool all = true;
		for (size_t i = 0; i < n; i++)
			all &= ops[i].done;
		if (all) {
			free(rd);
			return 0;
		}
		if (now_ms() >= deadline) {
			free(rd);
			return last;
		}
		if (rd->later) {
			sleep_ms(pause);
			pause = pause * 2 > 250 ? 250 : pause * 2;
			refresh(s, rw);
		} else if (!rd->again) {
			free(rd);
			return -EIO; /* nothing sent and nothing to wait for: cannot happen */
		}
	}
}

/* Runs ops in the calling context's row (taking the shared row's lock for
 * callers that are no store thread). */
static int run_here(struct rs *s, struct op *ops, size_t n)
{
	int slot = uf__store_thread_slot();
	if (slot >= 0)
		return run(s, slot, ops, n);
	pthread_mutex_lock(&s->other_mu);
	int e = run(s, -1, ops, n);
	pthread_mutex_unlock(&s->other_mu);
	return e;
}

/* Block operations for [off, off + len): whole blocks only. */
static int blocks(struct rs *s, uint64_t off, size_t len, struct op **out, size_t *n)
{
	if (off % s->bs || len % s->bs || !len || off + len > s->size)
		return -EINVAL;
	*n = len / s->bs;
	*out = calloc(*n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++)
		block_key(s, &(*out)[i], off / s->bs + i);
	return 0;
}

static int rs_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct rs *s = ctx;
	struct op *ops;
	size_t n;
	int e = blocks(s, off, len, &ops, &n);
	if (e)
		return e;
	for (size_t i = 0; i < n; i++) {
		ops[i].cmd = C_GET;
		ops[i].dst = (char *)dst + i * s->bs;
	}
	e = run_here(s, ops, n);
	/* A one-block read came here: next time the faulting thread may do
	 * it itself (rs_fast_read), if its master gets a spare socket. */
	if (!e && n == 1 && uf__store_thread_slot() >= 0 && getpid() == s->pid)
		top_up(s, ops[0].node);
	free(ops);
	return e;
}

static bool all_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* SET (or DEL, for zeros) of the blocks of one piece into ops. */
static void write_ops(struct rs *s, struct op *ops, uint64_t off, const void *src, size_t len)
{
	for (size_t i = 0; i < len / s->bs; i++) {
		const char *b = (const char *)src + i * s->bs;
		block_key(s, &ops[i], off / s->bs + i);
		/* A block of zeros reads the same without its key. */
		if (all_zero(b, s->bs)) {
			ops[i].cmd = C_DEL;
		} else {
			ops[i].cmd = C_SET;
			ops[i].val = b;
			ops[i].vlen = s->bs;
		}
	}
}

static bool whole_blocks(struct rs *s, uint64_t off, size_t len)
{
	return !(off % s->bs || len % s->bs || !len || off + len > s->size);
}

static int rs_writev(void *ctx, const struct uf_store_vec *v, unsigned n);

static int rs_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct uf_store_vec v = {off, src, len};
	return rs_writev(ctx, &v, 1);
}

/* A write-back batch: every block's SET (or DEL) in one run, so one
 * pipeline per node, in offset order (run() keeps the order of ops). */
static int rs_writev(void *ctx, const struct uf_store_vec *v, unsigned n)
{
	struct rs *s = ctx;
	size_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!whole_blocks(s, v[i].off, v[i].len))
			return -EINVAL;
		total += v[i].len / s->bs;
	}
	if (!total)
		return -EINVAL;
	struct op *ops = calloc(total, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	size_t k = 0;
	for (unsigned i = 0; i < n; i++) {
		write_ops(s, ops + k, v[i].off, v[i].buf, v[i].len);
		k += v[i].len / s->bs;
	}
	int e = run_here(s, ops, total);
	free(ops);
	return e;
}

/* WAIT on every master rw wrote to since the last flush, on the connection
 * that wrote. The reply may take up to wait_ms: the connection's timeout is
 * raised for it (the command timeout alone would take a slow WAIT for a
 * lost connection). */
static int flush_row(struct rs *s, struct row *rw)
{
	int first = 0;
	for (unsigned i = 0; i < RC_MAX_NODES; i++) {
		if (!rw->wrote[i])
			continue;
		int e = 0;
		if (rw->lost[i] || !rw->c[i]) {
			/* The connection that wrote is gone: a WAIT on a new one
			 * would prove nothing, and the writes cannot be redone here. */
			e = -EIO;
		} else {
			unsigned cmd_ms = (unsigned)(s->ttv.tv_sec * 1000 + s->ttv.tv_usec / 1000);
			redisSetTimeout(rw->c[i], tv_ms(s->wait_ms + cmd_ms));
			redisReply *r = redisCommand(rw->c[i], "WAIT %u %u", s->wait_n, s->wait_ms);
			if (!r) {
				e = -EIO; /* the connection that wrote broke */
				drop(s, rw, (int)i);
			} else {
				redisSetTimeout(rw->c[i], s->ttv);
				if (r->type != REDIS_REPLY_INTEGER)
					e = -EIO;
				else if (r->integer < (long long)s->wait_n)
					e = -ETIMEDOUT; /* keep wrote: the next flush waits again */
				freeReplyObject(r);
			}
		}
		if (e != -ETIMEDOUT) {
			rw->wrote[i] = false;
			rw->lost[i] = false;
		}
		if (e && !first)
			first = e;
	}
	return first;
}

static int rs_flush(void *ctx)
{
	struct rs *s = ctx;
	if (!s->wait_n)
		return 0;
	int slot = uf__store_thread_slot();
	if (slot > 0)
		return -EIO; /* writes and flush go to thread 0; never the case */
	if (slot == 0)
		return flush_row(s, &s->rows[0]);
	/* A fork child: its writes ran in the calling thread, on this row. */
	pthread_mutex_lock(&s->other_mu);
	int e = flush_row(s, row_of(s, -1));
	pthread_mutex_unlock(&s->other_mu);
	return e;
}

static void rs_free(struct rs *s)
{
	for (unsigned i = 0; i < RC_MAX_NODES; i++)
		for (int k = 0; k < FAST_PER_NODE; k++)
			if (atomic_load(&s->fast[i][k].st) != FS_NONE && getpid() == s->pid)
				close(s->fast[i][k].fd);
	for (unsigned t = 0; t <= s->nthreads; t++)
		for (unsigned i = 0; i < RC_MAX_NODES; i++)
			if (s->rows[t].c[i])
				redisFree(s->rows[t].c[i]);
	for (unsigned t = 0; t <= s->nthreads; t++)
		for (unsigned i = 0; i < RC_MAX_NODES; i++) {
			free(s->rows[t].pend[i]);
			free(s->rows[t].gb[i]);
		}
	uf__rc_map_fini(&s->map);
	pthread_mutex_destroy(&s->other_mu);
	pthread_mutex_destroy(&s->err_mu);
	free(s->user);
	free(s->password);
	free(s);
}

static void rs_close(void *ctx) { rs_free(ctx); }

/* Whether the standalone server on c is a replica (ROLE says "slave"). A
 * server that does not answer ROLE is taken as a master. */
static bool standalone_replica(redisContext *c)
{
	redisReply *r = redisCommand(c, "ROLE");
	bool rep = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		   r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "slave");
	if (r)
		freeReplyObject(r);
	return rep;
}

/* Finds the server or cluster from the seeds (retrying until retry_ms),
 * in the calling thread's row. */
static int discover(struct rs *s)
{
	struct row *rw = row_of(s, -1);
	uint64_t deadline = now_ms() + s->retry_ms;
	int last = -ECONNREFUSED;
	for (;;) {
		for (unsigned i = 0; i < s->nseeds; i++) {
			int node = uf__rc_node(&s->map, s->seeds[i].host, s->seeds[i].port);
			if (node < 0)
				return node;
			int e;
			redisContext *c = conn(s, rw, node, &e);
			if (!c) {
				if (e == -EACCES)
					return e;
				last = e;
				continue;
			}
			redisReply *r = redisCommand(c, "CLUSTER SLOTS");
			if (!r) {
				/* Connected, but it does not answer (or hung up). */
				last = errno_of(c);
				char a[128];
				note(s, "cannot connect to %s: no answer to CLUSTER SLOTS: %.100s",
				     addr_str(&s->seeds[i], a, sizeof(a)), c->errstr);
				drop(s, rw, node);
				continue;
			}
			int v;
			if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "cluster support disabled") &&
			    standalone_replica(c)) {
				/* Reads never go to replicas: a plain replica (stale
				 * reads, READONLY writes) is no seed; promoted, it is. */
				char a[128];
				note(s, "%s is a replica, and reads never go to replicas",
				     addr_str(&s->seeds[i], a, sizeof(a)));
				v = -EAGAIN;
			} else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "cluster support disabled")) {
				/* Standalone: this seed is node 0 and serves everything. */
				if (node != 0) {
					drop(s, rw, 0);
					s->map.nodes[0] = s->map.nodes[node];
					rw->c[0] = c;
					rw->c[node] = NULL;
				}
				s->map.nnodes = 1;
				s->map.cluster = false;
				v = 0;
			} else if (r->type == REDIS_REPLY_ERROR) {
				note(s, "CLUSTER SLOTS: %s", r->str);
				v = starts(r, "NOAUTH") || starts(r, "NOPERM") ? -EACCES : -EAGAIN;
			} else {
				v = uf__rc_apply_slots(&s->map, r, node);
				if (v)
					note(s, "unexpected CLUSTER SLOTS reply");
			}
			freeReplyObject(r);
			if (v == 0)
				return 0;
			if (v == -EACCES)
				return v;
			last = v;
		}
		if (now_ms() >= deadline)
			return last;
		sleep_ms(100);
	}
}

/* Reads or creates the metadata key; checks it against the options. */
static int meta(struct rs *s, uint64_t want_size, size_t want_bs, bool create)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct op op = {.cmd = C_GET};
		key_of(s, &op, "meta");
		int e = run(s, -1, &op, 1);
		if (e == -EPROTO) { /* WRONGTYPE: a list, a hash... */
			note(s, "%s:meta is not a userfault store (not a string)", s->prefix);
			return -EBADMSG;
		}
		if (e)
			return e;
		redisReply *r = op.reply;
		if (r->type == REDIS_REPLY_STRING) {
			unsigned long long size = 0;
			size_t bs = 0;
			char text[128];
			bool fits = r->len < sizeof(text) && !memchr(r->str, 0, r->len);
			snprintf(text, sizeof(text), "%.*s", (int)r->len, r->str);
			freeReplyObject(r);
			/* The whole value, exactly as META_FMT writes it (no sign,
			 * space, leading zero or trailing byte). */
			char canon[128];
			if (!fits || sscanf(text, META_FMT, &size, &bs) != 2 ||
			    (snprintf(canon, sizeof(canon), META_FMT, size, bs), strcmp(canon, text)) ||
			    !uf__is_pow2(bs) || bs < 512 || bs > UF_MAX_BLOCK_SIZE || size % bs ||
			    !size || size > UF__STORE_SIZE_MAX) {
				note(s, "%s:meta is not a userfault store (\"%.60s\")",
					 s->prefix, text);
				return -EBADMSG;
			}
			if (want_bs && want_bs != bs) {
				snprintf(s->err, sizeof(s->err),
					 "%s has block size %zu, not the %zu asked for", s->prefix, bs, want_bs);
				return -EINVAL;
			}
			if (want_size && want_size != size) {
				note(s, "%s has size %llu, not the %llu asked for",
					 s->prefix, size, (unsigned long long)want_size);
				return -EINVAL;
			}
			s->bs = bs;
			s->size = size;
			return 0;
		}
		freeReplyObject(r);
		if (want_size && !want_bs && want_size % 4096) {
			note(s, "size %llu is not a multiple of the default block size 4096",
			     (unsigned long long)want_size);
			return -EINVAL;
		}
		if (!want_size) {
			note(s, "%s:meta does not exist and no size was given",
				 s->prefix);
			return -ENOENT;
		}
		if (!create) {
			note(s, "%s:meta does not exist, and a read-only store is not created",
			     s->prefix);
			return -ENOENT;
		}
		char text[128];
		struct op set = {.cmd = C_SETNX, .val = text};
		set.vlen = (size_t)snprintf(text, sizeof(text), META_FMT, (unsigned long long)want_size,
					    want_bs ? want_bs : (size_t)4096);
		key_of(s, &set, "meta");
		e = run(s, -1, &set, 1);
		if (e)
			return e;
		/* Read it back: another process may have created it first. */
	}
	return -EAGAIN;
}

static char *dup_or_null(const char *p, int *err)
{
	if (!p)
		return NULL;
	char *d = strdup(p);
	if (!d)
		*err = -ENOMEM;
	return d;
}

int uf_store_redis(const struct uf_redis_opts *o, uf_store **out)
{
	if (!o || !out || o->struct_size < offsetof(struct uf_redis_opts, errbuf_len) + sizeof(size_t) ||
	    o->struct_size > 4096)
		return -EINVAL;
	char *eb = o->errbuf;
	size_t el = o->errbuf_len;
	size_t plen = o->prefix ? strlen(o->prefix) : 0;
	if (!plen || plen > RS_PREFIX_MAX || !o->seeds || !*o->seeds) {
		say(eb, el, "a key prefix (1..%d bytes) and seeds are required", RS_PREFIX_MAX);
		return -EINVAL;
	}
	if ((o->block_size && (!uf__is_pow2(o->block_size) || o->block_size < 512 ||
			       o->block_size > UF_MAX_BLOCK_SIZE)) ||
	    (o->block_size && o->size % o->block_size) || o->size > UF__STORE_SIZE_MAX ||
	    o->threads > 64 || (o->flags & ~UF_STORE_RDONLY)) {
		say(eb, el, "bad block size, size (a multiple of it, below 2^63), thread count or flags");
		return -EINVAL;
	}
	unsigned nthreads = o->threads ? o->threads : 4;
	struct rs *s = calloc(1, sizeof(*s) + (nthreads + 1) * sizeof(struct row));
	if (!s)
		return -ENOMEM;
	memcpy(s->prefix, o->prefix, plen);
	s->plen = plen;
	s->nthreads = nthreads;
	s->pid = getpid();
	s->ctv = tv_ms(o->connect_timeout_ms ? o->connect_timeout_ms : 1000);
	s->ttv = tv_ms(o->command_timeout_ms ? o->command_timeout_ms : 5000);
	s->retry_ms = o->retry_timeout_ms;
	s->wait_n = o->wait_replicas;
	s->wait_ms = o->wait_timeout_ms ? o->wait_timeout_ms : 5000;
	uf__rc_map_init(&s->map);
	pthread_mutex_init(&s->other_mu, NULL);
	pthread_mutex_init(&s->err_mu, NULL);
	int e = 0;
	bool said = false;
	s->user = dup_or_null(o->user, &e);
	s->password = dup_or_null(o->password, &e);
	/* Seeds: comma-separated. */
	for (const char *p = o->seeds; !e;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		/* An empty piece (",", a trailing comma) is a bad address, and
		 * so is an IPv6 address without its brackets ("::1:6379"). */
		if (s->nseeds == RS_MAX_SEEDS || uf__rc_parse_addr(p, len, &s->seeds[s->nseeds]) ||
		    (p[0] != '[' && strchr(s->seeds[s->nseeds].host, ':') && p[0] != '/')) {
			say(eb, el, "bad seed address \"%.*s\" (host:port or /unix/path, at most %d)",
			    (int)len, p, RS_MAX_SEEDS);
			e = -EINVAL;
			said = true;
			break;
		}
		s->nseeds++;
		if (!c)
			break;
		p = c + 1;
	}
	if (!e && !s->nseeds)
		e = -EINVAL;
	if (!e)
		e = discover(s);
	if (!e)
		e = meta(s, o->size, o->block_size, !(o->flags & UF_STORE_RDONLY));
	if (e) {
		if (!said)
			say(eb, el, "%s", s->err[0] ? s->err : uf_strerror(e));
		rs_free(s);
		return e;
	}
	struct uf_store_ops ops = {.struct_size = sizeof(ops),
				   .read = rs_read,
				   .write = (o->flags & UF_STORE_RDONLY) ? NULL : rs_write,
				   .writev = (o->flags & UF_STORE_RDONLY) ? NULL : rs_writev,
				   .flush = rs_flush,
				   .close = rs_close,
				   .flags = UF_STORE_NOT_SIGSAFE,
				   .threads = nthreads};
	e = uf_store_new(&ops, s, s->size, out);
	if (e) {
		say(eb, el, "%s", uf_strerror(e));
		rs_free(s);
		return e;
	}
	(*out)->fast_read = rs_fast_read; /* before any region can read */
	(*out)->fills = true; /* a read fills every block (or zeros a hole) or fails */
	(*out)->unit = s->bs; /* one key per block: reads are whole keys */
	return 0;
}

#endif /* UF_HAVE_HIREDIS */

/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster.c - Redis Cluster routing: CRC16 key slots with {hash tags},
 * the slot map from CLUSTER SLOTS, MOVED/ASK redirections. Debian 12 has
 * no C cluster client, so this is ours; the Redis store (store_redis.c)
 * does the I/O and calls these on store threads.
 */
#ifdef UF_HAVE_HIREDIS
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_cluster.h"

/* Bitwise CRC16-CCITT, polynomial 0x1021, initial 0, no reflection
 * (XMODEM). A key is short: a table buys nothing next to a round trip. */
uint16_t uf__rc_crc16(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned uf__rc_key_slot(const char *key, size_t len)
{
	/* The spec: the first '{', then the first '}' after it; a tag is used
	 * only if non-empty. */
	const char *o = memchr(key, '{', len);
	if (o) {
		size_t rest = len - (size_t)(o + 1 - key);
		const char *c = memchr(o + 1, '}', rest);
		if (c && c > o + 1)
			return uf__rc_crc16(o + 1, (size_t)(c - o - 1)) & (RC_SLOTS - 1);
	}
	return uf__rc_crc16(key, len) & (RC_SLOTS - 1);
}

void uf__rc_map_init(struct rc_map *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
}

void uf__rc_map_fini(struct rc_map *m) { pthread_mutex_destroy(&m->mu); }

int uf__rc_parse_addr(const char *s, size_t len, struct rc_node *n)
{
	memset(n, 0, sizeof(*n));
	if (len == 0 || len >= sizeof(n->host))
		return -EINVAL;
	if (s[0] == '/') {
		memcpy(n->host, s, len);
		return 0;
	}
	const char *colon = NULL;
	for (size_t i = len; i-- > 0;)
		if (s[i] == ':') {
			colon = s + i;
			break;
		}
	if (!colon || colon == s || colon + 1 == s + len)
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	int port = 0;
	for (const char *p = colon + 1; p < s + len; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return -EINVAL;
		port = port * 10 + (*p - '0');
	}
	if (port <= 0 || port > 65535 || hl == 0)
		return -EINVAL;
	/* A host name or address: no stray bracket ("[::1:6379"), no space
	 * or control byte. */
	for (size_t i = 0; i < hl; i++)
		if (h[i] == '[' || h[i] == ']' || (unsigned char)h[i] <= ' ')
			return -EINVAL;
	memcpy(n->host, h, hl);
	n->port = port;
	return 0;
}

/* Under m->mu. */
static int node_locked(struct rc_map *m, const char *host, int port)
{
	for (unsigned i = 0; i < m->nnodes; i++)
		if (m->nodes[i].port == port && !strcmp(m->nodes[i].host, host))
			return (int)i;
	if (m->nnodes == RC_MAX_NODES || strlen(host) >= sizeof(m->nodes[0].host))
		return -ENOSPC;
	struct rc_node *n = &m->nodes[m->nnodes];
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->port = port;
	return (int)m->nnodes++;
}

int uf__rc_node(struct rc_map *m, const char *host, int port)
{
	pthread_mutex_lock(&m->mu);
	int i = node_locked(m, host, port);
	pthread_mutex_unlock(&m->mu);
	return i;
}

int uf__rc_slot_node(struct rc_map *m, unsigned slot)
{
	pthread_mutex_lock(&m->mu);
	int i = m->cluster ? m->slot_node[slot & (RC_SLOTS - 1)] : 0;
	pthread_mutex_unlock(&m->mu);
	return i;
}

static bool is_int(const redisReply *r) { return r && r->type == REDIS_REPLY_INTEGER; }

int uf__rc_apply_slots(struct rc_map *m, const redisReply *r, int from)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		return -EPROTO;
	/* Check the whole reply before changing anything. */
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
		    !is_int(e->element[1]))
			return -EPROTO;
		long long a = e->element[0]->integer, b = e->element[1]->integer;
		const redisReply *n = e->element[2];
		if (a < 0 || b < a || b >= RC_SLOTS || n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
		    n->element[0]->type != REDIS_REPLY_STRING || !is_int(n->element[1]) ||
		    n->element[0]->len >= sizeof(m->nodes[0].host))
			return -EPROTO;
	}
	pthread_mutex_lock(&m->mu);
	uint8_t slots[RC_SLOTS];
	memcpy(slots, m->slot_node, sizeof(slots));
	int err = 0;
	for (size_t i = 0; i < r->elements && !err; i++) {
		const redisReply *e = r->element[i];
		const redisReply *n = e->element[2];
		/* An empty address means "the node you asked". */
		const char *host = n->element[0]->len ? n->element[0]->str : m->nodes[from].host;
		int idx = node_locked(m, host, (int)n->element[1]->integer);
		if (idx < 0) {
			err = idx;
			break;
		}
		for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
			slots[s] = (uint8_t)idx;
	}
	if (!err) {
		memcpy(m->slot_node, slots, sizeof(slots));
		m->cluster = true;
		m->epoch++;
	}
	pthread_mutex_unlock(&m->mu);
	return err;
}

int uf__rc_parse_redirect(const char *err, size_t len, struct rc_redirect *out)
{
	bool ask;
	size_t skip;
	if (len > 6 && !memcmp(err, "MOVED ", 6)) {
		ask = false;
		skip = 6;
	} else if (len > 4 && !memcmp(err, "ASK ", 4)) {
		ask = true;
		skip = 4;
	} else {
		return 0;
	}
	const char *p = err + skip, *end = err + len;
	unsigned slot = 0;
	const char *q = p;
	for (; q < end && *q >= '0' && *q <= '9'; q++)
		slot = slot * 10 + (unsigned)(*q - '0');
	if (q == p || q >= end || *q != ' ' || slot >= RC_SLOTS)
		return 0;
	q++;
	if (uf__rc_parse_addr(q, (size_t)(end - q), &out->to))
		return 0;
	out->ask = ask;
	out->slot = slot;
	return 1;
}

int uf__rc_moved(struct rc_map *m, const struct rc_redirect *rd)
{
	pthread_mutex_lock(&m->mu);
	int idx = node_locked(m, rd->to.host, rd->to.port);
	if (idx >= 0 && m->cluster) {
		m->slot_node[rd->slot] = (uint8_t)idx;
		m->epoch++;
	}
	pthread_mutex_unlock(&m->mu);
	return idx;
}
#endif /* UF_HAVE_HIREDIS */

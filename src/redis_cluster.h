/* SPDX-License-Identifier: MIT */
/* redis_cluster.h - Redis Cluster routing for the Redis store: key slots,
 * the slot -> node map, redirections. Internal; built with hiredis only. */
#ifndef UF_REDIS_CLUSTER_H
#define UF_REDIS_CLUSTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RC_SLOTS 16384
#define RC_MAX_NODES 64

struct rc_node {
	char host[108]; /* host name / address, or a unix socket path (port 0) */
	int port;
};

/*
 * Which node serves which slot. Nodes are only ever added (their index is
 * where the store keeps each thread's connection to them); a node that
 * left the cluster keeps its index and simply serves no slot. All calls
 * take mu: they run on store threads or at open, never in signal context.
 */
struct rc_map {
	pthread_mutex_t mu;
	bool cluster; /* false: one standalone server, node 0, every slot */
	unsigned nnodes;
	struct rc_node nodes[RC_MAX_NODES];
	uint8_t slot_node[RC_SLOTS];
	uint64_t epoch; /* bumped by every change */
};

/* CRC16-CCITT (XMODEM), as the Redis Cluster specification defines it. */
uint16_t uf__rc_crc16(const void *buf, size_t len);
/* The hash slot of a key: of its {hash tag} if it has a non-empty one. */
unsigned uf__rc_key_slot(const char *key, size_t len);

void uf__rc_map_init(struct rc_map *m);
void uf__rc_map_fini(struct rc_map *m);
/* The index of node host:port, added if new; -ENOSPC past RC_MAX_NODES. */
int uf__rc_node(struct rc_map *m, const char *host, int port);
/* Parses "host:port", "[v6]:port" or "/unix/path" into n. -EINVAL if bad. */
int uf__rc_parse_addr(const char *s, size_t len, struct rc_node *n);
/* The node serving slot. */
int uf__rc_slot_node(struct rc_map *m, unsigned slot);
/* Applies a CLUSTER SLOTS reply got from node from (whose host stands in
 * for an empty address in the reply). 0, or -EPROTO for a malformed reply
 * (map unchanged), -ENOSPC for too many nodes. */
int uf__rc_apply_slots(struct rc_map *m, const redisReply *r, int from);

/* A redirection parsed from an error reply. */
struct rc_redirect {
	bool ask; /* ASK: this one command, after ASKING; MOVED: the map changed */
	unsigned slot;
	struct rc_node to;
};
/* 1 and *out if err ("MOVED 3999 127.0.0.1:6381" / "ASK ...") is a
 * redirection, 0 if it is another error. */
int uf__rc_parse_redirect(const char *err, size_t len, struct rc_redirect *out);
/* MOVED: slot now lives at to (the map learns it at once). Returns the
 * node index or a negative errno. */
int uf__rc_moved(struct rc_map *m, const struct rc_redirect *rd);

#endif

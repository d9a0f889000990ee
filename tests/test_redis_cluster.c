/* SPDX-License-Identifier: MIT */
/* Redis Cluster routing (src/redis_cluster.c, compiled in): CRC16 and key
 * slots against the values of the Redis Cluster specification and the
 * CLUSTER KEYSLOT documentation, hash tags, addresses, MOVED/ASK parsing,
 * and the slot map built from a CLUSTER SLOTS reply (test_redis_cluster_store
 * checks the same against a live cluster). No server needed. */
#include "harness.h"

#ifndef UF_HAVE_HIREDIS
int main(void)
{
	SKIP("libuserfault built without hiredis (Debian: libhiredis-dev, pkg-config)");
}
#else
#include "redis_cluster.c"

static unsigned slot(const char *k) { return uf__rc_key_slot(k, strlen(k)); }

static redisReply *rstr(const char *s)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_STRING;
	r->str = (char *)s;
	r->len = strlen(s);
	return r;
}
static redisReply *rnum(long long v)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_INTEGER;
	r->integer = v;
	return r;
}
static redisReply *rarr(size_t n, redisReply **e)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = calloc(n, sizeof(*e));
	memcpy(r->element, e, n * sizeof(*e));
	return r;
}
/* [start, end, [host, port, id]] */
static redisReply *range(long long a, long long b, const char *host, int port)
{
	redisReply *node = rarr(3, (redisReply *[]){rstr(host), rnum(port), rstr("id")});
	return rarr(3, (redisReply *[]){rnum(a), rnum(b), node});
}

int main(void)
{
	test_init(10);
	/* the spec's check value of CRC16-CCITT (XMODEM) */
	ASSERT_EQ(uf__rc_crc16("123456789", 9), 0x31C3);
	ASSERT_EQ(uf__rc_crc16("", 0), 0);
	/* CLUSTER KEYSLOT examples */
	ASSERT_EQ(slot("somekey"), 11058);
	ASSERT_EQ(slot("foo{hash_tag}"), 2515);
	ASSERT_EQ(slot("bar{hash_tag}"), 2515);
	ASSERT_EQ(slot("foo"), 12182);
	/* hash tags: the first {, the first } after it, only if non-empty */
	ASSERT_EQ(slot("{user1000}.following"), slot("{user1000}.followers"));
	ASSERT_EQ(slot("{user1000}.following"), slot("user1000"));
	ASSERT_EQ(slot("foo{}{bar}"), uf__rc_crc16("foo{}{bar}", 10) & 16383);
	ASSERT_EQ(slot("foo{{bar}}zap"), slot("{bar"));
	ASSERT_EQ(slot("foo{bar}{zap}"), slot("bar"));
	ASSERT_EQ(slot("{"), uf__rc_crc16("{", 1) & 16383);

	struct rc_node n;
	ASSERT_OK(uf__rc_parse_addr("127.0.0.1:7000", 14, &n));
	ASSERT(!strcmp(n.host, "127.0.0.1") && n.port == 7000);
	ASSERT_OK(uf__rc_parse_addr("[::1]:6379", 10, &n));
	ASSERT(!strcmp(n.host, "::1") && n.port == 6379);
	ASSERT_OK(uf__rc_parse_addr("/run/redis.sock", 15, &n));
	ASSERT(!strcmp(n.host, "/run/redis.sock") && n.port == 0);
	ASSERT_EQ(uf__rc_parse_addr("host", 4, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr("host:", 5, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr(":80", 3, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr("h:99999", 7, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr("h:8x", 4, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr("[::1:6379", 9, &n), -EINVAL); /* unclosed bracket */
	ASSERT_EQ(uf__rc_parse_addr("::1]:6379", 9, &n), -EINVAL);
	ASSERT_EQ(uf__rc_parse_addr("a b:6379", 8, &n), -EINVAL);

	struct rc_redirect rd;
	const char *mv = "MOVED 3999 127.0.0.1:6381";
	ASSERT_EQ(uf__rc_parse_redirect(mv, strlen(mv), &rd), 1);
	ASSERT(!rd.ask && rd.slot == 3999 && rd.to.port == 6381 && !strcmp(rd.to.host, "127.0.0.1"));
	const char *ask = "ASK 16383 10.0.0.2:7002";
	ASSERT_EQ(uf__rc_parse_redirect(ask, strlen(ask), &rd), 1);
	ASSERT(rd.ask && rd.slot == 16383 && rd.to.port == 7002);
	const char *bad[] = {"MOVED 16384 h:1", "MOVED x h:1", "MOVED 12 h", "WRONGTYPE Operation", "ASK"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(uf__rc_parse_redirect(bad[i], strlen(bad[i]), &rd), 0);

	/* the map from CLUSTER SLOTS; an empty host is the node asked */
	struct rc_map m;
	uf__rc_map_init(&m);
	ASSERT_EQ(uf__rc_node(&m, "seed", 1), 0);
	redisReply *slots = rarr(3, (redisReply *[]){range(0, 5460, "127.0.0.1", 7000),
						  range(5461, 10922, "", 7001),
						  range(10923, 16383, "127.0.0.1", 7002)});
	ASSERT_OK(uf__rc_apply_slots(&m, slots, 0));
	ASSERT(m.cluster);
	ASSERT_EQ(m.nnodes, 4);
	int a = uf__rc_slot_node(&m, 0), b = uf__rc_slot_node(&m, 5461), c = uf__rc_slot_node(&m, 16383);
	ASSERT(!strcmp(m.nodes[a].host, "127.0.0.1") && m.nodes[a].port == 7000);
	ASSERT(!strcmp(m.nodes[b].host, "seed") && m.nodes[b].port == 7001);
	ASSERT_EQ(m.nodes[c].port, 7002);
	ASSERT_EQ(uf__rc_slot_node(&m, 5460), a);
	/* MOVED updates one slot at once */
	ASSERT_EQ(uf__rc_parse_redirect(mv, strlen(mv), &rd), 1);
	int d = uf__rc_moved(&m, &rd);
	ASSERT_GE(d, 0);
	ASSERT_EQ(uf__rc_slot_node(&m, 3999), d);
	ASSERT_EQ(uf__rc_slot_node(&m, 3998), a);
	ASSERT_EQ(uf__rc_node(&m, "127.0.0.1", 6381), d); /* known nodes keep their index */
	/* a malformed reply changes nothing */
	uint64_t epoch = m.epoch;
	redisReply *broken = rarr(1, (redisReply *[]){range(10, 5, "h", 1)});
	ASSERT_EQ(uf__rc_apply_slots(&m, broken, 0), -EPROTO);
	ASSERT_EQ(uf__rc_apply_slots(&m, rstr("x"), 0), -EPROTO);
	ASSERT_EQ(m.epoch, epoch);
	ASSERT_EQ(uf__rc_slot_node(&m, 3999), d);
	uf__rc_map_fini(&m);
	printf("ok\n");
	return 0;
}
#endif

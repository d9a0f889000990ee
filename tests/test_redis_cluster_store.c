/* SPDX-License-Identifier: MIT */
/* The Redis store against a real cluster of 3 masters with 1 replica each
 * (started here with redis-cli --cluster create, killed at the end): keys
 * spread over the masters and each readable with redis-cli GET on the
 * master that owns its slot, read-back through pipelined prefetch, four
 * threads against a shadow model, a slot migrating (ASK) and moved
 * (MOVED) under the store, and a master killed under a workload:
 * the store follows the failover, and with wait_replicas = 1 no write
 * acknowledged by uf_sync is lost. */
#include <setjmp.h>

#include "common.h"
#include "redis_servers.h"

#define BS 4096
static char seeds[128];
static int first, nsrv = 6;

static uf_store *open_store(const char *prefix, uint64_t size, unsigned wait_n)
{
	struct uf_redis_opts o;
	uf_redis_opts_init(&o);
	o.seeds = seeds;
	o.prefix = prefix;
	o.size = size;
	o.retry_timeout_ms = 15000;
	o.wait_replicas = wait_n;
	o.wait_timeout_ms = 1000;
	return rs_must_store(&o);
}

static uf_region *map(uf_store *s, size_t budget)
{
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, (size_t)uf_store_size(s), PROT_READ | PROT_WRITE, &o, &r));
	return r;
}

static void fill_block(unsigned char *p, uint64_t blk)
{
	for (size_t j = 0; j < BS; j++)
		p[j] = pattern_byte(blk * BS + j) | 1;
}

static void spread_and_readback(void)
{
	size_t nblk = 384, size = nblk * BS;
	uf_store *s = open_store("c1", size, 0);
	uf_region *r = map(s, 32 * BS);
	unsigned char *p = uf_region_addr(r);
	for (size_t b = 0; b < nblk; b++)
		fill_block(p + b * BS, b);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_GT(stats_of(r).evictions, 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));

	/* every master holds some blocks; each block is on exactly the master
	 * that owns its slot (the others answer MOVED) */
	int masters[8];
	ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
	char out[BS + 256];
	long total = 0;
	for (int m = 0; m < 3; m++) {
		rs_sh(out, sizeof(out), "redis-cli -p %d DBSIZE", masters[m]);
		long n = atol(out);
		ASSERT_GT(n, 50);
		total += n;
	}
	ASSERT_EQ(total, (long)nblk + 1);
	unsigned char want[BS];
	for (uint64_t b = 0; b < nblk; b += 37) {
		fill_block(want, b);
		int holders = 0;
		for (int m = 0; m < 3; m++) {
			size_t n = rs_sh(out, sizeof(out), "redis-cli -p %d --raw GET c1:%llu", masters[m],
					 (unsigned long long)b);
			if (n == BS + 1 && !memcmp(out, want, BS))
				holders++;
			else
				ASSERT(strstr(out, "MOVED"));
		}
		ASSERT_EQ(holders, 1);
	}

	/* read back through a new store, prefetching 64 blocks a pipeline */
	s = open_store("c1", 0, 0);
	r = map(s, 0);
	p = uf_region_addr(r);
	ASSERT_OK(uf_prefetch(r, p, 64 * BS));
	for (size_t b = 0; b < nblk; b++) {
		fill_block(want, b);
		if (memcmp(p + b * BS, want, BS))
			FAIL("block %zu differs after reopening", b);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("spread + read-back ok\n");
}

/* Batched write-back on a cluster: one uf_sync of scattered dirty blocks,
 * no budget (so no eviction writes them one by one), pipelined per
 * master; every block lands on exactly the master owning its slot. */
static void batched(void)
{
	size_t nblk = 600, size = nblk * BS;
	uf_store *s = open_store("cb", size, 0);
	uf_region *r = map(s, 0);
	unsigned char *p = uf_region_addr(r);
	size_t ndirty = 0;
	for (size_t b = 0; b < nblk; b++)
		if (b % 2 == 0 || (b > 300 && b < 340)) {
			fill_block(p + b * BS, b);
			ndirty++;
		}
	ASSERT_EQ(stats_of(r).dirty, ndirty);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_EQ(stats_of(r).writebacks, ndirty);
	ASSERT_EQ(stats_of(r).evictions, 0);
	int masters[8];
	ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
	char out[BS + 256];
	unsigned char want[BS];
	for (uint64_t b = 0; b < nblk; b += 13) {
		bool written = b % 2 == 0 || (b > 300 && b < 340);
		int holders = 0;
		fill_block(want, b);
		for (int m = 0; m < 3; m++) {
			size_t n = rs_sh(out, sizeof(out), "redis-cli -p %d --raw GET cb:%llu", masters[m],
					 (unsigned long long)b);
			if (n == BS + 1 && !memcmp(out, want, BS))
				holders++;
			else if (!strstr(out, "MOVED"))
				ASSERT(!written && n <= 1); /* its master: no key */
		}
		ASSERT_EQ(holders, written ? 1 : 0);
	}
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	printf("batched write-back ok\n");
}

/* Which of the masters (ports[]) owns slot, from CLUSTER NODES: a line
 * per node, "<id> <ip:port@cport> <flags> ... <state> <ranges...>". */
static int owner_of(int slot, const int *ports, int n)
{
	char out[8192];
	rs_sh(out, sizeof(out), "redis-cli -p %d cluster nodes 2>&1", ports[0]);
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		char *colon = strchr(l, ':');
		if (!colon || !strstr(l, "master"))
			continue;
		int port = atoi(colon + 1), f = 0;
		for (char *t = l; (t = strchr(t, ' ')); ) {
			t++;
			if (++f < 8 || *t < '0' || *t > '9')
				continue; /* ranges are the 9th field on */
			char *e;
			long lo = strtol(t, &e, 10), hi = *e == '-' ? strtol(e + 1, NULL, 10) : lo;
			if (slot >= lo && slot <= hi)
				for (int i = 0; i < n; i++)
					if (ports[i] == port)
						return i;
		}
	}
	return -1;
}

static void node_id(int port, char *id, size_t cap)
{
	rs_sh(id, cap, "redis-cli -p %d cluster myid 2>&1", port);
	id[strcspn(id, "\r\n")] = 0;
	ASSERT_EQ(strlen(id), 40);
}

/* A new store of nblk blocks, each written with fill_block and synced. */
static uf_store *filled_store(const char *prefix, size_t nblk)
{
	uf_store *s = open_store(prefix, nblk * BS, 0);
	uf_region *r = map(s, 0);
	unsigned char *p = uf_region_addr(r);
	for (size_t b = 0; b < nblk; b++)
		fill_block(p + b * BS, b);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_OK(uf_unmap(r, 0));
	return s;
}

/* Moves the key of block b (prefix p) to the master on port dst: its slot
 * IMPORTING there, MIGRATING on its owner, MIGRATE; with done, the slot is
 * then given to dst on every master (SETSLOT NODE). Returns the slot. */
static int move_key(const char *p, uint64_t b, const int *masters, int dst, bool done)
{
	char out[512], src_id[64], dst_id[64];
	rs_sh(out, sizeof(out), "redis-cli -p %d cluster keyslot %s:%llu", masters[0], p, (unsigned long long)b);
	int slot = atoi(out), src = masters[owner_of(slot, masters, 3)];
	ASSERT(src != dst);
	node_id(src, src_id, sizeof(src_id));
	node_id(dst, dst_id, sizeof(dst_id));
	rs_sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d importing %s", dst, slot, src_id);
	ASSERT(!strncmp(out, "OK", 2));
	rs_sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d migrating %s", src, slot, dst_id);
	ASSERT(!strncmp(out, "OK", 2));
	rs_sh(out, sizeof(out), "redis-cli -p %d migrate 127.0.0.1 %d %s:%llu 0 5000", src, dst, p,
	      (unsigned long long)b);
	ASSERT(!strncmp(out, "OK", 2));
	for (int m = 0; done && m < 3; m++) {
		rs_sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d node %s", masters[m], slot, dst_id);
		ASSERT(!strncmp(out, "OK", 2));
	}
	return slot;
}

/*
 * A slot in migration: block X's key is moved (MIGRATE) from its master to
 * another one while the slot is MIGRATING there and IMPORTING here, so the
 * old master answers ASK for it. A pipelined read of the whole region
 * (plain GETs, X redirected with ASKING) reads every block, X's value from
 * its new master; a write-back of X goes there too (ASK on SET). Then the
 * migration ends (SETSLOT NODE): the store's map is stale (MOVED), and a
 * new store reads what was written.
 */
static void migrating(void)
{
	size_t nblk = 64, size = nblk * BS;
	uint64_t X = 21;
	uf_store *s = filled_store("cm", nblk);
	uf_region *r;
	unsigned char *p;

	int masters[8];
	ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
	char out[512], dst_id[64];
	rs_sh(out, sizeof(out), "redis-cli -p %d cluster keyslot cm:%llu", masters[0], (unsigned long long)X);
	int si = owner_of(atoi(out), masters, 3);
	ASSERT(si >= 0);
	int src = masters[si], dst = masters[(si + 1) % 3];
	int slot = move_key("cm", X, masters, dst, false);
	node_id(dst, dst_id, sizeof(dst_id));
	rs_sh(out, sizeof(out), "redis-cli -p %d exists cm:%llu", src, (unsigned long long)X);
	ASSERT_EQ(atoi(out), 0); /* the key lives on dst now: src says ASK */

	r = map(s, 0);
	p = uf_region_addr(r);
	unsigned char want[BS];
	for (size_t b = 0; b < nblk; b++) { /* sequential: pipelined windows */
		fill_block(want, b);
		if (memcmp(p + b * BS, want, BS))
			FAIL("block %zu reads wrong bytes with slot %d migrating", b, slot);
	}
	memset(p + X * BS, 0x5A, BS); /* written back through ASK */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_OK(uf_unmap(r, 0));
	rs_sh(out, sizeof(out), "redis-cli -p %d exists cm:%llu", src, (unsigned long long)X);
	ASSERT_EQ(atoi(out), 0);

	for (int m = 0; m < 3; m++) {
		rs_sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d node %s", masters[m], slot, dst_id);
		ASSERT(!strncmp(out, "OK", 2));
	}
	rs_sh(out, sizeof(out), "redis-cli -p %d strlen cm:%llu", dst, (unsigned long long)X);
	ASSERT_EQ(atoi(out), BS);
	r = map(s, 0); /* the old store: its map says src, which says MOVED */
	p = uf_region_addr(r);
	for (size_t i = 0; i < BS; i++)
		ASSERT_EQ(p[X * BS + i], 0x5A);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	s = open_store("cm", size, 0);
	r = map(s, 0);
	p = uf_region_addr(r);
	for (size_t b = 0; b < nblk; b++) {
		fill_block(want, b);
		if (b == X)
			memset(want, 0x5A, BS);
		if (memcmp(p + b * BS, want, BS))
			FAIL("block %zu reads wrong bytes after slot %d moved", b, slot);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("slot %d migrating from :%d to :%d (ASK), then moved (MOVED) ok\n", slot, src, dst);
}

/*
 * Redirections of both kinds in one pipelined read, to one master: block Y's
 * slot moved to it after the store read the map (MOVED), block X's slot is
 * migrating to it with X's key moved (ASK), Y < X. The second round sends
 * both there: Y as a plain GET whose reply the store parses itself, X as
 * ASKING + GET through hiredis, on the same connection, so the bytes the
 * first read past its reply go to hiredis. Every block reads its bytes.
 */
static void mixed_redirects(void)
{
	size_t nblk = 64;
	uf_store *s = filled_store("cx", nblk);
	uf_region *r;
	unsigned char *p;
	int masters[8];
	ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
	/* dst: the owner of block 0's slot; Y, X: the first two blocks after
	 * it owned elsewhere, in different slots */
	char out[64];
	int own[64], slot[64];
	for (size_t b = 0; b < nblk; b++) {
		rs_sh(out, sizeof(out), "redis-cli -p %d cluster keyslot cx:%zu", masters[0], b);
		slot[b] = atoi(out);
		own[b] = owner_of(slot[b], masters, 3);
	}
	int dst = own[0];
	uint64_t Y = 0, X = 0;
	for (size_t b = 1; b < nblk && !X; b++)
		if (own[b] != dst && !Y)
			Y = b;
		else if (own[b] != dst && Y && slot[b] != slot[Y])
			X = b;
	ASSERT(Y && X);
	int sy = move_key("cx", Y, masters, masters[dst], true);
	int sx = move_key("cx", X, masters, masters[dst], false);
	r = map(s, 0); /* the store's map still has Y's slot on its old master */
	p = uf_region_addr(r);
	unsigned char want[BS];
	for (size_t b = 0; b < nblk; b++) {
		fill_block(want, b);
		if (memcmp(p + b * BS, want, BS))
			FAIL("block %zu reads wrong bytes (Y %llu MOVED, X %llu ASK)", b, (unsigned long long)Y,
			     (unsigned long long)X);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	char dst_id[64], o2[64];
	node_id(masters[dst], dst_id, sizeof(dst_id));
	for (int m = 0; m < 3; m++) { /* end X's migration */
		rs_sh(o2, sizeof(o2), "redis-cli -p %d cluster setslot %d node %s", masters[m], sx, dst_id);
		ASSERT(!strncmp(o2, "OK", 2));
	}
	printf("MOVED (block %llu, slot %d) and ASK (block %llu, slot %d) in one read ok\n",
	       (unsigned long long)Y, sy, (unsigned long long)X, sx);
}

static void threads(void)
{
	size_t size = 128 * BS;
	uf_store *s = open_store("c2", size, 0);
	uf_region *r = map(s, 12 * BS);
	uint64_t *shadow = rs_shadow_threads(uf_region_addr(r), size, 4, 3000);
	ASSERT_GT(stats_of(r).evictions, 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	s = open_store("c2", 0, 0);
	r = map(s, 0);
	ASSERT_EQ(memcmp(uf_region_addr(r), shadow, size), 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(shadow);
	printf("threads ok\n");
}

/*
 * Rounds of writes, each followed by uf_sync with WAIT 1. A word's value
 * is (round << 32 | word): after any failure, a word must hold a round at
 * least the one of the last sync that succeeded after writing it. A master
 * is killed after round 3's writes (before its sync); its replica takes
 * over, syncs fail until the killed server is back (as a replica, so WAIT
 * 1 can be met again), then succeed.
 */
static void failover(void)
{
	size_t nblk = 96, size = nblk * BS, nwords = size / 8;
	uf_store *s = open_store("c3", size, 1);
	uf_region *r = map(s, 16 * BS);
	volatile uint64_t *w = uf_region_addr(r);
	uint32_t *acked = calloc(nwords, 4), *written = calloc(nwords, 4);
	uint64_t sd = 99;
	int victim = -1, ok_after = 0, failed_syncs = 0;
	for (uint32_t round = 1; round <= 14; round++) {
		for (int i = 0; i < 200; i++) {
			size_t k = xorshift64(&sd) % nwords;
			uint64_t v = w[k];
			if (v && ((v & 0xffffffffu) != k || (v >> 32) < acked[k]))
				FAIL("round %u word %zu: %llx, acknowledged round %u", round, k,
				     (unsigned long long)v, acked[k]);
			w[k] = (uint64_t)round << 32 | k;
			written[k] = round;
		}
		if (round == 3) {
			int masters[8];
			ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
			for (int i = first; i < first + nsrv; i++)
				if (rs_srv[i].port == masters[1])
					victim = i;
			rs_stop(victim);
		}
		if (round == 8) {
			/* the victim's replica was promoted: three masters again */
			int masters[8], t = 0;
			while (rs_masters(first, nsrv, masters) != 3 && t++ < 100)
				rs_msleep(50);
			ASSERT_EQ(rs_masters(first, nsrv, masters), 3);
			rs_spawn(victim); /* rejoins as a replica of its successor */
		}
		int e = uf_sync(r, NULL, 0);
		if (e == 0) {
			for (size_t k = 0; k < nwords; k++)
				if (written[k])
					acked[k] = written[k];
			if (round > 8)
				ok_after++;
		} else {
			failed_syncs++;
			ASSERT_LT(round, 14); /* the last syncs must succeed again */
		}
	}
	ASSERT_GT(ok_after, 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	/* a new store sees every acknowledged write */
	s = open_store("c3", 0, 0);
	r = map(s, 0);
	w = uf_region_addr(r);
	for (size_t k = 0; k < nwords; k++) {
		uint64_t v = w[k];
		if (acked[k] && ((v & 0xffffffffu) != k || (v >> 32) < acked[k]))
			FAIL("word %zu: %llx, acknowledged round %u lost", k, (unsigned long long)v, acked[k]);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(acked);
	free(written);
	printf("failover ok (%d syncs failed while a master was down)\n", failed_syncs);
}

int main(void)
{
	test_init(110);
	rs_init();
	first = rs_cluster(3);
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%d,127.0.0.1:%d", rs_srv[first].port,
		 rs_srv[first + 1].port);
	spread_and_readback();
	batched();
	migrating();
	mixed_redirects();
	threads();
	failover();
	printf("ok\n");
	return 0;
}

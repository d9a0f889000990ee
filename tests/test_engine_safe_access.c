/* SPDX-License-Identifier: MIT */
/*
 * test_engine_safe_access.c - fault-safe access inside a userfault region
 * (run once per engine): the region's pager serves the fault raised inside
 * the copy routine and the copy succeeds; a write into a read-only region or
 * past the store fails with -EFAULT instead of killing the process, also
 * where the fault does not say whether it was a read or a write
 * (qemu-user), and reads that race with a block's load still succeed.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"

static void test_reads_and_writes_load_blocks(void)
{
	size_t ps = page_size();
	struct fixture fx;
	fixture_open(&fx, 64 * ps, 0, 0, PROT_READ | PROT_WRITE);
	unsigned char *buf = malloc(64 * ps);
	ASSERT(buf);
	/* Nothing is loaded yet: every page faults inside the copy routine. */
	ASSERT_EQ(uf_try_read(buf, fx.p + 100, 20 * ps), 0);
	ASSERT(memcmp(buf, fx.buf + 100, 20 * ps) == 0);
	/* Small copies straddling unloaded pages. */
	for (size_t i = 1; i < 8; i++) {
		size_t off = (20 + 3 * i) * ps - 5;
		ASSERT_EQ(uf_try_read(buf, fx.p + off, 10 + i), 0);
		ASSERT(memcmp(buf, fx.buf + off, 10 + i) == 0);
	}
	ASSERT_EQ(uf_probe(fx.p + 50 * ps, 5 * ps, UF_PROBE_READ), 0);
	ASSERT_EQ(uf_probe(fx.p + 56 * ps, 2 * ps, UF_PROBE_READ | UF_PROBE_WRITE), 0);
	/* The write probe changed nothing. */
	ASSERT(memcmp(fx.p + 56 * ps, fx.buf + 56 * ps, 2 * ps) == 0);
	/* A write lands in the region and is what a plain read sees. */
	memset(buf, 0xA5, 3 * ps);
	ASSERT_EQ(uf_try_write(fx.p + 60 * ps + 7, buf, 3 * ps - 7), 0);
	for (size_t i = 60 * ps + 7; i < 63 * ps; i++)
		ASSERT_EQ(fx.p[i], 0xA5);
	fixture_close(&fx, UF_UNMAP_DISCARD);
	free(buf);
}

struct reader {
	const unsigned char *p, *want;
	size_t len;
	int err;
};
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	unsigned char b[512];
	for (size_t off = 0; off + sizeof(b) <= rd->len; off += 1531) {
		int r = uf_try_read(b, rd->p + off, sizeof(b));
		if (r || memcmp(b, rd->want + off, sizeof(b))) {
			rd->err = r ? r : -EIO;
			break;
		}
	}
	return NULL;
}

static void test_threads_read_unloaded_blocks(void)
{
	size_t ps = page_size();
	struct fixture fx;
	fixture_open(&fx, 256 * ps, 4 * ps, 64 * ps, PROT_READ);
	struct reader rd[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){fx.p, fx.buf, fx.size, 0};
		ASSERT_EQ(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ASSERT_OK(rd[i].err);
	}
	fixture_close(&fx, 0);
}

/* Threads that fault on the same unloaded block at once: one loads it
 * (slowly), the others wait and then find it mapped. Where the fault's
 * access type is unknown (qemu-user), a fault that finds the block mapped
 * is a read that raced with the load or a write, and a read must not
 * fail. */
static const unsigned char *g_slow_src;
static int slow_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	struct timespec ts = {0, 1000000}; /* 1 ms: the others fault meanwhile */
	while (nanosleep(&ts, &ts) != 0)
		;
	memcpy(dst, g_slow_src + off, len);
	return 0;
}

struct racer {
	const unsigned char *p, *want;
	size_t bs, nblocks;
	pthread_barrier_t *bar;
	int err;
};
static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	for (size_t b = 0; b < rc->nblocks; b++) {
		pthread_barrier_wait(rc->bar);
		/* One byte: a longer copy's fixup finishes byte by byte, and
		 * that second try could hide a first fault wrongly refused. */
		size_t off = b * rc->bs + 64;
		unsigned char x = 0;
		int r = uf_try_read(&x, rc->p + off, 1);
		if (!rc->err && (r || x != rc->want[off]))
			rc->err = r ? r : -EIO;
	}
	return NULL;
}

static void test_threads_race_on_one_block(void)
{
	size_t ps = page_size(), nblocks = 32, size = nblocks * ps;
	unsigned char *want = pattern_buf(size);
	g_slow_src = want;
	struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = slow_read};
	uf_store *st;
	ASSERT_OK(uf_store_new(&ops, NULL, size, &st));
	struct uf_map_opts o = test_map_opts();
	o.flags = UF_MAP_NO_READAHEAD; /* each block its own load */
	uf_region *r;
	ASSERT_OK(uf_map(st, 0, size, PROT_READ, &o, &r));
	pthread_barrier_t bar;
	ASSERT_EQ(pthread_barrier_init(&bar, NULL, 4), 0);
	struct racer rc[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct racer){uf_region_addr(r), want, ps, nblocks, &bar, 0};
		ASSERT_EQ(pthread_create(&th[i], NULL, racer_main, &rc[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ASSERT_OK(rc[i].err);
	}
	pthread_barrier_destroy(&bar);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(st));
	free(want);
}

static void test_write_to_read_only_region_fails(void)
{
	size_t ps = page_size();
	struct fixture fx;
	fixture_open(&fx, 16 * ps, 0, 0, PROT_READ);
	unsigned char b[64] = {0};
	ASSERT_EQ(uf_try_read(b, fx.p + ps, sizeof(b)), 0);
	ASSERT_EQ(uf_try_write(fx.p + ps, b, sizeof(b)), -EFAULT); /* loaded page */
	ASSERT_EQ(uf_try_write(fx.p + 9 * ps, b, sizeof(b)), -EFAULT); /* not loaded */
	ASSERT_EQ(uf_probe(fx.p + 2 * ps, 1, UF_PROBE_WRITE), -EFAULT);
	ASSERT_EQ(uf_probe(fx.p + 2 * ps, ps, UF_PROBE_READ), 0);
	ASSERT(memcmp(fx.p, fx.buf, 16 * ps) == 0);
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(60);
	test_reads_and_writes_load_blocks();
	test_threads_read_unloaded_blocks();
	test_threads_race_on_one_block();
	test_write_to_read_only_region_fails();
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* The fault injector (tests/inject.h) in front of a memory store and a
 * file store: a torn, failed write-back keeps the block dirty and the next
 * sync writes it whole; a read failing at a chosen call number reaches the
 * error callback, whose retry then loads the right bytes; the same seed
 * fails the same calls; switched off, nothing fails. */
#include <fcntl.h>

#include "common.h"
#include "inject.h"

static _Atomic int cb_calls;
static int retry_cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)arg;
	ASSERT_EQ(err, -EIO);
	cb_calls++;
	return UF_ERR_RETRY;
}

static void check_store(uf_store *inner, const unsigned char *want, size_t size)
{
	unsigned char *got = malloc(size);
	ASSERT(got);
	ASSERT_OK(inner->ops.read(inner->ctx, 0, got, size));
	for (size_t i = 0; i < size; i++)
		if (got[i] != want[i])
			FAIL("store byte %zu: %#x, want %#x", i, got[i], want[i]);
	free(got);
}

static void run(uf_store *inner, const char *what)
{
	size_t ps = page_size(), size = (size_t)uf_store_size(inner);
	struct inject j = {.seed = 1, .partial = 1};
	uf_store *s = inject_wrap(&j, inner);
	struct uf_map_opts o = test_map_opts();
	o.on_error = retry_cb;
	o.max_resident = 4 * ps;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);

	/* a read failing at call 1: the callback retries, the bytes are right */
	atomic_store(&j.read_fail_at, 1);
	atomic_store(&j.on, 1);
	ASSERT_EQ(p[3], pattern_byte(3));
	ASSERT_EQ(cb_calls, 1);
	ASSERT_EQ(j.read_fails, 1);

	/* a torn write-back: error, still dirty, the next sync writes it all */
	memset(p + ps, 0x77, ps);
	j.fail_next_writes = 1;
	int e = uf_sync(r, NULL, 0);
	ASSERT_EQ(e, -EIO);
	ASSERT_GE(stats_of(r).dirty, 1);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(stats_of(r).dirty, 0);
	unsigned char *want = malloc(size);
	ASSERT(want);
	for (size_t i = 0; i < size; i++)
		want[i] = pattern_byte(i);
	memset(want + ps, 0x77, ps);
	check_store(inner, want, size);

	/* eviction through a failing write: the data stays (refused or kept) */
	memset(p + 2 * ps, 0x66, ps);
	memset(want + 2 * ps, 0x66, ps);
	j.fail_next_writes = 1;
	e = uf_evict(r, p + 2 * ps, ps);
	ASSERT(e == 0 || e == -EIO);
	ASSERT_EQ(p[2 * ps + 100], 0x66);
	/* every other block through the budget, with writes failing 30 % */
	j.write_fail_ppm = 300000;
	for (size_t b = 3; b < size / ps; b++)
		p[b * ps] = want[b * ps] = (unsigned char)b;
	j.write_fail_ppm = 0;
	atomic_store(&j.on, 0);
	ASSERT_OK(uf_sync(r, NULL, 0));
	check_store(inner, want, size);
	for (size_t i = 0; i < size; i += 61)
		ASSERT_EQ(p[i], want[i]);
	printf("%s: %llu reads, %llu writes, %llu+%llu injected failures\n", what,
	       (unsigned long long)j.reads, (unsigned long long)j.writes,
	       (unsigned long long)j.read_fails, (unsigned long long)j.write_fails);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(want);
	cb_calls = 0;
}

/* Same seed, same call order: the same failures. */
static void determinism(void)
{
	size_t ps = page_size();
	uint64_t pattern[2] = {0, 0};
	for (int round = 0; round < 2; round++) {
		uf_store *inner;
		unsigned char *buf = pattern_store(64 * ps, &inner);
		struct inject j = {.seed = 42, .read_fail_ppm = 250000};
		uf_store *s = inject_wrap(&j, inner);
		atomic_store(&j.on, 1);
		unsigned char tmp[64];
		for (int i = 0; i < 64; i++)
			if (s->ops.read(s->ctx, (uint64_t)i * ps, tmp, sizeof(tmp)))
				pattern[round] |= 1ull << i;
		ASSERT_OK(uf_store_close(s));
		free(buf);
	}
	ASSERT_EQ(pattern[0], pattern[1]);
	ASSERT_NE(pattern[0], 0);
	ASSERT_NE(pattern[0], ~0ull);
}

int main(void)
{
	test_init(60);
	size_t ps = page_size(), size = 16 * ps;
	determinism();

	uf_store *inner;
	unsigned char *buf = pattern_store(size, &inner);
	run(inner, "memory store");
	free(buf);

	char path[] = "/tmp/uf-inject-XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < size; i++) {
		unsigned char c = pattern_byte(i);
		ASSERT_EQ(pwrite(fd, &c, 1, (off_t)i), 1);
	}
	ASSERT_OK(uf_store_file(fd, 0, &inner));
	close(fd);
	run(inner, "file store");
	return 0;
}

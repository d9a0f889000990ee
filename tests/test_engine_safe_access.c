/* SPDX-License-Identifier: MIT */
/*
 * test_engine_safe_access.c - fault-safe access inside a userfault region
 * (run once per engine): the region's pager serves the fault raised inside
 * the copy routine and the copy succeeds; a write into a read-only region or
 * past the store fails with -EFAULT instead of killing the process.
 */
#include <pthread.h>
#include <sys/mman.h>

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

/* Does the kernel tell a write fault from a read fault (x86 error code,
 * aarch64 ESR)? qemu-user does not: it writes no ESR record. */
static int g_access;
static int note_access(const struct uf_fault *f, void *arg)
{
	g_access = f->access;
	return mprotect(arg, page_size(), PROT_READ | PROT_WRITE) ? UF_PASS : UF_HANDLED;
}
static int fault_access_known(void)
{
	void *pg = mmap(NULL, page_size(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(pg != MAP_FAILED);
	uf_area *a;
	ASSERT_OK(uf_area_register(pg, page_size(), note_access, pg, &a));
	*(volatile char *)pg = 1;
	ASSERT_OK(uf_area_unregister(a));
	munmap(pg, page_size());
	return g_access == UF_ACCESS_WRITE;
}

static void test_write_to_read_only_region_fails(void)
{
	size_t ps = page_size();
	struct fixture fx;
	fixture_open(&fx, 16 * ps, 0, 0, PROT_READ);
	if (uf_region_engine(fx.r) == UF_ENGINE_SIGNAL && !fault_access_known()) {
		/* The signal engine cannot tell this write from a read and serves it
		 * forever: a known limitation under qemu-user, not of real kernels. */
		printf("skipped: write into a read-only region (the signal engine needs the "
		       "fault's access type, which this kernel or emulator does not report)\n");
		fixture_close(&fx, 0);
		return;
	}
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
	test_write_to_read_only_region_fails();
	printf("ok\n");
	return 0;
}

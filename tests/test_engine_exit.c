/* SPDX-License-Identifier: MIT */
/* Dirty data at process exit: a child that writes to a region and calls
 * exit() without uf_sync or uf_unmap has its writes in the store; one whose
 * store refuses them is told on stderr. With uf_map_opts.writeback_ms,
 * writes reach the store within the bound without any call, so even a
 * child that ends with _exit() loses nothing older than the bound. */
#include <sys/wait.h>
#include <time.h>

#include "common.h"

static unsigned char *shared_buf(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT(p != MAP_FAILED);
	for (size_t i = 0; i < size; i++)
		((unsigned char *)p)[i] = pattern_byte(i);
	return p;
}

static int ro_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx, (void)off, (void)src, (void)len;
	return -ENOSPC;
}
static int sh_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	memcpy(dst, (unsigned char *)ctx + off, len);
	return 0;
}

/* kind 0: a memory store; 1: a store whose writes fail; 2: one with no
 * write callback (nothing to write to: its dirty blocks are lost too). */
static uf_region *map_buf(unsigned char *buf, size_t size, unsigned wb_ms, int kind)
{
	uf_store *s;
	if (kind == 1) {
		static const struct uf_store_ops ops = {
			.struct_size = sizeof(ops), .read = sh_read, .write = ro_write};
		ASSERT_OK(uf_store_new(&ops, buf, size, &s));
	} else if (kind == 2) {
		static const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = sh_read};
		ASSERT_OK(uf_store_new(&ops, buf, size, &s));
	} else {
		ASSERT_OK(uf_store_mem(buf, size, 0, &s));
	}
	struct uf_map_opts o = test_map_opts();
	o.max_resident = size; /* nothing is evicted: only exit or the writer writes back */
	o.writeback_ms = wb_ms;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	ASSERT_OK(uf_store_close(s));
	return r;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 0: exit(); 1: exit() with a failing store; 2: writeback_ms then _exit();
 * 3: exit() with a store that has no write callback. */
static void child(unsigned char *buf, size_t size, int mode, int errfd)
{
	dup2(errfd, 2);
	size_t ps = page_size();
	uf_region *r = map_buf(buf, size, mode == 2 ? 50 : 0, mode == 1 ? 1 : mode == 3 ? 2 : 0);
	unsigned char *p = uf_region_addr(r);
	for (size_t b = 0; b < size / ps; b += 3)
		p[b * ps + 7] = (unsigned char)(0xa0 + b);
	if (mode == 2) {
		struct timespec ts = {0, 400 * 1000000};
		nanosleep(&ts, NULL); /* well past the 50 ms bound */
		_exit(0);
	}
	exit(0);
}

static void check_written(const unsigned char *buf, size_t size, bool expect)
{
	size_t ps = page_size();
	for (size_t b = 0; b < size / ps; b++) {
		unsigned char want = b % 3 == 0 && expect ? (unsigned char)(0xa0 + b) : pattern_byte(b * ps + 7);
		if (buf[b * ps + 7] != want)
			FAIL("block %zu: store holds %u, want %u", b, buf[b * ps + 7], want);
	}
}

int main(void)
{
	test_init(60);
	if (under_qemu())
		SKIP("qemu-user ignores MADV_DONTFORK; exit write-back is tested natively");
	size_t ps = page_size(), size = 32 * ps;
	for (int mode = 0; mode < 4; mode++) {
		unsigned char *buf = shared_buf(size);
		int pfd[2];
		ASSERT_EQ(pipe(pfd), 0);
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child(buf, size, mode, pfd[1]);
		}
		close(pfd[1]);
		char err[1024];
		size_t n = read_pipe(pfd[0], err, sizeof(err));
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		ASSERT(WIFEXITED(st));
		ASSERT_EQ(WEXITSTATUS(st), 0);
		check_written(buf, size, mode != 1 && mode != 3);
		if (mode == 1 || mode == 3) {
			if (!strstr(err, "could not be written back"))
				FAIL("no word on stderr for the lost write-back: \"%s\"", err);
		} else if (n) {
			FAIL("unexpected stderr: %s", err);
		}
		munmap(buf, size);
	}

#if defined(__SANITIZE_THREAD__)
	/* The poll below reads the store's buffer while the writer thread
	 * writes it, a race by design that TSan would report; the children
	 * above already showed the writer at work. */
	printf("ok (in-process poll skipped under ThreadSanitizer)\n");
	return 0;
#endif
	/* In this process: the writer writes back without being asked. */
	unsigned char *buf = shared_buf(size);
	uf_region *r = map_buf(buf, size, 20, false);
	unsigned char *p = uf_region_addr(r);
	p[5 * ps] = 0x77;
	double t0 = now();
	while (buf[5 * ps] != 0x77 && now() - t0 < 5)
		usleep(1000);
	ASSERT_EQ(buf[5 * ps], 0x77);
	printf("background write-back after %.0f ms (bound 20 ms + a pass)\n", (now() - t0) * 1e3);
	ASSERT_EQ(stats_of(r).dirty, 0);
	ASSERT_OK(uf_unmap(r, 0));
	munmap(buf, size);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Leaving fault handling by siglongjmp never leaks: 10,000 failed loads
 * left by siglongjmp from the region's error callback, and 10,000 left from
 * the SIGBUS handler installed before the library (no callback), then
 * uf_unmap returns at once, and no descriptor, mapping or memory is left
 * behind. Afterwards the failing block loads again once the store heals. */
#include <setjmp.h>

#include "common.h"
#include "leaks.h"

#define ROUNDS 10000

static sigjmp_buf jb;
static _Atomic int healed;
static unsigned char *g_buf;
static uint64_t g_bad;

static int bad_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (!healed && off <= g_bad && g_bad < off + len)
		return -EIO;
	memcpy(dst, g_buf + off, len);
	return 0;
}

static int wr(void *ctx, uint64_t off, const void *src, size_t len)
{
	(void)ctx;
	memcpy(g_buf + off, src, len);
	return 0;
}

static int leave_cb(uf_region *r, void *addr, int err, void *arg)
{
	(void)r, (void)addr, (void)err, (void)arg;
	siglongjmp(jb, 1);
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	siglongjmp(jb, 2);
}

/* Open descriptors but the handler-thread engine's per-thread epoll sets:
 * its pool may grow under load (not a leak; a leak grows with the rounds,
 * and a leaked userfaultfd or memfd is still counted). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ASSERT(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], link[128];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		link[k > 0 ? k : 0] = 0;
		if (!strstr(link, "[eventpoll]"))
			n++;
	}
	closedir(d);
	return n;
}

/* One region whose block 3 cannot be read; ROUNDS touches of it, each
 * left by siglongjmp (from the callback or the SIGBUS handler). */
static void run(bool with_cb, size_t ps)
{
	size_t size = 16 * ps;
	g_buf = malloc(size);
	ASSERT(g_buf);
	for (size_t i = 0; i < size; i++)
		g_buf[i] = pattern_byte(i);
	g_bad = 3 * ps;
	healed = 0;
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = bad_read, .write = wr};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, NULL, size, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = 4 * ps;
	if (with_cb)
		o.on_error = leave_cb;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	volatile unsigned char *p = uf_region_addr(r);

	/* Counted after a warm-up of 500 rounds: the handler-thread engine
	 * grows its pool (a thread and its epoll descriptor) once under load,
	 * which is not a leak; a leak grows with the rounds. */
	int fds0 = 0, maps0 = 0;
	size_t rss0 = 0;
	volatile int left = 0, good = 0;
	for (volatile int i = 0; i < ROUNDS; i++) {
		if (i == 500) {
			fds0 = count_fds();
			maps0 = count_maps();
			rss0 = rss_bytes();
		}
		int how = sigsetjmp(jb, 1);
		if (how) {
			ASSERT_EQ(how, with_cb ? 1 : 2);
			left++;
			/* other blocks keep working in between */
			if (i % 64 == 0) {
				size_t b = (size_t)(i / 64) % 16;
				if (b != 3) {
					ASSERT_EQ(p[b * ps + 5], g_buf[b * ps + 5]);
					good++;
				}
			}
			continue;
		}
		(void)p[g_bad + (size_t)(i % 7) * 8]; /* faults, fails, leaves */
		FAIL("read of a failing block returned");
	}
	ASSERT_EQ(left, ROUNDS);
	ASSERT_GT(good, 0);
	ASSERT_EQ(count_fds(), fds0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* (a sanitizer runtime's own mappings and memory count here) */
	ASSERT_LE(count_maps(), maps0 + 2 + 2 * 32); /* a grown pool: up to 32 handler stacks */
	ASSERT_LE(rss_bytes(), rss0 + (4u << 20));
#else
	(void)maps0, (void)rss0;
#endif

	/* Nothing is stuck: the block loads once the store heals, a sync and
	 * the unmap return at once. */
	healed = 1;
	ASSERT_EQ(p[g_bad + 1], g_buf[g_bad + 1]);
	p[g_bad + 2] = 0x5a;
	double t0 = now();
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(g_buf[g_bad + 2], 0x5a);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_LT(now() - t0, 2.0);
	ASSERT_OK(uf_store_close(s));
	free(g_buf);
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	catch_signal(SIGBUS, on_bus); /* before the library's */
	run(true, ps);
	run(false, ps);
	printf("ok: %d faults left by siglongjmp from the callback and %d from SIGBUS\n", ROUNDS, ROUNDS);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_store_blockdev.c - uf_store_file on a block device.
 *
 * Attaches a 1 MiB pattern file to a loop device (losetup), makes a store
 * of the device, checks its size (BLKGETSIZE64, since st_size is 0), maps
 * it, reads every byte back, writes and syncs, and finds the write in the
 * backing file after the device is detached. Skips where the machine gives
 * no loop device (no root, no /dev/loop-control, no losetup).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

#define LEN (1u << 20)

static char g_dev[64];

static void detach(void)
{
	if (g_dev[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "losetup -d %s 2>/dev/null", g_dev);
		if (system(cmd)) {
		}
		g_dev[0] = 0;
	}
}

int main(void)
{
	test_init(60);
	if (under_qemu())
		SKIP("loop devices are the host's business under qemu-user");
	char file[] = "/tmp/uf-blockdev-XXXXXX";
	int ffd = mkstemp(file);
	ASSERT(ffd >= 0);
	unsigned char *buf = malloc(LEN);
	ASSERT(buf);
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern_byte(i);
	ASSERT_EQ(pwrite(ffd, buf, LEN, 0), (ssize_t)LEN);
	fsync(ffd);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "losetup --find --show %s 2>&1", file);
	FILE *p = popen(cmd, "r");
	char out[256] = "";
	if (!p || !fgets(out, sizeof(out), p) || pclose(p) != 0 || strncmp(out, "/dev/loop", 9)) {
		unlink(file);
		out[strcspn(out, "\n")] = 0;
		SKIP("no loop device here (losetup: %s)", out[0] ? out : "not run");
	}
	out[strcspn(out, "\n")] = 0;
	snprintf(g_dev, sizeof(g_dev), "%s", out);
	atexit(detach);

	int dfd = open(g_dev, O_RDWR | O_CLOEXEC);
	ASSERT(dfd >= 0);
	struct stat st;
	ASSERT_EQ(fstat(dfd, &st), 0);
	ASSERT(S_ISBLK(st.st_mode));
	uf_store *s;
	ASSERT_OK(uf_store_file(dfd, 0, &s));
	close(dfd);
	ASSERT_EQ(uf_store_size(s), (int64_t)LEN);

	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, LEN, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *a = uf_region_addr(r);
	for (size_t i = 0; i < LEN; i++)
		if (a[i] != buf[i])
			FAIL("byte %zu: %#x, want %#x", i, a[i], buf[i]);
	a[4097] = (unsigned char)~buf[4097];
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	detach();

	unsigned char c;
	ASSERT_EQ(pread(ffd, &c, 1, 4097), 1);
	ASSERT_EQ(c, (unsigned char)~buf[4097]);
	close(ffd);
	unlink(file);
	printf("ok: %s, %u bytes, read back and written through\n", out, LEN);
	free(buf);
	return 0;
}

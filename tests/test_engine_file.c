/* SPDX-License-Identifier: MIT */
/* A file store: reads come from the file, uf_sync writes back with pwrite,
 * a read-only file descriptor gives a store whose write-back fails -EROFS;
 * the file shrank: a read past its end fails (-EIO, SIGBUS), a block
 * written back past it makes it grow to that block's end. */
#include <fcntl.h>
#include <sys/stat.h>

#include "common.h"

int main(void)
{
	test_init(30);
	size_t ps = page_size(), size = 33 * ps + 100;
	char path[] = "/tmp/uf-test-file-XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0);
	unlink(path);
	unsigned char *want = malloc(size);
	for (size_t i = 0; i < size; i++)
		want[i] = pattern_byte(i);
	ASSERT_EQ(pwrite(fd, want, size, 0), (ssize_t)size);

	uf_store *s;
	ASSERT_OK(uf_store_file(fd, 0, &s));
	ASSERT_EQ(uf_store_size(s), size);
	struct uf_map_opts o = test_map_opts();
	o.block_size = 2 * ps;
	o.max_resident = 8 * ps;
	uf_region *r;
	/* map from the second page on */
	ASSERT_OK(uf_map(s, ps, size - ps, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < size - ps; i++)
		if (p[i] != want[ps + i])
			FAIL("byte %zu: %u want %u", i, p[i], want[ps + i]);
	p[5 * ps + 3] = 0x42;
	ASSERT_OK(uf_sync(r, NULL, 0));
	unsigned char b;
	ASSERT_EQ(pread(fd, &b, 1, 6 * ps + 3), 1);
	ASSERT_EQ(b, 0x42);
	/* the file did not grow: the partial last block writes only its bytes */
	p[size - ps - 1] = 0x24;
	ASSERT_OK(uf_unmap(r, 0));
	struct stat st;
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_EQ(st.st_size, (off_t)size);
	ASSERT_EQ(pread(fd, &b, 1, size - 1), 1);
	ASSERT_EQ(b, 0x24);
	ASSERT_OK(uf_store_close(s));

	/* The file shrinks under a region. */
	ASSERT_OK(uf_store_file(fd, 0, &s));
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	p = uf_region_addr(r);
	ASSERT_EQ(p[9 * ps], want[9 * ps]); /* block 4 resident */
	p[9 * ps] = 0x77;
	ASSERT_EQ(ftruncate(fd, 2 * ps), 0);
	unsigned char got;
	ASSERT_EQ(uf_try_read(&got, p + 20 * ps, 1), -EFAULT); /* block 10: past the end */
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_EQ(st.st_size, (off_t)(10 * ps));
	ASSERT_EQ(pread(fd, &b, 1, 9 * ps), 1);
	ASSERT_EQ(b, 0x77);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	ASSERT_EQ(pwrite(fd, want, size, 0), (ssize_t)size);

	/* read-only descriptor */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int ro = open(proc, O_RDONLY);
	ASSERT(ro >= 0);
	ASSERT_OK(uf_store_file(ro, 0, &s));
	close(ro); /* the store keeps its own descriptor */
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	p = uf_region_addr(r);
	ASSERT_EQ(p[0], want[0]);
	p[0] = 1;
	ASSERT_EQ(uf_sync(r, NULL, 0), -EROFS);
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	close(fd);
	free(want);
	printf("ok\n");
	return 0;
}

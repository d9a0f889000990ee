/* SPDX-License-Identifier: MIT */
/* Bad arguments to every public region/store call give a negative errno and
 * change nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include <fcntl.h>

#include "common.h"

static int rd(void *c, uint64_t o, void *d, size_t l) { (void)c, (void)o, (void)d, (void)l; return 0; }

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	static unsigned char buf[16 * 4096];
	uf_store *s = NULL;

	/* stores */
	ASSERT_EQ(uf_store_mem(NULL, 10, 0, &s), -EINVAL);
	ASSERT_EQ(uf_store_mem(buf, 0, 0, &s), -EINVAL);
	ASSERT_EQ(uf_store_mem(buf, 10, 0x80, &s), -EINVAL);
	ASSERT_EQ(uf_store_mem(buf, 10, 0, NULL), -EINVAL);
	/* a buffer that wraps around the address space */
	ASSERT_EQ(uf_store_mem((void *)(UINTPTR_MAX - ps + 1), 2 * ps, 0, &s), -EINVAL);
	ASSERT_EQ(uf_store_mem((void *)(UINTPTR_MAX - ps + 1), SIZE_MAX, 0, &s), -EINVAL);
	ASSERT_EQ(uf_store_file(-1, 0, &s), -EINVAL);
	ASSERT_EQ(uf_store_file(12345, 0, &s), -EBADF);
	int dfd = open("/", O_RDONLY | O_DIRECTORY);
	ASSERT_EQ(uf_store_file(dfd, 0, &s), -EINVAL); /* not a regular file */
	close(dfd);
	/* a regular file, but not open for reading */
	char tmpl[] = "/tmp/uf-args-XXXXXX";
	int tfd = mkstemp(tmpl);
	ASSERT(tfd >= 0);
	ASSERT_EQ(write(tfd, buf, ps), (ssize_t)ps);
	int wfd = open(tmpl, O_WRONLY), pfd = open(tmpl, O_PATH);
	unlink(tmpl);
	ASSERT(wfd >= 0 && pfd >= 0);
	ASSERT_EQ(uf_store_file(wfd, 0, &s), -EBADF);
	ASSERT_EQ(uf_store_file(pfd, 0, &s), -EBADF);
	ASSERT_EQ(uf_store_file(pfd, UF_STORE_RDONLY, &s), -EBADF);
	ASSERT_OK(uf_store_file(tfd, 0, &s)); /* O_RDWR */
	ASSERT_OK(uf_store_close(s));
	s = NULL;
	/* O_APPEND: pwrite would append every write-back (uf_sync said 0
	 * while the bytes went past the end); read-only is harmless. */
	char apath[64];
	snprintf(apath, sizeof(apath), "/proc/self/fd/%d", tfd); /* tmpl is unlinked */
	int ofd = open(apath, O_RDWR | O_APPEND);
	ASSERT(ofd >= 0);
	ASSERT_EQ(uf_store_file(ofd, 0, &s), -EINVAL);
	ASSERT(s == NULL);
	ASSERT_OK(uf_store_file(ofd, UF_STORE_RDONLY, &s));
	ASSERT_OK(uf_store_close(s));
	s = NULL;
	close(ofd);
	close(wfd);
	close(pfd);
	close(tfd);
	ASSERT_EQ(uf_store_fn(NULL, NULL, 10, &s), -EINVAL);
	ASSERT_EQ(uf_store_fn(rd, NULL, 0, &s), -EINVAL);
	struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = NULL};
	ASSERT_EQ(uf_store_new(&ops, NULL, 10, &s), -EINVAL);
	ops.read = rd;
	ops.struct_size = 0;
	ASSERT_EQ(uf_store_new(&ops, NULL, 10, &s), -EINVAL);
	ops.struct_size = sizeof(ops);
	ASSERT_EQ(uf_store_new(NULL, NULL, 10, &s), -EINVAL);
	ASSERT_EQ(uf_store_new(&ops, NULL, 0, &s), -EINVAL);
	ASSERT(s == NULL); /* nothing was created */
	ASSERT_EQ(uf_store_close(NULL), -EINVAL);
	ASSERT_EQ(uf_store_size(NULL), -EINVAL);

	ASSERT_OK(uf_store_mem(buf, sizeof(buf), 0, &s));
	ASSERT_EQ(uf_store_size(s), sizeof(buf));
	struct uf_map_opts o = test_map_opts();
	uf_region *r = NULL;
	int rw = PROT_READ | PROT_WRITE;
	/* uf_map */
	ASSERT_EQ(uf_map(NULL, 0, ps, rw, &o, &r), -EINVAL);
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, NULL), -EINVAL);
	ASSERT_EQ(uf_map(s, 0, 0, rw, &o, &r), -EINVAL);
	ASSERT_EQ(uf_map(s, 1, ps, rw, &o, &r), -EINVAL);           /* unaligned offset */
	ASSERT_EQ(uf_map(s, sizeof(buf), ps, rw, &o, &r), -EINVAL); /* offset past the end */
	ASSERT_EQ(uf_map(s, 0, ps, PROT_WRITE, &o, &r), -EINVAL);   /* write without read */
	ASSERT_EQ(uf_map(s, 0, ps, 0x100 | PROT_READ, &o, &r), -EINVAL);
	ASSERT_EQ(uf_map(s, 0, SIZE_MAX, rw, &o, &r), -ENOMEM); /* no address space that large */
	o.block_size = 3 * ps;
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, &r), -EINVAL); /* not a power of two */
	o.block_size = ps / 2;
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, &r), -EINVAL); /* below the page size */
	o.block_size = 4 * ps;
	o.max_resident = ps; /* below one block */
	ASSERT_EQ(uf_map(s, 0, 4 * ps, rw, &o, &r), -EINVAL);
	uf_map_opts_init(&o);
	o.engine = 99;
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, &r), -EINVAL);
	uf_map_opts_init(&o);
	o.flags = 0x8000;
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, &r), -EINVAL);
	uf_map_opts_init(&o);
	o.struct_size = 3;
	ASSERT_EQ(uf_map(s, 0, ps, rw, &o, &r), -EINVAL);
	ASSERT(r == NULL);

	/* a good region, then bad calls on it */
	o = test_map_opts();
	ASSERT_OK(uf_map(s, 0, 8 * ps, rw, &o, &r));
	unsigned char *p = uf_region_addr(r);
	p[0] = 1;
	ASSERT_EQ(uf_sync(NULL, p, ps), -EINVAL);
	ASSERT_EQ(uf_sync(r, p - ps, ps), -EINVAL);       /* before the region */
	ASSERT_EQ(uf_sync(r, p + 8 * ps, 1), -EINVAL);    /* after it */
	ASSERT_EQ(uf_sync(r, p + ps, 8 * ps), -EINVAL);   /* runs past its end */
	ASSERT_EQ(uf_discard(r, p + 9 * ps, ps), -EINVAL);
	ASSERT_EQ(uf_evict(NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(uf_prefetch(r, p + 100 * ps, 1), -EINVAL);
	ASSERT_EQ(stats_of(r).dirty, 1); /* nothing changed */
	ASSERT_EQ(buf[0], 0);
	struct uf_stats st = {.struct_size = 1};
	ASSERT_EQ(uf_stats(r, &st), -EINVAL);
	ASSERT_EQ(uf_stats(NULL, &st), -EINVAL);
	ASSERT_EQ(uf_stats(r, NULL), -EINVAL);
	ASSERT_EQ(uf_unmap(NULL, 0), -EINVAL);
	ASSERT_EQ(uf_unmap(r, 0x40), -EINVAL);
	ASSERT_EQ(p[0], 1); /* still mapped, still dirty */
	ASSERT_EQ(uf_region_engine(NULL), -EINVAL);
	ASSERT(uf_region_addr(NULL) == NULL);
	ASSERT_EQ(uf_region_size(NULL), 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_EQ(buf[0], 1);
	ASSERT_OK(uf_store_close(s));

	/* text for every error, never NULL */
	ASSERT(strlen(uf_strerror(-EINVAL)) > 0);
	ASSERT(strlen(uf_strerror(-123456)) > 0);
	ASSERT(strlen(uf_strerror(0)) > 0);
	ASSERT_EQ(uf_version(), UF_VERSION_MAJOR * 10000 + UF_VERSION_MINOR * 100 + UF_VERSION_PATCH);
	ASSERT(strcmp(uf_engine_name(UF_ENGINE_UFFD), "uffd") == 0);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* System calls that touch a missing page of a region: under uffd-thread the
 * kernel waits for the handler thread and the call succeeds (read() into a
 * missing page, write() from one); under uffd (in-thread, SIGBUS mode) and
 * signal the kernel cannot run our handler and the call fails with EFAULT,
 * as with any bad buffer. Under uffd-thread a page whose load fails makes
 * the call fail with EFAULT too. read() into a page loaded clean fails with
 * EFAULT where first writes are write-protect faults, until the program
 * writes to the page. Runs every engine this process can use. */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "common.h"

static _Atomic int64_t bad_off = -1;

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	if ((int64_t)off == bad_off)
		return -EIO;
	memcpy(dst, (unsigned char *)ctx + off, len);
	return 0;
}

/* Whether this process gets userfaultfd descriptors that see kernel-mode
 * faults (privileged, vm.unprivileged_userfaultfd=1, or /dev/userfaultfd). */
static bool full_uffd(void)
{
	if (geteuid() == 0 || access("/dev/userfaultfd", R_OK | W_OK) == 0)
		return true;
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v == 1;
}

static void check_engine(int engine, unsigned flags, unsigned char *buf, size_t size)
{
	size_t ps = page_size();
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops), .read = rd};
	uf_store *s;
	ASSERT_OK(uf_store_new(&ops, buf, size, &s));
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = engine;
	o.flags = flags;
	uf_region *r;
	int e = uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r);
	if (e) {
		printf("%-12s not available here (%s)\n", uf_engine_name(engine), uf_strerror(e));
		ASSERT_OK(uf_store_close(s));
		return;
	}
	unsigned char *p = uf_region_addr(r);
	bool works = engine == UF_ENGINE_UFFD_THREAD && full_uffd();
	int fds[2];
	char msg[100];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7 + 1);

	/* read() into a missing page */
	ASSERT_EQ(pipe(fds), 0);
	ASSERT_EQ(write(fds[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	errno = 0;
	ssize_t n = read(fds[0], p + 3 * ps + 10, sizeof(msg));
	int err = errno;
	if (works) {
		ASSERT_EQ(n, (ssize_t)sizeof(msg));
		ASSERT_EQ(memcmp(p + 3 * ps + 10, msg, sizeof(msg)), 0);
		ASSERT_EQ(p[3 * ps + 9], buf[3 * ps + 9]);     /* the rest of the page: the store */
		ASSERT_EQ(p[3 * ps + 110], buf[3 * ps + 110]);
		ASSERT_EQ(stats_of(r).dirty, 1);                /* the kernel's write was tracked */
	} else {
		ASSERT_EQ(n, -1);
		ASSERT_EQ(err, EFAULT);
	}
	close(fds[0]);
	close(fds[1]);

	/* write() from a missing page */
	ASSERT_EQ(pipe(fds), 0);
	errno = 0;
	n = write(fds[1], p + 5 * ps + 20, sizeof(msg));
	err = errno;
	if (works) {
		ASSERT_EQ(n, (ssize_t)sizeof(msg));
		ASSERT_EQ(read(fds[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
		ASSERT_EQ(memcmp(msg, buf + 5 * ps + 20, sizeof(msg)), 0);
	} else {
		ASSERT_EQ(n, -1);
		ASSERT_EQ(err, EFAULT);
	}
	close(fds[0]);
	close(fds[1]);

	/* a file read straddling two missing pages */
	char path[] = "/tmp/uf-syscall-XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0);
	unlink(path);
	unsigned char blob[3000];
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i ^ 0x5C);
	ASSERT_EQ(pwrite(fd, blob, sizeof(blob), 0), (ssize_t)sizeof(blob));
	n = pread(fd, p + 8 * ps - 1000, sizeof(blob), 0);
	if (works) {
		ASSERT_EQ(n, (ssize_t)sizeof(blob));
		ASSERT_EQ(memcmp(p + 8 * ps - 1000, blob, sizeof(blob)), 0);
	} else {
		ASSERT_EQ(n, -1);
	}

	/* a page whose load fails: the call fails (EFAULT), nothing is made up */
	bad_off = (int64_t)(10 * ps);
	n = pread(fd, p + 10 * ps, 100, 0);
	err = errno;
	ASSERT_EQ(n, -1);
	ASSERT_EQ(err, EFAULT);
	bad_off = -1;
	close(fd);

	/* read() into pages loaded clean (by uf_prefetch, or by a read): where
	 * first writes are write-protect faults (signal; uffd with
	 * UF_MAP_WP_FAULTS) the kernel's store fails with EFAULT until the
	 * program has written to the page (uf_map(3), ENGINES) */
	bool async = stats_of(r).async_writes;
	ASSERT_EQ(uf_prefetch(r, p + 12 * ps, 2 * ps), 2);
	ASSERT_EQ(p[13 * ps + 5], buf[13 * ps + 5]);
	char path2[] = "/tmp/uf-syscall-XXXXXX";
	fd = mkstemp(path2);
	ASSERT(fd >= 0);
	unlink(path2);
	ASSERT_EQ(pwrite(fd, blob, sizeof(blob), 0), (ssize_t)sizeof(blob));
	for (int pg = 12; pg <= 13; pg++) {
		errno = 0;
		n = pread(fd, p + pg * ps + 100, 100, 0);
		if (works || async) {
			ASSERT_EQ(n, 100);
			ASSERT_EQ(memcmp(p + pg * ps + 100, blob, 100), 0);
		} else {
			ASSERT_EQ(n, -1);
			ASSERT_EQ(errno, EFAULT);
			p[pg * ps] = buf[pg * ps]; /* one byte written: the page is dirty */
			ASSERT_EQ(pread(fd, p + pg * ps + 100, 100, 0), 100);
			ASSERT_EQ(memcmp(p + pg * ps + 100, blob, 100), 0);
		}
	}
	close(fd);

	/* after the syscalls, the region still serves ordinary accesses */
	for (size_t i = 0; i < size; i += ps)
		if (i / ps != 3 && i / ps != 7 && i / ps != 8 && i / ps != 10 && i / ps != 12 && i / ps != 13)
			if (p[i + 1] != buf[i + 1])
				FAIL("%s page %zu: %u vs %u", uf_engine_name(engine), i / ps, p[i + 1], buf[i + 1]);
	ASSERT_OK(uf_unmap(r, UF_UNMAP_DISCARD));
	ASSERT_OK(uf_store_close(s));
	printf("%-12s%s system calls on missing pages: %s\n", uf_engine_name(engine),
	       flags ? " (write-protect faults)" : "", works ? "served" : "EFAULT");
}

int main(void)
{
	test_init(60);
	size_t ps = page_size(), size = 16 * ps;
	unsigned char *buf = malloc(size);
	ASSERT(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern_byte(i);
	check_engine(UF_ENGINE_UFFD, 0, buf, size);
	check_engine(UF_ENGINE_UFFD, UF_MAP_WP_FAULTS, buf, size);
	check_engine(UF_ENGINE_UFFD_THREAD, 0, buf, size);
	check_engine(UF_ENGINE_SIGNAL, 0, buf, size);
	free(buf);
	printf("ok\n");
	return 0;
}

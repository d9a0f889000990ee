/* SPDX-License-Identifier: MIT */
/* store_file.c - a file as a store: pread/pwrite on a private dup of the fd. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "store.h"

struct file {
	int fd;
	unsigned flags;
};

static int file_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	struct file *f = ctx;
	unsigned char *p = dst;
	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_write(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct file *f = ctx;
	const unsigned char *p = src;
	if (f->flags & UF_STORE_RDONLY)
		return -EROFS;
	while (len) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_flush(void *ctx) { return fdatasync(((struct file *)ctx)->fd) ? -errno : 0; }

static void file_close(void *ctx)
{
	struct file *f = ctx;
	close(f->fd);
	free(f);
}

int uf_store_file(int fd, unsigned flags, uf_store **out)
{
	if (fd < 0 || !out || (flags & ~UF_STORE_RDONLY))
		return -EINVAL;
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	uint64_t size = (uint64_t)st.st_size;
	/* A block device's st_size is 0: the kernel tells its size. */
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size))
		return -errno;
	if (st.st_size < 0 || size == 0)
		return -EINVAL; /* nothing to map */
	int acc = fcntl(fd, F_GETFL);
	if (acc < 0)
		return -errno;
	if ((acc & O_ACCMODE) == O_WRONLY || (acc & O_PATH))
		return -EBADF; /* not open for reading: every load would fail */
	if ((acc & O_ACCMODE) == O_RDONLY)
		flags |= UF_STORE_RDONLY;
	/* pwrite on an O_APPEND descriptor ignores the offset and appends:
	 * every write-back would land past the store's end, reported as done.
	 * The flag belongs to the open file, shared with the caller's
	 * descriptor, so it is refused rather than cleared. */
	if ((acc & O_APPEND) && !(flags & UF_STORE_RDONLY))
		return -EINVAL;
	struct file *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	f->flags = flags;
	if (f->fd < 0) {
		int e = -errno;
		free(f);
		return e;
	}
	static const struct uf_store_ops ops = {.struct_size = sizeof(ops),
						.read = file_read,
						.write = file_write,
						.flush = file_flush,
						.close = file_close};
	int r = uf_store_new(&ops, f, size, out);
	if (r)
		file_close(f);
	else
		(*out)->fills = true; /* file_read loops until full or fails */
	return r;
}

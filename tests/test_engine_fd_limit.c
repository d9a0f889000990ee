/* SPDX-License-Identifier: MIT */
/* uf_map with no file descriptor left (RLIMIT_NOFILE at the lowest free
 * one): -EMFILE (uf_map(3)), nothing left behind, and a map works again
 * once descriptors are free. */
#include <sys/resource.h>

#include "common.h"
#include "leaks.h"

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	uf_store *s;
	unsigned char *b = pattern_store(16 * ps, &s);
	struct uf_map_opts o = test_map_opts();
	uf_region *r;
	/* once first: the library's own process-wide set-up is done */
	ASSERT_OK(uf_map(s, 0, 16 * ps, PROT_READ, &o, &r));
	ASSERT_OK(uf_unmap(r, 0));
	int fds0 = count_dir("/proc/self/fd");
	int lowest = dup(0);
	ASSERT(lowest >= 0);
	close(lowest);
	struct rlimit old, rl;
	ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
	rl = old;
	rl.rlim_cur = (rlim_t)lowest;
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	uf_region *none = (uf_region *)&rl;
	int e = uf_map(s, 0, 16 * ps, PROT_READ, &o, &none);
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
	ASSERT_EQ(e, -EMFILE);
	ASSERT(none == (uf_region *)&rl); /* *out untouched */
	ASSERT_EQ(count_dir("/proc/self/fd"), fds0);
	ASSERT_OK(uf_map(s, 0, 16 * ps, PROT_READ, &o, &r));
	ASSERT_EQ(((volatile unsigned char *)uf_region_addr(r))[3 * ps + 5], b[3 * ps + 5]);
	ASSERT_OK(uf_unmap(r, 0));
	uf_store_close(s);
	free(b);
	return 0;
}

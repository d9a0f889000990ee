/* SPDX-License-Identifier: MIT */
/* fork(): a region is not inherited. In the child, an access to it fails
 * loudly (SIGSEGV), never reads silent zeros, and the uf_* calls on it
 * return -EPERM; the parent's region keeps working. */
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

static size_t ps_of(unsigned n) { return n * page_size(); }

static int run_child(struct fixture *fx, int what)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {0, 0};
		setrlimit(RLIMIT_CORE, &rl);
		if (what == 0) /* a block the parent has resident */
			printf("child read %u\n", ((volatile unsigned char *)fx->p)[0]);
		else if (what == 1) /* a block never loaded */
			printf("child read %u\n", ((volatile unsigned char *)fx->p)[9 * page_size()]);
		else if (what == 3) {
			/* The parent's region is not ours: a region of our own may
			 * land at its address (the kernel reuses the free range). */
			uf_store *s;
			unsigned char *b = pattern_store(16 * page_size(), &s);
			uf_region *r;
			int e = uf_map(s, 0, 16 * page_size(), PROT_READ | PROT_WRITE, NULL, &r);
			if (e) {
				fprintf(stderr, "child uf_map: %s\n", uf_strerror(e));
				_exit(6);
			}
			unsigned char *p = uf_region_addr(r);
			printf("child region %s the parent's address\n", (void *)p == (void *)fx->p ? "at" : "not at");
			/* Blocks 3 and 12 written: the parent wrote them too (the
			 * child's write tracking must see its own pages only). */
			p[3] = 0x44;
			p[12 * page_size()] = 0x45;
			if (p[3] != 0x44 || p[page_size()] != b[page_size()] || uf_sync(r, NULL, 0) ||
			    b[3] != 0x44 || b[12 * page_size()] != 0x45 || b[ps_of(13)] != p[ps_of(13)])
				_exit(7);
			struct uf_stats st = {.struct_size = sizeof(st)};
			if (uf_stats(r, &st) || st.dirty != 0 || uf_unmap(r, 0))
				_exit(9);
			_exit(0);
		} else if (what == 2) {
			if (uf_sync(fx->r, NULL, 0) != -EPERM || uf_unmap(fx->r, 0) != -EPERM ||
			    uf_evict(fx->r, NULL, 0) != -EPERM || uf_discard(fx->r, NULL, 0) != -EPERM ||
			    uf_prefetch(fx->r, fx->p, page_size()) != -EPERM)
				_exit(5);
			/* uf_stats: the parent's counters as of the fork (one
			 * dirty block, README "fork() and exit"). */
			struct uf_stats st = {.struct_size = sizeof(st)};
			if (uf_stats(fx->r, &st) || st.dirty != 1)
				_exit(8);
			_exit(0);
		}
		_exit(0); /* reached only if the access "worked" */
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

int main(void)
{
	test_init(30);
	if (under_qemu())
		SKIP("qemu-user ignores MADV_DONTFORK, so a child would see the region; fork is tested natively");
	size_t ps = page_size();
	struct fixture fx;
	fixture_open(&fx, 16 * ps, 0, 0, PROT_READ | PROT_WRITE);
	ASSERT_EQ(fx.p[0], fx.buf[0]);
	fx.p[ps] = 0x31; /* dirty block */

	int st = run_child(&fx, 0);
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSEGV);
	st = run_child(&fx, 1);
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSEGV);
	st = run_child(&fx, 2);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
#if defined(__SANITIZE_THREAD__)
	/* The child maps a region of its own: under the handler-thread engine
	 * that starts threads, which ThreadSanitizer refuses in a child of a
	 * threaded process (it dies, "starting new threads after
	 * multi-threaded fork is not supported"). Run natively and on the
	 * other engines. */
	if (test_engine() == UF_ENGINE_UFFD_THREAD)
		fprintf(stderr, "the child's own region not mapped under ThreadSanitizer\n");
	else
#endif
	{
		/* Blocks written after a sync, so that under asynchronous
		 * tracking only the page tables know they are dirty: the
		 * child's region, at the same address, must neither take nor
		 * clear that (it did through the parent's pagemap descriptor,
		 * and the parent's sync then lost both writes). */
		ASSERT_EQ(fx.p[12 * ps], fx.buf[12 * ps]);
		ASSERT_EQ(fx.p[3 * ps], fx.buf[3 * ps]);
		ASSERT_OK(uf_sync(fx.r, NULL, 0));
		fx.p[12 * ps] = 0x34;
		fx.p[3] = 0x35;
		st = run_child(&fx, 3);
		ASSERT(WIFEXITED(st));
		ASSERT_EQ(WEXITSTATUS(st), 0);
		st = run_child(&fx, 3); /* twice: the first child's scan must not have hidden them */
		ASSERT(WIFEXITED(st));
		ASSERT_EQ(WEXITSTATUS(st), 0);
		ASSERT_OK(uf_sync(fx.r, NULL, 0));
		ASSERT_EQ(fx.buf[12 * ps], 0x34);
		ASSERT_EQ(fx.buf[3], 0x35);
	}

	/* the parent is unaffected */
	ASSERT_EQ(fx.p[ps], 0x31);
	ASSERT_EQ(fx.p[9 * ps], fx.buf[9 * ps]);
	fx.p[10 * ps] = 0x32;
	ASSERT_OK(uf_sync(fx.r, NULL, 0));
	ASSERT_EQ(fx.buf[ps], 0x31);
	ASSERT_EQ(fx.buf[10 * ps], 0x32);
	fixture_close(&fx, 0);
	printf("ok\n");
	return 0;
}

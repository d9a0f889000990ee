/* SPDX-License-Identifier: MIT */
/* fork(): a region is not inherited. In the child, an access to it fails
 * loudly (SIGSEGV), never reads silent zeros, and the uf_* calls on it
 * return -EPERM; the parent's region keeps working. */
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

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
		else if (what == 2) {
			if (uf_sync(fx->r, NULL, 0) != -EPERM || uf_unmap(fx->r, 0) != -EPERM ||
			    uf_evict(fx->r, NULL, 0) != -EPERM)
				_exit(5);
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

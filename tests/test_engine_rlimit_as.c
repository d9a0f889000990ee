/* SPDX-License-Identifier: MIT */
/* RLIMIT_AS while filling, in a child whose address space is capped: each
 * outcome is an error or success, never a hang or silent zeros: uf_map
 * says -ENOMEM, or faults that cannot get a frame reach the error callback
 * with -ENOMEM (here it gives up with SIGBUS, caught), or everything reads
 * back right. Case 1: the cap is 96 MiB above what the child uses, the
 * region 4 GiB with a 1 GiB budget (uf_map refuses: the engines reserve
 * the region and the budget's frames up front). Case 2: the cap leaves
 * room for the region, 256 MiB of budget and 64 MiB more, and 512 MiB are
 * read through it (evicting all along) without a new allocation failing. */
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "memlimit.h"


static int child(size_t room, size_t budget)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill_fn, NULL, (uint64_t)1 << 36, &s));
	/* what the process has now, plus room */
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long vm = 0;
	ASSERT(f && fscanf(f, "%lu", &vm) == 1);
	fclose(f);
	size_t ps = page_size();
	struct rlimit rl = {vm * ps + room, vm * ps + room};
	ASSERT_EQ(setrlimit(RLIMIT_AS, &rl), 0);
	struct uf_map_opts o = test_map_opts();
	o.max_resident = budget;
	o.on_error = give_up;
	uf_region *r;
	int e = uf_map(s, 0, (size_t)4 << 30, PROT_READ, &o, &r);
	if (e) {
		if (e != -ENOMEM)
			FAIL("uf_map under RLIMIT_AS = %d (%s), want -ENOMEM", e, uf_strerror(e));
		printf("uf_map: -ENOMEM\n");
		return 0;
	}
	volatile uint64_t *p = uf_region_addr(r);
	size_t n = 0;
	if (sigsetjmp(jb, 1) == 0) {
		for (size_t off = 0; off < ((size_t)512 << 20); off += ps, n++)
			if (p[off / 8] != off + 1)
				FAIL("offset %zu reads %llu", off, (unsigned long long)p[off / 8]);
		printf("all %zu pages fit\n", n);
	} else {
		if (cb_err != -ENOMEM)
			FAIL("fault after %zu pages: callback error %d (%s), want -ENOMEM", n, cb_err,
			     uf_strerror(cb_err));
		printf("fault after %zu pages: -ENOMEM through the error callback\n", n);
	}
	ASSERT_OK(uf_unmap(r, 0));
	return 0;
}

int main(void)
{
	test_init(120);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("a sanitizer runtime reserves terabytes of address space: RLIMIT_AS cannot be tested");
#endif
	const size_t cases[2][2] = {{(size_t)96 << 20, (size_t)1 << 30},
				    {((size_t)4 << 30) + ((size_t)320 << 20), (size_t)256 << 20}};
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0)
			_exit(child(cases[i][0], cases[i][1]));
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("case %d: child status %#x", i + 1, st);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Engine choice: forcing each engine by opts.engine and by USERFAULT_ENGINE
 * works and is reported by uf_region_engine() and uf_stats(); opts.engine
 * wins over the environment; nonsense in either gives -EINVAL; and a
 * process whose seccomp filter blocks userfaultfd (as container runtimes'
 * default profiles do) falls back to the signal engine under AUTO.
 *
 * (Not a per-engine test despite the name prefix: it sets the engine itself
 * and ignores the runner's USERFAULT_ENGINE.) Cases that need a fresh
 * process (the environment is read at map time, the userfaultfd probe once
 * per process) re-run this program with an argument. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static const int all_engines[] = {UF_ENGINE_UFFD, UF_ENGINE_UFFD_THREAD, UF_ENGINE_SIGNAL};

/* Maps 8 pages with engine (AUTO lets the library choose) and checks the
 * bytes; returns the engine serving it, or uf_map's error. */
static int try_map(int engine)
{
	size_t ps = page_size(), size = 8 * ps;
	uf_store *s;
	unsigned char *buf = pattern_store(size, &s);
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = engine;
	uf_region *r;
	int e = uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r);
	if (e == 0) {
		const unsigned char *p = uf_region_addr(r);
		for (size_t i = 0; i < size; i += 512)
			ASSERT_EQ(p[i], buf[i]);
		unsigned char was = buf[ps];
		((unsigned char *)p)[ps] ^= 1; /* a write fault too */
		ASSERT_EQ(p[ps], was ^ 1);
		e = uf_region_engine(r);
		ASSERT_EQ(stats_of(r).engine, e);
		ASSERT_NE(e, UF_ENGINE_AUTO);
		/* and the write reaches the store: the engine's write tracking
		 * is the one it set up, whatever a refused engine left */
		ASSERT_OK(uf_sync(r, NULL, 0));
		ASSERT_EQ(buf[ps], was ^ 1);
		ASSERT_OK(uf_unmap(r, 0));
	}
	ASSERT_OK(uf_store_close(s));
	free(buf);
	return e;
}

/* Runs this program as "child mode [engine]" with USERFAULT_ENGINE=env
 * (NULL: unset); returns what the child printed as a number. */
static int run_child(const char *mode, const char *env, int engine)
{
	int fds[2];
	ASSERT_EQ(pipe(fds), 0);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		if (env)
			setenv("USERFAULT_ENGINE", env, 1);
		else
			unsetenv("USERFAULT_ENGINE");
		char eng[16];
		snprintf(eng, sizeof(eng), "%d", engine);
		execl(self_exe(), "test_engine_select", "child", mode, eng, (char *)NULL);
		_exit(99);
	}
	close(fds[1]);
	char out[64] = {0};
	ssize_t n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n <= 0)
		FAIL("child %s (USERFAULT_ENGINE=%s) failed: status 0x%x, output '%s'", mode,
		     env ? env : "(unset)", st, out);
	return atoi(out);
}

/* Blocks userfaultfd(2) and the /dev/userfaultfd ioctl with EPERM, the way
 * Docker's and Podman's default seccomp profiles refuse userfaultfd. */
static void block_userfaultfd(void)
{
#if defined(__x86_64__)
	const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
	SKIP("no seccomp arch constant for this machine");
#endif
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		/* the low 32 bits of the request (little-endian) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};
	ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ASSERT_EQ(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0);
	ASSERT_EQ(syscall(SYS_userfaultfd, 0), -1);
	ASSERT_EQ(errno, EPERM);
}

static int child(const char *mode, int engine)
{
	if (!strcmp(mode, "map")) {
		printf("%d\n", try_map(engine));
	} else if (!strcmp(mode, "seccomp")) {
		/* A region before the filter: the library has seen userfaultfd
		 * work, and its attach then fails half-way (after choosing
		 * asynchronous write tracking) instead of at the probe. */
		ASSERT_GE(try_map(UF_ENGINE_AUTO), 0);
		block_userfaultfd();
		/* forcing a userfaultfd engine now fails; AUTO falls back */
		ASSERT_LT(try_map(UF_ENGINE_UFFD), 0);
		ASSERT_LT(try_map(UF_ENGINE_UFFD_THREAD), 0);
		printf("%d\n", try_map(UF_ENGINE_AUTO));
	} else {
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	test_init(60);
	if (under_qemu())
		SKIP("re-executes itself through /proc/self/exe, which is qemu under qemu-user; tested natively");
	if (argc == 4 && !strcmp(argv[1], "child"))
		return child(argv[2], atoi(argv[3]));
	unsetenv("USERFAULT_ENGINE");

	/* names */
	ASSERT_EQ(strcmp(uf_engine_name(UF_ENGINE_AUTO), "auto"), 0);
	ASSERT_EQ(strcmp(uf_engine_name(UF_ENGINE_UFFD), "uffd"), 0);
	ASSERT_EQ(strcmp(uf_engine_name(UF_ENGINE_UFFD_THREAD), "uffd-thread"), 0);
	ASSERT_EQ(strcmp(uf_engine_name(UF_ENGINE_SIGNAL), "signal"), 0);

	/* forcing by opts.engine; the signal engine is always there */
	int first = -1;
	for (size_t i = 0; i < sizeof(all_engines) / sizeof(all_engines[0]); i++) {
		int e = try_map(all_engines[i]);
		printf("opts.engine=%-12s -> %s\n", uf_engine_name(all_engines[i]),
		       e < 0 ? uf_strerror(e) : uf_engine_name(e));
		if (e < 0) {
			ASSERT_NE(all_engines[i], UF_ENGINE_SIGNAL);
			continue;
		}
		ASSERT_EQ(e, all_engines[i]);
		if (first < 0)
			first = e;
	}
	ASSERT_GE(first, 0);
	/* AUTO takes the first usable one in preference order */
	ASSERT_EQ(try_map(UF_ENGINE_AUTO), first);
	ASSERT_EQ(try_map(99), -EINVAL);
	ASSERT_EQ(try_map(-1), -EINVAL);

	/* forcing by USERFAULT_ENGINE, in a fresh process each */
	for (size_t i = 0; i < sizeof(all_engines) / sizeof(all_engines[0]); i++) {
		int want = all_engines[i];
		int in_proc = try_map(want);
		int got = run_child("map", uf_engine_name(want), UF_ENGINE_AUTO);
		printf("USERFAULT_ENGINE=%-12s -> %s\n", uf_engine_name(want),
		       got < 0 ? uf_strerror(got) : uf_engine_name(got));
		/* an engine named explicitly is used or refused, never replaced */
		ASSERT_EQ(got, in_proc);
	}
	ASSERT_EQ(run_child("map", "auto", UF_ENGINE_AUTO), first);
	ASSERT_EQ(run_child("map", "", UF_ENGINE_AUTO), first);
	ASSERT_EQ(run_child("map", NULL, UF_ENGINE_AUTO), first);
	/* bad values: -EINVAL, not a silent default */
	ASSERT_EQ(run_child("map", "bogus", UF_ENGINE_AUTO), -EINVAL);
	ASSERT_EQ(run_child("map", "UFFD", UF_ENGINE_AUTO), -EINVAL);
	ASSERT_EQ(run_child("map", "signal ", UF_ENGINE_AUTO), -EINVAL);
	/* opts.engine wins over the environment */
	ASSERT_EQ(run_child("map", "uffd", UF_ENGINE_SIGNAL), UF_ENGINE_SIGNAL);
	ASSERT_EQ(run_child("map", "bogus", UF_ENGINE_SIGNAL), UF_ENGINE_SIGNAL);

	/* userfaultfd blocked by seccomp: AUTO falls back to signal */
	int got = run_child("seccomp", NULL, UF_ENGINE_AUTO);
	printf("seccomp without userfaultfd: AUTO -> %s\n",
	       got < 0 ? uf_strerror(got) : uf_engine_name(got));
	ASSERT_EQ(got, UF_ENGINE_SIGNAL);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Number variables (userfault.7): digits only. USERFAULT_THREAD_SPIN_US
 * and USERFAULT_MAX_MAP_COUNT take a whole number; anything else (a sign,
 * a suffix, a fraction, a number too large to read, 0 where at least 1 is
 * needed) is ignored with one warning on stderr, and the region still maps
 * and serves. "-5" as a spin time used to be read as 2^64 - 5 (so the
 * longest spin, 10 ms), "2k" as a VMA limit as 2. Each case runs in a
 * child (the variables are read when a region is mapped) whose stderr is
 * read back. */
#include "harness.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

static int child(const char *engine)
{
	int eng = !strcmp(engine, "signal") ? UF_ENGINE_SIGNAL : UF_ENGINE_UFFD_THREAD;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), size = 16 * ps;
	uf_store *s;
	unsigned char *buf = pattern_store(size, &s);
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = eng;
	uf_region *r;
	int e = uf_map(s, 0, size, PROT_READ, &o, &r);
	if (e == -ENOTSUP || e == -EPERM || e == -ENOSYS)
		return SKIP_EXIT; /* no userfaultfd here: the variable is never read */
	ASSERT_OK(e);
	const unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < size; i += ps)
		ASSERT_EQ(p[i + 7], buf[i + 7]);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(buf);
	return 0;
}

/* Runs the child with name=value; its exit status, and whether its stderr
 * said the variable was ignored. */
static int run(const char *engine, const char *name, const char *value, bool *warned)
{
	int fd[2];
	ASSERT_EQ(pipe(fd), 0);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		setenv(name, value, 1);
		execl("/proc/self/exe", "test_env_numbers", engine, (char *)NULL);
		_exit(99);
	}
	close(fd[1]);
	char out[4096];
	size_t n = read_pipe(fd[0], out, sizeof(out));
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	char want[128];
	snprintf(want, sizeof(want), "userfault: %s ignored", name);
	*warned = strstr(out, want) != NULL;
	if (n && !*warned)
		fprintf(stderr, "%s=\"%s\": child said: %s", name, value, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	test_init(120);
	if (argc == 2)
		return child(argv[1]);
	if (under_qemu())
		SKIP("re-executes itself through /proc/self/exe, which is qemu under qemu-user; tested natively");
	static const struct {
		const char *engine, *name, *value;
		bool ignored;
	} cases[] = {
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "5", false},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "0", false},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "20000", false}, /* counts as 10000 */
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "", false},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "-5", true},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "2k", true},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "1.5", true},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", " 5", true},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "99999999999999999999999", true},
		{"signal", "USERFAULT_MAX_MAP_COUNT", "100000", false},
		{"signal", "USERFAULT_MAX_MAP_COUNT", "0", true},
		{"signal", "USERFAULT_MAX_MAP_COUNT", "+5000", true},
		{"signal", "USERFAULT_MAX_MAP_COUNT", "-1", true},
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "18446744073709551615", false}, /* 2^64 - 1 */
		{"uffd-thread", "USERFAULT_THREAD_SPIN_US", "18446744073709551616", true},
		{"signal", "USERFAULT_MAX_MAP_COUNT", "18446744073709551616", true},
	};
	unsigned skipped = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool warned;
		int rc = run(cases[i].engine, cases[i].name, cases[i].value, &warned);
		if (rc == SKIP_EXIT) {
			skipped++;
			continue;
		}
		if (rc != 0)
			FAIL("%s=\"%s\": the child failed (%d)", cases[i].name, cases[i].value, rc);
		if (warned != cases[i].ignored)
			FAIL("%s=\"%s\": %s", cases[i].name, cases[i].value,
			     cases[i].ignored ? "no warning that it was ignored" : "warned, but it is valid");
	}
	if (skipped)
		SKIP("%u cases need the uffd-thread engine, which this process cannot use", skipped);
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* An unprivileged user with vm.unprivileged_userfaultfd=0 and no access to
 * /dev/userfaultfd: uf_engine_features() says user-mode-only (or no
 * userfaultfd at all), uf_map with AUTO works and picks an engine the
 * kernel allows, and the bytes are right. Runs the check in a child that
 * drops to nobody; the sysctl is only read (changing it would change every
 * process on the machine). */
#include <grp.h>
#include <sys/wait.h>

#include "common.h"

static int child(void)
{
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(3);
	unsigned f = uf_engine_features();
	printf("unprivileged features %#x\n", f);
	if ((f & UF_FEATURE_UFFD) && !(f & UF_FEATURE_UFFD_USER_ONLY))
		FAIL("full userfaultfd reported for nobody with vm.unprivileged_userfaultfd=0");
	size_t ps = page_size(), size = 32 * ps;
	uf_store *s;
	unsigned char *buf = pattern_store(size, &s);
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.max_resident = 8 * ps;
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ | PROT_WRITE, &o, &r));
	unsigned char *p = uf_region_addr(r);
	for (size_t i = 0; i < size; i += 97)
		ASSERT_EQ(p[i], buf[i]);
	p[5 * ps] ^= 0xFF;
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_EQ(buf[5 * ps], (unsigned char)(pattern_byte(5 * ps) ^ 0xFF));
	printf("unprivileged AUTO: engine %s\n", uf_engine_name(uf_region_engine(r)));
	ASSERT_OK(uf_unmap(r, 0));
	/* forcing an engine: works, or a clear errno (never a crash) */
	for (int e = UF_ENGINE_UFFD; e <= UF_ENGINE_SIGNAL; e++) {
		o.engine = e;
		int rc = uf_map(s, 0, size, PROT_READ, &o, &r);
		printf("  %s: %s\n", uf_engine_name(e), rc ? uf_strerror(rc) : "ok");
		if (rc == 0) {
			ASSERT_EQ(((volatile unsigned char *)uf_region_addr(r))[3 * ps + 1],
				  pattern_byte(3 * ps + 1));
			ASSERT_OK(uf_unmap(r, 0));
		} else {
			ASSERT(rc == -EPERM || rc == -EACCES || rc == -ENOSYS || rc == -ENOTSUP);
			ASSERT(e != UF_ENGINE_SIGNAL);
		}
	}
	ASSERT_OK(uf_store_close(s));
	_exit(0);
}

int main(void)
{
	test_init(60);
	if (geteuid() != 0)
		SKIP("needs root to drop to an unprivileged user");
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	if (v != 0)
		SKIP("vm.unprivileged_userfaultfd is %d, not 0 (not changed here: it is machine-wide)", v);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0)
		child();
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	printf("ok\n");
	return 0;
}

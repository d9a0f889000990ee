/* SPDX-License-Identifier: MIT */
/* A memory cgroup limit while filling: a child in a cgroup capped at 64 MiB
 * (no swap) reads 512 MiB through a region whose budget is 256 MiB, four
 * times the limit. The documented outcome (README "Guarantees"): a fault
 * that cannot get memory is an error, or the kernel's OOM killer ends the
 * process; never a hang, a fault loop or wrong bytes. Accepted here: the
 * child killed by SIGKILL with the cgroup's oom_kill count raised, or the
 * error callback called with -ENOMEM (the child then exits 3), within 60 s.
 * The cgroup is a child of this process's own memory cgroup (v2, or v1's
 * memory controller where v2 has none), removed on every way out. Skips
 * when not root, without a usable memory controller, or where swap could
 * make the limit a slow swap storm instead of a failure. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "memlimit.h"

#define LIMIT ((size_t)64 << 20)
#define BUDGET ((size_t)256 << 20)
#define FILL ((size_t)512 << 20)
#define DEADLINE_S 60

static char cg[1200];   /* the test's cgroup directory, "" when none */
static int cg_v2;
static pid_t kid = -1;

static int put(const char *dir, const char *file, const char *val)
{
	char p[1400];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

/* The value after "key " in dir/file (memory.events, memory.oom_control). */
static long long counter(const char *dir, const char *file, const char *key)
{
	char p[1400], line[256];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	long long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ' ')
			v = atoll(line + kl + 1);
	fclose(f);
	return v;
}

static void cleanup(void)
{
	if (kid > 0) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
		kid = -1;
	}
	/* The cgroup empties once its last process is reaped; rmdir can see
	 * it busy for a moment after that. */
	for (int i = 0; cg[0] && i < 200; i++) {
		if (rmdir(cg) == 0 || errno == ENOENT) {
			cg[0] = 0;
			break;
		}
		usleep(10000);
	}
	if (cg[0])
		fprintf(stderr, "warning: could not remove cgroup %s: %s\n", cg, strerror(errno));
}

/* The mount point of the cgroup hierarchy of type fstype ("cgroup2", or
 * "cgroup" with option opt) and this process's path in it. */
static int find_cgroup(const char *fstype, const char *opt, char *mnt, size_t mlen, char *path,
		       size_t plen)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -1;
	char line[1024];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[512], type[64], opts[512];
		/* id parent maj:min root mountpoint options ... - type source superopts */
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mp) != 1 ||
		    sscanf(dash + 3, "%63s %*s %511s", type, opts) != 2)
			continue;
		if (strcmp(type, fstype))
			continue;
		if (opt) {
			char *t, *save = NULL;
			for (t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (!strcmp(t, opt))
					break;
			if (!t)
				continue;
		}
		snprintf(mnt, mlen, "%s", mp);
		found = 1;
	}
	fclose(f);
	if (!found)
		return -1;
	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return -1;
	found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		const char *ctl = c1 + 1;
		bool match = opt ? (strstr(ctl, opt) != NULL) : (*ctl == 0 && !strncmp(line, "0", 1));
		if (match) {
			snprintf(path, plen, "%s", c2 + 1);
			found = 1;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

static bool has_word(const char *file, const char *word)
{
	char buf[512];
	FILE *f = fopen(file, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
		if (!strcmp(t, word))
			return true;
	return false;
}

/* Creates the test's cgroup with the limits; returns a skip reason or NULL. */
static const char *make_cgroup(void)
{
	char mnt[512], path[512], parent[1100];
	char lim[32];
	snprintf(lim, sizeof(lim), "%zu", LIMIT);
	if (find_cgroup("cgroup2", NULL, mnt, sizeof(mnt), path, sizeof(path)) == 0) {
		snprintf(parent, sizeof(parent), "%s%s", mnt, strcmp(path, "/") ? path : "");
		char ctl[1200];
		snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", parent);
		if (has_word(ctl, "memory")) {
			snprintf(ctl, sizeof(ctl), "%s/cgroup.subtree_control", parent);
			/* A non-root cgroup with processes cannot enable a
			 * controller for its children (no internal processes). */
			if (has_word(ctl, "memory") || put(parent, "cgroup.subtree_control", "+memory") == 0) {
				snprintf(cg, sizeof(cg), "%s/uf-test-%d", parent, (int)getpid());
				if (mkdir(cg, 0755)) {
					cg[0] = 0;
					return "cannot create a cgroup v2 child";
				}
				cg_v2 = 1;
				if (put(cg, "memory.max", lim))
					return "cannot set memory.max";
				put(cg, "memory.swap.max", "0"); /* absent without swap accounting */
				return NULL;
			}
		}
	}
	if (find_cgroup("cgroup", "memory", mnt, sizeof(mnt), path, sizeof(path)))
		return "no cgroup v2 memory controller this process can delegate, no cgroup v1 memory hierarchy";
	snprintf(parent, sizeof(parent), "%s%s", mnt, strcmp(path, "/") ? path : "");
	snprintf(cg, sizeof(cg), "%s/uf-test-%d", parent, (int)getpid());
	if (mkdir(cg, 0755)) {
		cg[0] = 0;
		return "cannot create a cgroup v1 memory child";
	}
	if (put(cg, "memory.limit_in_bytes", lim))
		return "cannot set memory.limit_in_bytes";
	if (put(cg, "memory.memsw.limit_in_bytes", lim)) {
		/* Without swap accounting the limit holds only if there is no swap. */
		FILE *f = fopen("/proc/swaps", "r");
		char line[256];
		int lines = 0;
		while (f && fgets(line, sizeof(line), f))
			lines++;
		if (f)
			fclose(f);
		if (lines > 1)
			return "swap is on and cgroup v1 has no swap accounting here (memory.memsw)";
	}
	return NULL;
}


/* In the cgroup: fill. 0: everything read back (the limit did not bite);
 * 3: -ENOMEM through the error callback; uf_map's -ENOMEM: 4. */
static int child(int go)
{
	char c;
	if (read(go, &c, 1) != 1)
		_exit(9);
	catch_signal(SIGBUS, on_bus);
	uf_store *s;
	ASSERT_OK(uf_store_fn(fill_fn, NULL, FILL, &s));
	struct uf_map_opts o = test_map_opts();
	o.max_resident = BUDGET;
	o.on_error = give_up;
	uf_region *r;
	int e = uf_map(s, 0, FILL, PROT_READ | PROT_WRITE, &o, &r);
	if (e) {
		if (e != -ENOMEM)
			FAIL("uf_map in the cgroup = %d (%s), want 0 or -ENOMEM", e, uf_strerror(e));
		printf("uf_map: -ENOMEM\n");
		return 4;
	}
	volatile uint64_t *p = uf_region_addr(r);
	size_t ps = page_size(), n = 0;
	if (sigsetjmp(jb, 1) == 0) {
		for (size_t off = 0; off < FILL; off += ps, n++) {
			if (p[off / 8] != off + 1)
				FAIL("offset %zu reads %llu", off, (unsigned long long)p[off / 8]);
			p[off / 8 + 1] = off; /* dirty: write-back needs memory too */
		}
		printf("all %zu pages read back under the limit\n", n);
		ASSERT_OK(uf_unmap(r, 0));
		return 0;
	}
	if (cb_err != -ENOMEM)
		FAIL("fault after %zu pages: callback error %d (%s), want -ENOMEM", n, cb_err,
		     uf_strerror(cb_err));
	printf("fault after %zu pages: -ENOMEM through the error callback\n", n);
	return 3;
}

int main(void)
{
	test_init(120);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("a sanitizer runtime's shadow memory is charged to the cgroup too: the limit would hit it first");
#endif
	if (under_qemu())
		SKIP("qemu-user: the emulator's own memory is charged to the cgroup");
	if (getenv("UF_TEST_VALGRIND"))
		SKIP("valgrind's own memory is charged to the cgroup");
	if (geteuid() != 0)
		SKIP("not root: cannot create a memory cgroup");
	atexit(cleanup);
	const char *why = make_cgroup();
	if (why) {
		cleanup();
		SKIP("%s", why);
	}
	const char *evfile = cg_v2 ? "memory.events" : "memory.oom_control";
	long long oom0 = counter(cg, evfile, "oom_kill");

	int pp[2];
	ASSERT_EQ(pipe(pp), 0);
	kid = fork();
	ASSERT(kid >= 0);
	if (kid == 0) {
		cg[0] = 0; /* the parent removes it */
		close(pp[1]);
		_exit(child(pp[0]));
	}
	close(pp[0]);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)kid);
	int e = put(cg, "cgroup.procs", pid);
	if (e)
		FAIL("moving the child into %s: %s", cg, strerror(-e));
	ASSERT_EQ(write(pp[1], "g", 1), 1);
	close(pp[1]);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int st = 0;
	for (;;) {
		pid_t w = waitpid(kid, &st, WNOHANG);
		ASSERT(w >= 0);
		if (w == kid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > DEADLINE_S)
			FAIL("the child neither finished nor died in %d s under a %zu MiB limit (hang or fault loop)",
			     DEADLINE_S, LIMIT >> 20);
		usleep(20000);
	}
	kid = -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	long long oom1 = counter(cg, evfile, "oom_kill");
	const char *eng = getenv("USERFAULT_ENGINE") ? getenv("USERFAULT_ENGINE") : "auto";
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
		if (oom1 >= 0 && oom0 >= 0 && oom1 <= oom0)
			FAIL("child killed by SIGKILL, but the cgroup's oom_kill count did not rise (%lld)", oom1);
		printf("%s: the kernel's OOM killer ended the child after %.1f s (oom_kill %lld -> %lld)\n",
		       eng, secs, oom0, oom1);
	} else if (WIFEXITED(st) && (WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 4)) {
		printf("%s: %s -ENOMEM after %.1f s\n", eng,
		       WEXITSTATUS(st) == 3 ? "the error callback got" : "uf_map returned", secs);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		FAIL("all of %zu MiB at a %zu MiB budget read back under a %zu MiB limit: the limit did not hold?",
		     FILL >> 20, BUDGET >> 20, LIMIT >> 20);
	} else {
		FAIL("child status %#x (%s %d), want an OOM kill or -ENOMEM", st,
		     WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	cleanup();
	if (cg[0])
		FAIL("cgroup not removed");
	return 0;
}

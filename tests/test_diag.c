/* SPDX-License-Identifier: MIT */
/*
 * test_diag.c - USERFAULT_VERBOSE, USERFAULT_STATS, USERFAULT_PUBLISH with
 * ufstat, and uf_stats_init.
 *
 * Each part runs this program again as a child with the variable set and
 * reads what it printed: VERBOSE gives one line per decision (engine,
 * budget, read-ahead, write tracking) for each region; STATS a line at
 * uf_unmap and one at exit for a region left mapped; PUBLISH a 0600 file
 * /dev/shm/userfault-PID that build/tools/ufstat reads while the child
 * faults (faults/s > 0), gone once the child has exited.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "publish.h"

#define RLEN (1u << 20)

/* The pattern buffer stays allocated for the store's life; the children
 * exit with it, test_stats_init frees it after closing the store. */
static unsigned char *g_last_buf;

static uf_region *map_len(uf_store **s, size_t len, int prot, unsigned flags, size_t budget)
{
	g_last_buf = pattern_store(len, s);
	struct uf_map_opts o = test_map_opts();
	o.flags = flags;
	o.max_resident = budget;
	uf_region *r;
	ASSERT_OK(uf_map(*s, 0, len, prot, &o, &r));
	return r;
}

static uf_region *map_one(uf_store **s, unsigned flags, size_t budget)
{
	return map_len(s, RLEN, PROT_READ | PROT_WRITE, flags, budget);
}

static uint64_t touch(uf_region *r)
{
	volatile unsigned char *p = uf_region_addr(r);
	uint64_t sum = 0;
	for (size_t i = 0; i < RLEN; i += 4096)
		sum += p[i];
	p[0] = 1;
	return sum;
}

static int child(const char *mode)
{
	uf_store *s1, *s2;
	if (!strcmp(mode, "verbose") || !strcmp(mode, "stats")) {
		/* a budget above the region (capped), no read-ahead */
		uf_region *a = map_one(&s1, UF_MAP_NO_READAHEAD, 4 * RLEN);
		uf_region *b = map_one(&s2, 0, 0);
		touch(a);
		touch(b);
		ASSERT_OK(uf_unmap(a, 0));
		return 0; /* b stays mapped: STATS reports it at exit */
	}
	if (!strcmp(mode, "huge") || !strcmp(mode, "huge-off")) {
		/* read-only, 4 MiB, the budget holding it: huge-page windows */
		if (!strcmp(mode, "huge-off"))
			setenv("USERFAULT_THP", "0", 1);
		ASSERT_OK(uf_unmap(map_len(&s1, 4 * RLEN, PROT_READ, 0, 0), 0));
		return 0;
	}
	if (!strcmp(mode, "publish")) {
		uf_region *a = map_one(&s1, 0, RLEN / 4); /* faults go on: it evicts */
		printf("%d\n", (int)getpid());
		for (;;) /* until the parent closes our stdin */
		{
			touch(a);
			char c;
			fcntl(0, F_SETFL, O_NONBLOCK);
			if (read(0, &c, 1) == 0)
				break;
		}
		return 0;
	}
	FAIL("unknown mode %s", mode);
}

/* Runs "test_diag child MODE" with env; returns its stderr (or stdout if
 * want_stdout) in out. For publish, the child's stdin is a pipe the caller
 * closes through *keep. */
static pid_t spawn(const char *mode, const char *env, int *outfd, int *infd)
{
	int o[2], i[2];
	ASSERT_EQ(pipe(o), 0);
	ASSERT_EQ(pipe(i), 0);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(i[0], 0);
		dup2(o[1], !strcmp(mode, "publish") ? 1 : 2);
		close(o[0]);
		close(i[1]);
		putenv((char *)env);
		execl(self_exe(), "test_diag", "child", mode, (char *)NULL);
		_exit(99);
	}
	close(o[1]);
	close(i[0]);
	*outfd = o[0];
	*infd = i[1];
	return pid;
}

static void slurp(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void run_to_end(const char *mode, const char *env, char *buf, size_t len)
{
	int out, in;
	pid_t pid = spawn(mode, env, &out, &in);
	close(in);
	slurp(out, buf, len);
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("child %s: status %#x; it said:\n%s", mode, st, buf);
}

static void test_verbose(void)
{
	static char buf[16384];
	run_to_end("verbose", "USERFAULT_VERBOSE=1", buf, sizeof(buf));
	printf("%s", buf);
	ASSERT_EQ(count(buf, ": engine "), 2);
	ASSERT_EQ(count(buf, ": budget "), 2);
	ASSERT_EQ(count(buf, ": read-ahead "), 2);
	ASSERT_EQ(count(buf, ": write tracking: "), 2);
	ASSERT(strstr(buf, "capped to the region's 256 blocks") != NULL);
	ASSERT(strstr(buf, "read-ahead off: UF_MAP_NO_READAHEAD") != NULL);
	ASSERT(strstr(buf, "default: min(length, RAM/2)") != NULL);
	ASSERT_EQ(count(buf, "userfault: stats"), 0);
}

/* VERBOSE names huge-page windows where a region has them: a read-only
 * region under the uffd engine (uf_map(3)), unless USERFAULT_THP=0. */
static void test_verbose_huge(void)
{
	static char buf[16384];
	run_to_end("huge", "USERFAULT_VERBOSE=1", buf, sizeof(buf));
	printf("%s", buf);
	/* The engine the child got (auto picks the first it may use). */
	const char *off = getenv("USERFAULT_THP");
	bool want = strstr(buf, ": engine uffd ") && thp_on_request() && !(off && !strcmp(off, "0"));
	ASSERT_EQ(count(buf, ": huge pages on: a sequential run reads whole 2 MiB huge pages"),
		  want && sysconf(_SC_PAGESIZE) == 4096 ? 1 : 0);
	ASSERT_EQ(count(buf, ": huge pages on"), want ? 1 : 0);
	run_to_end("huge-off", "USERFAULT_VERBOSE=1", buf, sizeof(buf));
	ASSERT_EQ(count(buf, ": huge pages on"), 0);
	ASSERT_EQ(count(buf, ": engine "), 1);
}

/* A switch is on for "1" only: other values are ignored (userfault.7). */
static void test_switch_values(void)
{
	static char buf[16384];
	static const char *const off[] = {"USERFAULT_VERBOSE=no", "USERFAULT_VERBOSE=0",
					  "USERFAULT_VERBOSE=", "USERFAULT_VERBOSE=true"};
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		run_to_end("verbose", off[i], buf, sizeof(buf));
		if (count(buf, ": engine ") != 0)
			FAIL("%s printed:\n%s", off[i], buf);
	}
	run_to_end("stats", "USERFAULT_STATS=off", buf, sizeof(buf));
	ASSERT_EQ(count(buf, "userfault: stats"), 0);
}

static void test_stats(void)
{
	static char buf[16384];
	run_to_end("stats", "USERFAULT_STATS=1", buf, sizeof(buf));
	printf("%s", buf);
	ASSERT_EQ(count(buf, "userfault: stats at unmap: "), 1);
	ASSERT_EQ(count(buf, "userfault: stats at exit: "), 1);
	/* Each region had one block written (touch): the unmap and the exit
	 * write-back wrote it before their lines were printed. */
	ASSERT_EQ(count(buf, " 1 write-backs,"), 2);
	ASSERT_EQ(count(buf, " 0 dirty;"), 2);
	ASSERT_EQ(count(buf, " 256 loads,"), 2); /* every page read once, no read-ahead past the end */
	ASSERT_EQ(count(buf, "time in the store (all its regions): read "), 2);
	ASSERT_EQ(count(buf, ": engine "), 0); /* VERBOSE is another variable */
}

static void test_publish(void)
{
	if (under_qemu())
		SKIP("ufstat part: a target binary cannot exec another under qemu-user");
	const char *build = getenv("BUILD");
	char ufstat[4096];
	snprintf(ufstat, sizeof(ufstat), "%s/tools/ufstat", build && *build ? build : "build");
	if (access(ufstat, X_OK))
		SKIP("%s not built", ufstat);
	/* Files left by publishers that died: the first that is gone for
	 * good (no such pid, not refreshed for 10 s) is removed when the
	 * next process publishes; one refreshed just now (a publisher in
	 * another pid namespace) and one whose pid lives stay. */
	pid_t dead[2];
	for (int i = 0; i < 2; i++) {
		dead[i] = fork();
		ASSERT(dead[i] >= 0);
		if (dead[i] == 0)
			_exit(0);
		ASSERT_EQ(waitpid(dead[i], NULL, 0), dead[i]);
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	const struct {
		pid_t pid;
		uint64_t age_ns;
		bool swept;
	} fake[] = {{dead[0], 10000000000ull, true}, {dead[1], 0, false}, {getpid(), 10000000000ull, false}};
	char fpath[3][64];
	for (int i = 0; i < 3; i++) {
		snprintf(fpath[i], sizeof(fpath[i]), "/dev/shm/userfault-%d", (int)fake[i].pid);
		struct uf__pub h;
		memset(&h, 0, sizeof(h));
		memcpy(h.magic, UF__PUB_MAGIC, sizeof(UF__PUB_MAGIC));
		h.size = sizeof(h);
		h.pid = fake[i].pid;
		h.time_ns = now_ns - fake[i].age_ns;
		int fd = open(fpath[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ASSERT(fd >= 0);
		ASSERT_EQ(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
		close(fd);
	}
	int out, in;
	pid_t pid = spawn("publish", "USERFAULT_PUBLISH=1", &out, &in);
	char line[64] = "";
	FILE *f = fdopen(out, "r");
	ASSERT(f && fgets(line, sizeof(line), f));
	ASSERT_EQ(atoi(line), (int)pid);
	bool gone[3];
	for (int i = 0; i < 3; i++)
		gone[i] = access(fpath[i], F_OK) != 0;
	for (int i = 0; i < 3; i++)
		unlink(fpath[i]);
	for (int i = 0; i < 3; i++)
		if (gone[i] != fake[i].swept)
			FAIL("%s (%s, %s): %s", fpath[i], fake[i].pid == getpid() ? "live pid" : "dead pid",
			     fake[i].age_ns ? "10 s old" : "fresh", gone[i] ? "removed" : "left");
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/userfault-%d", (int)pid);
	struct stat st;
	ASSERT_EQ(lstat(path, &st), 0);
	ASSERT_EQ(st.st_mode & 07777, 0600);
	ASSERT(S_ISREG(st.st_mode));
	ASSERT_EQ(st.st_uid, geteuid());

	char cmd[4200], text[8192];
	snprintf(cmd, sizeof(cmd), "%s -i 0.6 %d", ufstat, (int)pid);
	FILE *p = popen(cmd, "r");
	ASSERT(p);
	size_t n = fread(text, 1, sizeof(text) - 1, p);
	text[n] = 0;
	ASSERT_EQ(pclose(p), 0);
	printf("%s", text);
	/* header + one region row: base, size, engine, faults/s, ... */
	char *row = strstr(text, "\n0x");
	ASSERT(row && strstr(text, "faults/s"));
	char base[32], size[16], eng[16];
	double fps = -1;
	ASSERT_EQ(sscanf(row + 1, "%31s %15s %15s %lf", base, size, eng, &fps), 4);
	ASSERT_GT(fps, 0);
	ASSERT(!strcmp(size, "1024K"));
	/* Below the publishing period (250 ms): taken as 0.25, every table
	 * has rates (ufstat(1)). */
	snprintf(cmd, sizeof(cmd), "%s -i 0.05 -n 3 %d", ufstat, (int)pid);
	p = popen(cmd, "r");
	ASSERT(p);
	n = fread(text, 1, sizeof(text) - 1, p);
	text[n] = 0;
	ASSERT_EQ(pclose(p), 0);
	int tables = 0;
	for (char *q = strstr(text, "\n0x"); q; q = strstr(q + 1, "\n0x")) {
		fps = -1;
		ASSERT_EQ(sscanf(q + 1, "%31s %15s %15s %lf", base, size, eng, &fps), 4);
		ASSERT_GT(fps, 0);
		tables++;
	}
	ASSERT_EQ(tables, 3);
	/* 0 is below it too (ufstat exited 2 for it); a negative interval
	 * or one that is not a number is a usage error. */
	snprintf(cmd, sizeof(cmd), "%s -i 0 -n 2 %d", ufstat, (int)pid);
	p = popen(cmd, "r");
	ASSERT(p);
	n = fread(text, 1, sizeof(text) - 1, p);
	text[n] = 0;
	ASSERT_EQ(pclose(p), 0);
	tables = 0;
	for (char *q = strstr(text, "\n0x"); q; q = strstr(q + 1, "\n0x"))
		tables++;
	ASSERT_EQ(tables, 2);
	/* Above a day (1e30 overflowed time_t); a count that is not a whole
	 * number from 1 ("2x" was read as 2). */
	const char *bad[] = {"-i -1", "-i -0.1", "-i x", "-i 0.5s", "-i ''", "-i 1e30", "-i 86401",
			     "-n 2x", "-n 0", "-n -1", "-n ''", "-n 99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s %s %d 2>/dev/null", ufstat, bad[i], (int)pid);
		int rc = system(cmd);
		if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 2)
			FAIL("ufstat %s: status %#x, want exit 2", bad[i], rc);
	}

	close(in);
	fclose(f);
	int ws;
	ASSERT_EQ(waitpid(pid, &ws, 0), pid);
	ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	ASSERT(access(path, F_OK) != 0); /* unlinked at exit */
	snprintf(cmd, sizeof(cmd), "%s %d 2>/dev/null", ufstat, (int)getpid());
	ASSERT(system(cmd) != 0); /* we do not publish: ufstat says so and fails */
}

static void test_stats_init(void)
{
	struct uf_stats st;
	memset(&st, 0xa5, sizeof(st));
	uf_stats_init(&st);
	ASSERT_EQ(st.struct_size, sizeof(st));
	ASSERT_EQ(st.faults, 0);
	uf_stats_init(NULL); /* no crash */
	uf_store *s;
	uf_region *r = map_one(&s, 0, 0);
	touch(r);
	ASSERT_OK(uf_stats(r, &st));
	ASSERT_GT(st.faults, 0);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(g_last_buf);
}

int main(int argc, char **argv)
{
	test_init(120);
	if (argc == 3 && !strcmp(argv[1], "child"))
		return child(argv[2]);
	if (under_qemu())
		SKIP("re-executes itself through /proc/self/exe, which qemu-user cannot");
	test_stats_init();
	test_verbose();
	test_verbose_huge();
	test_switch_values();
	test_stats();
	test_publish();
	printf("ok\n");
	return 0;
}

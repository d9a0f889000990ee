/* SPDX-License-Identifier: MIT */
/*
 * test_ufcatch.c - ufcatch and libuserfault-catch.so on real crashes.
 *
 * Runs tests/prog_crash under `ufcatch -o FILE` for each kind of crash and
 * checks that the report names the cause, has a symbolized backtrace, and
 * that the exit status is the original signal. Also: exit codes pass
 * through, the report goes to stderr without -o, and a core dump still
 * happens when it would without the reporter.
 *
 * Binaries are found in $BUILD (default "build"). Under an emulator
 * (RUNNER="qemu-aarch64 -L ...", no binfmt_misc) a target binary cannot exec
 * another target binary, so the reporter is preloaded through the runner
 * (-E LD_PRELOAD=...) and ufcatch's own status handling is checked with
 * host programs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static char g_ufcatch[PATH_MAX + 32], g_prog[PATH_MAX + 32], g_lib[PATH_MAX + 32], g_report[64];
static char *g_runner[16]; /* RUNNER split into words; empty when native */
static int g_nrunner;

static bool exists(const char *p) { return access(p, R_OK) == 0; }

static void find_binaries(void)
{
	const char *build = getenv("BUILD");
	if (!build || !*build)
		build = "build";
	char dir[PATH_MAX];
	if (!realpath(build, dir))
		SKIP("BUILD=%s: %s", build, strerror(errno));
	snprintf(g_ufcatch, sizeof(g_ufcatch), "%s/tools/ufcatch", dir);
	snprintf(g_prog, sizeof(g_prog), "%s/tests/prog_crash", dir);
	snprintf(g_lib, sizeof(g_lib), "%s/libuserfault-catch.so", dir);
	if (!exists(g_ufcatch) || !exists(g_prog) || !exists(g_lib))
		SKIP("ufcatch, prog_crash or libuserfault-catch.so missing in %s", dir);
	snprintf(g_report, sizeof(g_report), "/tmp/uf-catch-report-%d", (int)getpid());

	static char runner[512];
	const char *r = getenv("RUNNER");
	if (r && *r) {
		snprintf(runner, sizeof(runner), "%s", r);
		for (char *tok = strtok(runner, " \t"); tok && g_nrunner < 12; tok = strtok(NULL, " \t"))
			g_runner[g_nrunner++] = tok;
	}
}

struct result {
	int status;
	char out[65536]; /* stdout + stderr */
	char report[65536];
};

static void slurp(int fd, char *buf, size_t len)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || n + (size_t)r >= len - 1) {
			if (r > 0)
				n += (size_t)r;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = 0;
}

/* Runs argv (NULL-terminated) with extra environment "K=V" entries, in cwd
 * if given, with core dumps allowed if core is set. */
static bool g_no_reader; /* run(): the output pipe has no reader (closed first) */

static void run(char *const argv[], const char *const env[], const char *cwd, bool core,
		struct result *res)
{
	int p[2];
	if (pipe(p))
		FAIL("pipe: %s", strerror(errno));
	if (g_no_reader)
		close(p[0]);
	unlink(g_report);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (!g_no_reader)
			close(p[0]);
		close(p[1]);
		signal(SIGPIPE, SIG_DFL);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		struct rlimit rl;
		if (!getrlimit(RLIMIT_CORE, &rl)) {
			rl.rlim_cur = core ? rl.rlim_max : 0;
			setrlimit(RLIMIT_CORE, &rl);
		}
		if (cwd && chdir(cwd))
			_exit(125);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	res->out[0] = 0;
	if (!g_no_reader) {
		slurp(p[0], res->out, sizeof(res->out));
		close(p[0]);
	}
	if (waitpid(pid, &res->status, 0) != pid)
		FAIL("waitpid: %s", strerror(errno));
	res->report[0] = 0;
	int fd = open(g_report, O_RDONLY);
	if (fd >= 0) {
		slurp(fd, res->report, sizeof(res->report));
		close(fd);
	}
	unlink(g_report);
}

#define EXPECT(text, s)                                                          \
	do {                                                                     \
		if (!strstr((text), (s)))                                        \
			FAIL("%s: expected \"%s\" in:\n%s", what, (s), (text));  \
	} while (0)

static void expect_signal(const char *what, const struct result *r, int sig)
{
	if (!WIFSIGNALED(r->status))
		FAIL("%s: expected death by signal %d, got status 0x%x (exit %d)\n%s", what, sig,
		     r->status, WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1, r->out);
	if (WTERMSIG(r->status) != sig)
		FAIL("%s: expected signal %d, got %d\n%s", what, sig, WTERMSIG(r->status), r->out);
}

/* Runs prog_crash CASE with the reporter, the report going to g_report. */
static void crash(const char *kase, struct result *r)
{
	char *argv[24];
	int n = 0;
	if (g_nrunner) {
		/* No exec of target binaries from the emulated ufcatch: preload
		 * through the runner instead. */
		static char pre[PATH_MAX + 64], file[PATH_MAX + 64];
		snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", g_lib);
		snprintf(file, sizeof(file), "USERFAULT_CATCH_FILE=%s", g_report);
		for (int i = 0; i < g_nrunner; i++)
			argv[n++] = g_runner[i];
		argv[n++] = "-E";
		argv[n++] = pre;
		argv[n++] = "-E";
		argv[n++] = file;
	} else {
		argv[n++] = g_ufcatch;
		argv[n++] = "-o";
		argv[n++] = g_report;
		argv[n++] = "--";
	}
	argv[n++] = g_prog;
	argv[n++] = (char *)kase;
	argv[n] = NULL;
	run(argv, NULL, NULL, false, r);
	printf("--- %s (status 0x%x)\n%s", kase, r->status, r->report);
}

static bool has_fault_record(const char *text) { return !strstr(text, "Fault record: none"); }

/* Checks the parts of every report. */
static void expect_report(const char *what, const struct result *r, int sig, const char *func)
{
	expect_signal(what, r, sig);
	EXPECT(r->report, "userfault-catch: ");
	EXPECT(r->report, "userfault-catch: backtrace:");
	EXPECT(r->report, "#1 0x");
	if (func)
		EXPECT(r->report, func);
}

static void test_null_read(void)
{
	const char *what = "null-read";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGSEGV, "#0 0x");
	EXPECT(r.report, "SIGSEGV");
	EXPECT(r.report, "NULL pointer dereference (offset 16)");
	EXPECT(r.report, " in crash_null_read+");
	if (has_fault_record(r.report))
		EXPECT(r.report, "A read of address 0x10");
	EXPECT(r.report, " in main+");
}

static void test_write_ro(void)
{
	const char *what = "write-ro";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGSEGV, " in crash_write_ro+");
	EXPECT(r.report, "SEGV_ACCERR");
	if (has_fault_record(r.report)) {
		EXPECT(r.report, "A write to address");
		EXPECT(r.report, "A write to a read-only mapping");
	} else {
		EXPECT(r.report, "do not allow this access");
	}
}

static void test_prot_none(void)
{
	const char *what = "prot-none";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGSEGV, " in crash_prot_none+");
	EXPECT(r.report, "PROT_NONE mapping");
}

static void test_stack_overflow(void)
{
	const char *what = "stack-overflow";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGSEGV, " in crash_stack_overflow+");
	/* qemu-user's guest main stack is a plain mapping with a guard page. */
	EXPECT(r.report, g_nrunner ? "Stack overflow: the address is in the guard page below the "
				     "main thread's stack"
				   : "Stack overflow of the main thread");
	EXPECT(r.report, "the frame above repeats");
}

static void test_thread_overflow(void)
{
	const char *what = "thread-overflow";
	static struct result r;
	crash(what, &r);
	/* Reported at all only because the reporter gives new threads an
	 * alternate signal stack. */
	expect_report(what, &r, SIGSEGV, " in crash_stack_overflow+");
	EXPECT(r.report, "Stack overflow: the address is in the guard page below this thread's stack");
}

static void test_jump_unmapped(void)
{
	const char *what = "jump-unmapped";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGSEGV, " in crash_jump_unmapped+");
	EXPECT(r.report, "An instruction fetch from 0x");
	EXPECT(r.report, "The address is not mapped");
	EXPECT(r.report, "#0 0x");
	EXPECT(r.report, "(not mapped)");
}

static void test_abort(void)
{
	const char *what = "abort";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGABRT, " in crash_abort+");
	EXPECT(r.report, "SIGABRT");
	EXPECT(r.report, "abort() was called");
}

static void test_fpe(void)
{
	const char *what = "fpe";
	static struct result r;
	crash(what, &r);
	expect_report(what, &r, SIGFPE, " in crash_fpe+");
#if defined(__x86_64__)
	EXPECT(r.report, "FPE_INTDIV");
	EXPECT(r.report, "integer divide by zero");
#else
	EXPECT(r.report, "SIGFPE"); /* raised: aarch64 division does not trap */
#endif
}

static void test_trap(void)
{
	const char *what = "trap";
	static struct result r;
	crash(what, &r);
#if defined(__x86_64__)
	expect_report(what, &r, SIGILL, " in crash_trap+"); /* ud2 */
	EXPECT(r.report, "SIGILL");
#else
	expect_report(what, &r, SIGTRAP, " in crash_trap+"); /* brk */
	EXPECT(r.report, "SIGTRAP");
#endif
}

/* A program using libuserfault: its fault handler passes the store error on
 * to the reporter, whose report uses the program's own uf_explain (only
 * that one knows the program's regions). */
static void test_region_sigbus(void)
{
	const char *what = "region-sigbus";
	static struct result r;
	crash(what, &r);
	if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 4) {
		printf("(no userfault engine here: region case not checked)\n");
		return;
	}
	if (g_nrunner && strstr(r.out, "cpu == current_cpu")) {
		/* qemu-user 7.x aborts when a process queues itself a SIGBUS with
		 * a fault si_code (rt_tgsigqueueinfo), which is how a handler
		 * chained by libuserfault is made to die with the original
		 * siginfo. The report itself must still be right. */
		printf("(emulator cannot deliver a re-queued fault signal: status not checked)\n");
		EXPECT(r.report, "userfault-catch: backtrace:");
	} else {
		expect_report(what, &r, SIGBUS, " in crash_region_sigbus+");
	}
	EXPECT(r.report, "BUS_ADRERR");
	EXPECT(r.report, "The address is inside a userfault region");
	EXPECT(r.report, "its store could not provide this block");
}

/* ufcatch's own failures: the exit codes ufcatch(1) lists, each with a word
 * on stderr. */
static void expect_own_failure(const char *what, char *const argv[], int code, const char *text)
{
	static struct result r;
	run(argv, NULL, NULL, false, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != code)
		FAIL("%s: expected exit %d, got status 0x%x\n%s", what, code, r.status, r.out);
	EXPECT(r.out, text);
}

static void test_own_failures(void)
{
	if (g_nrunner)
		return; /* the runner's own exit codes would stand in between */
	char noexec[] = "/tmp/uf-noexec.XXXXXX";
	int fd = mkstemp(noexec);
	ASSERT(fd >= 0);
	close(fd);
	char *no_prog[] = {g_ufcatch, NULL};
	char *o_alone[] = {g_ufcatch, "-o", NULL};
	char *unknown[] = {g_ufcatch, "-x", g_prog, NULL};
	char *missing[] = {g_ufcatch, "--", "/nonexistent/program", NULL};
	char *o_dir[] = {g_ufcatch, "-o", "/tmp", "--", g_prog, "exit", "0", NULL};
	char *not_exec[] = {g_ufcatch, "--", noexec, NULL};
	expect_own_failure("no program", no_prog, 2, "usage: ufcatch");
	expect_own_failure("-o alone", o_alone, 2, "option -o needs a file name");
	expect_own_failure("unknown option", unknown, 2, "unknown option -x");
	expect_own_failure("missing program", missing, 127, "/nonexistent/program");
	expect_own_failure("-o a directory", o_dir, 127, "/tmp");
	expect_own_failure("not executable", not_exec, 126, "Permission denied");
	unlink(noexec);
}

/* Exit codes pass through untouched, and nothing is reported. */
static void test_exit_status(void)
{
	const char *what = "exit status";
	static struct result r;
	char *argv[] = {g_ufcatch, "--", g_prog, "exit", "3", NULL};
	char *host[] = {g_ufcatch, "--", "/bin/sh", "-c", "exit 3", NULL};
	char *argv_r[24];
	if (g_nrunner) { /* the emulated ufcatch runs a host program */
		int n = 0;
		for (int i = 0; i < g_nrunner; i++)
			argv_r[n++] = g_runner[i];
		for (int i = 0; host[i]; i++)
			argv_r[n++] = host[i];
		argv_r[n] = NULL;
	}
	run(g_nrunner ? argv_r : argv, NULL, NULL, false, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 3)
		FAIL("%s: expected exit 3, got status 0x%x\n%s", what, r.status, r.out);
	if (strstr(r.out, "userfault-catch: SIG"))
		FAIL("%s: a report without a crash:\n%s", what, r.out);
}

/* ufcatch dies of the signal its program died of (a host program under an
 * emulator: it exercises ufcatch's status handling only). */
static void test_signal_status(void)
{
	const char *what = "signal status";
	static struct result r;
	if (!g_nrunner)
		return; /* covered natively by every crash test */
	char *argv[24];
	int n = 0;
	for (int i = 0; i < g_nrunner; i++)
		argv[n++] = g_runner[i];
	argv[n++] = g_ufcatch;
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = "kill -SEGV $$";
	argv[n] = NULL;
	run(argv, NULL, NULL, false, &r);
	expect_signal(what, &r, SIGSEGV);
}

/* Without -o the report goes to stderr. */
static void test_stderr(void)
{
	const char *what = "stderr";
	static struct result r;
	if (g_nrunner)
		return; /* the runner path always names a file */
	char *argv[] = {g_ufcatch, g_prog, "null-read", NULL}; /* no "--" needed */
	run(argv, NULL, NULL, false, &r);
	expect_signal(what, &r, SIGSEGV);
	EXPECT(r.out, "userfault-catch: SIGSEGV");
	EXPECT(r.out, "NULL pointer dereference");
	EXPECT(r.out, "userfault-catch: backtrace:");
}

/* stderr a pipe nobody reads (ufcatch prog 2>&1 | head, head gone): the
 * report's write must not turn the death into SIGPIPE. */
static void test_stderr_closed_pipe(void)
{
	const char *what = "stderr a closed pipe";
	static struct result r;
	if (g_nrunner)
		return; /* the runner path always names a file */
	char *argv[] = {g_ufcatch, "--", g_prog, "null-read", NULL};
	g_no_reader = true;
	run(argv, NULL, NULL, false, &r);
	g_no_reader = false;
	expect_signal(what, &r, SIGSEGV);
}

/* The reporter must not stop a core dump that would happen without it. */
static void test_core_dump(void)
{
	const char *what = "core dump";
	static struct result r;
	if (g_nrunner)
		return; /* the emulator writes its own cores */
	char dir[] = "/tmp/uf-catch-core-XXXXXX";
	if (!mkdtemp(dir))
		FAIL("mkdtemp: %s", strerror(errno));
	char *argv[] = {g_prog, "null-read", NULL};
	run(argv, NULL, dir, true, &r);
	expect_signal(what, &r, SIGSEGV);
	bool baseline = WCOREDUMP(r.status);

	static char pre[PATH_MAX + 64];
	snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", g_lib);
	const char *env[] = {pre, NULL};
	run(argv, env, dir, true, &r);
	expect_signal(what, &r, SIGSEGV);
	EXPECT(r.out, "userfault-catch: SIGSEGV");
	if (!baseline)
		printf("(no core dump even without the reporter: core dumps disabled here)\n");
	else if (!WCOREDUMP(r.status))
		FAIL("%s: the program dumps core without the reporter, not with it", what);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
}

int main(void)
{
	test_init(170);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* prog_crash is instrumented too: the sanitizer runtime insists on being
	 * first in the library list and reports crashes itself. */
	SKIP("sanitizer build: the crash reporter cannot be preloaded ahead of its runtime");
#endif
	find_binaries();
	test_exit_status();
	test_own_failures();
	test_signal_status();
	test_null_read();
	test_write_ro();
	test_prot_none();
	test_jump_unmapped();
	test_stack_overflow();
	test_thread_overflow();
	test_abort();
	test_fpe();
	test_trap();
	test_region_sigbus();
	test_stderr();
	test_stderr_closed_pipe();
	test_core_dump();
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * ufcatch - run a program with the userfault crash reporter preloaded.
 *
 *   ufcatch [-o FILE] [--] PROGRAM [ARG...]
 *
 * Runs PROGRAM with libuserfault-catch.so added to LD_PRELOAD. If it dies of
 * a fatal signal, the reporter prints why (uf_explain) and a backtrace. We
 * wait for it and end the same way: its exit code, or the same signal
 * raised against ourselves, so shells and scripts see no difference.
 *
 * The library is found through USERFAULT_CATCH_LIB, next to the binary in
 * the build tree (BUILD/tools/ufcatch -> BUILD/libuserfault-catch.so), in
 * UF_LIBDIR_REL relative to the binary and then UF_LIBDIR (both set by
 * mk/install.mk for the installed copy: BINDIR to LIBDIR, and LIBDIR), and
 * finally by name through the dynamic linker's search path.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CATCH_LIB "libuserfault-catch.so"

static pid_t g_child;

static void usage(FILE *f)
{
	fprintf(f, "usage: ufcatch [-o FILE] [--] PROGRAM [ARG...]\n"
		   "Runs PROGRAM with the userfault crash reporter preloaded. On a crash it\n"
		   "prints the cause (signal, address, mapping, access type) and a backtrace\n"
		   "to stderr, or to FILE with -o. Exits the way PROGRAM did.\n"
		   "Environment: USERFAULT_CATCH_LIB overrides the path of " CATCH_LIB ".\n");
}

static int readable(const char *path) { return access(path, R_OK) == 0; }

/* Writes the reporter's absolute path into out; 0 on success. */
static int find_lib(char *out, size_t len)
{
	const char *env = getenv("USERFAULT_CATCH_LIB");
	if (env && *env) {
		if (!readable(env)) {
			fprintf(stderr, "ufcatch: USERFAULT_CATCH_LIB=%s: %s\n", env, strerror(errno));
			return -1;
		}
		if (!realpath(env, out))
			snprintf(out, len, "%s", env);
		return 0;
	}
	/* Next to the binary (the build tree: BUILD/tools/ufcatch uses
	 * BUILD/libuserfault-catch.so), then the install's own library
	 * directory seen from its binary directory, so a moved or staged
	 * (DESTDIR) install still finds its own copy. */
	static const char *const rel[] = {
		"/../",
#ifdef UF_LIBDIR_REL
		"/" UF_LIBDIR_REL "/",
#endif
	};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				char cand[PATH_MAX + 64];
				snprintf(cand, sizeof(cand), "%s%s" CATCH_LIB, exe, rel[i]);
				if (readable(cand) && realpath(cand, out))
					return 0;
			}
		}
	}
#ifdef UF_LIBDIR
	/* The absolute LIBDIR the install was made for. */
	{
		char cand[PATH_MAX + 64];
		snprintf(cand, sizeof(cand), "%s/" CATCH_LIB, UF_LIBDIR);
		if (readable(cand) && realpath(cand, out))
			return 0;
	}
#endif
	/* No slash: the dynamic linker searches its usual directories. */
	snprintf(out, len, "%s", CATCH_LIB);
	return 0;
}

/* The file execvp would run, for the static-binary warning; NULL if unknown. */
static const char *resolve(const char *prog, char *buf, size_t len)
{
	if (strchr(prog, '/'))
		return prog;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t k = strcspn(path, ":");
		snprintf(buf, len, "%.*s/%s", (int)k, k ? path : ".", prog);
		if (access(buf, X_OK) == 0)
			return buf;
		path += k + (path[k] == ':');
	}
	return NULL;
}

/* 1 if file is an ELF executable without PT_INTERP (LD_PRELOAD cannot work). */
static int is_static_elf(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	Elf64_Ehdr eh;
	int ret = 0;
	if (pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
		ret = 1;
		for (unsigned i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
			    (ssize_t)sizeof(ph)) {
				ret = 0;
				break;
			}
			if (ph.p_type == PT_INTERP) {
				ret = 0;
				break;
			}
		}
	}
	close(fd);
	return ret;
}

static void forward(int sig)
{
	if (g_child > 0)
		kill(g_child, sig);
}

/* Options up to PROGRAM; returns PROGRAM's index in argv, or -1 with
 * *status set (0 after --help, 2 for a usage error). */
static int parse_args(int argc, char **argv, const char **outfile, int *status)
{
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			*outfile = argv[++i];
		} else if (!strncmp(argv[i], "-o", 2) && argv[i][2]) {
			*outfile = argv[i] + 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			*status = 0;
			return -1;
		} else if (!strcmp(argv[i], "-o")) {
			fprintf(stderr, "ufcatch: option -o needs a file name\n");
			usage(stderr);
			*status = 2;
			return -1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "ufcatch: unknown option %s\n", argv[i]);
			usage(stderr);
			*status = 2;
			return -1;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		*status = 2;
		return -1;
	}
	return i;
}

/* Appends the reporter to LD_PRELOAD: a sanitizer runtime must stay first
 * in the preload list. 0 on success. */
static int add_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t need = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *preload = malloc(need);
	if (!preload)
		return -1;
	if (old && *old)
		snprintf(preload, need, "%s:%s", old, lib);
	else
		snprintf(preload, need, "%s", lib);
	int e = setenv("LD_PRELOAD", preload, 1);
	free(preload);
	return e;
}

/* Creates (empty) the report file and passes its absolute path to the
 * reporter in USERFAULT_CATCH_FILE. 0 on success. */
static int prepare_report(const char *outfile)
{
	/* Absolute, because the program may change directory before it
	 * crashes; truncated, so the file holds this run's reports. */
	char abs[PATH_MAX * 2];
	if (outfile[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			perror("ufcatch: getcwd");
			return -1;
		}
		snprintf(abs, sizeof(abs), "%s/%s", cwd, outfile);
	} else {
		snprintf(abs, sizeof(abs), "%s", outfile);
	}
	/* Private (a report shows addresses and memory), not through a
	 * symlink, and only a regular file: O_NONBLOCK so a FIFO under
	 * that name cannot hold us here. */
	int fd = open(abs, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		fprintf(stderr, "ufcatch: %s: not a regular file\n", abs);
		return -1;
	}
	if (fd < 0 || ftruncate(fd, 0)) {
		fprintf(stderr, "ufcatch: %s: %s\n", abs, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	setenv("USERFAULT_CATCH_FILE", abs, 1);
	return 0;
}

/* Runs argv like system() does: the terminal's SIGINT/SIGQUIT go to the
 * program; termination requests sent to us are passed on. Returns its
 * wait status, or -1. */
static int run(char **argv)
{
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);

	g_child = fork();
	if (g_child < 0) {
		perror("ufcatch: fork");
		return -1;
	}
	if (g_child == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "ufcatch: %s: %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int st;
	while (waitpid(g_child, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("ufcatch: waitpid");
			return -1;
		}
	}
	return st;
}

/* Ends the way the program ended: its exit code, or the same signal. */
static int exit_like(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		/* Die the same way, but never write a second core over the
		 * program's (core_pattern is often just "core" in the cwd). */
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		fflush(NULL);
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
		return 128 + sig; /* a signal that does not kill by default */
	}
	return 127;
}

int main(int argc, char **argv)
{
	const char *outfile = NULL;
	int status;
	int i = parse_args(argc, argv, &outfile, &status);
	if (i < 0)
		return status;

	char lib[PATH_MAX];
	if (find_lib(lib, sizeof(lib)) || add_preload(lib))
		return 127;
	if (outfile && prepare_report(outfile))
		return 127;

	char pbuf[PATH_MAX];
	const char *file = resolve(argv[i], pbuf, sizeof(pbuf));
	if (file && is_static_elf(file))
		fprintf(stderr, "ufcatch: warning: %s is statically linked; the crash reporter "
				"cannot be preloaded into it\n", argv[i]);

	int st = run(argv + i);
	return st < 0 ? 127 : exit_like(st);
}

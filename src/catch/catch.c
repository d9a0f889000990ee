/* SPDX-License-Identifier: MIT */
/*
 * catch.c - libuserfault-catch.so, a crash reporter to LD_PRELOAD into any
 * dynamically linked program (tools/ufcatch does it for you).
 *
 * A constructor installs one handler for the fatal signals (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) on an alternate signal stack, and
 * gives every thread created with pthread_create an alternate stack too, so
 * stack overflows are reported. On a fatal signal it writes
 * "userfault-catch: " + uf_explain()'s paragraph + a symbolized backtrace to
 * stderr, or appended to the file named by USERFAULT_CATCH_FILE, and then
 * lets the process die of the original signal: the signal is queued again
 * with its original siginfo, blocked until our handler returns, so it is
 * delivered right after the kernel restores the interrupted context. Exit
 * status, "core dumped" and the core's registers are what they would have
 * been without us.
 *
 * Handlers the program installs itself replace ours (sigaction is
 * last-writer-wins); libuserfault's own fault handler chains to ours.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "../arch/arch.h"
#include "../explain.h"
#include "../fmt.h"

/*
 * We link libuserfault.a; keep its public symbols out of our dynamic symbol
 * table, or preloading us would interpose them on the program's own
 * libuserfault.so. A hidden reference makes the linked symbol hidden.
 */
__asm__(".hidden uf_explain");

#define CATCH_PREFIX "userfault-catch: "
#define ALTSTACK_SIZE (128u * 1024) /* explain + unwinder + our buffers */
#define MAX_FRAMES 256

#define STR_(x) #x
#define STR(x) STR_(x)

static const int g_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

typedef int (*explain_fn)(const siginfo_t *, const void *, char *, size_t);
static explain_fn g_explain = uf_explain;
static char g_file[PATH_MAX];
static _Atomic pid_t g_reporter; /* thread writing the report, 0 if none */

/* ---- alternate signal stacks ---- */

/* Gives the calling thread an alternate stack unless it has one. Returns the
 * mapping to release at thread exit, or NULL. */
static void *altstack_init(void)
{
	stack_t cur;
	if (sigaltstack(NULL, &cur) || !(cur.ss_flags & SS_DISABLE))
		return NULL;
	size_t ps = uf__page_size();
	/* One PROT_NONE page below, so an overflow of the signal stack itself
	 * faults (and kills) instead of corrupting whatever lies below. */
	char *mem = mmap(NULL, ALTSTACK_SIZE + ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	mprotect(mem, ps, PROT_NONE);
	stack_t ss = {.ss_sp = mem + ps, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	if (sigaltstack(&ss, NULL)) {
		munmap(mem, ALTSTACK_SIZE + ps);
		return NULL;
	}
	return mem;
}

static void altstack_fini(void *mem)
{
	if (!mem)
		return;
	stack_t ss = {.ss_flags = SS_DISABLE};
	sigaltstack(&ss, NULL);
	munmap(mem, ALTSTACK_SIZE + uf__page_size());
}

struct start {
	void *(*fn)(void *);
	void *arg;
};

static void *thread_start(void *p)
{
	struct start s = *(struct start *)p;
	free(p);
	void *mem = altstack_init();
	void *ret;
	pthread_cleanup_push(altstack_fini, mem);
	ret = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return ret;
}

/* Interposed so that a stack overflow in any thread can still be reported:
 * without an alternate stack the kernel cannot run a handler for it. */
__attribute__((visibility("default"))) int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	if (!real)
		real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				void *))dlsym(RTLD_NEXT, "pthread_create");
	if (!real)
		return EAGAIN;
	struct start *s = malloc(sizeof(*s));
	if (!s)
		return real(th, attr, fn, arg);
	s->fn = fn;
	s->arg = arg;
	int r = real(th, attr, thread_start, s);
	if (r)
		free(s);
	return r;
}

/* ---- the report ---- */

UF_SIGCTX static void put_line(int fd, const char *a, const char *b)
{
	uf__write_str(fd, CATCH_PREFIX);
	uf__write_str(fd, a);
	if (b)
		uf__write_str(fd, b);
	uf__write_str(fd, "\n");
}

UF_SIGCTX static void put_frame(int fd, int i, uintptr_t pc, int return_addr, const char *note)
{
	char num[24], desc[512];
	uf__explain_code_addr(pc, return_addr, desc, sizeof(desc));
	uf__write_str(fd, CATCH_PREFIX "  #");
	uf__write_str(fd, uf__fmt_udec(num, sizeof(num), i < 0 ? 0u : (unsigned)i));
	uf__write_str(fd, " ");
	uf__write_str(fd, desc);
	if (note)
		uf__write_str(fd, note);
	uf__write_str(fd, "\n");
}

UF_SIGCTX static void put_repeat(int fd, int n)
{
	if (!n)
		return;
	char num[24];
	uf__write_str(fd, CATCH_PREFIX "  ... the frame above repeats ");
	uf__write_str(fd, uf__fmt_udec(num, sizeof(num), n < 0 ? 0u : (unsigned)n));
	uf__write_str(fd, " more times\n");
}

/*
 * After a call to a bad address the unwinder cannot start at the pc (no code,
 * no unwind info). Pretend the call returned: pc = return address (and on
 * x86_64 pop it off the stack), unwind, then put the context back so the
 * core still shows the real state.
 */
struct ctx_save {
	uintptr_t pc, sp;
};

UF_SIGCTX static bool step_to_caller(void *uc, struct ctx_save *sv)
{
	uintptr_t from = uf__explain_caller(uc);
	char perms[5];
	if (!from || uf__explain_perms(from, perms) || perms[2] != 'x')
		return false;
	ucontext_t *u = uc;
	sv->pc = uf__arch_pc(uc);
	sv->sp = uf__arch_sp(uc);
#if defined(__x86_64__)
	u->uc_mcontext.gregs[REG_RSP] += (greg_t)sizeof(uintptr_t);
#else
	(void)u; /* aarch64: the return address is in lr, sp is unchanged */
#endif
	uf__arch_set_pc(uc, from);
	return true;
}

UF_SIGCTX static void step_back(void *uc, const struct ctx_save *sv)
{
#if defined(__x86_64__)
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP] = (greg_t)sv->sp;
#endif
	uf__arch_set_pc(uc, sv->pc);
}

UF_SIGCTX static void report(int sig, siginfo_t *si, void *uc)
{
	/* A write to a pipe nobody reads raises SIGPIPE, which would kill the
	 * program with that instead of its own signal: ignored while we write
	 * (the write just fails), then put back. */
	struct sigaction ign, pipe_was;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	bool pipe_set = sigaction(SIGPIPE, &ign, &pipe_was) == 0;
	int fd = 2;
	if (g_file[0]) {
		/* Private (0600: a report shows addresses and memory), never
		 * through a symlink someone planted, and never blocking: a FIFO
		 * or device under that name gets nothing, the report goes to
		 * stderr instead. */
		do
			fd = open(g_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
				  0600);
		while (fd < 0 && errno == EINTR);
		struct stat st;
		if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
			close(fd);
			fd = -1;
		}
		if (fd < 0)
			fd = 2;
	}

	char text[6144];
	siginfo_t local;
	if (!si) { /* called by hand: make up what a sent signal would carry */
		memset(&local, 0, sizeof(local));
		local.si_signo = sig;
		si = &local;
	}
	int n = g_explain(si, uc, text, sizeof(text));
	put_line(fd, n < 0 ? "(no explanation)" : text,
		 n >= (int)sizeof(text) ? " [...]" : NULL);

	/* Our handler's frames come first; the interrupted code starts at the
	 * frame whose address is the context's pc (the unwinder steps through
	 * the kernel's signal frame and reports that pc exactly). */
	uintptr_t pc = uc ? uf__arch_pc(uc) : 0;
	char perms[5];
	bool bad_pc = pc && (uf__explain_perms(pc, perms) || perms[2] != 'x');
	struct ctx_save sv;
	bool stepped = bad_pc && step_to_caller(uc, &sv);
	void *frames[MAX_FRAMES];
	int nf = 0;
	/* libgcc reads the code at each pc to recognise signal trampolines: an
	 * unmapped pc would fault inside the unwinder. */
	if (!bad_pc || stepped)
		nf = backtrace(frames, MAX_FRAMES);
	uintptr_t start = stepped ? uf__arch_pc(uc) : pc;
	if (stepped)
		step_back(uc, &sv);
	int first = -1;
	for (int i = 0; start && i < nf; i++)
		if ((uintptr_t)frames[i] == start) {
			first = i;
			break;
		}

	put_line(fd, "backtrace:", NULL);
	int num = 0;
	if (bad_pc)
		put_frame(fd, num++, pc, 0, NULL);
	if (first < 0 && bad_pc) {
		uintptr_t from = uf__explain_caller(uc);
		if (from)
			put_frame(fd, num++, from, 1, " (return address; cannot unwind further)");
	} else {
		if (first < 0) /* not found: show everything, our frames included */
			first = 0;
		uintptr_t prev = 0;
		int repeat = 0;
		for (int i = first; i < nf; i++) {
			uintptr_t f = (uintptr_t)frames[i];
			if (f == prev) {
				repeat++;
				continue;
			}
			put_repeat(fd, repeat);
			repeat = 0;
			/* All but an exact faulting pc are return addresses. */
			put_frame(fd, num, f, num > 0, NULL);
			num++;
			prev = f;
		}
		put_repeat(fd, repeat);
		if (nf == MAX_FRAMES)
			put_line(fd, "  ... (deeper frames not shown)", NULL);
	}
	if (fd != 2)
		close(fd);
	if (pipe_set)
		sigaction(SIGPIPE, &pipe_was, NULL);
}

/* A kernel-raised fault that recurs when the instruction runs again. */
UF_SIGCTX static bool repeats(int sig, const siginfo_t *si)
{
	return si && si->si_code > 0 &&
	       (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
}

/*
 * Makes the original signal kill the process, exactly as without us.
 * first: this thread's first entry. A later one means the fault came back
 * although the default action is in place: we were called directly by a
 * handler that chains to us (libuserfault's does), or the report faulted.
 */
UF_SIGCTX static void die(int sig, siginfo_t *si, void *uc, bool first)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (uc)
		sigdelset(&((ucontext_t *)uc)->uc_sigmask, sig);
	if (first && uc && repeats(sig, si)) {
		/* Return: the instruction runs again, faults again, and the
		 * kernel's default action kills with the original siginfo and a
		 * core of the faulting state, as if we had never been here. */
		return;
	}
	if (first && uc) {
		/* Not repeating (SIGABRT, SIGTRAP after int3, a sent signal):
		 * queue it again while blocked. sigreturn restores uc_sigmask
		 * (with sig open) and the kernel then delivers it against the
		 * interrupted context, so a core shows that, not this handler. */
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (!si || uf__raise_info(sig, si))
			raise(sig);
		return;
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (si)
		uf__raise_info(sig, si);
	raise(sig);
	_exit(128 + sig);
}

UF_SIGCTX static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	pid_t me = uf__gettid(), none = 0;
	bool first = true;
	if (atomic_compare_exchange_strong(&g_reporter, &none, me)) {
		report(sig, si, uc);
	} else if (atomic_load(&g_reporter) == me) {
		first = false;
	} else {
		/* Another thread is writing its report and will kill the process
		 * when done; do not interleave, but never wait forever. */
		for (int i = 0; i < 100 && atomic_load(&g_reporter); i++) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	die(sig, si, uc, first);
	errno = saved;
}

__attribute__((constructor)) static void catch_init(void)
{
	const char *f = uf__getenv("USERFAULT_CATCH_FILE");
	if (f && *f && strlen(f) < sizeof(g_file))
		memcpy(g_file, f, strlen(f) + 1);

	/* backtrace() loads libgcc_s on first use (dlopen, malloc): do it now,
	 * never for the first time in a crashing process. */
	void *warm[4];
	backtrace(warm, 4);

	/* If the program uses libuserfault.so, its uf_explain knows the
	 * program's regions; our static copy does not. */
	void *h = dlopen("libuserfault.so." STR(UF_VERSION_MAJOR), RTLD_NOW | RTLD_NOLOAD);
	if (h) {
		explain_fn fn = (explain_fn)dlsym(h, "uf_explain");
		if (fn)
			g_explain = fn;
	}

	altstack_init(); /* the main thread's; lives as long as the process */

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	/* NODEFER: a fault inside the report itself then kills at once (the
	 * reporter check in on_fatal), instead of being blocked and forced. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < UF__ARRAY_SIZE(g_sigs); i++) {
		struct sigaction old;
		/* Leave alone what the environment set up (an inherited SIG_IGN). */
		if (sigaction(g_sigs[i], NULL, &old) || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		sigaction(g_sigs[i], &sa, NULL);
	}
}

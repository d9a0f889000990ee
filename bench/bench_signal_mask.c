/* SPDX-License-Identifier: MIT */
/*
 * bench_signal_mask.c - what it costs a signal's delivery and return that
 * the handler's sa_mask blocks more signals, as the library's fault
 * handler does (every asynchronous signal waits while a fault is served).
 *
 *   bench_signal_mask [ROUNDS] [SIGNALS]
 *
 * Sends this thread SIGNALS signals (tgkill; the handler returns at once)
 * and gives ns per signal, medians of ROUNDS, two variants alternated round
 * by round:
 *   same-mask    SA_NODEFER and an empty sa_mask: the blocked set does not
 *                change, and the kernel skips setting it, at delivery and
 *                at sigreturn (a hand-written pager's choice)
 *   async-mask   SA_NODEFER and the library's sa_mask (every signal but
 *                SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS): the
 *                kernel sets the blocked set, under the signal lock, twice
 * The difference is what the library's promise costs each fault.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void on_signal(int sig) { (void)sig; }

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void set_handler(int masked)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (masked) {
		static const int sync_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
		sigfillset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(sync_sigs) / sizeof(sync_sigs[0]); i++)
			sigdelset(&sa.sa_mask, sync_sigs[i]);
	}
	if (sigaction(SIGUSR2, &sa, NULL)) {
		perror("sigaction");
		exit(1);
	}
}

static double one_round(int masked, long n)
{
	set_handler(masked);
	pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_tgkill, pid, tid, SIGUSR2);
	return (now_ns() - t0) / (double)n;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 9;
	long n = argc > 2 ? atol(argv[2]) : 200000;
	if (rounds < 1 || rounds > 1000 || n < 1) {
		fprintf(stderr, "usage: bench_signal_mask [ROUNDS 1..1000] [SIGNALS]\n");
		return 2;
	}
	double *v[2];
	for (int m = 0; m < 2; m++) {
		v[m] = calloc((size_t)rounds, sizeof(double));
		if (!v[m])
			return 1;
	}
	one_round(0, n / 10 + 1); /* warm-up */
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < 2; k++) {
			int m = (r + k) % 2; /* alternate which goes first */
			v[m][r] = one_round(m, n);
		}
	double same = median(v[0], rounds), async = median(v[1], rounds);
	printf("bench_signal_mask: %d rounds of %ld signals, ns per signal (median)\n", rounds, n);
	printf("  same-mask   %8.1f\n", same);
	printf("  async-mask  %8.1f   (+%.1f ns, %.3fx)\n", async, async - same, async / same);
	return 0;
}

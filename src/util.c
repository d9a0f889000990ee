/* SPDX-License-Identifier: MIT */
/* util.c - futex, spinlock, signal-safe output and small system wrappers. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "fmt.h"

UF_SIGCTX int uf__futex_wait(_Atomic uint32_t *addr, uint32_t expect)
{
	long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
	return r < 0 ? -errno : 0;
}

UF_SIGCTX void uf__futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

UF_SIGCTX void uf__spin_lock_slow(uf__spinlock *l)
{
	for (unsigned n = 0;; n++) {
		uint32_t z = 0;
		if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->v, &z, 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
		if (n < 64) {
			uf__cpu_relax();
		} else {
			/* The holder was preempted (2 vCPUs): give it the CPU. */
			sched_yield();
		}
	}
}

UF_SIGCTX void uf__write_str(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

void uf__assert_fail(const char *expr, const char *file, int line)
{
	char num[24];
	uf__write_str(2, "userfault: assertion failed: ");
	uf__write_str(2, expr);
	uf__write_str(2, " at ");
	uf__write_str(2, file);
	uf__write_str(2, ":");
	uf__write_str(2, uf__fmt_udec(num, sizeof(num), line < 0 ? 0u : (unsigned)line));
	uf__write_str(2, "\n");
	abort();
}

UF_SIGCTX pid_t uf__gettid(void) { return (pid_t)syscall(SYS_gettid); }

UF_SIGCTX int uf__raise_info(int sig, const siginfo_t *info)
{
	siginfo_t si = *info;
	si.si_signo = sig;
	return uf__neg_errno(syscall(SYS_rt_tgsigqueueinfo, getpid(), uf__gettid(), sig, &si));
}

UF_SIGCTX void uf__async_sigset(sigset_t *set)
{
	static const int sync_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
	sigfillset(set);
	for (size_t i = 0; i < UF__ARRAY_SIZE(sync_sigs); i++)
		sigdelset(set, sync_sigs[i]);
}

UF_SIGCTX void uf__async_block(sigset_t *old)
{
	sigset_t set;
	uf__async_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

UF_SIGCTX void uf__async_restore(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

UF_SIGCTX void uf__cancel_hold(int *old) { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, old); }

UF_SIGCTX void uf__cancel_release(int old)
{
	if (old != PTHREAD_CANCEL_DISABLE)
		pthread_setcancelstate(old, NULL);
}

void *uf__map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}


long uf__read_small_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	int e = n < 0 ? -errno : -EIO;
	close(fd);
	if (n <= 0)
		return e;
	buf[n] = 0;
	return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the one SIGSEGV + SIGBUS handler of the process.
 *
 * Dispatch order: fault-safe access table, registered regions and raw areas,
 * stack guard, then the handler installed before ours, exactly as it expects
 * to be called. A fault inside a signal-safe store's callback stops after
 * the regions: it fails the store call instead (store.c). With no previous
 * handler the default action is restored and the fault repeated, so the
 * process dies (and dumps core) as it would have without us.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "arch/arch.h"
#include "fault.h"
#include "handler.h"
#include "registry.h"
#include "store.h"
#include "uffd.h"

static struct sigaction g_prev[2]; /* [0] SIGSEGV, [1] SIGBUS */
static _Atomic int g_state; /* 0: not installed, 1: being installed, 2: done */
static int g_init_err;

static inline int slot(int sig) { return sig == SIGBUS; }

UF_SIGCTX static void fault_info(siginfo_t *si, int sig, int code, void *addr)
{
	memset(si, 0, sizeof(*si));
	si->si_signo = sig;
	si->si_code = code;
	si->si_addr = addr;
}

/* The guarded store call's frame is on the alternate stack, but the
 * callback's stack pointer is not: the callback ran off the bottom of that
 * stack. The kernel then placed this handler's frame at the top of the
 * same stack, over the frames of the fault being served and the signal
 * frame of the code it interrupted: nothing is left to return or jump to. */
UF_SIGCTX static bool overflowed_alt_stack(const void *uc)
{
	stack_t ss;
	if (sigaltstack(NULL, &ss) || (ss.ss_flags & SS_DISABLE))
		return false;
	uintptr_t lo = (uintptr_t)ss.ss_sp, g = (uintptr_t)uf__t_store_guard, sp = uf__arch_sp(uc);
	return g - lo < ss.ss_size && sp - lo >= ss.ss_size;
}

static sigset_t g_fault_sigs; /* SIGSEGV and SIGBUS (at_load) */

/* sig's (SIGSEGV's or SIGBUS's) default action, unblocked: the next one
 * kills (or dumps core). Nothing on the stack: die_overflowed runs it
 * where the kernel overwrote other frames (a sanitizer's shadow of them
 * is stale). */
UF_SIGCTX static void to_default(int sig)
{
	signal(sig, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &g_fault_sigs, NULL);
}

/* Says why, then dies of the fault by the default action (a core dump). */
UF_SIGCTX static __attribute__((noreturn)) void die_overflowed(int sig)
{
	static const char m[] = "userfault: a store callback overflowed the alternate signal stack it "
				"ran on; the process cannot continue\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	to_default(sig);
	syscall(SYS_tgkill, getpid(), uf__gettid(), sig);
	_exit(128 + sig); /* not reached: the signal kills on the way out */
}

UF_SIGCTX int uf__fault_dispatch(int sig, siginfo_t *si, void *uc)
{
	if (sig != SIGSEGV && sig != SIGBUS)
		return UF__PASS;
	/* Only faults raised by the kernel carry a trustworthy si_addr. */
	if (!si || si->si_code <= 0)
		return UF__PASS;
	/* Call-outs this thread left by a jump are over, whoever serves this
	 * fault (uf_area_register(3): released at the thread's next fault). */
	if (uc)
		uf__inflight_reap(uf__arch_sp(uc));
	if (uf__safe_access_fixup(sig, si, uc))
		return UF__HANDLED;

	/* Inside a callback of a signal-safe store: only the regions serve
	 * the fault (a callback may read another region). Anything else fails
	 * the store call (store.c), before any code that may leave by a jump
	 * and strand the load the call is for: a raw area's or the process
	 * handler, the stack guard, the program's handler. A region's own
	 * failure fails it too (uf__pager_fault_error). */
	bool in_store = uc && uf__store_guarded();
	int ret = UF__PASS;
	struct uf__range rg;
	if (uf__registry_get((uintptr_t)si->si_addr, &rg)) {
		if (rg.kind == UF__KIND_REGION)
			ret = uf__region_fault(&rg, sig, si, uc); /* drops the reference */
		else if (rg.kind == UF__KIND_AREA && !in_store)
			ret = uf__area_fault(&rg, sig, si, uc); /* drops the reference */
		else {
			uf__registry_put(&rg);
		}
	}
	if (ret != UF__HANDLED && in_store) {
		if (overflowed_alt_stack(uc))
			die_overflowed(sig);
		uf__store_guard_fail(uc, -EFAULT, (uintptr_t)si->si_addr, sig);
	}
	if (ret == UF__DENIED) {
		/* The program's own fault (a write to a read-only region), not
		 * the process handler's. But a stack overflow whose frame jumped
		 * the guard into such a region is still an overflow: it is
		 * reported as the SIGSEGV it becomes (deny_as_sigsegv). */
		siginfo_t sv;
		fault_info(&sv, SIGSEGV, SEGV_ACCERR, si->si_addr);
		uf__stack_guard_fault(SIGSEGV, sig == SIGSEGV ? si : &sv, uc);
		return ret;
	}
	if (ret != UF__PASS)
		return ret;
	return uf__handler_fault(sig, si, uc); /* process handler, stack guard */
}

/* Whether p names a function (not the default action, not ignore). */
UF_SIGCTX static bool has_handler(const struct sigaction *p)
{
	return (p->sa_flags & SA_SIGINFO) ? p->sa_sigaction != NULL
					  : p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN;
}

/* Calls the handler *pp for sig, or dies the default way. *pp is where the
 * disposition lives (our saved copy of the one before ours, or a copy of
 * the kernel's current one, when current): a handler installed with
 * SA_RESETHAND runs once, as the kernel would run it, and the disposition
 * is SIG_DFL from then on. */
UF_SIGCTX static void chain_to(struct sigaction *pp, bool current, int sig, siginfo_t *si, void *uc,
			       bool repeats)
{
	struct sigaction h = *pp;
	const struct sigaction *p = &h;
	bool has_fn = has_handler(p);
	if (has_fn && (p->sa_flags & SA_RESETHAND)) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		*pp = dfl;
		if (current)
			sigaction(sig, &dfl, NULL);
	}
	if (has_fn && uc) {
		/* We run with asynchronous signals blocked (our sa_mask); the
		 * previous handler expects the mask the kernel would have given
		 * it: the interrupted one, its own sa_mask, and the signal itself
		 * unless SA_NODEFER. */
		sigset_t m;
		sigorset(&m, &((ucontext_t *)uc)->uc_sigmask, &p->sa_mask);
		if (!(p->sa_flags & SA_NODEFER))
			sigaddset(&m, sig);
		pthread_sigmask(SIG_SETMASK, &m, NULL);
	}
	if (p->sa_flags & SA_SIGINFO) {
		if (p->sa_sigaction) {
			p->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
		p->sa_handler(sig);
		return;
	} else if (p->sa_handler == SIG_IGN && si && si->si_code <= 0) {
		return; /* someone sent us an ignored signal: ignore it */
	}
	/* Default action. A hardware fault cannot be ignored (the kernel forces
	 * SIG_DFL), so SIG_IGN is treated like SIG_DFL here. */
	to_default(sig);
	/* A kernel fault repeats when the instruction runs again; anything else
	 * must be raised again explicitly. */
	if (!repeats || !si || si->si_code <= 0)
		uf__raise_info(sig, si);
}

/* Calls the handler that was installed before ours, or dies the default way. */
UF_SIGCTX static void chain(int sig, siginfo_t *si, void *uc, bool repeats)
{
	chain_to(&g_prev[slot(sig)], false, sig, si, uc, repeats);
}

static void on_fault(int sig, siginfo_t *si, void *uc);

/* The siginfo of a fault we deliver ourselves. */
/* Engines that write-protect read-only regions see a write to one as
 * SIGBUS; the program gets what the kernel would have given it, SIGSEGV
 * (SEGV_ACCERR), from whoever handles SIGSEGV: a handler the program
 * installed after ours (never overwritten by the default action), else
 * the one before ours. */
UF_SIGCTX static void deny_as_sigsegv(void *addr, void *uc)
{
	siginfo_t si;
	fault_info(&si, SIGSEGV, SEGV_ACCERR, addr);
	struct sigaction cur;
	if (!sigaction(SIGSEGV, NULL, &cur) && has_handler(&cur) &&
	    !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)) {
		chain_to(&cur, true, SIGSEGV, &si, uc, false);
		return;
	}
	chain(SIGSEGV, &si, uc, false);
}

/* The kernel answers a fault whose signal is blocked by killing the
 * process. A fault may come while the library serves one (a store callback
 * that faults: store.c fails its call; one that reads another region), so
 * SIGSEGV and SIGBUS are open meanwhile, also where the thread or the
 * program's handler (no SA_NODEFER) blocked them. mask: the one the
 * handler began with; a system call only when it blocks one of them. */
UF_SIGCTX static void open_fault_signals(const sigset_t *mask)
{
	if (uf__likely(!sigismember(mask, SIGSEGV) && !sigismember(mask, SIGBUS)))
		return;
	pthread_sigmask(SIG_UNBLOCK, &g_fault_sigs, NULL);
}

UF_SIGCTX static void on_fault(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	/* Ours has SA_NODEFER and leaves them out of sa_mask: only the
	 * interrupted code's mask can block them. */
	open_fault_signals(&((ucontext_t *)uc)->uc_sigmask);
	int r = uf__fault_dispatch(sig, si, uc);
	if (r == UF__DENIED && sig == SIGBUS)
		deny_as_sigsegv(si->si_addr, uc);
	else if (r != UF__HANDLED)
		chain(sig, si, uc, true);
	errno = saved;
}

UF_SIGCTX void uf__fault_deliver(int sig, int code, void *addr, void *uc)
{
	siginfo_t si;
	fault_info(&si, sig, code, addr);
	chain(sig, &si, uc, false);
}

UF_SIGCTX void uf__fault_deliver_sigbus(void *addr, void *uc)
{
	uf__fault_deliver(SIGBUS, BUS_ADRERR, addr, uc);
}

bool uf__fault_handler_current(int sig)
{
	struct sigaction cur;
	if (sigaction(sig, NULL, &cur))
		return true; /* cannot tell: assume nothing changed */
	return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault;
}

pid_t uf__pid;

/* A thread inside fork() holds malloc's locks (glibc takes them after the
 * prepare handlers and drops them before the parent and child ones). A
 * signal handler that touched a region there would have its fault served
 * by code that may allocate (a store thread running a store that is not
 * signal-safe, a handler thread's store) and wait for it for ever. So
 * asynchronous signals wait until the fork is done, as they do while a
 * fault is served; the child gets the mask back too. Per thread: two
 * threads may fork at once. */
static __thread sigset_t t_fork_mask __attribute__((tls_model("initial-exec")));

static void before_fork(void) { uf__async_block(&t_fork_mask); }
static void after_fork_parent(void) { uf__async_restore(&t_fork_mask); }

static void after_fork_child(void)
{
	uf__pid = getpid();
	uf__registry_after_fork();
	uf__handler_after_fork();
	uf__stack_guard_after_fork();
	uf__pagemap_after_fork();
	uf__async_restore(&t_fork_mask);
}

/* At load time, not in uf__fault_init: pthread_atfork allocates, and the
 * first fault-safe access may come from a signal handler. Like every
 * prepare handler, before_fork runs before malloc's locks are taken, and
 * the parent and child handlers after they are dropped. */
__attribute__((constructor)) static void at_load(void)
{
	uf__pid = getpid();
	sigemptyset(&g_fault_sigs);
	sigaddset(&g_fault_sigs, SIGSEGV);
	sigaddset(&g_fault_sigs, SIGBUS);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

UF_SIGCTX static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	/* NODEFER: a store callback or fault-safe access may fault again while we
	 * serve a fault. ONSTACK: stack overflows need the alternate stack. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
	/* Asynchronous signals wait until a fault is served (internal.h): at
	 * no cost, the kernel sets and restores the mask. */
	uf__async_sigset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &g_prev[0]) || sigaction(SIGBUS, &sa, &g_prev[1]))
		g_init_err = -errno;
}

/* Installs the handlers once. Async-signal-safe (uf_try_read may be the
 * first call, from a signal handler): the installing thread blocks every
 * signal meanwhile, so no handler of its own can wait for it; another
 * thread waits only for two sigaction calls. */
UF_SIGCTX int uf__fault_init(void)
{
	int st = atomic_load_explicit(&g_state, memory_order_acquire);
	if (uf__likely(st == 2))
		return g_init_err;
	if (st == 0 && atomic_compare_exchange_strong(&g_state, &st, 1)) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		install();
		atomic_store_explicit(&g_state, 2, memory_order_release);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return g_init_err;
	}
	while (atomic_load_explicit(&g_state, memory_order_acquire) != 2)
		sched_yield();
	return g_init_err;
}

int uf_handle_fault(int sig, siginfo_t *info, void *ucontext)
{
	if (!info || !ucontext)
		return 0; /* not a handler's arguments: nothing to serve or resume */
	int saved = errno;
	/* The program's handler need not block what ours does (its sa_mask
	 * is its own): asynchronous signals wait here too while the fault is
	 * served, as uf_map(3) promises for every fault the library serves. */
	sigset_t old;
	uf__async_block(&old);
	open_fault_signals(&old);
	int r = uf__fault_dispatch(sig, info, ucontext);
	uf__async_restore(&old);
	errno = saved;
	return r == UF__HANDLED;
}

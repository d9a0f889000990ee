/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the address -> owner table read by the fault handler.
 *
 * Readers (signal handlers) never lock: they announce themselves in one of
 * two counters chosen by the current epoch, then read the published sorted
 * array. Writers (serialised by a mutex) copy the array, publish the copy,
 * flip the epoch and wait until the old epoch's readers are gone before
 * freeing the old array and returning (so the caller may free the object).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "registry.h"

struct table {
	size_t n;
	struct uf__range e[];
};

static _Atomic(struct table *) g_table;
static _Atomic unsigned g_epoch;
static _Atomic long g_readers[2];
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;

UF_SIGCTX unsigned uf__registry_enter(void)
{
	for (;;) {
		unsigned e = atomic_load(&g_epoch);
		atomic_fetch_add(&g_readers[e & 1], 1);
		/* If the epoch moved between the load and the increment, the writer
		 * may already be past its wait on this counter: retry on the new one. */
		if (atomic_load(&g_epoch) == e)
			return e;
		atomic_fetch_sub(&g_readers[e & 1], 1);
	}
}

UF_SIGCTX void uf__registry_exit(unsigned token)
{
	atomic_fetch_sub_explicit(&g_readers[token & 1], 1, memory_order_release);
}

UF_SIGCTX unsigned uf__registry_enter_masked(sigset_t *old)
{
	uf__async_block(old);
	return uf__registry_enter();
}

UF_SIGCTX void uf__registry_exit_masked(unsigned token, const sigset_t *old)
{
	uf__registry_exit(token);
	uf__async_restore(old);
}

UF_SIGCTX bool uf__registry_find(uintptr_t addr, struct uf__range *out)
{
	const struct table *t = atomic_load_explicit(&g_table, memory_order_acquire);
	if (!t)
		return false;
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr < t->e[mid].start)
			hi = mid;
		else if (addr >= t->e[mid].end)
			lo = mid + 1;
		else {
			*out = t->e[mid];
			return true;
		}
	}
	return false;
}

/* Waits until no reader can hold a pointer taken before the call. */
static void grace_period(void)
{
	unsigned e = atomic_fetch_add(&g_epoch, 1);
	for (unsigned n = 0; atomic_load_explicit(&g_readers[e & 1], memory_order_acquire) != 0; n++) {
		if (n < 100) {
			sched_yield();
		} else {
			/* A reader is serving a slow store load: sleep rather than spin. */
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

void uf__registry_after_fork(void)
{
	/* The child's only thread is the one that forked. Readers the other
	 * threads of the parent had announced never leave here, so a writer
	 * would wait for them forever; and the write lock may have been held
	 * by one of them. The table itself is always whole (it is replaced
	 * by one atomic store). */
	atomic_store(&g_readers[0], 0);
	atomic_store(&g_readers[1], 0);
	uf__mutex_reset_after_fork(&g_write_lock);
	/* Likewise the references the parent's other threads held (a call-out
	 * running, or left by a jump: their records are those threads' own);
	 * uf__registry_remove in the child would wait for them for ever. What
	 * this thread holds is in its own records. */
	struct table *t = atomic_load(&g_table);
	for (size_t i = 0; t && i < t->n; i++)
		if (t->e[i].refs)
			atomic_store(t->e[i].refs, uf__inflight_held(t->e[i].refs));
}

static void publish(struct table *t)
{
	struct table *old = atomic_exchange_explicit(&g_table, t, memory_order_acq_rel);
	/* Two flips: readers in either counter may have loaded the old array. */
	grace_period();
	grace_period();
	free(old);
}

UF_SIGCTX bool uf__registry_get(uintptr_t addr, struct uf__range *out)
{
	unsigned tok = uf__registry_enter();
	bool found = uf__registry_find(addr, out);
	if (found && out->refs)
		atomic_fetch_add_explicit(out->refs, 1, memory_order_acquire);
	uf__registry_exit(tok);
	return found;
}

UF_SIGCTX void uf__registry_put(const struct uf__range *rg)
{
	if (rg->refs)
		atomic_fetch_sub_explicit(rg->refs, 1, memory_order_release);
}

int uf__registry_add(uintptr_t start, uintptr_t end, int kind, void *obj)
{
	return uf__registry_add_ref(start, end, kind, obj, NULL);
}

int uf__registry_add_ref(uintptr_t start, uintptr_t end, int kind, void *obj, _Atomic long *refs)
{
	if (start >= end || !obj)
		return -EINVAL;
	pthread_mutex_lock(&g_write_lock);
	struct table *cur = atomic_load(&g_table);
	size_t n = cur ? cur->n : 0;
	struct table *t = malloc(sizeof(*t) + (n + 1) * sizeof(t->e[0]));
	if (!t) {
		pthread_mutex_unlock(&g_write_lock);
		return -ENOMEM;
	}
	/* Copy in order, leaving out a parent's regions and placing the new
	 * entry; any overlap left is a real one. */
	pid_t self = uf__self_pid();
	size_t k = 0;
	bool placed = false;
	for (size_t i = 0; i <= n; i++) {
		const struct uf__range *e = i < n ? &cur->e[i] : NULL;
		if (e && e->kind == UF__KIND_REGION && e->pid != self)
			continue;
		if (!placed && (!e || e->start >= start)) {
			if ((k > 0 && t->e[k - 1].end > start) || (e && e->start < end)) {
				free(t);
				pthread_mutex_unlock(&g_write_lock);
				return -EEXIST;
			}
			t->e[k++] = (struct uf__range){start, end, kind, obj, refs, self};
			placed = true;
		}
		if (e)
			t->e[k++] = *e;
	}
	t->n = k;
	publish(t);
	pthread_mutex_unlock(&g_write_lock);
	return 0;
}

int uf__registry_remove(void *obj)
{
	pthread_mutex_lock(&g_write_lock);
	struct table *cur = atomic_load(&g_table);
	size_t n = cur ? cur->n : 0, pos = 0;
	while (pos < n && cur->e[pos].obj != obj)
		pos++;
	if (pos == n) {
		pthread_mutex_unlock(&g_write_lock);
		return -ENOENT;
	}
	struct table *t = NULL;
	if (n > 1) {
		t = malloc(sizeof(*t) + (n - 1) * sizeof(t->e[0]));
		if (!t) {
			pthread_mutex_unlock(&g_write_lock);
			return -ENOMEM;
		}
		t->n = n - 1;
		memcpy(t->e, cur->e, pos * sizeof(t->e[0]));
		memcpy(t->e + pos, cur->e + pos + 1, (n - pos - 1) * sizeof(t->e[0]));
	}
	_Atomic long *refs = cur->e[pos].refs;
	publish(t);
	pthread_mutex_unlock(&g_write_lock);
	/* No new reference can be taken now; wait for the ones in use. */
	for (unsigned i = 0; refs && atomic_load_explicit(refs, memory_order_acquire) != 0; i++) {
		struct timespec ts = {0, i < 100 ? 1000 : 100000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

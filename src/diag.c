/* SPDX-License-Identifier: MIT */
/*
 * diag.c - what the library tells its user about itself:
 *   USERFAULT_VERBOSE=1  one stderr line per decision made at uf_map (engine
 *                        and why better ones were refused, budget, read-
 *                        ahead, write tracking);
 *   USERFAULT_STATS=1    each region's statistics at uf_unmap and, for the
 *                        regions still mapped, at exit;
 *   USERFAULT_PUBLISH=1  the same statistics in /dev/shm/userfault-PID for
 *                        ufstat(1) (publish.h), refreshed by one thread;
 * and uf_stats_init. Nothing here runs in signal context except the store
 * timing (uf__diag_now_ns: clock_gettime, async-signal-safe).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "publish.h"
#include "region.h"
#include "uffd.h"
#include "threads.h"

void uf_stats_init(struct uf_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
}

_Atomic bool uf__diag_timing;

UF_SIGCTX uint64_t uf__diag_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- USERFAULT_VERBOSE ---- */

static uint64_t phys_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	return pages > 0 ? (uint64_t)pages * uf__page_size() : UINT64_MAX;
}

static bool verbose(void) { return uf__getenv_on("USERFAULT_VERBOSE"); }

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n] = '\n';
	line[n + 1] = 0;
	uf__write_str(2, line); /* one write: lines of threads do not mix */
}

/* "64 GiB", "12 KiB", "100 bytes": exact when whole, else one decimal. */
static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0 || d == (double)(uint64_t)d)
		snprintf(buf, len, "%" PRIu64 " %s", (uint64_t)d, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", d, unit[u]);
	return buf;
}

void uf__diag_refused(int engine, int err, const char *step)
{
	if (verbose())
		say("userfault: uf_map: engine %s refused (%s): %s; trying the next one",
		    uf_engine_name(engine), step, uf_strerror(err));
}

static const char *engine_why(const struct uf_map_opts *o)
{
	if (o->engine != UF_ENGINE_AUTO)
		return "opts.engine";
	if (uf__getenv("USERFAULT_ENGINE") && *uf__getenv("USERFAULT_ENGINE"))
		return "USERFAULT_ENGINE";
	return "the first this process may use";
}

static void say_budget(const struct uf_region *r, const struct uf_map_opts *o, size_t budget,
		       const char *id)
{
	char a[32], b[32], c[32];
	uint64_t asked = budget / r->bs;
	const char *src = o->max_resident ? "opts.max_resident" : "default: min(length, RAM/2)";
	if (r->nframes == asked)
		say("userfault: %s: budget %s = %" PRIu32 " blocks of %s (%s)", id,
		    human((uint64_t)r->nframes * r->bs, a, sizeof(a)), r->nframes, human(r->bs, b, sizeof(b)), src);
	else if (r->nframes == r->nblocks && asked > r->nblocks)
		say("userfault: %s: budget %s (%s) capped to the region's %" PRIu64 " blocks of %s", id,
		    human(budget, a, sizeof(a)), src, r->nblocks, human(r->bs, b, sizeof(b)));
	else if (budget > phys_ram() && (uint64_t)r->nframes * r->bs <= phys_ram())
		say("userfault: %s: budget %s (%s) capped to the machine's RAM: %" PRIu32 " blocks (%s)", id,
		    human(budget, a, sizeof(a)), src, r->nframes, human((uint64_t)r->nframes * r->bs, c, sizeof(c)));
	else
		say("userfault: %s: budget %s (%s) lowered to %" PRIu32 " blocks (%s) by the %s engine%s", id,
		    human(budget, a, sizeof(a)), src, r->nframes, human((uint64_t)r->nframes * r->bs, c, sizeof(c)),
		    r->eng->name, r->eng->id == UF_ENGINE_SIGNAL ? " to stay under vm.max_map_count" : "");
}

static void say_readahead(const struct uf_region *r, const char *id)
{
	if (r->ra_max > 1)
		say("userfault: %s: read-ahead on: up to %u blocks for a sequential run%s", id, r->ra_max,
		    r->ra_jobs ? ", the next window read by a store thread in the background" : "");
	else if (r->flags & UF_MAP_NO_READAHEAD)
		say("userfault: %s: read-ahead off: UF_MAP_NO_READAHEAD", id);
	else if (!r->eng->install_clean)
		say("userfault: %s: read-ahead off: the %s engine loads one block per fault", id, r->eng->name);
	else
		say("userfault: %s: read-ahead off: the budget (%" PRIu32 " blocks) is too small", id, r->nframes);
	if (atomic_load_explicit(&r->hon, memory_order_relaxed)) {
		char a[32];
		say("userfault: %s: huge pages on: a sequential run reads whole %s huge pages (USERFAULT_THP=0: off)",
		    id, human(r->hsize, a, sizeof(a)));
	}
}

static void say_writes(const struct uf_region *r, const char *id)
{
	if (!r->writable) {
		say("userfault: %s: write tracking: none (read-only region)", id);
	} else if (r->async_wp) {
		say("userfault: %s: write tracking: by the kernel, no fault (WP_ASYNC + PAGEMAP_SCAN)", id);
	} else if (r->eng->id == UF_ENGINE_SIGNAL) {
		say("userfault: %s: write tracking: a SIGSEGV + mprotect per first write", id);
	} else {
		const char *why = (r->flags & UF_MAP_WP_FAULTS) ? "UF_MAP_WP_FAULTS"
				  : uf__getenv_off("USERFAULT_WP_ASYNC")
				      ? "USERFAULT_WP_ASYNC=0"
				  : r->eng->id == UF_ENGINE_UFFD_THREAD ? "the handler-thread engine"
				  : !(uf_engine_features() & UF_FEATURE_WP_ASYNC)
				      ? "the kernel lacks WP_ASYNC or PAGEMAP_SCAN"
				      : "the kernel refused asynchronous tracking";
		say("userfault: %s: write tracking: a write-protect fault per first write (%s)", id, why);
	}
}

/* ---- the list of regions (USERFAULT_STATS / USERFAULT_PUBLISH) ---- */

struct node {
	struct uf_region *r;
	int slot; /* in the published file, or -1 */
	struct node *next;
};
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *g_regions;
static bool g_exit_hook;
static struct uf__pub *g_pub;
static char g_pub_path[64];
static pthread_t g_pub_thread;
static bool g_pub_thread_on;

static void region_stats(struct uf_region *r, struct uf_stats *st)
{
	uf_stats_init(st);
	uf_stats(r, st);
}

static void print_stats(struct uf_region *r, const char *when)
{
	struct uf_stats st;
	region_stats(r, &st);
	char a[32], b[32];
	say("userfault: stats %s region %#" PRIxPTR " (%s, %s, blocks of %s): %" PRIu64 " faults, %" PRIu64
	    " loads, %" PRIu64 " evictions, %" PRIu64 " write-backs, %" PRIu64 " write faults, %" PRIu64
	    " reactivations, resident %" PRIu64 " (peak %" PRIu64 ") of %" PRIu64 " blocks, %" PRIu64
	    " dirty; time in the store (all its regions): read %.3f ms, write %.3f ms",
	    when, r->base, human(r->len, a, sizeof(a)), uf_engine_name(st.engine), human(r->bs, b, sizeof(b)),
	    st.faults, st.loads, st.evictions, st.writebacks, st.write_faults, st.reactivations, st.resident,
	    st.resident_peak, st.max_resident, st.dirty,
	    (double)atomic_load(&r->store->ns_read) / 1e6, (double)atomic_load(&r->store->ns_write) / 1e6);
}

/* Seqlock writer side: caller holds g_lock. */
static void publish_locked(void)
{
	if (!g_pub)
		return;
	atomic_fetch_add_explicit((_Atomic uint64_t *)&g_pub->seq, 1, memory_order_acq_rel);
	for (struct node *n = g_regions; n; n = n->next) {
		if (n->slot < 0)
			continue;
		struct uf_stats st;
		region_stats(n->r, &st);
		struct uf__pub_region *p = &g_pub->r[n->slot];
		p->base = n->r->base;
		p->len = n->r->len;
		p->block_size = n->r->bs;
		p->engine = st.engine;
		p->faults = st.faults;
		p->loads = st.loads;
		p->evictions = st.evictions;
		p->writebacks = st.writebacks;
		p->write_faults = st.write_faults;
		p->reactivations = st.reactivations;
		p->resident = st.resident;
		p->resident_peak = st.resident_peak;
		p->dirty = st.dirty;
		p->max_resident = st.max_resident;
		p->store_read_ns = atomic_load(&n->r->store->ns_read);
		p->store_write_ns = atomic_load(&n->r->store->ns_write);
		p->used = 1;
	}
	uint32_t hi = 0;
	for (uint32_t i = 0; i < UF__PUB_SLOTS; i++)
		if (g_pub->r[i].used)
			hi = i + 1;
	g_pub->nregions = hi;
	g_pub->time_ns = uf__diag_now_ns();
	atomic_fetch_add_explicit((_Atomic uint64_t *)&g_pub->seq, 1, memory_order_acq_rel);
}

static void *publisher(void *arg)
{
	for (;;) {
		struct timespec t = {0, UF__PUB_PERIOD_MS * 1000000L};
		nanosleep(&t, NULL);
		pthread_mutex_lock(&g_lock);
		bool on = g_pub != NULL;
		publish_locked();
		pthread_mutex_unlock(&g_lock);
		if (!on)
			return NULL;
	}
}

/* Whether the publishing file fd (of pid, by its name) has not been
 * refreshed for a while: its publisher, which rewrites it every
 * UF__PUB_PERIOD_MS, is gone. */
static bool publish_stale(int fd, long pid)
{
	struct uf__pub h;
	if (pread(fd, &h, offsetof(struct uf__pub, nregions), 0) != (ssize_t)offsetof(struct uf__pub, nregions))
		return false;
	uint64_t now = uf__diag_now_ns();
	return !memcmp(h.magic, UF__PUB_MAGIC, sizeof(UF__PUB_MAGIC)) && h.pid == pid &&
	       h.time_ns <= now && now - h.time_ns > 5000000000ull;
}

/* Removes the files of processes of ours that are gone (killed, or ended
 * by _exit, before they could remove their own): regular files with our
 * owner, a pid that no process has, and contents not refreshed for five
 * seconds (a publisher in another pid namespace sharing /dev/shm keeps
 * its file). A pid taken again since keeps its file, which the new
 * process replaces if it publishes. */
static void publish_sweep(void)
{
	DIR *d = opendir(UF__PUB_DIR);
	if (!d)
		return;
	size_t plen = strlen(UF__PUB_PREFIX);
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, UF__PUB_PREFIX, plen))
			continue;
		char *end;
		const char *num = e->d_name + plen;
		long pid = strtol(num, &end, 10);
		if (*num < '1' || *num > '9' || *end || pid <= 0 || pid > INT32_MAX || pid == getpid())
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		if (!kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (publish_stale(fd, pid))
			unlinkat(dirfd(d), e->d_name, 0);
		close(fd);
	}
	closedir(d);
}

/* Creates the file: 0600, O_EXCL (a file left by a dead process with our
 * pid is ours to replace only if we own it), O_NOFOLLOW. */
static void publish_open_locked(void)
{
	publish_sweep();
	snprintf(g_pub_path, sizeof(g_pub_path), UF__PUB_DIR "/" UF__PUB_PREFIX "%d", (int)getpid());
	int fd = -1;
	for (int tries = 0; tries < 2 && fd < 0; tries++) {
		fd = open(g_pub_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		struct stat st;
		if (fd < 0 && errno == EEXIST && !lstat(g_pub_path, &st) && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid())
			unlink(g_pub_path);
	}
	if (fd < 0 || ftruncate(fd, sizeof(struct uf__pub))) {
		if (verbose())
			say("userfault: USERFAULT_PUBLISH: cannot create %s: %s", g_pub_path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(g_pub_path);
		}
		return;
	}
	void *p = mmap(NULL, sizeof(struct uf__pub), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		unlink(g_pub_path);
		return;
	}
	g_pub = p;
	memcpy(g_pub->magic, UF__PUB_MAGIC, sizeof(UF__PUB_MAGIC));
	g_pub->size = sizeof(struct uf__pub);
	g_pub->pid = (int32_t)getpid();
	if (!g_pub_thread_on) {
		/* The thread must not keep signals from the program's threads. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		g_pub_thread_on = uf__thread_create(&g_pub_thread, NULL, publisher, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (g_pub_thread_on)
			pthread_detach(g_pub_thread);
	}
	if (verbose())
		say("userfault: USERFAULT_PUBLISH: statistics in %s (ufstat %d)", g_pub_path, (int)getpid());
}

/* Called by the exit-time write-back once it is done (region.c), so the
 * lines say what it wrote. */
void uf__diag_at_exit(void)
{
	pthread_mutex_lock(&g_lock);
	if (uf__getenv_on("USERFAULT_STATS"))
		for (struct node *n = g_regions; n; n = n->next)
			print_stats(n->r, "at exit:");
	if (g_pub) {
		unlink(g_pub_path);
		munmap(g_pub, sizeof(*g_pub));
		g_pub = NULL;
	}
	pthread_mutex_unlock(&g_lock);
}

/* A fork child has neither the publisher thread nor the parent's regions. */
static void in_child(void)
{
	pthread_mutex_init(&g_lock, NULL);
	g_regions = NULL; /* the nodes stay allocated: the child cannot use them */
	if (g_pub) {
		munmap(g_pub, sizeof(*g_pub));
		g_pub = NULL;
	}
	g_pub_thread_on = false;
}

void uf__diag_mapped(struct uf_region *r, const struct uf_map_opts *o, size_t budget)
{
	if (verbose()) {
		char id[48], a[32];
		snprintf(id, sizeof(id), "region %#" PRIxPTR " (%s)", r->base, human(r->len, a, sizeof(a)));
		say("userfault: %s: engine %s (%s)", id, r->eng->name, engine_why(o));
		say_budget(r, o, budget, id);
		say_readahead(r, id);
		say_writes(r, id);
	}
	bool stats = uf__getenv_on("USERFAULT_STATS"), pub = uf__getenv_on("USERFAULT_PUBLISH");
	if (!stats && !pub)
		return;
	atomic_store(&uf__diag_timing, true);
	struct node *n = malloc(sizeof(*n));
	if (!n)
		return;
	pthread_mutex_lock(&g_lock);
	if (!g_exit_hook) {
		g_exit_hook = true; /* the exit lines come from uf__diag_at_exit */
		pthread_atfork(NULL, NULL, in_child);
	}
	if (pub && !g_pub)
		publish_open_locked();
	n->r = r;
	n->slot = -1;
	if (g_pub) {
		for (int i = 0; i < UF__PUB_SLOTS && n->slot < 0; i++) {
			bool taken = false;
			for (struct node *m = g_regions; m; m = m->next)
				taken |= m->slot == i;
			if (!taken)
				n->slot = i;
		}
		if (n->slot < 0)
			g_pub->dropped++;
	}
	n->next = g_regions;
	g_regions = n;
	publish_locked();
	pthread_mutex_unlock(&g_lock);
}

void uf__diag_unmapping(struct uf_region *r)
{
	pthread_mutex_lock(&g_lock);
	for (struct node **p = &g_regions; *p; p = &(*p)->next) {
		struct node *n = *p;
		if (n->r != r)
			continue;
		if (uf__getenv_on("USERFAULT_STATS"))
			print_stats(r, "at unmap:");
		*p = n->next;
		if (g_pub && n->slot >= 0) {
			atomic_fetch_add_explicit((_Atomic uint64_t *)&g_pub->seq, 1, memory_order_acq_rel);
			memset(&g_pub->r[n->slot], 0, sizeof(g_pub->r[n->slot]));
			atomic_fetch_add_explicit((_Atomic uint64_t *)&g_pub->seq, 1, memory_order_acq_rel);
			publish_locked();
		}
		free(n);
		break;
	}
	pthread_mutex_unlock(&g_lock);
}

/* SPDX-License-Identifier: MIT */
/*
 * ufbench.c - the userfault benchmark driver.
 *
 * Every measurement runs in its own forked child: a fresh address space for
 * first-touch costs, a VmHWM of its own, and a crash or hang of one system
 * reported instead of ending the run. Systems are interleaved rep by rep, so
 * slow drift of the machine spreads over all of them; figures are medians
 * with min and max over the reps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ufbench.h"

#define MAX_ROWS 16

struct opts {
	bool scen[32];
	bool any_scen;
	bool sys[UFB_NSYSTEMS];
	bool any_sys;
	int engines[4];
	int nengines;
	size_t size, block_size, budget;
	bool have_size, have_budget, writable;
	uint64_t ops;
	int threads, reps, warmup;
	double time_limit;
	uint64_t seed;
	bool json, list, compare;
	const char *dat, *md;
};

/* One figure of one system in one scenario, over all reps. */
struct agg {
	const struct ufb_scenario *sc;
	int metric; /* 0: primary, 1: secondary */
	int threads;
	struct ufb_sys sys;
	int engine_used;
	int status;
	char msg[240];
	int reps, ok;
	bool truncated;
	uint64_t pages, done, planned;
	double med, min, max; /* ns per page */
	double miss, lru, fifo, clock;
	uint64_t loads, faults, evictions, reactivations;
	long vma, rss;
	double speedup;
	struct ufb_cfg cfg;
};

static struct agg *g_aggs;
static int g_naggs, g_capaggs;
static FILE *g_out; /* human-readable output */
static bool g_json;

static const char *metric_name(const struct agg *a)
{
	return a->metric ? a->sc->metric2 : a->sc->metric;
}

const char *ufb_status_name(int status)
{
	switch (status) {
	case UFB_OK: return "ok";
	case UFB_UNAVAILABLE: return "unavailable";
	case UFB_FAILED: return "failed";
	case UFB_CRASHED: return "crashed";
	case UFB_TIMEOUT: return "timeout";
	}
	return "no-result";
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ufbench [options]\n"
		"  --list                 scenarios, systems and engines\n"
		"  --scenario LIST        comma-separated scenario names (default: all)\n"
		"  --system LIST          kernel-tmpfs,kernel-anon,libsigsegv,copy-design,userfault\n"
		"                         (default: userfault; with --compare: all)\n"
		"  --engine LIST          auto,uffd,uffd-thread,signal (userfault engine;\n"
		"                         default auto; with --compare: uffd,uffd-thread,signal)\n"
		"  --compare              userfault and the scenario's baselines, interleaved\n"
		"                         rep by rep; prints ratios and the targets\n"
		"  --size SIZE            region size (256M, 1T, ...; default per scenario)\n"
		"  --block-size SIZE      userfault block size (default: page)\n"
		"  --budget SIZE|PCT%%     RAM budget (default per scenario)\n"
		"  --ops N                accesses (default per scenario)\n"
		"  --threads N            threads of the threaded variant (default 2)\n"
		"  --reps N               measured repetitions (default 5; huge-sparse 3)\n"
		"  --warmup N             discarded rounds before them (default 1)\n"
		"  --time-limit SEC       cut a measurement short after SEC (default 20)\n"
		"  --seed N               access-trace seed\n"
		"  --writable             map seq-read, rand-read, zipf-read and threads\n"
		"                         read-write (write tracking on, nothing written)\n"
		"  --json                 JSON lines on stdout (human text goes to stderr)\n"
		"  --dat FILE             gnuplot table of medians (us per page) for bench/plot.gp\n"
		"  --md FILE              Markdown tables of the results, ratios and targets\n"
		"environment: UFBENCH_CLOCK=cpu times the measured part in the measuring\n"
		"  process's CPU time (all its threads) instead of wall time: for a busy machine;\n"
		"  UFBENCH_STORE=file maps userfault over uf_store_file of the scenario's memfd\n"
		"  (the kernel-tmpfs bytes) instead of uf_store_mem of the same bytes\n");
}

static int scen_index(const char *name)
{
	for (int i = 0; i < ufb_nscenarios; i++)
		if (!strcmp(ufb_scenarios[i].name, name))
			return i;
	return -1;
}

static int engine_from(const char *s)
{
	static const char *const n[] = {"auto", "uffd", "uffd-thread", "signal"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, n[i]))
			return i;
	return -1;
}

static int parse_list(char *arg, int (*fn)(const char *, void *), void *ctx)
{
	for (char *save = NULL, *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (fn(tok, ctx) < 0) {
			fprintf(stderr, "ufbench: unknown name '%s' (see --list)\n", tok);
			return -1;
		}
	return 0;
}

static int add_scen(const char *s, void *ctx)
{
	struct opts *o = ctx;
	if (!strcmp(s, "all")) {
		for (int i = 0; i < ufb_nscenarios; i++)
			o->scen[i] = true;
		return 0;
	}
	int i = scen_index(s);
	if (i < 0)
		return -1;
	o->scen[i] = true;
	return 0;
}

static int add_sys(const char *s, void *ctx)
{
	struct opts *o = ctx;
	for (int i = 0; i < UFB_NSYSTEMS; i++)
		if (!strcmp(s, "all") || !strcmp(s, ufb_system_name(i))) {
			o->sys[i] = true;
			if (strcmp(s, "all"))
				return 0;
		}
	return strcmp(s, "all") ? -1 : 0;
}

static int add_engine(const char *s, void *ctx)
{
	struct opts *o = ctx;
	if (!strcmp(s, "all")) {
		o->nengines = 3;
		o->engines[0] = UF_ENGINE_UFFD;
		o->engines[1] = UF_ENGINE_UFFD_THREAD;
		o->engines[2] = UF_ENGINE_SIGNAL;
		return 0;
	}
	int e = engine_from(s);
	if (e < 0)
		return -1;
	for (int i = 0; i < o->nengines; i++)
		if (o->engines[i] == e)
			return 0;
	if (o->nengines < 4)
		o->engines[o->nengines++] = e;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_SCEN = 256, O_SYS, O_ENG, O_SIZE, O_BLOCK, O_BUDGET, O_OPS, O_THR, O_REPS, O_TL,
	       O_SEED, O_JSON, O_LIST, O_CMP, O_DAT, O_HELP, O_WARM, O_MD, O_WRITABLE };
	static const struct option lo[] = {
		{"scenario", required_argument, NULL, O_SCEN}, {"system", required_argument, NULL, O_SYS},
		{"engine", required_argument, NULL, O_ENG},    {"size", required_argument, NULL, O_SIZE},
		{"block-size", required_argument, NULL, O_BLOCK},
		{"budget", required_argument, NULL, O_BUDGET}, {"ops", required_argument, NULL, O_OPS},
		{"threads", required_argument, NULL, O_THR},   {"reps", required_argument, NULL, O_REPS},
		{"warmup", required_argument, NULL, O_WARM},
		{"time-limit", required_argument, NULL, O_TL}, {"seed", required_argument, NULL, O_SEED},
		{"json", no_argument, NULL, O_JSON},           {"list", no_argument, NULL, O_LIST},
		{"compare", no_argument, NULL, O_CMP},         {"dat", required_argument, NULL, O_DAT},
		{"md", required_argument, NULL, O_MD},         {"writable", no_argument, NULL, O_WRITABLE},
		{"help", no_argument, NULL, O_HELP},           {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->threads = 2;
	o->reps = 0; /* per scenario */
	o->warmup = 1;
	o->time_limit = 20;
	o->seed = 0x75666265ull; /* "ufbe" */
	int c;
	size_t v;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_SCEN:
			o->any_scen = true;
			if (parse_list(optarg, add_scen, o))
				return -1;
			break;
		case O_SYS:
			o->any_sys = true;
			if (parse_list(optarg, add_sys, o))
				return -1;
			break;
		case O_ENG:
			if (parse_list(optarg, add_engine, o))
				return -1;
			break;
		case O_SIZE:
		case O_BLOCK:
		case O_BUDGET:
			if (ufb_parse_size(optarg, &v) < 0 || ((v & UFB_BUDGET_PCT_FLAG) && c != O_BUDGET)) {
				fprintf(stderr, "ufbench: bad size '%s'\n", optarg);
				return -1;
			}
			if (c == O_SIZE)
				o->size = v, o->have_size = true;
			else if (c == O_BLOCK)
				o->block_size = v;
			else
				o->budget = v, o->have_budget = true;
			break;
		case O_OPS:
			o->ops = strtoull(optarg, NULL, 0);
			break;
		case O_THR:
			o->threads = atoi(optarg);
			if (o->threads < 1 || o->threads > 64)
				return fprintf(stderr, "ufbench: --threads 1..64\n"), -1;
			break;
		case O_REPS:
			o->reps = atoi(optarg);
			if (o->reps < 1 || o->reps > 1000)
				return fprintf(stderr, "ufbench: --reps 1..1000\n"), -1;
			break;
		case O_WARM:
			o->warmup = atoi(optarg);
			if (o->warmup < 0 || o->warmup > 100)
				return fprintf(stderr, "ufbench: --warmup 0..100\n"), -1;
			break;
		case O_TL:
			o->time_limit = atof(optarg);
			break;
		case O_SEED:
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case O_JSON: o->json = true; break;
		case O_LIST: o->list = true; break;
		case O_CMP: o->compare = true; break;
		case O_DAT: o->dat = optarg; break;
		case O_MD: o->md = optarg; break;
		case O_WRITABLE: o->writable = true; break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (!o->any_scen)
		for (int i = 0; i < ufb_nscenarios; i++)
			o->scen[i] = true;
	if (!o->nengines) {
		if (o->compare)
			add_engine("all", o);
		else
			add_engine("auto", o);
	}
	return 0;
}

static void list(void)
{
	char b[32];
	printf("scenarios (default region size, accesses, budget):\n");
	for (int i = 0; i < ufb_nscenarios; i++) {
		const struct ufb_scenario *sc = &ufb_scenarios[i];
		ufb_fmt_size(sc->def_size, b, sizeof(b));
		printf("  %-12s %s\n  %12s size %s, accesses %llu", sc->name, sc->desc, "", b,
		       (unsigned long long)sc->def_ops(sc->def_size / ufb_page_size()));
		if (sc->def_budget & UFB_BUDGET_PCT_FLAG)
			printf(", budget %.4g%%", (double)(sc->def_budget & ~UFB_BUDGET_PCT_FLAG) / 100);
		else if (sc->def_budget)
			ufb_fmt_size(sc->def_budget, b, sizeof(b)), printf(", budget %s", b);
		printf("; baselines:");
		for (int s = 0; s < UFB_NSYSTEMS; s++)
			if (sc->baseline[s])
				printf(" %s", ufb_system_name(s));
		printf("\n");
	}
	printf("systems: kernel-tmpfs kernel-anon libsigsegv%s copy-design userfault\n",
	       ufb_have_libsigsegv() ? "" : "(unavailable: built without libsigsegv)");
	printf("engines: auto uffd uffd-thread signal\n");
}

/* ------------------------------------------------------------------------ */
/* One measurement in a child                                                */

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Waits for pid up to ms milliseconds; true if it exited. */
static bool wait_child(pid_t pid, int ms, int *wstatus)
{
	int fd = pidfd_open_(pid);
	if (fd >= 0) {
		struct pollfd p = {fd, POLLIN, 0};
		int r;
		do
			r = poll(&p, 1, ms);
		while (r < 0 && errno == EINTR);
		close(fd);
		if (r == 0)
			return false;
		return waitpid(pid, wstatus, 0) == pid;
	}
	/* No pidfd: poll waitpid (only the idle parent pays for it). */
	for (int t = 0; t < ms; t += 10) {
		if (waitpid(pid, wstatus, WNOHANG) == pid)
			return true;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void measure(const struct ufb_scenario *sc, const struct ufb_cfg *cfg, const struct ufb_data *d,
		    const struct ufb_sys *s, int variant, struct ufb_result *shared, struct ufb_result *out)
{
	memset(shared, 0, sizeof(*shared));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		memset(out, 0, sizeof(*out));
		out->status = UFB_FAILED;
		snprintf(out->msg, sizeof(out->msg), "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ufb_limit_ns = cfg->time_limit > 0 ? (uint64_t)(cfg->time_limit * 1e9) : 0;
		sc->run(cfg, d, s, variant, shared);
		if (shared->status == UFB_PENDING) {
			ufb_msg(shared, "the measurement returned no result", "", -1, "");
			shared->status = UFB_FAILED;
		}
		_exit(0);
	}
	int ws = 0;
	int limit_ms = (int)((cfg->time_limit > 0 ? cfg->time_limit * 2 : 600) * 1000) + 60000;
	bool exited = wait_child(pid, limit_ms, &ws);
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &ws, 0);
	}
	*out = *shared;
	if (!exited) {
		out->status = UFB_TIMEOUT;
		snprintf(out->msg, sizeof(out->msg), "killed after %d s; %llu of %llu accesses done",
			 limit_ms / 1000, (unsigned long long)out->done, (unsigned long long)out->planned);
	} else if (WIFSIGNALED(ws)) {
		out->status = UFB_CRASHED;
		snprintf(out->msg, sizeof(out->msg), "died of %s after %llu of %llu accesses",
			 sigabbrev_np(WTERMSIG(ws)) ? sigabbrev_np(WTERMSIG(ws)) : "a signal",
			 (unsigned long long)out->done, (unsigned long long)out->planned);
	} else if (out->status == UFB_PENDING) {
		out->status = UFB_FAILED;
		snprintf(out->msg, sizeof(out->msg), "exited with status %d and no result",
			 WEXITSTATUS(ws));
	}
}

/* ------------------------------------------------------------------------ */
/* Aggregation and output                                                    */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int status_rank(int s)
{
	switch (s) {
	case UFB_OK: return 0;
	case UFB_UNAVAILABLE: return 1;
	case UFB_FAILED: return 2;
	case UFB_TIMEOUT: return 3;
	case UFB_CRASHED: return 4;
	}
	return 5;
}

static struct agg *new_agg(void)
{
	if (g_naggs == g_capaggs) {
		g_capaggs = g_capaggs ? 2 * g_capaggs : 64;
		g_aggs = realloc(g_aggs, (size_t)g_capaggs * sizeof(*g_aggs));
		if (!g_aggs) {
			perror("ufbench");
			exit(1);
		}
	}
	struct agg *a = &g_aggs[g_naggs++];
	memset(a, 0, sizeof(*a));
	return a;
}

static void aggregate(struct agg *a, const struct ufb_result *r, int reps, const struct ufb_data *d)
{
	double v[1000], miss[1000];
	int nv = 0, nm = 0;
	a->status = UFB_OK;
	a->reps = reps;
	a->miss = a->lru = a->fifo = a->clock = a->speedup = NAN;
	for (int i = 0; i < reps; i++) {
		const struct ufb_result *x = &r[i];
		bool ok = x->status == UFB_OK;
		if (status_rank(x->status) > status_rank(a->status)) {
			a->status = x->status;
			memcpy(a->msg, x->msg, sizeof(a->msg));
			a->msg[sizeof(a->msg) - 1] = 0;
		}
		a->ok += x->status == UFB_OK;
		uint64_t pages = a->metric ? x->pages2 : x->pages;
		uint64_t ns = a->metric ? x->ns2 : x->ns;
		if (x->status == UFB_UNAVAILABLE || !pages)
			continue;
		/* Failed runs still tell the cost per page up to the failure. */
		v[nv++] = (double)ns / (double)pages;
		a->pages = pages;
		a->done = x->done;
		a->planned = x->planned;
		a->truncated |= x->truncated;
		a->engine_used = x->engine_used;
		if (x->vma_count > a->vma)
			a->vma = x->vma_count;
		if (x->peak_rss > a->rss)
			a->rss = x->peak_rss;
		a->loads = x->loads;
		a->faults = x->faults;
		a->evictions = x->evictions;
		a->reactivations = x->reactivations;
		/* Miss ratio = store reads per access, where a budget applies. */
		if (ok && x->done && a->cfg.budget &&
		    (a->sys.system == UFB_USERFAULT || a->sys.system == UFB_LIBSIGSEGV ||
		     a->sys.system == UFB_COPY))
			miss[nm++] = (double)x->loads / (double)x->done;
	}
	if (nv) {
		double mn = v[0], mx = v[0];
		for (int i = 0; i < nv; i++) {
			mn = v[i] < mn ? v[i] : mn;
			mx = v[i] > mx ? v[i] : mx;
		}
		a->min = mn;
		a->max = mx;
		a->med = median(v, nv);
	} else {
		a->min = a->max = a->med = NAN;
	}
	if (nm)
		a->miss = median(miss, nm);
	if (!strcmp(a->sc->name, "zipf-read")) {
		a->lru = d->lru_miss;
		a->fifo = d->fifo_miss;
		a->clock = d->clock_miss;
	}
}

static void json_str(FILE *f, const char *k, const char *v)
{
	fprintf(f, ",\"%s\":", k);
	if (!v) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		if ((unsigned char)*v >= 0x20)
			fputc(*v, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *k, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, ",\"%s\":null", k);
	else if ((v == floor(v) || fabs(v) >= 1000) && fabs(v) < 1e18)
		fprintf(f, ",\"%s\":%.0f", k, v);
	else
		fprintf(f, ",\"%s\":%.4g", k, v);
}

static void json_result(const struct agg *a)
{
	FILE *f = stdout;
	fprintf(f, "{\"type\":\"result\"");
	json_str(f, "scenario", a->sc->name);
	json_str(f, "metric", metric_name(a));
	json_str(f, "system", ufb_system_name(a->sys.system));
	json_str(f, "engine", a->sys.system == UFB_USERFAULT ? ufb_engine_name(a->sys.engine) : NULL);
	json_str(f, "engine_used",
		 a->sys.system == UFB_USERFAULT && a->status == UFB_OK ? ufb_engine_name(a->engine_used) : NULL);
	json_num(f, "threads", a->threads);
	json_str(f, "status", ufb_status_name(a->status));
	json_num(f, "pages", (double)a->pages);
	json_num(f, "reps", a->reps);
	json_num(f, "ok_reps", a->ok);
	json_num(f, "ns_per_page", a->med);
	json_num(f, "min_ns_per_page", a->min);
	json_num(f, "max_ns_per_page", a->max);
	json_num(f, "size_bytes", (double)a->cfg.size);
	json_num(f, "block_size", (double)(a->cfg.block_size ? a->cfg.block_size : ufb_page_size()));
	json_num(f, "budget_bytes", (double)a->cfg.budget);
	json_num(f, "accesses_done", (double)a->done);
	json_num(f, "accesses_planned", (double)a->planned);
	fprintf(f, ",\"truncated\":%s", a->truncated ? "true" : "false");
	json_num(f, "miss_ratio", a->miss);
	json_num(f, "lru_miss_ratio", a->lru);
	json_num(f, "fifo_miss_ratio", a->fifo);
	json_num(f, "clock_miss_ratio", a->clock);
	json_num(f, "speedup", a->speedup);
	if (a->sys.system == UFB_USERFAULT || a->sys.system == UFB_LIBSIGSEGV || a->sys.system == UFB_COPY) {
		json_num(f, "loads", (double)a->loads);
		json_num(f, "faults", (double)a->faults);
		json_num(f, "evictions", (double)a->evictions);
	}
	if (a->sys.system == UFB_USERFAULT)
		json_num(f, "reactivations", (double)a->reactivations);
	json_num(f, "vma_count", a->vma ? (double)a->vma : NAN);
	json_num(f, "peak_rss_bytes", a->rss ? (double)a->rss : NAN);
	json_str(f, "message", a->msg[0] ? a->msg : NULL);
	fprintf(f, "}\n");
}

static void label(const struct agg *a, char *b, size_t n)
{
	ufb_sys_label(&a->sys, b, n);
}

static void fmt_num(double v, char *b, size_t n)
{
	if (isnan(v))
		snprintf(b, n, "-");
	else if (v >= 100)
		snprintf(b, n, "%.0f", v);
	else
		snprintf(b, n, "%.3g", v);
}

static void print_table(struct agg *rows, int n)
{
	const struct ufb_scenario *sc = rows[0].sc;
	const struct ufb_cfg *cfg = &rows[0].cfg;
	char sz[32], bud[32], blk[32];
	ufb_fmt_size(cfg->size, sz, sizeof(sz));
	ufb_fmt_size(cfg->budget, bud, sizeof(bud));
	ufb_fmt_size(cfg->block_size ? cfg->block_size : ufb_page_size(), blk, sizeof(blk));
	fprintf(g_out, "\n== %s: %s\n   region %s, block %s, budget %s, %llu accesses, %d reps (+%d warm-up)\n",
		sc->name, sc->desc, sz, blk, cfg->budget ? bud : "none", (unsigned long long)cfg->ops,
		rows[0].reps, cfg->warmup);
	fprintf(g_out, "   %-12s %-22s %3s %9s %9s %9s %7s %7s %8s  %s\n", "metric", "system", "thr",
		"ns/page", "min", "max", "miss", "VMAs", "peakRSS", "notes");
	for (int i = 0; i < n; i++) {
		struct agg *a = &rows[i];
		char l[48], m1[16], m2[16], m3[16], ms[16], rss[16], vma[16], note[300];
		label(a, l, sizeof(l));
		fmt_num(a->med, m1, sizeof(m1));
		fmt_num(a->min, m2, sizeof(m2));
		fmt_num(a->max, m3, sizeof(m3));
		if (isnan(a->miss))
			snprintf(ms, sizeof(ms), "-");
		else
			snprintf(ms, sizeof(ms), "%.4f", a->miss);
		if (a->rss)
			snprintf(rss, sizeof(rss), "%.0fM", (double)a->rss / (1 << 20));
		else
			snprintf(rss, sizeof(rss), "-");
		if (a->vma)
			snprintf(vma, sizeof(vma), "%ld", a->vma);
		else
			snprintf(vma, sizeof(vma), "-");
		note[0] = 0;
		if (a->status != UFB_OK)
			snprintf(note, sizeof(note), "%s: %s", ufb_status_name(a->status), a->msg);
		else if (a->truncated)
			snprintf(note, sizeof(note), "cut at the time limit: %llu of %llu accesses",
				 (unsigned long long)a->done, (unsigned long long)a->planned);
		if (a->sys.system == UFB_USERFAULT && a->sys.engine == UF_ENGINE_AUTO && a->status == UFB_OK) {
			size_t k = strlen(note);
			snprintf(note + k, sizeof(note) - k, "%sengine %s", k ? "; " : "",
				 ufb_engine_name(a->engine_used));
		}
		if (!isnan(a->speedup)) {
			size_t k = strlen(note);
			snprintf(note + k, sizeof(note) - k, "%sspeed-up %.2fx over 1 thread", k ? "; " : "",
				 a->speedup);
		}
		fprintf(g_out, "   %-12s %-22s %3d %9s %9s %9s %7s %7s %8s  %s\n", metric_name(a), l,
			a->threads, m1, m2, m3, ms, vma, rss, note);
	}
	if (!isnan(rows[0].lru))
		fprintf(g_out, "   simulated on the same trace and budget: LRU %.4f, FIFO %.4f, CLOCK %.4f\n",
			rows[0].lru, rows[0].fifo, rows[0].clock);
}

/* Ratios userfault / baseline for rows of the same metric and threads. */
static void print_ratios(struct agg *rows, int n)
{
	bool header = false;
	for (int i = 0; i < n; i++) {
		struct agg *u = &rows[i];
		if (u->sys.system != UFB_USERFAULT || isnan(u->med) || u->status != UFB_OK)
			continue;
		for (int j = 0; j < n; j++) {
			struct agg *b = &rows[j];
			if (b->sys.system == UFB_USERFAULT || b->metric != u->metric ||
			    b->threads != u->threads || isnan(b->med) || b->med <= 0)
				continue;
			double ratio = u->med / b->med;
			char l[48];
			label(u, l, sizeof(l));
			if (!header) {
				fprintf(g_out, "   ratio userfault/baseline (median ns per page; < 1: userfault faster)\n");
				header = true;
			}
			fprintf(g_out, "   %-12s %-22s %3d  %6.2fx %s%s%s\n", metric_name(u), l, u->threads, ratio,
				ufb_system_name(b->sys.system),
				b->status != UFB_OK ? " (baseline " : "",
				b->status != UFB_OK ? (b->status == UFB_FAILED ? "failed part way)" : "incomplete)") : "");
			if (g_json) {
				printf("{\"type\":\"ratio\"");
				json_str(stdout, "scenario", u->sc->name);
				json_str(stdout, "metric", metric_name(u));
				json_num(stdout, "threads", u->threads);
				json_str(stdout, "system", "userfault");
				json_str(stdout, "engine", ufb_engine_name(u->sys.engine));
				json_str(stdout, "baseline", ufb_system_name(b->sys.system));
				json_str(stdout, "baseline_status", ufb_status_name(b->status));
				json_num(stdout, "ratio", ratio);
				printf("}\n");
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* One scenario: all systems, reps interleaved                               */

static struct ufb_cfg resolve(const struct ufb_scenario *sc, const struct opts *o)
{
	struct ufb_cfg c;
	size_t ps = ufb_page_size();
	memset(&c, 0, sizeof(c));
	c.size = o->have_size ? o->size : sc->def_size;
	c.size = (c.size + ps - 1) / ps * ps;
	if (c.size < 16 * ps)
		c.size = 16 * ps;
	c.block_size = o->block_size;
	size_t b = o->have_budget ? o->budget : sc->def_budget;
	if (b & UFB_BUDGET_PCT_FLAG)
		b = (size_t)((double)c.size * (double)(b & ~UFB_BUDGET_PCT_FLAG) / 10000.0);
	c.budget = b ? (b + ps - 1) / ps * ps : 0;
	c.ops = o->ops ? o->ops : sc->def_ops(c.size / ps);
	c.threads = o->threads;
	c.time_limit = o->time_limit;
	c.seed = o->seed;
	c.uf_flags = sc->uf_flags;
	c.read_prot = o->writable ? PROT_READ | PROT_WRITE : PROT_READ;
	c.reps = o->reps ? o->reps : sc->def_reps ? sc->def_reps : 5;
	c.warmup = o->warmup;
	return c;
}

static int run_scenario(const struct ufb_scenario *sc, const struct opts *o, struct ufb_result *shared)
{
	struct ufb_cfg cfg = resolve(sc, o);
	struct ufb_sys sys[UFB_NSYSTEMS + 4];
	int nsys = 0;
	for (int s = 0; s < UFB_NSYSTEMS; s++) {
		if (s == UFB_USERFAULT)
			continue;
		bool want = o->any_sys ? o->sys[s] : o->compare;
		if (want && sc->baseline[s])
			sys[nsys++] = (struct ufb_sys){s, 0};
	}
	if (o->any_sys ? o->sys[UFB_USERFAULT] : true)
		for (int e = 0; e < o->nengines; e++)
			sys[nsys++] = (struct ufb_sys){UFB_USERFAULT, o->engines[e]};
	if (!nsys)
		return 0;

	struct ufb_data d;
	memset(&d, 0, sizeof(d));
	d.memfd = -1;
	uint64_t t = ufb_wall_ns();
	int err = sc->prepare(&cfg, &d);
	if (err < 0) {
		fprintf(stderr, "ufbench: %s: cannot prepare data: %s\n", sc->name, strerror(-err));
		ufb_data_free(&d);
		return 1;
	}
	cfg.ops = d.ntrace;
	int nmeas = nsys * sc->nvariants, reps = cfg.reps;
	fprintf(stderr, "ufbench: %s: data ready in %.1f s; %d systems x %d variants x (%d + %d warm-up) reps\n",
		sc->name, (double)(ufb_wall_ns() - t) / 1e9, nsys, sc->nvariants, reps, cfg.warmup);
	struct ufb_result *res = calloc((size_t)nmeas * (size_t)reps, sizeof(*res));
	struct ufb_result scratch;
	if (!res) {
		ufb_data_free(&d);
		return 1;
	}
	bool tty = isatty(2);
	for (int round = 0; round < cfg.warmup + reps; round++) {
		int rep = round - cfg.warmup; /* < 0: a warm-up round, not recorded */
		for (int k = 0; k < nmeas; k++) {
			/* Rotate the order each round so no system always runs first. */
			int m = (k + round) % nmeas;
			int v = m / nsys, s = m % nsys;
			char l[48];
			ufb_sys_label(&sys[s], l, sizeof(l));
			if (tty)
				fprintf(stderr, "\r  %s %d/%d  %-22s thr %d ...   ", rep < 0 ? "warm-up" : "rep",
					rep < 0 ? round + 1 : rep + 1, rep < 0 ? cfg.warmup : reps, l,
					ufb_variant_threads(sc, &cfg, v));
			/* A warm-up round only has to page in memory and warm the
			 * libraries: a few seconds of it are enough. */
			struct ufb_cfg c = cfg;
			if (rep < 0 && (c.time_limit <= 0 || c.time_limit > 3))
				c.time_limit = 3;
			measure(sc, &c, &d, &sys[s], v, shared,
				rep < 0 ? &scratch : &res[(size_t)rep * (size_t)nmeas + (size_t)m]);
		}
	}
	if (tty)
		fprintf(stderr, "\r%60s\r", "");

	int first = g_naggs;
	struct ufb_result *col = calloc((size_t)reps, sizeof(*col));
	for (int metric = 0; metric < (sc->metric2 ? 2 : 1); metric++)
		for (int v = 0; v < sc->nvariants; v++)
			for (int s = 0; s < nsys; s++) {
				struct agg *a = new_agg();
				a->sc = sc;
				a->metric = metric;
				a->threads = ufb_variant_threads(sc, &cfg, v);
				a->sys = sys[s];
				a->cfg = cfg;
				for (int rep = 0; rep < reps; rep++)
					col[rep] = res[(size_t)rep * (size_t)nmeas + (size_t)(v * nsys + s)];
				aggregate(a, col, reps, &d);
				if (metric == 1 && sys[s].system == UFB_KERNEL_ANON) { /* no sync figure */
					g_naggs--;
					continue;
				}
			}
	free(col);
	free(res);
	/* Speed-up of the threaded variant over the 1-thread one. */
	for (int i = first; i < g_naggs; i++)
		for (int j = first; j < g_naggs; j++)
			if (g_aggs[i].threads > 1 && g_aggs[j].threads == 1 &&
			    g_aggs[j].sys.system == g_aggs[i].sys.system &&
			    g_aggs[j].sys.engine == g_aggs[i].sys.engine && g_aggs[i].med > 0)
				g_aggs[i].speedup = g_aggs[j].med / g_aggs[i].med;

	print_table(&g_aggs[first], g_naggs - first);
	print_ratios(&g_aggs[first], g_naggs - first);
	int bad = 0;
	for (int i = first; i < g_naggs; i++) {
		struct agg *a = &g_aggs[i];
		if (g_json)
			json_result(a);
		bool expected = !strcmp(sc->name, "huge-sparse") && a->sys.system == UFB_LIBSIGSEGV;
		if ((a->status == UFB_FAILED || a->status == UFB_CRASHED || a->status == UFB_TIMEOUT) &&
		    !expected)
			bad = 1;
	}
	fflush(NULL);
	ufb_data_free(&d);
	return bad;
}

/* ------------------------------------------------------------------------ */
/* Targets                                                                   */

static struct agg *find(const char *scen, int metric, int threads, int system, int engine)
{
	for (int i = 0; i < g_naggs; i++) {
		struct agg *a = &g_aggs[i];
		if (!strcmp(a->sc->name, scen) && a->metric == metric && a->threads == threads &&
		    a->sys.system == system && (system != UFB_USERFAULT || a->sys.engine == engine))
			return a;
	}
	return NULL;
}

/* Target lines, kept for the Markdown summary. */
static char g_targets[64][512];
static int g_ntargets;

static void target(const char *name, int engine, const char *what, double value, double limit,
		   int met /* 1, 0, -1 unknown */, const char *detail)
{
	const char *verdict = met < 0 ? "not measured" : met ? "MET" : "NOT MET";
	if (g_ntargets < 64)
		snprintf(g_targets[g_ntargets++], sizeof(g_targets[0]), "| %s | %s | %s | %s | %s |", name,
			 ufb_engine_name(engine), what, verdict, detail);
	fprintf(g_out, "   %-11s %-12s %-44s %-12s %s\n", name, ufb_engine_name(engine), what, verdict,
		detail);
	if (g_json) {
		printf("{\"type\":\"target\"");
		json_str(stdout, "scenario", name);
		json_str(stdout, "engine", ufb_engine_name(engine));
		json_str(stdout, "target", what);
		json_num(stdout, "value", value);
		json_num(stdout, "limit", limit);
		if (met < 0)
			printf(",\"met\":null");
		else
			printf(",\"met\":%s", met ? "true" : "false");
		json_str(stdout, "detail", detail);
		printf("}\n");
	}
}

static bool usable(const struct agg *a)
{
	return a && a->status == UFB_OK && !isnan(a->med);
}

/* Why a figure is missing, for the target line. */
static const char *why(const struct agg *u, const struct agg *b)
{
	static char buf[300];
	const struct agg *x = u && u->status != UFB_OK ? u : b && b->status != UFB_OK ? b : NULL;
	if (!x)
		return "no figure";
	char l[48];
	ufb_sys_label(&x->sys, l, sizeof(l));
	snprintf(buf, sizeof(buf), "%s %s: %s", l, ufb_status_name(x->status), x->msg);
	return buf;
}

static void targets(const struct opts *o)
{
	fprintf(g_out, "\n== targets (medians of this run)\n");
	for (int k = 0; k < o->nengines; k++) {
		int e = o->engines[k];
		char d[400];
		struct agg *u, *b;
		bool any = false;
		for (int i = 0; i < g_naggs; i++)
			any |= g_aggs[i].sys.system == UFB_USERFAULT && g_aggs[i].sys.engine == e &&
			       g_aggs[i].status != UFB_UNAVAILABLE;
		if (!any) {
			for (int i = 0; i < g_naggs; i++)
				if (g_aggs[i].sys.system == UFB_USERFAULT && g_aggs[i].sys.engine == e) {
					fprintf(g_out, "   %-11s %-12s unavailable: %s\n", "(all)", ufb_engine_name(e),
						g_aggs[i].msg);
					break;
				}
			continue;
		}
		if ((u = find("seq-read", 0, 1, UFB_USERFAULT, e))) {
			b = find("seq-read", 0, 1, UFB_KERNEL_TMPFS, 0);
			double r = usable(u) && usable(b) ? u->med / b->med : NAN;
			if (isnan(r))
				snprintf(d, sizeof(d), "%s", why(u, b));
			else
				snprintf(d, sizeof(d), "%.2fx kernel-tmpfs (%.0f vs %.0f ns/page)", r, u->med, b->med);
			target("seq-read", e, "<= 1.5x kernel tmpfs per page", r, 1.5, isnan(r) ? -1 : r <= 1.5, d);
		}
		if ((u = find("rand-read", 0, 1, UFB_USERFAULT, e))) {
			b = find("rand-read", 0, 1, UFB_LIBSIGSEGV, 0);
			double r = usable(u) && usable(b) ? b->med / u->med : NAN;
			if (isnan(r))
				snprintf(d, sizeof(d), "%s", why(u, b));
			else
				snprintf(d, sizeof(d), "%.2fx as fast (%.0f vs %.0f ns/page)", r, u->med, b->med);
			target("rand-read", e, ">= 1.5x faster than libsigsegv", r, 1.5, isnan(r) ? -1 : r >= 1.5, d);
			b = find("rand-read", 0, 1, UFB_COPY, 0);
			r = usable(u) && usable(b) ? u->med / b->med : NAN;
			if (isnan(r))
				snprintf(d, sizeof(d), "%s", why(u, b));
			else
				snprintf(d, sizeof(d), "%.2fx copy-design (%.0f vs %.0f ns/page)", r, u->med, b->med);
			target("rand-read", e, "<= 1.0x the copy design per page", r, 1.0, isnan(r) ? -1 : r <= 1.0, d);
		}
		if ((u = find("zipf-read", 0, 1, UFB_USERFAULT, e))) {
			double m = usable(u) ? u->miss : NAN;
			int met = isnan(m) ? -1 : m <= 1.1 * u->lru && m < u->fifo;
			if (isnan(m))
				snprintf(d, sizeof(d), "%s", why(u, NULL));
			else
				snprintf(d, sizeof(d), "miss %.4f = %.3fx LRU %.4f; FIFO %.4f, CLOCK %.4f", m,
					 m / u->lru, u->lru, u->fifo, u->clock);
			target("zipf-read", e, "miss <= 1.1x LRU and < FIFO", m / u->lru, 1.1, met, d);
		}
		if ((u = find("threads", 0, o->threads, UFB_USERFAULT, e)) && o->threads > 1) {
			double sp = usable(u) ? u->speedup : NAN;
			if (isnan(sp))
				snprintf(d, sizeof(d), "%s", why(u, find("threads", 0, 1, UFB_USERFAULT, e)));
			else
				snprintf(d, sizeof(d), "%.2fx with %d threads", sp, o->threads);
			target("threads", e, ">= 1.7x with 2 threads over 1", sp, 1.7, isnan(sp) ? -1 : sp >= 1.7, d);
		}
		if ((u = find("huge-sparse", 0, 1, UFB_USERFAULT, e))) {
			double lim = (double)u->cfg.budget + 64.0 * (1 << 20);
			int met = u->status == UFB_OK && !u->truncated && u->vma > 0 && u->vma < 200 &&
				  u->rss > 0 && (double)u->rss <= lim;
			snprintf(d, sizeof(d), "%s%s, %ld VMAs, peak RSS %.0f MiB (limit %.0f), %.2f us/fault%s%s",
				 ufb_status_name(u->status), u->truncated ? " (cut at the time limit)" : "", u->vma,
				 (double)u->rss / (1 << 20), lim / (1 << 20), u->med / 1000,
				 u->status != UFB_OK ? ": " : "", u->status != UFB_OK ? u->msg : "");
			target("huge-sparse", e, "completes, VMAs < 200, RSS <= budget+64M", (double)u->rss, lim,
			       u->status == UFB_UNAVAILABLE ? -1 : met, d);
		}
		if ((u = find("write-sync", 0, 1, UFB_USERFAULT, e))) {
			double m = usable(u) ? u->med : NAN;
			if (isnan(m))
				snprintf(d, sizeof(d), "%s", why(u, NULL));
			else
				snprintf(d, sizeof(d), "%.0f ns per page written", m);
			target("write-sync", e, "first write <= 2 us/page", m, 2000, isnan(m) ? -1 : m <= 2000, d);
		}
		if ((u = find("write-sync", 1, 1, UFB_USERFAULT, e))) {
			double m = usable(u) ? u->med : NAN;
			if (isnan(m))
				snprintf(d, sizeof(d), "%s", why(u, NULL));
			else
				snprintf(d, sizeof(d), "%.1f ns per page of region", m);
			target("write-sync", e, "sync <= 60 ns/page of region", m, 60, isnan(m) ? -1 : m <= 60, d);
		}
	}
}

/* gnuplot table: one row per figure, one column per system, us per page. */
static void write_dat(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "ufbench: %s: %s\n", path, strerror(errno));
		return;
	}
	static const struct ufb_sys cols[] = {
		{UFB_KERNEL_TMPFS, 0},           {UFB_KERNEL_ANON, 0},
		{UFB_LIBSIGSEGV, 0},             {UFB_COPY, 0},
		{UFB_USERFAULT, UF_ENGINE_UFFD},
		{UFB_USERFAULT, UF_ENGINE_UFFD_THREAD}, {UFB_USERFAULT, UF_ENGINE_SIGNAL},
		{UFB_USERFAULT, UF_ENGINE_AUTO},
	};
	const int ncols = (int)(sizeof(cols) / sizeof(cols[0]));
	bool used[sizeof(cols) / sizeof(cols[0])] = {false};
	for (int c = 0; c < ncols; c++) /* only systems that produced a figure */
		for (int i = 0; i < g_naggs; i++)
			used[c] |= g_aggs[i].sys.system == cols[c].system &&
				   (cols[c].system != UFB_USERFAULT || g_aggs[i].sys.engine == cols[c].engine) &&
				   !isnan(g_aggs[i].med) && g_aggs[i].status != UFB_UNAVAILABLE;
	fprintf(f, "# ufbench medians in microseconds per page ('-': not run or unavailable)\n");
	fprintf(f, "figure");
	for (int c = 0; c < ncols; c++) {
		char l[48];
		ufb_sys_label(&cols[c], l, sizeof(l));
		if (used[c])
			fprintf(f, " %s", l);
	}
	fprintf(f, "\n");
	for (int i = 0; i < g_naggs; i++) {
		struct agg *a = &g_aggs[i];
		bool seen = false; /* one line per (scenario, metric, threads) */
		for (int j = 0; j < i && !seen; j++)
			seen = g_aggs[j].sc == a->sc && g_aggs[j].metric == a->metric &&
			       g_aggs[j].threads == a->threads;
		if (seen)
			continue;
		char name[64];
		if (a->sc->nvariants > 1)
			snprintf(name, sizeof(name), "%s:%dT", a->sc->name, a->threads);
		else if (a->sc->metric2)
			snprintf(name, sizeof(name), "%s:%s", a->sc->name, metric_name(a));
		else
			snprintf(name, sizeof(name), "%s", a->sc->name);
		fprintf(f, "%s", name);
		for (int c = 0; c < ncols; c++) {
			if (!used[c])
				continue;
			struct agg *x = find(a->sc->name, a->metric, a->threads, cols[c].system, cols[c].engine);
			if (x && !isnan(x->med) && x->status != UFB_UNAVAILABLE)
				fprintf(f, " %.4g", x->med / 1000);
			else
				fprintf(f, " -");
		}
		fprintf(f, "\n");
	}
	fclose(f);
}

/* Markdown: one table of every figure with its ratios, one of the targets. */
static void write_md(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "ufbench: %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "| scenario | figure | thr | system | ns/page median | min | max | "
		   "vs kernel-tmpfs | vs kernel-anon | vs libsigsegv | vs copy-design | miss | VMAs | peak RSS | notes |\n");
	fprintf(f, "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
	for (int i = 0; i < g_naggs; i++) {
		struct agg *a = &g_aggs[i];
		char l[48], m[3][16], r[4][16], miss[16], vma[16], rss[16], note[300];
		label(a, l, sizeof(l));
		fmt_num(a->med, m[0], sizeof(m[0]));
		fmt_num(a->min, m[1], sizeof(m[1]));
		fmt_num(a->max, m[2], sizeof(m[2]));
		static const int base[4] = {UFB_KERNEL_TMPFS, UFB_KERNEL_ANON, UFB_LIBSIGSEGV, UFB_COPY};
		for (int k = 0; k < 4; k++) {
			struct agg *b = a->sys.system == UFB_USERFAULT
						? find(a->sc->name, a->metric, a->threads, base[k], 0)
						: NULL;
			if (b && usable(a) && !isnan(b->med) && b->med > 0)
				snprintf(r[k], sizeof(r[k]), "%.2fx%s", a->med / b->med,
					 b->status == UFB_OK ? "" : "*");
			else
				snprintf(r[k], sizeof(r[k]), " ");
		}
		if (isnan(a->miss))
			snprintf(miss, sizeof(miss), " ");
		else
			snprintf(miss, sizeof(miss), "%.4f", a->miss);
		snprintf(vma, sizeof(vma), a->vma ? "%ld" : " ", a->vma);
		if (a->rss)
			snprintf(rss, sizeof(rss), "%.0f MiB", (double)a->rss / (1 << 20));
		else
			snprintf(rss, sizeof(rss), " ");
		note[0] = 0;
		if (a->status != UFB_OK)
			snprintf(note, sizeof(note), "%s: %s", ufb_status_name(a->status), a->msg);
		else if (a->truncated)
			snprintf(note, sizeof(note), "cut at the time limit after %llu of %llu",
				 (unsigned long long)a->done, (unsigned long long)a->planned);
		if (!isnan(a->speedup)) {
			size_t k = strlen(note);
			snprintf(note + k, sizeof(note) - k, "%sspeed-up %.2fx", k ? "; " : "", a->speedup);
		}
		if (!isnan(a->lru) && a->sys.system == UFB_KERNEL_TMPFS) {
			size_t k = strlen(note);
			snprintf(note + k, sizeof(note) - k, "%sno budget; simulated LRU %.4f FIFO %.4f CLOCK %.4f",
				 k ? "; " : "", a->lru, a->fifo, a->clock);
		}
		for (char *p = note; *p; p++)
			if (*p == '|')
				*p = '/';
		fprintf(f, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			a->sc->name, metric_name(a), a->threads, l, m[0], m[1], m[2], r[0], r[1], r[2], r[3], miss,
			vma, rss, note);
	}
	if (g_ntargets) {
		fprintf(f, "\n| target | engine | goal | verdict | measured |\n|---|---|---|---|---|\n");
		for (int i = 0; i < g_ntargets; i++)
			fprintf(f, "%s\n", g_targets[i]);
	}
	fclose(f);
}

/* The 1-minute load average: other work on a 2-vCPU guest moves every figure. */
static double loadavg(void)
{
	double l = NAN;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = NAN;
		fclose(f);
	}
	return l;
}

static void machine(void)
{
	struct utsname u;
	char model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "model name", 10)) {
				char *p = strchr(line, ':');
				if (p) {
					snprintf(model, sizeof(model), "%s", p + 2);
					model[strcspn(model, "\n")] = 0;
				}
				break;
			}
		fclose(f);
	}
	long mmc = -1;
	f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f) {
		if (fscanf(f, "%ld", &mmc) != 1)
			mmc = -1;
		fclose(f);
	}
	uname(&u);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	fprintf(g_out, "ufbench: %s %s, %ld CPUs (%s), page %zu, vm.max_map_count %ld, libsigsegv %s, "
		"load average %.2f\n", u.sysname, u.release, cpus, model, ufb_page_size(), mmc,
		ufb_have_libsigsegv() ? "yes" : "no", loadavg());
	if (loadavg() > 0.5 * (double)cpus)
		fprintf(g_out, "ufbench: warning: the machine is busy (load average %.2f on %ld CPUs); "
			       "figures will be noisy\n", loadavg(), cpus);
	if (g_json) {
		printf("{\"type\":\"machine\"");
		json_str(stdout, "kernel", u.release);
		json_str(stdout, "machine", u.machine);
		json_str(stdout, "cpu", model);
		json_num(stdout, "cpus", (double)cpus);
		json_num(stdout, "page_size", (double)ufb_page_size());
		json_num(stdout, "max_map_count", (double)mmc);
		json_num(stdout, "loadavg", loadavg());
		char date[32];
		time_t now = time(NULL);
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		json_str(stdout, "date", date);
		printf(",\"libsigsegv\":%s}\n", ufb_have_libsigsegv() ? "true" : "false");
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (o.list) {
		list();
		return 0;
	}
	g_json = o.json;
	g_out = o.json ? stderr : stdout;
	setvbuf(stdout, NULL, _IOLBF, 0);
	machine();
	struct ufb_result *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("ufbench: mmap");
		return 1;
	}
	int bad = 0;
	uint64_t t0 = ufb_wall_ns();
	for (int i = 0; i < ufb_nscenarios; i++)
		if (o.scen[i])
			bad |= run_scenario(&ufb_scenarios[i], &o, shared);
	if (o.compare)
		targets(&o);
	if (o.dat)
		write_dat(o.dat);
	if (o.md)
		write_md(o.md);
	double secs = (double)(ufb_wall_ns() - t0) / 1e9;
	fprintf(g_out, "\nufbench: done in %.0f s, load average %.2f%s\n", secs, loadavg(),
		bad ? "; some measurements FAILED (see notes)" : "");
	if (g_json) {
		printf("{\"type\":\"end\"");
		json_num(stdout, "seconds", secs);
		json_num(stdout, "loadavg", loadavg());
		printf(",\"failed\":%s}\n", bad ? "true" : "false");
	}
	return bad;
}

/* SPDX-License-Identifier: MIT */
/*
 * options.c - every environment variable the library reads, in one table.
 *
 * Each is documented in man/userfault.7 (tests/test_options checks that the
 * table, the page and the names the sources pass to uf__getenv agree). The
 * values are read when needed, not cached: a program may set one between
 * two uf_map calls (bench_write_tracking does), and none is read in signal
 * context. Variables that name a file are read with secure_getenv, so a
 * set-user-ID program does not write where its caller says.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "internal.h"

struct option {
	const char *name;
	bool secure; /* names a file or a library: ignored in AT_SECURE processes */
};

static const struct option g_options[] = {
	{"USERFAULT_ENGINE", false},        /* auto|uffd|uffd-thread|signal */
	{"USERFAULT_WP_ASYNC", false},      /* 0: a write-protect fault per first write */
	{"USERFAULT_DIRECT", false},        /* 0: clean loads from a memory store go through a staging copy */
	{"USERFAULT_THP", false},           /* 0: no huge-page windows (read-only scans of a memory store) */
	{"USERFAULT_THREAD_SPIN_US", false},/* uffd-thread: how long a handler polls before it sleeps */
	{"USERFAULT_COPY_ISA", false},      /* sse2|avx2: cap the fault-safe copy width */
	{"USERFAULT_MAX_MAP_COUNT", false}, /* lower vm.max_map_count for the signal engine */
	{"USERFAULT_STACK_DISTANCE", false},/* bytes below SP that still count as an overflow (k/m/g) */
	{"USERFAULT_VERBOSE", false},       /* 1: one stderr line per decision */
	{"USERFAULT_STATS", false},         /* 1: region statistics at unmap and exit */
	{"USERFAULT_PUBLISH", false},       /* 1: statistics in /dev/shm for ufstat */
	{"USERFAULT_CATCH_FILE", true},     /* crash reporter: append reports here */
};

const char *uf__getenv(const char *name)
{
	for (size_t i = 0; i < UF__ARRAY_SIZE(g_options); i++)
		if (!strcmp(g_options[i].name, name))
			return g_options[i].secure ? secure_getenv(name) : getenv(name);
	/* A name missing from the table is a bug caught by test_options; in a
	 * build that slipped through, say so once rather than guess. */
	static _Atomic int warned;
	if (!atomic_exchange(&warned, 1)) {
		uf__write_str(2, "userfault: internal: environment variable ");
		uf__write_str(2, name);
		uf__write_str(2, " is not in src/options.c's table: ignored\n");
	}
	return NULL;
}

/* Switches (userfault.7: unknown values are ignored): on for exactly "1";
 * a default that is on is turned off by exactly "0". */
bool uf__getenv_on(const char *name)
{
	const char *v = uf__getenv(name);
	return v && !strcmp(v, "1");
}

bool uf__getenv_off(const char *name)
{
	const char *v = uf__getenv(name);
	return v && !strcmp(v, "0");
}

/* A number (userfault.7): digits only, at least lo. Unset or empty: false.
 * Anything else (a sign, a suffix, a fraction, too large, below lo) is
 * ignored with one stderr line per variable, rather than read as its
 * leading digits ("2k" as 2) or wrapped round ("-5" as 2^64 - 5). */
bool uf__getenv_num(const char *name, unsigned long lo, unsigned long *out)
{
	const char *v = uf__getenv(name);
	if (!v || !*v)
		return false;
	unsigned long n = 0;
	const char *p = v;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (~0ul - d) / 10)
			break;
		n = n * 10 + d;
	}
	if (!*p && n >= lo) {
		*out = n;
		return true;
	}
	static _Atomic unsigned long said; /* one bit per table entry */
	for (size_t i = 0; i < UF__ARRAY_SIZE(g_options) && i < 64; i++)
		if (!strcmp(g_options[i].name, name) && (atomic_fetch_or(&said, 1ul << i) & (1ul << i)))
			return false;
	char t[24];
	uf__write_str(2, "userfault: ");
	uf__write_str(2, name);
	uf__write_str(2, " ignored (a whole number, at least ");
	uf__write_str(2, uf__fmt_udec(t, sizeof(t), lo));
	uf__write_str(2, ")\n");
	return false;
}

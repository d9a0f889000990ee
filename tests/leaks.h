/* SPDX-License-Identifier: MIT */
/* leaks.h - what a test counts before and after to show nothing leaked:
 * directory entries (/proc/self/fd), mappings, resident memory; and a
 * monotonic clock for "returns at once". */
#ifndef UF_TEST_LEAKS_H
#define UF_TEST_LEAKS_H

#include <dirent.h>
#include <time.h>

#include "harness.h"

__attribute__((unused)) static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	ASSERT(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

__attribute__((unused)) static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Resident set in KiB (/proc/self/statm). */
__attribute__((unused)) static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	ASSERT(f);
	long size, res;
	ASSERT_EQ(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

__attribute__((unused)) static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif

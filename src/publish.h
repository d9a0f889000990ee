/* SPDX-License-Identifier: MIT */
/*
 * publish.h - the layout of /dev/shm/userfault-PID, the read-only channel
 * through which ufstat(1) sees a running process's regions.
 *
 * Written by the library (diag.c) when USERFAULT_PUBLISH=1, created with
 * mode 0600 by the process's own user (so only that user and root can read
 * it), rewritten every UF__PUB_PERIOD_MS by one thread, unlinked at exit.
 * A reader copies the file and retries while seq is odd or changed (a
 * seqlock: the writer makes seq odd, writes, makes it even again).
 * Shared by src/diag.c and tools/ufstat.c only; never installed.
 */
#ifndef UF_PUBLISH_H
#define UF_PUBLISH_H

#include <stdint.h>

#define UF__PUB_MAGIC "UFSTAT1"
#define UF__PUB_SLOTS 64
#define UF__PUB_PERIOD_MS 250
#define UF__PUB_DIR "/dev/shm"
#define UF__PUB_PREFIX "userfault-"

struct uf__pub_region {
	uint64_t base, len, block_size;
	int32_t engine, used; /* used: 1 while the region is mapped */
	uint64_t faults, loads, evictions, writebacks, write_faults, reactivations;
	uint64_t resident, resident_peak, dirty, max_resident;
	uint64_t store_read_ns, store_write_ns; /* the region's store (all its regions) */
};

struct uf__pub {
	char magic[8];
	uint32_t size;    /* sizeof(struct uf__pub) of the writer */
	int32_t pid;
	uint64_t seq;     /* odd while an update is being written */
	uint64_t time_ns; /* CLOCK_MONOTONIC of the last update */
	uint32_t nregions;/* slots in use, at most UF__PUB_SLOTS */
	uint32_t dropped; /* regions mapped while every slot was taken */
	struct uf__pub_region r[UF__PUB_SLOTS];
};

#endif

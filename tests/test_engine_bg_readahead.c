/* SPDX-License-Identifier: MIT */
/*
 * Background read-ahead, for a store with store threads (UF_STORE_NOT_SIGSAFE):
 * once a sequential scan reaches full read-ahead windows, the next window
 * is read by a store thread while the program works through the current
 * one, so more than one store read is in flight for a single scanning
 * thread. Checked on every engine:
 *   - a scan reads every block's own bytes; under the engines that read
 *     ahead, store reads overlap (at most 1 in flight means none was read
 *     in the background), and none runs in the scanning thread;
 *   - uf_unmap while a background read is still in flight waits for it:
 *     when uf_unmap returns, no store call of the region is running (and
 *     nothing touches the freed region afterwards: ASan, valgrind);
 *   - a program slower than the store keeps the store reading ahead: a
 *     window read in time is still entered with a fault (its first block
 *     is parked) that starts the next one, so after the first full window
 *     no store read is for a window the program is already waiting at;
 *   - a store read failing inside a background window is covered by
 *     test_engine_ra_error (its failing blocks alone give SIGBUS).
 * The signal engine does not read ahead: there only the data is checked.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

static unsigned char *g_buf;
static size_t g_bs;
static uint64_t g_slow_from = UINT64_MAX; /* blocks from here read slowly */
static _Atomic int inflight, max_inflight, in_app;
/* The block the program is at (UINT64_MAX: none), and the store reads of
 * windows holding it (the program waits for those). */
static _Atomic uint64_t g_pos = UINT64_MAX;
static _Atomic int waited_reads;
static __thread int t_app;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts))
		;
}

static int rd(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx;
	if (t_app)
		in_app++;
	uint64_t at = g_pos;
	if (at != UINT64_MAX && at >= off / g_bs && at < (off + len) / g_bs)
		waited_reads++;
	int n = ++inflight, m = max_inflight;
	while (n > m && !atomic_compare_exchange_weak(&max_inflight, &m, n))
		;
	sleep_ms(off / g_bs >= g_slow_from ? 300 : 2);
	memcpy(dst, g_buf + off, len);
	inflight--;
	return 0;
}

static uf_region *map(uf_store **s, size_t size)
{
	static const struct uf_store_ops ops = {
		.struct_size = sizeof(ops), .read = rd, .flags = UF_STORE_NOT_SIGSAFE};
	ASSERT_OK(uf_store_new(&ops, NULL, size, s));
	struct uf_map_opts o = test_map_opts();
	o.block_size = g_bs;
	o.max_resident = size;
	uf_region *r;
	ASSERT_OK(uf_map(*s, 0, size, PROT_READ, &o, &r));
	return r;
}

int main(void)
{
	test_init(60);
	t_app = 1;
	g_bs = page_size();
	unsigned nblk = 1024;
	size_t size = (size_t)nblk * g_bs;
	g_buf = malloc(size);
	ASSERT(g_buf);
	for (size_t i = 0; i < size; i++)
		g_buf[i] = pattern_byte(i);

	/* A whole scan: every block's bytes; overlapping reads off this thread. */
	uf_store *s;
	uf_region *r = map(&s, size);
	volatile unsigned char *p = uf_region_addr(r);
	for (size_t b = 0; b < nblk; b++)
		ASSERT_EQ(p[b * g_bs + b % 97], g_buf[b * g_bs + b % 97]);
	struct uf_stats st = stats_of(r);
	bool ahead = st.faults < nblk / 4; /* the engine reads ahead */
	ASSERT_EQ(st.loads, nblk);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	ASSERT_EQ(in_app, 0);
	printf("scan: %llu faults for %u blocks, up to %d store reads at once\n",
	       (unsigned long long)st.faults, nblk, max_inflight);
	if (ahead)
		ASSERT(max_inflight >= 2);
	else
		printf("engine %s does not read ahead: overlap not checked\n",
		       uf_engine_name(st.engine));

	/* A program slower than the store: it spends 20 ms at the start of
	 * every 64-block window, a store read takes 2 ms. Windows grow 1, 2,
	 * 4 .. 64 blocks, read while the program waits; from block 127 on
	 * every window is read ahead. Without the parked first block only
	 * the windows started by the last wait would be: once the program
	 * caught up with them (no fault, they were installed), it would wait
	 * for the next window again, one in every 4. */
	r = map(&s, size);
	p = uf_region_addr(r);
	int waited_warm = 0;
	for (size_t b = 0; b < nblk; b++) {
		if (b == 127)
			waited_warm = waited_reads;
		g_pos = b;
		if (b % 64 == 0)
			sleep_ms(20);
		ASSERT_EQ(p[b * g_bs + b % 89], g_buf[b * g_bs + b % 89]);
	}
	g_pos = UINT64_MAX;
	st = stats_of(r);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	printf("slow scan: %d store reads waited for up to block 127, %d after; %llu faults, %llu reactivations\n",
	       waited_warm, waited_reads - waited_warm, (unsigned long long)st.faults,
	       (unsigned long long)st.reactivations);
	ASSERT_EQ(st.loads, nblk);
	ASSERT_EQ(st.reactivations, 0); /* a parked first block is no reactivation */
	if (ahead)
		ASSERT_EQ(waited_reads - waited_warm, 0);

	/* uf_unmap with background reads in flight. Windows grow 1, 2, 4 ..
	 * 64 blocks: the sync read of [63, 127) starts the background windows
	 * from 127 on (up to 3: this budget holds the region), and every read
	 * from block 191 on takes 300 ms. */
	g_slow_from = 191;
	max_inflight = 0;
	r = map(&s, size);
	p = uf_region_addr(r);
	for (size_t b = 0; b <= 130; b++)
		ASSERT_EQ(p[b * g_bs], g_buf[b * g_bs]);
	int before = inflight;
	ASSERT_OK(uf_unmap(r, 0));
	int after = inflight;
	ASSERT_OK(uf_store_close(s));
	printf("unmap: %d store reads in flight before uf_unmap, %d after\n", before, after);
	ASSERT_EQ(after, 0);
	if (ahead)
		ASSERT(before >= 1);
	free(g_buf);
	printf("ok\n");
	return 0;
}

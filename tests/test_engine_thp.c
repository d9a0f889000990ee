/* SPDX-License-Identifier: MIT */
/* Huge-page windows: a sequential scan of a read-only region whose budget
 * holds it, over a memory store (read in place), a file store and a
 * function store (read through a copy). On every engine the bytes must be
 * the store's, before and after blocks inside a huge page are evicted or
 * discarded, and a write must fail. On the in-thread userfaultfd engine,
 * where the kernel gives transparent huge pages on request, the scan must
 * also have taken the huge path (the region's AnonHugePages in smaps, a
 * fault per huge page instead of per read-ahead window), and a write aimed
 * at a page in the moment between its move and its protect must be undone:
 * a writer thread waits (mincore, without faulting) for pages ahead of the
 * scanner to appear and writes at once; whatever its writes returned, the
 * region must equal the store afterwards. And four scanning threads beside
 * one that evicts and discards must read only the store's bytes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define HUGE ((size_t)2 << 20)
#define SIZE ((size_t)32 << 20)

enum { MEM, FILESTORE, FN, KINDS };
static const char *const kind_name[] = {"memory", "file", "function"};

/* fixture_open's region over a store of the given kind holding the
 * pattern (fx->buf: the expected bytes). */
static void open_kind(struct fixture *fx, int kind, size_t bs)
{
	if (kind == MEM) {
		fixture_open(fx, SIZE, bs, 0, PROT_READ);
		return;
	}
	memset(fx, 0, sizeof(*fx));
	fx->size = SIZE;
	fx->buf = pattern_buf(SIZE);
	if (kind == FILESTORE) {
		int fd = memfd_create("thp", MFD_CLOEXEC);
		ASSERT(fd >= 0);
		ASSERT_EQ(write(fd, fx->buf, SIZE), (ssize_t)SIZE);
		ASSERT_OK(uf_store_file(fd, UF_STORE_RDONLY, &fx->store));
		close(fd); /* the store keeps its own */
	} else {
		ASSERT_OK(uf_store_fn(pattern_fill, NULL, SIZE, &fx->store));
	}
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	ASSERT_OK(uf_map(fx->store, 0, SIZE, PROT_READ, &o, &fx->r));
	fx->p = uf_region_addr(fx->r);
}

static uint64_t scan(const unsigned char *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += 64)
		s += p[i];
	return s;
}

static void check_bytes(const struct fixture *fx, const char *when)
{
	if (memcmp(fx->p, fx->buf, fx->size) == 0)
		return;
	for (size_t i = 0; i < fx->size; i++)
		if (fx->p[i] != fx->buf[i])
			FAIL("%s: byte %zu is %u, the store has %u", when, i, fx->p[i], fx->buf[i]);
}

/* Blocks of size bs that [off, off + len) overlaps. */
static size_t blocks_in(size_t off, size_t len, size_t bs)
{
	return (off + len - 1) / bs - off / bs + 1;
}

static void scan_evict_discard(int kind, size_t bs)
{
	struct fixture fx;
	open_kind(&fx, kind, bs);
	uint64_t s = scan(fx.p, SIZE);
	ASSERT_EQ(s, scan(fx.buf, SIZE));
	struct uf_stats st = stats_of(fx.r);
	size_t huge = anon_huge(fx.p);
	printf("%s, %s store: scan of %zu MiB in %zu KiB blocks: faults %llu loads %llu, "
	       "AnonHugePages %zu MiB\n",
	       uf_engine_name(uf_region_engine(fx.r)), kind_name[kind], SIZE >> 20, bs >> 10,
	       (unsigned long long)st.faults, (unsigned long long)st.loads, huge >> 20);
	ASSERT_EQ(st.loads, SIZE / bs);
	if (huge_expected(fx.r)) {
		/* Every huge page, the first too (a run at the region's start). */
		ASSERT_EQ(huge, SIZE);
		/* A fault per huge page, not per 256 KiB window. */
		ASSERT_EQ(st.faults, SIZE / HUGE);
	}
	check_bytes(&fx, "after the scan");
	/* Blocks inside huge pages leave and come back. */
	size_t ps = page_size();
	ASSERT_OK(uf_evict(fx.r, fx.p + 5 * HUGE + 3 * ps, ps));
	ASSERT_OK(uf_discard(fx.r, fx.p + 9 * HUGE, 17 * ps));
	ASSERT_OK(uf_evict(fx.r, fx.p + 12 * HUGE + HUGE / 2, HUGE));
	st = stats_of(fx.r);
	size_t gone = blocks_in(5 * HUGE + 3 * ps, ps, bs) + blocks_in(9 * HUGE, 17 * ps, bs) +
		      blocks_in(12 * HUGE + HUGE / 2, HUGE, bs);
	ASSERT_EQ(st.resident, SIZE / bs - gone);
	check_bytes(&fx, "after eviction and discard");
	st = stats_of(fx.r);
	ASSERT_EQ(st.resident, SIZE / bs);
	/* Read-only stays read-only, in a huge page too. */
	uint64_t v = ~0ull;
	ASSERT_EQ(uf_try_write(fx.p + 7 * HUGE + 64, &v, sizeof(v)), -EFAULT);
	ASSERT_EQ(uf_try_write(fx.p + 5 * HUGE + 3 * ps, &v, sizeof(v)), -EFAULT);
	check_bytes(&fx, "after the refused writes");
	fixture_close(&fx, 0);
}

/* A block read at random inside one huge page, and evicted: that huge
 * page is then read in ordinary windows (its page table stays), every
 * other one still as one huge page: a fault each. (After an eviction the
 * pager keeps a third of the budget parked, which splits some of the
 * huge pages afterwards: uf_sync(3).) */
static void touched_slot(int kind)
{
	struct fixture fx;
	open_kind(&fx, kind, 0);
	size_t ps = page_size();
	const volatile unsigned char *p = fx.p;
	ASSERT_EQ(p[3 * HUGE + 5 * ps + 1], fx.buf[3 * HUGE + 5 * ps + 1]);
	ASSERT_OK(uf_evict(fx.r, fx.p + 3 * HUGE + 5 * ps, 1));
	uint64_t s = scan(fx.p, SIZE);
	ASSERT_EQ(s, scan(fx.buf, SIZE));
	struct uf_stats st = stats_of(fx.r);
	printf("%s store, a block of huge page 3 read and evicted first: %llu faults\n",
	       kind_name[kind], (unsigned long long)st.faults);
	/* 1 + 15 huge pages + that one's windows (8 of 256 KiB with 4 KiB
	 * pages); every window of 256 KiB after it (113) without the fix. */
	if (huge_expected(fx.r))
		ASSERT_LE(st.faults, SIZE / HUGE + 16);
	check_bytes(&fx, "after the scan past a touched huge page");
	fixture_close(&fx, 0);
}

/* The race: a writer waits for a page near the start of each huge page
 * ahead of the scanner (armed: the scanner waits for it before entering
 * the huge page) and writes the moment the page is mapped. */
struct race {
	unsigned char *p;
	size_t npages;
	_Atomic size_t armed; /* the huge page the writer waits on */
	_Atomic bool stop;
	unsigned landed, refused;
};

static void *writer(void *arg)
{
	struct race *w = arg;
	size_t ps = page_size();
	for (size_t h = 1; h < SIZE / HUGE && !atomic_load(&w->stop); h++) {
		size_t page = h * (HUGE / ps) + (h * 37) % (HUGE / ps);
		unsigned char *a = w->p + page * ps;
		atomic_store(&w->armed, h);
		unsigned char v = 0;
		while (!atomic_load(&w->stop) && mincore(a, ps, &v) == 0 && !(v & 1))
			;
		uint64_t x = 0x5555555555555555ull;
		int e = uf_try_write(a + 8, &x, sizeof(x));
		if (e == 0)
			w->landed++;
		else if (e == -EFAULT)
			w->refused++;
		else
			FAIL("uf_try_write = %d", e);
	}
	return NULL;
}

static void race(int kind, int round)
{
	struct fixture fx;
	open_kind(&fx, kind, 0);
	size_t ps = page_size();
	struct race w = {.p = fx.p, .npages = SIZE / ps};
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, NULL, writer, &w), 0);
	const volatile unsigned char *p = fx.p;
	uint64_t s = 0;
	for (size_t i = 0; i < SIZE; i += ps) {
		if (i % HUGE == 0 && i) {
			/* Let the writer get there first (bounded: 2 s). */
			for (int k = 0; k < 2000000 && atomic_load(&w.armed) < i / HUGE; k++)
				if (k % 1000 == 999)
					usleep(1);
		}
		s += p[i];
	}
	atomic_store(&w.stop, true);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	(void)s;
	printf("%s store, round %d: %u writes refused, %u landed in an install and were undone\n",
	       kind_name[kind], round, w.refused, w.landed);
	check_bytes(&fx, "after the racing writes");
	fixture_close(&fx, 0);
}

/* Four threads scan from scattered starts (each a sequential run that
 * meets huge-page boundaries) while a fifth evicts and discards random
 * ranges; every byte read must be the store's, and so must the whole
 * region at the end. */
struct crowd {
	const unsigned char *p, *buf;
	uf_region *r;
	_Atomic bool stop;
	_Atomic unsigned long bad;
	unsigned seed;
};

static void *crowd_scanner(void *arg)
{
	struct crowd *c = arg;
	unsigned seed = __atomic_add_fetch(&c->seed, 1, __ATOMIC_RELAXED);
	size_t ps = page_size();
	while (!atomic_load(&c->stop)) {
		size_t off = (size_t)(rand_r(&seed) % (SIZE >> 20)) << 20;
		for (size_t i = 0; i < ((size_t)8 << 20) && !atomic_load(&c->stop); i += ps) {
			size_t o = (off + i) % SIZE + (i / ps) % ps;
			if (((const volatile unsigned char *)c->p)[o] != c->buf[o])
				atomic_fetch_add(&c->bad, 1);
		}
	}
	return NULL;
}

static void *crowd_evicter(void *arg)
{
	struct crowd *c = arg;
	unsigned seed = 7;
	size_t ps = page_size();
	while (!atomic_load(&c->stop)) {
		size_t o = (size_t)(rand_r(&seed) % (SIZE / ps)) * ps;
		size_t l = ps * (1 + (size_t)rand_r(&seed) % 700);
		if (o + l > SIZE)
			l = SIZE - o;
		if (rand_r(&seed) & 1)
			ASSERT_OK(uf_evict(c->r, (void *)(c->p + o), l));
		else
			ASSERT_OK(uf_discard(c->r, (void *)(c->p + o), l));
		usleep(200);
	}
	return NULL;
}

static void crowd(int kind)
{
	struct fixture fx;
	open_kind(&fx, kind, 0);
	struct crowd c = {.p = fx.p, .buf = fx.buf, .r = fx.r};
	pthread_t t[5];
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, i < 4 ? crowd_scanner : crowd_evicter, &c), 0);
	usleep(700 * 1000);
	atomic_store(&c.stop, true);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	struct uf_stats st = stats_of(fx.r);
	printf("%s store, 4 scanners and an evicter: %lu wrong bytes, %llu faults, %llu loads\n",
	       kind_name[kind], atomic_load(&c.bad), (unsigned long long)st.faults,
	       (unsigned long long)st.loads);
	ASSERT_EQ(atomic_load(&c.bad), 0);
	check_bytes(&fx, "after the crowd");
	fixture_close(&fx, 0);
}

int main(void)
{
	test_init(120);
	size_t ps = page_size();
	for (int k = 0; k < KINDS; k++) {
		scan_evict_discard(k, ps);
		scan_evict_discard(k, ps << 8 < HUGE ? ps << 8 : ps); /* 1 MiB: no read-ahead window */
		scan_evict_discard(k, HUGE);
	}
	for (int k = 0; k < KINDS; k++)
		for (int i = 0; i < 3; i++)
			race(k, i);
	for (int k = 0; k < KINDS; k++)
		crowd(k);
	for (int k = 0; k < KINDS; k++)
		touched_slot(k);
	printf("ok\n");
	return 0;
}

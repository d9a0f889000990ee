/* SPDX-License-Identifier: MIT */
/* A store read that blocks for seconds must not stop other threads
 * faulting on other blocks: thread A touches block 0, whose read takes
 * 2 s; meanwhile thread B faults 200 other blocks (each a quick read) and
 * must finish long before A (bound: 1 s, generous for a loaded machine).
 * Prints B's time. A second thread touching the slow block (C) may wait
 * for it, B may not: on the handler-thread engine too (its two handler
 * threads were both held by the slow block until it grew its pool). */
#include <pthread.h>
#include <time.h>

#include "common.h"
#include "inject.h"

static unsigned char *p;
static size_t ps;
static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static void *touch_slow(void *arg)
{
	(void)arg;
	ASSERT_EQ(((volatile unsigned char *)p)[7], pattern_byte(7));
	return NULL;
}

int main(void)
{
	test_init(60);
	ps = page_size();
	size_t size = 512 * ps;
	uf_store *inner;
	unsigned char *buf = pattern_store(size, &inner);
	struct inject j = {.range_lo = 0, .range_hi = ps, .delay_range_us = 2000000};
	uf_store *s = inject_wrap(&j, inner);
	struct uf_map_opts o = test_map_opts();
	o.flags = UF_MAP_NO_READAHEAD; /* block 0's read covers block 0 only */
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, size, PROT_READ, &o, &r));
	p = uf_region_addr(r);
	atomic_store(&j.on, 1);
	pthread_t a, c;
	double t0 = now_s();
	ASSERT_EQ(pthread_create(&a, NULL, touch_slow, NULL), 0);
	struct timespec d = {0, 100000000};
	nanosleep(&d, NULL); /* A is in its slow read now */
	ASSERT_EQ(pthread_create(&c, NULL, touch_slow, NULL), 0);
	nanosleep(&d, NULL);
	double tb = now_s();
	for (size_t b = 8; b < 208; b++)
		ASSERT_EQ(((volatile unsigned char *)p)[b * ps + 3], pattern_byte(b * ps + 3));
	double b_time = now_s() - tb;
	ASSERT_EQ(pthread_join(a, NULL), 0);
	ASSERT_EQ(pthread_join(c, NULL), 0);
	double a_time = now_s() - t0;
	printf("%s: 200 faults on other blocks took %.3f s while one read blocked %.1f s\n",
	       uf_engine_name(uf_region_engine(r)), b_time, a_time);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(buf);
	if (b_time > 1.0)
		FAIL("other blocks waited %.2f s for one slow store read", b_time);
	return 0;
}

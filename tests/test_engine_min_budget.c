/* SPDX-License-Identifier: MIT */
/* A budget too small for one instruction is raised to what one instruction
 * can need at once, so accesses that span blocks complete instead of
 * evicting each other forever: a 64-byte uf_try_read and an unaligned load
 * across a block boundary with a budget of one block, and on x86-64 a movsq
 * whose source and destination each straddle a boundary, run from the
 * program and (executable region) from the region, its own bytes across a
 * boundary too. uf_stats reports the raised
 * budget. Without the floor each of these hangs (the runner's timeout). */
#include <stdint.h>
#include <sys/mman.h>

#include "common.h"

/* uf_map(3): a region gets at least four frames, six if executable (or
 * all its blocks, if fewer). */
#define UF_TEST_MIN_FRAMES 4

static size_t ps;

static struct uf_stats map_budget(uf_store *s, size_t len, size_t bs, size_t budget, int prot,
				  uf_region **r)
{
	struct uf_map_opts o = test_map_opts();
	o.block_size = bs;
	o.max_resident = budget;
	ASSERT_OK(uf_map(s, 0, len, prot, &o, r));
	return stats_of(*r);
}

/* Data accesses across block boundaries, budget one block. */
static void spans(size_t bs)
{
	const size_t nb = 16, len = nb * bs;
	uf_store *s;
	unsigned char *buf = pattern_store(len, &s);
	/* What the region must hold, kept apart from the store's bytes: those
	 * are written by evictions on other threads (uffd-thread), an order
	 * the kernel's wake-up gives but TSan cannot see. */
	unsigned char *model = malloc(len);
	ASSERT(model != NULL);
	memcpy(model, buf, len);
	uf_region *r;
	struct uf_stats st = map_budget(s, len, bs, bs, PROT_READ | PROT_WRITE, &r);
	ASSERT_EQ(st.max_resident, UF_TEST_MIN_FRAMES);
	unsigned char *p = uf_region_addr(r);
	for (size_t b = 1; b < nb; b += 3) {
		unsigned char tmp[64];
		size_t at = b * bs - 29;
		ASSERT_OK(uf_try_read(tmp, p + at, sizeof(tmp)));
		ASSERT(memcmp(tmp, model + at, sizeof(tmp)) == 0);
		uint64_t v, want;
		memcpy(&want, model + b * bs - 3, 8);
		v = *(volatile uint64_t *)(void *)(p + b * bs - 3); /* unaligned, two blocks */
		ASSERT_EQ(v, want);
		ASSERT_OK(uf_try_write(p + b * bs - 5, "0123456789", 10));
		ASSERT(memcmp(p + b * bs - 5, "0123456789", 10) == 0);
		memcpy(model + b * bs - 5, "0123456789", 10);
	}
#if defined(__x86_64__)
	/* one movsq, both operands across a boundary: four blocks at once */
	for (size_t b = 2; b + 8 < nb; b += 5) {
		void *si = p + b * bs - 4, *di = p + (b + 6) * bs - 4;
		ASSERT_OK(uf_evict(r, NULL, 0));
		__asm__ volatile("movsq" : "+S"(si), "+D"(di) : : "memory");
		memcpy(model + (b + 6) * bs - 4, model + b * bs - 4, 8);
	}
#endif
	for (size_t i = 0; i < len; i++)
		if (p[i] != model[i])
			FAIL("bs %zu byte %zu: got %u want %u", bs, i, p[i], model[i]);
	st = stats_of(r);
	ASSERT_LE(st.resident, UF_TEST_MIN_FRAMES);
	ASSERT_OK(uf_sync(r, NULL, 0));
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(model);
	free(buf);
}

#if defined(__x86_64__)
/* movsq from p+src to p+dst, both across a boundary; the instruction run
 * from the region itself at p+code, also across one: six blocks at once. */
static void movsq_from_region(void)
{
	const size_t nb = 16, len = nb * ps;
	unsigned char *buf = malloc(len);
	ASSERT(buf != NULL);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	const size_t code = ps - 1, src = 5 * ps - 4, dst = 9 * ps - 4;
	buf[code] = 0x48;     /* REX.W */
	buf[code + 1] = 0xA5; /* movs: movsq */
	buf[code + 2] = 0xC3; /* ret */
	uf_store *s;
	unsigned char *model = malloc(len); /* as in spans */
	ASSERT(model != NULL);
	memcpy(model, buf, len);
	ASSERT_OK(uf_store_mem(buf, len, 0, &s));
	uf_region *r;
	struct uf_stats st = map_budget(s, len, ps, ps, PROT_READ | PROT_WRITE | PROT_EXEC, &r);
	ASSERT_EQ(st.max_resident, UF_TEST_MIN_FRAMES + 2);
	unsigned char *p = uf_region_addr(r);
	for (int round = 0; round < 3; round++) {
		/* evict everything so that all six blocks fault in one instruction */
		ASSERT_OK(uf_evict(r, NULL, 0));
		void *si = p + src, *di = p + dst;
		void (*fn)(void) = (void (*)(void))(void *)(p + code);
		__asm__ volatile("sub $128, %%rsp\n\tcall *%[f]\n\tadd $128, %%rsp"
				 : "+S"(si), "+D"(di)
				 : [f] "r"(fn)
				 : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
		ASSERT(si == p + src + 8 && di == p + dst + 8);
		ASSERT(memcmp(p + dst, model + src, 8) == 0);
		ASSERT(memcmp(p + dst + 8, model + dst + 8, 8) == 0);
	}
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	ASSERT(memcmp(buf + dst, buf + src, 8) == 0); /* written back at unmap */
	free(model);
	free(buf);
}
#endif

int main(void)
{
	test_init(60);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	spans(ps);
	spans(4 * ps);
	/* a region of fewer blocks than the floor gets all of them */
	uf_store *s;
	unsigned char *buf = pattern_store(2 * ps, &s);
	uf_region *r;
	struct uf_stats st = map_budget(s, 2 * ps, ps, ps, PROT_READ, &r);
	ASSERT_EQ(st.max_resident, 2);
	ASSERT_OK(uf_unmap(r, 0));
	ASSERT_OK(uf_store_close(s));
	free(buf);
#if defined(__x86_64__)
	movsq_from_region();
#endif
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Versioned structs: a struct_size shorter than today's struct covers only
 * the fields it holds whole. One that stops inside a field leaves that
 * field at its default (uf_map_opts, uf_store_ops) or untouched (the
 * uf_stats the library fills), never half copied. */
#include "common.h"

static int zero_read(void *ctx, uint64_t off, void *dst, size_t len)
{
	(void)ctx, (void)off;
	memset(dst, 0, len);
	return 0;
}

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	static unsigned char buf[8 * 4096];
	uf_store *s;
	ASSERT_OK(uf_store_mem(buf, sizeof(buf), 0, &s));
	uf_region *r;
	ASSERT_OK(uf_map(s, 0, 4 * ps, PROT_READ | PROT_WRITE, NULL, &r));
	int auto_engine = uf_region_engine(r);
	((volatile unsigned char *)uf_region_addr(r))[0];

	/* uf_stats: a size ending 4 bytes into faults fills engine only. */
	struct uf_stats st;
	memset(&st, 0x55, sizeof(st));
	st.struct_size = offsetof(struct uf_stats, faults) + 4;
	ASSERT_OK(uf_stats(r, &st));
	ASSERT_EQ(st.struct_size, offsetof(struct uf_stats, faults) + 4);
	ASSERT_EQ(st.engine, auto_engine);
	ASSERT_EQ(st.faults, 0x5555555555555555ull); /* neither half written */
	/* ... and one ending at a field's end fills up to it. */
	memset(&st, 0x55, sizeof(st));
	st.struct_size = offsetof(struct uf_stats, loads);
	ASSERT_OK(uf_stats(r, &st));
	ASSERT(st.faults >= 1 && st.faults < 100);
	ASSERT_EQ(st.loads, 0x5555555555555555ull);
	ASSERT_OK(uf_unmap(r, 0));

	/* uf_map_opts: an engine field half covered is not read. */
	uf_engine_features();
	struct uf_map_opts o;
	uf_map_opts_init(&o);
	o.engine = auto_engine == UF_ENGINE_SIGNAL ? UF_ENGINE_UFFD : UF_ENGINE_SIGNAL;
	o.flags = 0x8000; /* invalid, but not covered */
	o.struct_size = offsetof(struct uf_map_opts, engine) + 2;
	ASSERT_OK(uf_map(s, 0, 4 * ps, PROT_READ | PROT_WRITE, &o, &r));
	ASSERT_EQ(uf_region_engine(r), auto_engine);
	ASSERT_OK(uf_unmap(r, 0));
	/* Covered whole, the same invalid flags are refused. */
	o.struct_size = offsetof(struct uf_map_opts, flags) + sizeof(o.flags);
	ASSERT_EQ(uf_map(s, 0, 4 * ps, PROT_READ | PROT_WRITE, &o, &r), -EINVAL);
	ASSERT_OK(uf_store_close(s));

	/* uf_store_ops: invalid flags half covered are not read. */
	struct uf_store_ops ops = {.struct_size = offsetof(struct uf_store_ops, flags) + 2,
				   .read = zero_read,
				   .flags = 0x80};
	ASSERT_OK(uf_store_new(&ops, NULL, 4 * ps, &s));
	ASSERT_OK(uf_store_close(s));
	ops.struct_size = offsetof(struct uf_store_ops, flags) + sizeof(ops.flags);
	ASSERT_EQ(uf_store_new(&ops, NULL, 4 * ps, &s), -EINVAL);
	printf("ok\n");
	return 0;
}

/* fmt.c - async-signal-safe formatting shared by every signal-context writer. */
#include "fmt.h"

UF_SIGCTX void uf__out_ch(struct uf__out *o, char c)
{
	if (o->n + 1 < o->len)
		o->buf[o->n] = c;
	o->n++;
}

UF_SIGCTX void uf__out_str(struct uf__out *o, const char *s)
{
	while (*s)
		uf__out_ch(o, *s++);
}

static UF_SIGCTX void out_hex(struct uf__out *o, uint64_t v, int min_digits)
{
	char t[16];
	int i = 0;
	do {
		t[i++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v || i < min_digits);
	uf__out_str(o, "0x");
	while (i)
		uf__out_ch(o, t[--i]);
}

UF_SIGCTX void uf__out_hex(struct uf__out *o, uint64_t v) { out_hex(o, v, 1); }
UF_SIGCTX void uf__out_hex2(struct uf__out *o, uint64_t v) { out_hex(o, v, 2); }

UF_SIGCTX const char *uf__fmt_udec(char *buf, size_t len, unsigned long long v)
{
	size_t i = len - 1;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	return buf + i;
}

UF_SIGCTX void uf__out_udec(struct uf__out *o, unsigned long long v)
{
	char t[24];
	uf__out_str(o, uf__fmt_udec(t, sizeof(t), v));
}

UF_SIGCTX void uf__out_dec(struct uf__out *o, long long v)
{
	if (v < 0)
		uf__out_ch(o, '-');
	uf__out_udec(o, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v);
}

UF_SIGCTX int uf__out_end(struct uf__out *o)
{
	if (o->len)
		o->buf[o->n < o->len ? o->n : o->len - 1] = 0;
	return o->n > 0x7fffffff ? 0x7fffffff : (int)o->n;
}

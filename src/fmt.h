/* fmt.h - async-signal-safe text formatting (no stdio, no locale, no
 * allocation): the one decimal and hex formatter every signal-context
 * writer (uf_explain, the arch fault decoders, the crash reporter,
 * assertions) shares. */
#ifndef UF_FMT_H
#define UF_FMT_H

#include "internal.h"

/* snprintf-like accumulation into buf[len]: always NUL-terminated once
 * uf__out_end() ran; n counts every byte asked for, stored or not. */
struct uf__out {
	char *buf;
	size_t len, n;
};
UF_SIGCTX void uf__out_ch(struct uf__out *o, char c);
UF_SIGCTX void uf__out_str(struct uf__out *o, const char *s);
UF_SIGCTX void uf__out_hex(struct uf__out *o, uint64_t v);  /* "0x1f" */
UF_SIGCTX void uf__out_hex2(struct uf__out *o, uint64_t v); /* "0x1f", at least 2 digits */
UF_SIGCTX void uf__out_dec(struct uf__out *o, long long v);
UF_SIGCTX void uf__out_udec(struct uf__out *o, unsigned long long v);
/* NUL-terminates (truncating if needed); returns n, as snprintf does. */
UF_SIGCTX int uf__out_end(struct uf__out *o);

/* The decimal digits of v into buf (at least 21 bytes), NUL-terminated;
 * returns where they start inside buf. */
UF_SIGCTX const char *uf__fmt_udec(char *buf, size_t len, unsigned long long v);

#endif

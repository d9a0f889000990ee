/* arch/aarch64/arch.c - ucontext access for aarch64 (ESR from the
 * esr_context record the kernel puts in uc_mcontext.__reserved). */
#define _GNU_SOURCE
#include <asm/sigcontext.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "../arch.h"

const char uf__arch_name[] = "aarch64";

#define ESR_EC(e) (((e) >> 26) & 0x3f)
#define EC_IABT_LOW 0x20
#define EC_IABT_CUR 0x21
#define EC_DABT_LOW 0x24
#define EC_DABT_CUR 0x25
#define ESR_WNR (1u << 6)
#define ESR_CM (1u << 8)

UF_SIGCTX uint64_t uf__arch_fault_code(const void *uc, int *valid)
{
	const ucontext_t *u = uc;
	*valid = 0;
	if (!u)
		return 0;
	/* Walk the records: each starts with {magic, size}; a zero magic ends. */
	const unsigned char *p = (const unsigned char *)u->uc_mcontext.__reserved;
	const unsigned char *end = p + sizeof(u->uc_mcontext.__reserved);
	while (p + sizeof(struct _aarch64_ctx) <= end) {
		struct _aarch64_ctx h;
		memcpy(&h, p, sizeof(h));
		if (h.magic == 0 || h.size < sizeof(h))
			break;
		if (h.magic == ESR_MAGIC) {
			struct esr_context e;
			memcpy(&e, p, sizeof(e));
			*valid = 1;
			return e.esr;
		}
		p += h.size;
	}
	return 0;
}

UF_SIGCTX int uf__arch_access(const void *uc)
{
	int valid;
	uint64_t esr = uf__arch_fault_code(uc, &valid);
	if (!valid)
		return UF_ACCESS_UNKNOWN;
	switch (ESR_EC(esr)) {
	case EC_IABT_LOW:
	case EC_IABT_CUR:
		return UF_ACCESS_EXEC;
	case EC_DABT_LOW:
	case EC_DABT_CUR:
		/* Cache maintenance reports WnR=1 but is a read of the mapping. */
		return ((esr & ESR_WNR) && !(esr & ESR_CM)) ? UF_ACCESS_WRITE : UF_ACCESS_READ;
	default:
		return UF_ACCESS_UNKNOWN;
	}
}

UF_SIGCTX uintptr_t uf__arch_pc(const void *uc) { return ((const ucontext_t *)uc)->uc_mcontext.pc; }
UF_SIGCTX void uf__arch_set_pc(void *uc, uintptr_t pc) { ((ucontext_t *)uc)->uc_mcontext.pc = pc; }
UF_SIGCTX uintptr_t uf__arch_sp(const void *uc) { return ((const ucontext_t *)uc)->uc_mcontext.sp; }
UF_SIGCTX void uf__arch_set_ret(void *uc, uintptr_t v) { ((ucontext_t *)uc)->uc_mcontext.regs[0] = v; }

UF_SIGCTX void uf__arch_decode(uint64_t e, struct uf__out *o)
{
	unsigned ec = ESR_EC(e);
	const char *cls = ec == EC_DABT_LOW || ec == EC_DABT_CUR   ? "data abort"
			  : ec == EC_IABT_LOW || ec == EC_IABT_CUR ? "instruction abort"
								   : "other exception";
	unsigned fsc = e & 0x3f;
	const char *st = (fsc & 0x3c) == 0x04   ? "translation fault (not mapped)"
			 : (fsc & 0x3c) == 0x08 ? "access flag fault"
			 : (fsc & 0x3c) == 0x0c ? "permission fault"
			 : fsc == 0x21          ? "alignment fault"
						: "other fault status";
	uf__out_str(o, "aarch64 ESR ");
	uf__out_hex(o, e);
	uf__out_str(o, ": EC=");
	uf__out_hex2(o, ec);
	uf__out_str(o, " (");
	uf__out_str(o, cls);
	uf__out_str(o, "), IL=");
	uf__out_udec(o, (e >> 25) & 1);
	uf__out_str(o, ", WnR=");
	uf__out_udec(o, !!(e & ESR_WNR));
	uf__out_str(o, (e & ESR_WNR) ? " (write), CM=" : " (read), CM=");
	uf__out_udec(o, !!(e & ESR_CM));
	uf__out_str(o, ", DFSC/IFSC=");
	uf__out_hex2(o, fsc);
	uf__out_str(o, " (");
	uf__out_str(o, st);
	uf__out_str(o, ", level ");
	uf__out_udec(o, fsc & 3);
	uf__out_ch(o, ')');
}

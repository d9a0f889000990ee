/* arch/x86_64/arch.c - ucontext access for x86_64. */
#define _GNU_SOURCE
#include <signal.h>
#include <ucontext.h>

#include "../arch.h"

const char uf__arch_name[] = "x86_64";

/* Page-fault error code bits (Intel SDM vol. 3, 4.7). */
#define PF_PROT 0x1
#define PF_WRITE 0x2
#define PF_USER 0x4
#define PF_RSVD 0x8
#define PF_INSTR 0x10
#define PF_PK 0x20
#define PF_SHSTK 0x40

UF_SIGCTX uint64_t uf__arch_fault_code(const void *uc, int *valid)
{
	const ucontext_t *u = uc;
	/* The kernel stores the error code of the fault in REG_ERR and the trap
	 * number in REG_TRAPNO (14 = #PF). Other traps carry no access info. */
	*valid = u && u->uc_mcontext.gregs[REG_TRAPNO] == 14;
	return u ? (uint64_t)u->uc_mcontext.gregs[REG_ERR] : 0;
}

UF_SIGCTX int uf__arch_access(const void *uc)
{
	int valid;
	uint64_t err = uf__arch_fault_code(uc, &valid);
	if (!valid)
		return UF_ACCESS_UNKNOWN;
	if (err & PF_INSTR)
		return UF_ACCESS_EXEC;
	return (err & PF_WRITE) ? UF_ACCESS_WRITE : UF_ACCESS_READ;
}

UF_SIGCTX uintptr_t uf__arch_pc(const void *uc)
{
	return (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
}

UF_SIGCTX void uf__arch_set_pc(void *uc, uintptr_t pc)
{
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
}

UF_SIGCTX uintptr_t uf__arch_sp(const void *uc)
{
	return (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP];
}

UF_SIGCTX void uf__arch_set_ret(void *uc, uintptr_t v)
{
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = (greg_t)v;
}

/* One "NAME=bit" field, with its meaning in parentheses when given. */
UF_SIGCTX static void put_bit(struct uf__out *o, const char *name, bool bit, const char *why)
{
	uf__out_str(o, name);
	uf__out_ch(o, bit ? '1' : '0');
	if (why) {
		uf__out_str(o, " (");
		uf__out_str(o, why);
		uf__out_ch(o, ')');
	}
}

UF_SIGCTX void uf__arch_decode(uint64_t e, struct uf__out *o)
{
	uf__out_str(o, "x86 page-fault error code ");
	uf__out_hex(o, e);
	put_bit(o, ": P=", e & PF_PROT,
		(e & PF_PROT) ? "protection violation on a present page" : "page not present");
	put_bit(o, ", W=", e & PF_WRITE, (e & PF_WRITE) ? "write" : "read");
	put_bit(o, ", U=", e & PF_USER, (e & PF_USER) ? "user mode" : "kernel mode");
	put_bit(o, ", RSVD=", e & PF_RSVD, NULL);
	put_bit(o, ", I=", e & PF_INSTR, (e & PF_INSTR) ? "instruction fetch" : "data access");
	put_bit(o, ", PK=", e & PF_PK, NULL);
	put_bit(o, ", SS=", e & PF_SHSTK, NULL);
}

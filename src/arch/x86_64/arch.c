/* arch/x86_64/arch.c - ucontext access for x86_64. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
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

UF_SIGCTX int uf__arch_decode(uint64_t e, char *buf, size_t len)
{
	return snprintf(buf, len,
			"x86 page-fault error code 0x%llx: P=%d (%s), W=%d (%s), U=%d (%s mode), "
			"RSVD=%d, I=%d (%s), PK=%d, SS=%d",
			(unsigned long long)e, !!(e & PF_PROT),
			(e & PF_PROT) ? "protection violation on a present page" : "page not present",
			!!(e & PF_WRITE), (e & PF_WRITE) ? "write" : "read", !!(e & PF_USER),
			(e & PF_USER) ? "user" : "kernel", !!(e & PF_RSVD), !!(e & PF_INSTR),
			(e & PF_INSTR) ? "instruction fetch" : "data access", !!(e & PF_PK),
			!!(e & PF_SHSTK));
}

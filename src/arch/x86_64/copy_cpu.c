/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/copy_cpu.c - picks the vector width of copy.S once, at load
 * time, so the copy never runs cpuid (a VM exit under KVM). libgcc's checks
 * cover both the CPU flag and the kernel saving that register state.
 *
 * 512-bit moves only from Ice Lake on (AVX512-VBMI2 as the marker): on
 * Skylake-SP even light 512-bit instructions lower the core clock.
 * USERFAULT_COPY_ISA=sse2|avx2 narrows the choice (tests cover every path).
 */
#include <string.h>

#include "../../safe_access.h"
#include "../../sanitizer.h"

UF__HIDDEN unsigned char uf__copy_vec; /* 0 SSE2, 1 AVX2, 2 AVX-512 */
/* Copies from this size up take rep movsb. Not under valgrind: its rep
 * movsb decrements rcx before the byte's load and store, so after a fault
 * the restarted instruction skips one byte (a 20-page uf_try_read over
 * unloaded blocks came back with one byte a fault left unwritten); the
 * vector loops are exact there. */
UF__HIDDEN uint64_t uf__copy_rep_min = 4096;

__attribute__((constructor)) static void pick_copy_width(void)
{
	__builtin_cpu_init();
	unsigned char v = 0;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vbmi2"))
		v = 2;
	else if (__builtin_cpu_supports("avx2"))
		v = 1;
	const char *e = uf__getenv("USERFAULT_COPY_ISA");
	if (e && !strcmp(e, "sse2"))
		v = 0;
	else if (e && !strcmp(e, "avx2") && v > 1)
		v = 1;
	uf__copy_vec = v;
	if (uf__on_valgrind())
		uf__copy_rep_min = UINT64_MAX;
}

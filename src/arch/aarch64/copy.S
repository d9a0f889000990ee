/* SPDX-License-Identifier: MIT */
/*
 * arch/aarch64/copy.S - fault-safe copy and probe routines with an exception
 * table (see arch/x86_64/copy.S for the scheme).
 *
 * Every instruction that may fault on a caller-supplied address is listed in
 * uf_extable as {insn, fixup} (32-bit PC-relative offsets). On a fault,
 * uf__safe_access_fixup() sets x0 to -EFAULT and resumes at the fixup.
 *
 * Exactness: a fault in the 64- or 16-byte loops resumes in the byte loop at
 * the start of the faulting chunk (x15/x1/x2 are only advanced after a chunk
 * is stored; a faulting ldp/stp may leave part of a page-crossing store done,
 * but only below the faulting byte, and the byte loop rewrites those bytes
 * with the same values). The byte loop then faults on exactly the first
 * inaccessible byte.
 */

.macro EX insn, fixup
	.pushsection uf_extable, "a"
	.balign 4
	.long (\insn) - .
	.long (\fixup) - .
	.popsection
.endm

.macro FUNC name
	.globl \name
	.hidden \name
	.type \name, %function
	.balign 16
\name:
.endm

	.pushsection uf_extable, "a"
	.balign 4
	.globl uf__extable_start
	.hidden uf__extable_start
uf__extable_start:
	.popsection

	.text
	.globl uf__safe_text_start
	.hidden uf__safe_text_start
uf__safe_text_start:

/*
 * struct uf__copy_ret uf__copy_safe(void *dst [x0], const void *src [x1], size_t n [x2])
 * int uf__try_copy(...), the same code seen from C as returning only w0.
 * Returns x0 = 0 or -EFAULT, x1 = the number of bytes NOT copied.
 */
FUNC uf__try_copy
	.globl uf__copy_safe
	.hidden uf__copy_safe
uf__copy_safe:
	/* x0 is both the first argument and the register the fixup sets to
	 * -EFAULT: work on dst in x15, which nothing else touches. */
	mov	x15, x0
	cmp	x2, #64
	b.lo	.Lpairs
.Lblock:
10:	ldp	x3, x4, [x1]
11:	ldp	x5, x6, [x1, #16]
12:	ldp	x7, x8, [x1, #32]
13:	ldp	x9, x10, [x1, #48]
14:	stp	x3, x4, [x15]
15:	stp	x5, x6, [x15, #16]
16:	stp	x7, x8, [x15, #32]
17:	stp	x9, x10, [x15, #48]
	add	x1, x1, #64
	add	x15, x15, #64
	sub	x2, x2, #64
	cmp	x2, #64
	b.hs	.Lblock
.Lpairs:
	cmp	x2, #16
	b.lo	.Lbytes
20:	ldp	x3, x4, [x1]
21:	stp	x3, x4, [x15]
	add	x1, x1, #16
	add	x15, x15, #16
	sub	x2, x2, #16
	b	.Lpairs
.Lbytes:
	cbz	x2, .Ldone
30:	ldrb	w3, [x1]
31:	strb	w3, [x15]
	add	x1, x1, #1
	add	x15, x15, #1
	subs	x2, x2, #1
	b.ne	30b
.Ldone:
	mov	x0, #0
	mov	x1, #0
	ret
.Lbyte_fault:
	/* x2 counts the bytes from the faulting one to the end. */
	mov	x1, x2
	mov	x0, #-14	/* -EFAULT */
	ret

	EX	10b, .Lbytes
	EX	11b, .Lbytes
	EX	12b, .Lbytes
	EX	13b, .Lbytes
	EX	14b, .Lbytes
	EX	15b, .Lbytes
	EX	16b, .Lbytes
	EX	17b, .Lbytes
	EX	20b, .Lbytes
	EX	21b, .Lbytes
	EX	30b, .Lbyte_fault
	EX	31b, .Lbyte_fault
	.size uf__try_copy, . - uf__try_copy

/* int uf__probe_read1(const void *p [x0]): 0, or -EFAULT (set by the fixup). */
FUNC uf__probe_read1
40:	ldrb	w1, [x0]
	mov	x0, #0
41:	ret
	EX	40b, 41b
	.size uf__probe_read1, . - uf__probe_read1

/*
 * int uf__probe_write1(void *p [x0]): 0 or -EFAULT.
 * Stores back the byte just loaded exclusively: a real write access (write
 * protection, copy-on-write and userfaultfd write faults trigger) that can
 * never change memory, because the store-exclusive fails and we retry if
 * any other thread wrote the byte in between. Works without LSE atomics.
 */
FUNC uf__probe_write1
50:	ldxrb	w1, [x0]
51:	stxrb	w2, w1, [x0]
	cbnz	w2, 50b
	mov	x0, #0
52:	ret
	EX	50b, 52b
	EX	51b, 52b
	.size uf__probe_write1, . - uf__probe_write1

	.globl uf__safe_text_end
	.hidden uf__safe_text_end
uf__safe_text_end:

	.pushsection uf_extable, "a"
	.globl uf__extable_end
	.hidden uf__extable_end
uf__extable_end:
	.popsection

	.section .note.GNU-stack, "", %progbits

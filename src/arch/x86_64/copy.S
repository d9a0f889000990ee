/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/copy.S - fault-safe copy and probe routines with an exception
 * table, after the kernel's copy_user/extable design.
 *
 * Every instruction that may fault on a caller-supplied address is listed in
 * the uf_extable section as {insn, fixup} (32-bit offsets relative to the
 * entry, so the table needs no dynamic relocations). When one of them
 * faults, uf__safe_access_fixup() (signal context) sets rax to -EFAULT and
 * resumes at the fixup label. Nothing here makes a system call or touches
 * memory other than the arguments: the success path is a plain copy.
 *
 * Exactness: the fast paths resume on a fault in the byte loop at the start
 * of the faulting chunk (rsi/rdi/rcx only advance after a chunk is stored;
 * rep movsb leaves them at its architectural restart point), so the byte
 * loop faults again on exactly the first inaccessible byte. Bytes before it
 * are copied, no byte at or after it is written.
 */

/* One exception-table entry: when insn faults, continue at fixup. */
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
	.type \name, @function
	.balign 16
\name:
#ifdef __CET__
	endbr64
#endif
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
 * struct uf__copy_ret uf__copy_safe(void *dst [rdi], const void *src [rsi], size_t n [rdx])
 * int uf__try_copy(...), the same code seen from C as returning only eax.
 * Returns rax = 0 or -EFAULT, rdx = the number of bytes NOT copied.
 *
 * Size classes (the fast ones after glibc's memmove-vec-unaligned-erms):
 *   < 16        two overlapping 8-byte moves, or a byte loop below 8
 *   16 .. 64    two or four overlapping 16-byte moves from both ends
 *   65 .. 4095  AVX-512 or AVX2 where the CPU and kernel allow (see
 *               copy_cpu.c): head+tail vectors up to 16 registers' worth,
 *               then a 4-vector loop and an overlapping 4-vector tail;
 *               otherwise a 64-byte SSE loop
 *   >= 4096     rep movsb (ERMS/FSRM); uf__copy_rep_min, 4096 except
 *               under valgrind (copy_cpu.c)
 * In each group loads come before stores, and a store can only fault on a
 * page above every byte stored before it (the pages those bytes are on were
 * just written), so nothing at or past the faulting byte is ever written;
 * every fixup then redoes the rest in the byte loop from the last position
 * known to be fully stored. When editing: every instruction that touches
 * the caller's memory needs a numbered label (unique in this file) listed
 * in one of the EX lists at the end of the function.
 */
FUNC uf__try_copy
	.globl uf__copy_safe
	.hidden uf__copy_safe
uf__copy_safe:
	mov	%rdx, %rcx
	cmp	$64, %rcx
	ja	.Lmedium
.Lle64:
	cmp	$16, %rcx
	jb	.Ltiny
	cmp	$32, %rcx
	ja	.L33_64
10:	movdqu	(%rsi), %xmm0
11:	movdqu	-16(%rsi,%rcx), %xmm1
12:	movdqu	%xmm0, (%rdi)
13:	movdqu	%xmm1, -16(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
.L33_64:
14:	movdqu	0(%rsi), %xmm0
15:	movdqu	16(%rsi), %xmm1
16:	movdqu	-32(%rsi,%rcx), %xmm2
17:	movdqu	-16(%rsi,%rcx), %xmm3
18:	movdqu	%xmm0, 0(%rdi)
19:	movdqu	%xmm1, 16(%rdi)
20:	movdqu	%xmm2, -32(%rdi,%rcx)
21:	movdqu	%xmm3, -16(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
.Ltiny:
	cmp	$8, %rcx
	jb	.Lbytes
22:	mov	(%rsi), %rax
23:	mov	-8(%rsi,%rcx), %rdx
24:	mov	%rax, (%rdi)
25:	mov	%rdx, -8(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret

.Lbytes_vz:
	vzeroupper
.Lbytes:
	test	%rcx, %rcx
	jz	.Ldone
26:	movzbl	(%rsi), %eax
27:	mov	%al, (%rdi)
	inc	%rsi
	inc	%rdi
	dec	%rcx
	jnz	26b
.Ldone:
	xor	%eax, %eax
	xor	%edx, %edx
	ret
.Lbyte_fault:
	/* rcx counts the bytes from the faulting one to the end. */
	mov	%rcx, %rdx
	mov	$-14, %eax	/* -EFAULT */
	ret

.Lmedium:
	movzbl	uf__copy_vec(%rip), %eax
	cmp	$2, %eax
	je	.Lzmm
	cmp	$1, %eax
	je	.Lymm
	cmp	uf__copy_rep_min(%rip), %rcx
	jae	.Lrep
.Lsse:
28:	movdqu	0(%rsi), %xmm0
29:	movdqu	16(%rsi), %xmm1
30:	movdqu	32(%rsi), %xmm2
31:	movdqu	48(%rsi), %xmm3
32:	movdqu	%xmm0, 0(%rdi)
33:	movdqu	%xmm1, 16(%rdi)
34:	movdqu	%xmm2, 32(%rdi)
35:	movdqu	%xmm3, 48(%rdi)
	add	$64, %rsi
	add	$64, %rdi
	sub	$64, %rcx
	cmp	$64, %rcx
	jae	.Lsse
	jmp	.Lle64

	.p2align 4
.Lymm:
	cmp	$512, %rcx
	ja	.Lymm_big
	cmp	$128, %rcx
	ja	.Lymm_upper
36:	vmovdqu	0(%rsi), %ymm0
37:	vmovdqu	32(%rsi), %ymm1
38:	vmovdqu	-64(%rsi,%rcx), %ymm2
39:	vmovdqu	-32(%rsi,%rcx), %ymm3
40:	vmovdqu	%ymm0, 0(%rdi)
41:	vmovdqu	%ymm1, 32(%rdi)
42:	vmovdqu	%ymm2, -64(%rdi,%rcx)
43:	vmovdqu	%ymm3, -32(%rdi,%rcx)
	vzeroupper
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lymm_upper:
	cmp	$256, %rcx
	ja	.Lymm_8
44:	vmovdqu	0(%rsi), %ymm0
45:	vmovdqu	32(%rsi), %ymm1
46:	vmovdqu	64(%rsi), %ymm2
47:	vmovdqu	96(%rsi), %ymm3
48:	vmovdqu	-128(%rsi,%rcx), %ymm4
49:	vmovdqu	-96(%rsi,%rcx), %ymm5
50:	vmovdqu	-64(%rsi,%rcx), %ymm6
51:	vmovdqu	-32(%rsi,%rcx), %ymm7
52:	vmovdqu	%ymm0, 0(%rdi)
53:	vmovdqu	%ymm1, 32(%rdi)
54:	vmovdqu	%ymm2, 64(%rdi)
55:	vmovdqu	%ymm3, 96(%rdi)
56:	vmovdqu	%ymm4, -128(%rdi,%rcx)
57:	vmovdqu	%ymm5, -96(%rdi,%rcx)
58:	vmovdqu	%ymm6, -64(%rdi,%rcx)
59:	vmovdqu	%ymm7, -32(%rdi,%rcx)
	vzeroupper
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lymm_8:
60:	vmovdqu	0(%rsi), %ymm0
61:	vmovdqu	32(%rsi), %ymm1
62:	vmovdqu	64(%rsi), %ymm2
63:	vmovdqu	96(%rsi), %ymm3
64:	vmovdqu	128(%rsi), %ymm4
65:	vmovdqu	160(%rsi), %ymm5
66:	vmovdqu	192(%rsi), %ymm6
67:	vmovdqu	224(%rsi), %ymm7
68:	vmovdqu	-256(%rsi,%rcx), %ymm8
69:	vmovdqu	-224(%rsi,%rcx), %ymm9
70:	vmovdqu	-192(%rsi,%rcx), %ymm10
71:	vmovdqu	-160(%rsi,%rcx), %ymm11
72:	vmovdqu	-128(%rsi,%rcx), %ymm12
73:	vmovdqu	-96(%rsi,%rcx), %ymm13
74:	vmovdqu	-64(%rsi,%rcx), %ymm14
75:	vmovdqu	-32(%rsi,%rcx), %ymm15
76:	vmovdqu	%ymm0, 0(%rdi)
77:	vmovdqu	%ymm1, 32(%rdi)
78:	vmovdqu	%ymm2, 64(%rdi)
79:	vmovdqu	%ymm3, 96(%rdi)
80:	vmovdqu	%ymm4, 128(%rdi)
81:	vmovdqu	%ymm5, 160(%rdi)
82:	vmovdqu	%ymm6, 192(%rdi)
83:	vmovdqu	%ymm7, 224(%rdi)
84:	vmovdqu	%ymm8, -256(%rdi,%rcx)
85:	vmovdqu	%ymm9, -224(%rdi,%rcx)
86:	vmovdqu	%ymm10, -192(%rdi,%rcx)
87:	vmovdqu	%ymm11, -160(%rdi,%rcx)
88:	vmovdqu	%ymm12, -128(%rdi,%rcx)
89:	vmovdqu	%ymm13, -96(%rdi,%rcx)
90:	vmovdqu	%ymm14, -64(%rdi,%rcx)
91:	vmovdqu	%ymm15, -32(%rdi,%rcx)
	vzeroupper
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lymm_big:
	cmp	uf__copy_rep_min(%rip), %rcx
	jae	.Lrep
	.p2align 4
.Lymm_loop:
	/* 128 bytes a turn while more than 128 remain ... */
92:	vmovdqu	0(%rsi), %ymm0
93:	vmovdqu	32(%rsi), %ymm1
94:	vmovdqu	64(%rsi), %ymm2
95:	vmovdqu	96(%rsi), %ymm3
96:	vmovdqu	%ymm0, 0(%rdi)
97:	vmovdqu	%ymm1, 32(%rdi)
98:	vmovdqu	%ymm2, 64(%rdi)
99:	vmovdqu	%ymm3, 96(%rdi)
	add	$128, %rsi
	add	$128, %rdi
	sub	$128, %rcx
	cmp	$128, %rcx
	ja	.Lymm_loop
	/* ... then the last 128 bytes of the buffer, overlapping what is done. */
100:	vmovdqu	-128(%rsi,%rcx), %ymm0
101:	vmovdqu	-96(%rsi,%rcx), %ymm1
102:	vmovdqu	-64(%rsi,%rcx), %ymm2
103:	vmovdqu	-32(%rsi,%rcx), %ymm3
104:	vmovdqu	%ymm0, -128(%rdi,%rcx)
105:	vmovdqu	%ymm1, -96(%rdi,%rcx)
106:	vmovdqu	%ymm2, -64(%rdi,%rcx)
107:	vmovdqu	%ymm3, -32(%rdi,%rcx)
	vzeroupper
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	/* zmm16-31 exist only with EVEX: using them leaves no dirty upper
	 * state behind, so this path needs no vzeroupper. */

	.p2align 4
.Lzmm:
	cmp	$1024, %rcx
	ja	.Lzmm_big
	cmp	$256, %rcx
	ja	.Lzmm_upper
	cmp	$128, %rcx
	ja	.Lzmm_2
108:	vmovdqu64	0(%rsi), %zmm16
109:	vmovdqu64	-64(%rsi,%rcx), %zmm17
110:	vmovdqu64	%zmm16, 0(%rdi)
111:	vmovdqu64	%zmm17, -64(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lzmm_2:
112:	vmovdqu64	0(%rsi), %zmm16
113:	vmovdqu64	64(%rsi), %zmm17
114:	vmovdqu64	-128(%rsi,%rcx), %zmm18
115:	vmovdqu64	-64(%rsi,%rcx), %zmm19
116:	vmovdqu64	%zmm16, 0(%rdi)
117:	vmovdqu64	%zmm17, 64(%rdi)
118:	vmovdqu64	%zmm18, -128(%rdi,%rcx)
119:	vmovdqu64	%zmm19, -64(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lzmm_upper:
	cmp	$512, %rcx
	ja	.Lzmm_8
120:	vmovdqu64	0(%rsi), %zmm16
121:	vmovdqu64	64(%rsi), %zmm17
122:	vmovdqu64	128(%rsi), %zmm18
123:	vmovdqu64	192(%rsi), %zmm19
124:	vmovdqu64	-256(%rsi,%rcx), %zmm20
125:	vmovdqu64	-192(%rsi,%rcx), %zmm21
126:	vmovdqu64	-128(%rsi,%rcx), %zmm22
127:	vmovdqu64	-64(%rsi,%rcx), %zmm23
128:	vmovdqu64	%zmm16, 0(%rdi)
129:	vmovdqu64	%zmm17, 64(%rdi)
130:	vmovdqu64	%zmm18, 128(%rdi)
131:	vmovdqu64	%zmm19, 192(%rdi)
132:	vmovdqu64	%zmm20, -256(%rdi,%rcx)
133:	vmovdqu64	%zmm21, -192(%rdi,%rcx)
134:	vmovdqu64	%zmm22, -128(%rdi,%rcx)
135:	vmovdqu64	%zmm23, -64(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lzmm_8:
136:	vmovdqu64	0(%rsi), %zmm16
137:	vmovdqu64	64(%rsi), %zmm17
138:	vmovdqu64	128(%rsi), %zmm18
139:	vmovdqu64	192(%rsi), %zmm19
140:	vmovdqu64	256(%rsi), %zmm20
141:	vmovdqu64	320(%rsi), %zmm21
142:	vmovdqu64	384(%rsi), %zmm22
143:	vmovdqu64	448(%rsi), %zmm23
144:	vmovdqu64	-512(%rsi,%rcx), %zmm24
145:	vmovdqu64	-448(%rsi,%rcx), %zmm25
146:	vmovdqu64	-384(%rsi,%rcx), %zmm26
147:	vmovdqu64	-320(%rsi,%rcx), %zmm27
148:	vmovdqu64	-256(%rsi,%rcx), %zmm28
149:	vmovdqu64	-192(%rsi,%rcx), %zmm29
150:	vmovdqu64	-128(%rsi,%rcx), %zmm30
151:	vmovdqu64	-64(%rsi,%rcx), %zmm31
152:	vmovdqu64	%zmm16, 0(%rdi)
153:	vmovdqu64	%zmm17, 64(%rdi)
154:	vmovdqu64	%zmm18, 128(%rdi)
155:	vmovdqu64	%zmm19, 192(%rdi)
156:	vmovdqu64	%zmm20, 256(%rdi)
157:	vmovdqu64	%zmm21, 320(%rdi)
158:	vmovdqu64	%zmm22, 384(%rdi)
159:	vmovdqu64	%zmm23, 448(%rdi)
160:	vmovdqu64	%zmm24, -512(%rdi,%rcx)
161:	vmovdqu64	%zmm25, -448(%rdi,%rcx)
162:	vmovdqu64	%zmm26, -384(%rdi,%rcx)
163:	vmovdqu64	%zmm27, -320(%rdi,%rcx)
164:	vmovdqu64	%zmm28, -256(%rdi,%rcx)
165:	vmovdqu64	%zmm29, -192(%rdi,%rcx)
166:	vmovdqu64	%zmm30, -128(%rdi,%rcx)
167:	vmovdqu64	%zmm31, -64(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret
	.p2align 4
.Lzmm_big:
	cmp	uf__copy_rep_min(%rip), %rcx
	jae	.Lrep
	.p2align 4
.Lzmm_loop:
	/* 256 bytes a turn while more than 256 remain ... */
168:	vmovdqu64	0(%rsi), %zmm16
169:	vmovdqu64	64(%rsi), %zmm17
170:	vmovdqu64	128(%rsi), %zmm18
171:	vmovdqu64	192(%rsi), %zmm19
172:	vmovdqu64	%zmm16, 0(%rdi)
173:	vmovdqu64	%zmm17, 64(%rdi)
174:	vmovdqu64	%zmm18, 128(%rdi)
175:	vmovdqu64	%zmm19, 192(%rdi)
	add	$256, %rsi
	add	$256, %rdi
	sub	$256, %rcx
	cmp	$256, %rcx
	ja	.Lzmm_loop
	/* ... then the last 256 bytes of the buffer, overlapping what is done. */
176:	vmovdqu64	-256(%rsi,%rcx), %zmm16
177:	vmovdqu64	-192(%rsi,%rcx), %zmm17
178:	vmovdqu64	-128(%rsi,%rcx), %zmm18
179:	vmovdqu64	-64(%rsi,%rcx), %zmm19
180:	vmovdqu64	%zmm16, -256(%rdi,%rcx)
181:	vmovdqu64	%zmm17, -192(%rdi,%rcx)
182:	vmovdqu64	%zmm18, -128(%rdi,%rcx)
183:	vmovdqu64	%zmm19, -64(%rdi,%rcx)
	xor	%eax, %eax
	xor	%edx, %edx
	ret

.Lrep:
184:	rep movsb
	xor	%eax, %eax
	xor	%edx, %edx
	ret

	.irp n, 10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 28,29,30,31,32,33,34,35,108,109,110,111,112,113,114,115
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 180,181,182,183,184
	EX	\n\()b, .Lbytes
	.endr
	.irp n, 36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51
	EX	\n\()b, .Lbytes_vz
	.endr
	.irp n, 52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67
	EX	\n\()b, .Lbytes_vz
	.endr
	.irp n, 68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83
	EX	\n\()b, .Lbytes_vz
	.endr
	.irp n, 84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99
	EX	\n\()b, .Lbytes_vz
	.endr
	.irp n, 100,101,102,103,104,105,106,107
	EX	\n\()b, .Lbytes_vz
	.endr
	.irp n, 26,27
	EX	\n\()b, .Lbyte_fault
	.endr
	.size uf__try_copy, . - uf__try_copy

/* int uf__probe_read1(const void *p [rdi]): 0, or -EFAULT (set by the fixup). */
FUNC uf__probe_read1
900:	movzbl	(%rdi), %eax
	xor	%eax, %eax
901:	ret
	EX	900b, 901b
	.size uf__probe_read1, . - uf__probe_read1

/*
 * int uf__probe_write1(void *p [rdi]): 0 or -EFAULT.
 * A locked OR of zero is a real write access (write-protect, copy-on-write
 * and userfaultfd write faults all trigger) that cannot change the byte,
 * even if another thread writes it at the same moment.
 */
FUNC uf__probe_write1
910:	lock orb $0, (%rdi)
	xor	%eax, %eax
911:	ret
	EX	910b, 911b
	.size uf__probe_write1, . - uf__probe_write1

	.globl uf__safe_text_end
	.hidden uf__safe_text_end
uf__safe_text_end:

	.pushsection uf_extable, "a"
	.globl uf__extable_end
	.hidden uf__extable_end
uf__extable_end:
	.popsection

	.section .note.GNU-stack, "", @progbits

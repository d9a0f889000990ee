/* SPDX-License-Identifier: MIT */
/*
 * explain.c - uf_explain(): one readable paragraph about a fatal signal.
 *
 * Everything here runs in signal context, often on a small alternate stack
 * in a process that is about to die: no malloc, no stdio, no locks. Text is
 * built with a tiny formatter into the caller's buffer, /proc/self/maps is
 * parsed from a stack buffer, and symbols come from the ELF .symtab/.dynsym
 * of the module file read with pread (dladdr would take the loader's lock
 * and only knows exported symbols). Stack use stays under ~6 KiB.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include "arch/arch.h"
#include "explain.h"
#include "region.h"
#include "store.h"
#include "registry.h"

_Static_assert(sizeof(void *) == 8, "the ELF reader handles ELFCLASS64 only");

/* si_codes newer than some libc headers. */
#ifndef SEGV_BNDERR
#define SEGV_BNDERR 3
#endif
#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif
#ifndef SEGV_MTEAERR
#define SEGV_MTEAERR 8
#endif
#ifndef SEGV_MTESERR
#define SEGV_MTESERR 9
#endif
#ifndef SEGV_CPERR
#define SEGV_CPERR 10
#endif
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif
#ifndef BUS_MCEERR_AO
#define BUS_MCEERR_AO 5
#endif
#ifndef ILL_BADIADDR
#define ILL_BADIADDR 9
#endif
#ifndef FPE_FLTUNK
#define FPE_FLTUNK 14
#endif
#ifndef FPE_CONDTRAP
#define FPE_CONDTRAP 15
#endif
#ifndef TRAP_UNK
#define TRAP_UNK 5
#endif
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

#define NULL_LIMIT 65536u    /* addresses below this are "near NULL" */
#define SP_SLACK 65536u      /* a fault this close to SP is stack growth */
#define MAIN_GAP (1u << 20)  /* the kernel's default stack_guard_gap (256 pages) */
#define USER_TOP (1ull << 47)

/* ---- output: struct uf__out (fmt.h), counts what it could not store ---- */

/* A byte count the way people read it: exact below 64 KiB or when it is a
 * whole number of units, else "~N unit" rounded down. */
UF_SIGCTX static void put_size(struct uf__out *o, uint64_t v)
{
	static const char *const unit[] = {" KiB", " MiB", " GiB", " TiB"};
	if (v < 65536) {
		uf__out_dec(o, (long long)v);
		uf__out_str(o, v == 1 ? " byte" : " bytes");
		return;
	}
	int u = 0;
	uint64_t scale = 1024;
	while (u < 3 && v >= scale << 10) {
		u++;
		scale <<= 10;
	}
	if (v % scale)
		uf__out_ch(o, '~');
	uf__out_dec(o, (long long)(v / scale));
	uf__out_str(o, unit[u]);
}

/* ---- /proc/self/maps ---- */

#define MAP_PATH 256

struct mapping {
	uintptr_t start, end;
	uint64_t off;
	char perms[5];
	bool truncated; /* path longer than MAP_PATH - 1: shown cut, never opened */
	char path[MAP_PATH];
};

struct maps_rd {
	int fd;
	size_t pos, len;
	char buf[1024];
};

UF_SIGCTX static bool maps_open(struct maps_rd *r)
{
	do
		r->fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	while (r->fd < 0 && errno == EINTR);
	r->pos = r->len = 0;
	return r->fd >= 0;
}

UF_SIGCTX static int rd_getc(struct maps_rd *r)
{
	if (r->pos == r->len) {
		ssize_t n;
		do
			n = read(r->fd, r->buf, sizeof(r->buf));
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return -1;
		r->len = (size_t)n;
		r->pos = 0;
	}
	return (unsigned char)r->buf[r->pos++];
}

UF_SIGCTX static const char *parse_hex(const char *p, uint64_t *v)
{
	uint64_t x = 0;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		x = x << 4 | d;
	}
	*v = x;
	return p;
}

/* "start-end perms offset dev inode    path" */
UF_SIGCTX static bool maps_next(struct maps_rd *r, struct mapping *m)
{
	for (;;) {
		char line[MAP_PATH + 96];
		size_t n = 0;
		bool trunc = false;
		int c;
		while ((c = rd_getc(r)) >= 0 && c != '\n') {
			if (n < sizeof(line) - 1)
				line[n++] = (char)c;
			else
				trunc = true;
		}
		if (c < 0 && n == 0)
			return false;
		line[n] = 0;

		uint64_t v;
		const char *p = parse_hex(line, &v);
		if (*p != '-')
			continue;
		m->start = (uintptr_t)v;
		p = parse_hex(p + 1, &v);
		m->end = (uintptr_t)v;
		if (*p++ != ' ')
			continue;
		for (int i = 0; i < 4; i++) {
			if (!*p)
				break;
			m->perms[i] = *p++;
		}
		m->perms[4] = 0;
		if (*p++ != ' ')
			continue;
		p = parse_hex(p, &m->off);
		/* skip dev and inode */
		for (int field = 0; field < 2; field++) {
			while (*p == ' ')
				p++;
			while (*p && *p != ' ')
				p++;
		}
		while (*p == ' ')
			p++;
		size_t k = 0;
		while (p[k] && k < MAP_PATH - 1) {
			m->path[k] = p[k];
			k++;
		}
		m->path[k] = 0;
		m->truncated = trunc || p[k];
		return true;
	}
}

/* The mapping containing addr, the ones on either side, and [stack]. */
struct around {
	bool has_prev, has_cur, has_next, has_stack;
	struct mapping prev, cur, next, stack;
};

UF_SIGCTX static bool maps_around(uintptr_t addr, struct around *a)
{
	struct maps_rd r;
	a->has_prev = a->has_cur = a->has_next = a->has_stack = false;
	if (!maps_open(&r))
		return false;
	struct mapping m;
	while (maps_next(&r, &m)) {
		if (m.end <= addr) {
			a->prev = m;
			a->has_prev = true;
		} else if (m.start <= addr) {
			a->cur = m;
			a->has_cur = true;
		} else if (!a->has_next) {
			a->next = m;
			a->has_next = true;
		}
		if (!strcmp(m.path, "[stack]")) {
			a->stack = m;
			a->has_stack = true;
		}
	}
	close(r.fd);
	return true;
}

UF_SIGCTX static bool maps_find(uintptr_t addr, struct mapping *out)
{
	struct maps_rd r;
	bool found = false;
	if (!maps_open(&r))
		return false;
	while (!found && maps_next(&r, out))
		found = out->start <= addr && addr < out->end;
	close(r.fd);
	return found;
}

UF_SIGCTX static bool is_anon(const struct mapping *m) { return m->path[0] == 0; }

UF_SIGCTX static const char *base_name(const char *path)
{
	const char *b = path;
	for (const char *p = path; *p; p++)
		if (*p == '/' && p[1])
			b = p + 1;
	return b;
}

/* "0x1000-0x2000 r--p /usr/lib/libc.so.6 (file offset 0x0)" */
UF_SIGCTX static void put_mapping(struct uf__out *o, const struct mapping *m)
{
	uf__out_hex(o, m->start);
	uf__out_ch(o, '-');
	uf__out_hex(o, m->end);
	uf__out_ch(o, ' ');
	uf__out_str(o, m->perms);
	uf__out_ch(o, ' ');
	if (is_anon(m)) {
		uf__out_str(o, "[anonymous]");
		return;
	}
	uf__out_str(o, m->path);
	if (m->truncated)
		uf__out_str(o, "...");
	if (m->path[0] == '/' || m->off) {
		uf__out_str(o, " (file offset ");
		uf__out_hex(o, m->off);
		uf__out_ch(o, ')');
	}
}

/* ---- ELF symbols, read from the module file ---- */

struct elfsym {
	uint64_t vaddr;      /* the address in the ELF file's own address space */
	bool have_vaddr;     /* else vaddr is the file offset */
	bool have_sym;
	uint64_t sym_value;
	char name[128];
};

UF_SIGCTX static bool pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return true;
}

UF_SIGCTX static void sym_search(int fd, const Elf64_Shdr *tab, const Elf64_Shdr *str, uint64_t vaddr,
				 struct elfsym *s)
{
	if (tab->sh_entsize != sizeof(Elf64_Sym))
		return;
	uint64_t count = tab->sh_size / sizeof(Elf64_Sym);
	if (count > (1u << 22)) /* bound the time spent in a dying process */
		count = 1u << 22;
	Elf64_Sym syms[32];
	uint32_t best_name = 0;
	for (uint64_t i = 0; i < count; i += UF__ARRAY_SIZE(syms)) {
		uint64_t k = count - i < UF__ARRAY_SIZE(syms) ? count - i : UF__ARRAY_SIZE(syms);
		if (!pread_all(fd, syms, k * sizeof(Elf64_Sym), tab->sh_offset + i * sizeof(Elf64_Sym)))
			return;
		for (uint64_t j = 0; j < k; j++) {
			const Elf64_Sym *y = &syms[j];
			if (ELF64_ST_TYPE(y->st_info) != STT_FUNC || y->st_shndx == SHN_UNDEF)
				continue;
			uint64_t size = y->st_size ? y->st_size : 1;
			if (vaddr < y->st_value || vaddr - y->st_value >= size)
				continue;
			/* Prefer the innermost (highest start) of nested symbols. */
			if (!s->have_sym || y->st_value > s->sym_value) {
				s->have_sym = true;
				s->sym_value = y->st_value;
				best_name = y->st_name;
			}
		}
	}
	if (s->have_sym) {
		if (!pread_all(fd, s->name, sizeof(s->name) - 1, str->sh_offset + best_name)) {
			/* The name may end near the end of the file: read byte-wise. */
			size_t n = 0;
			while (n < sizeof(s->name) - 1 &&
			       pread_all(fd, &s->name[n], 1, str->sh_offset + best_name + n) && s->name[n])
				n++;
			s->name[n] = 0;
		}
		s->name[sizeof(s->name) - 1] = 0;
		if (!s->name[0])
			s->have_sym = false;
	}
}

UF_SIGCTX static void elf_symbolize(const struct mapping *m, uintptr_t addr, struct elfsym *s)
{
	uint64_t foff = addr - m->start + m->off;
	s->vaddr = foff;
	s->have_vaddr = s->have_sym = false;
	s->name[0] = 0;
	if (m->path[0] != '/' || m->truncated)
		return;
	/* Only a regular file: the name in /proc/self/maps may now be a FIFO
	 * or a device (a library unlinked and replaced, a crafted
	 * "lib.so (deleted)"), whose open or read could block a dying
	 * process forever or have side effects. stat first (opens nothing),
	 * then O_NONBLOCK in case the name changed in between, then check
	 * what was opened. */
	struct stat st;
	if (stat(m->path, &st) || !S_ISREG(st.st_mode))
		return;
	int fd;
	do
		fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}

	Elf64_Ehdr eh;
	if (!pread_all(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
		goto out;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (!pread_all(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph)))
			goto out;
		if (ph.p_type == PT_LOAD && foff >= ph.p_offset && foff - ph.p_offset < ph.p_filesz) {
			s->vaddr = foff - ph.p_offset + ph.p_vaddr;
			s->have_vaddr = true;
			break;
		}
	}
	if (!s->have_vaddr || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
	    eh.e_shnum > 65000)
		goto out;

	/* The full .symtab (static functions too) when not stripped, else .dynsym. */
	Elf64_Shdr tabs[2], strs[2];
	bool have[2] = {false, false};
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		if (!pread_all(fd, &sh, sizeof(sh), eh.e_shoff + (uint64_t)i * sizeof(sh)))
			goto out;
		int k = sh.sh_type == SHT_SYMTAB ? 0 : sh.sh_type == SHT_DYNSYM ? 1 : -1;
		if (k >= 0 && sh.sh_size && sh.sh_link < eh.e_shnum) {
			tabs[k] = sh;
			have[k] = true;
		}
	}
	for (int k = 0; k < 2 && !s->have_sym; k++) {
		if (!have[k] || !pread_all(fd, &strs[k], sizeof(strs[k]),
					   eh.e_shoff + (uint64_t)tabs[k].sh_link * sizeof(Elf64_Shdr)))
			continue;
		sym_search(fd, &tabs[k], &strs[k], s->vaddr, s);
	}
out:
	close(fd);
}

/* "0x55d0c3a0 in crash+0x10 (prog+0x11a9)" */
UF_SIGCTX static void put_code_addr(struct uf__out *o, uintptr_t pc, bool return_addr)
{
	uf__out_hex(o, pc);
	struct mapping m;
	if (!maps_find(pc, &m)) {
		uf__out_str(o, " (not mapped)");
		return;
	}
	struct elfsym s;
	/* A return address may be one past the last instruction of its caller. */
	uintptr_t look = return_addr && pc > m.start ? pc - 1 : pc;
	elf_symbolize(&m, look, &s);
	uint64_t vaddr = s.vaddr + (pc - look);
	if (s.have_sym) {
		uf__out_str(o, " in ");
		uf__out_str(o, s.name);
		uf__out_ch(o, '+');
		uf__out_hex(o, vaddr - s.sym_value);
	}
	uf__out_str(o, " (");
	if (is_anon(&m)) {
		uf__out_str(o, "anonymous mapping ");
		uf__out_hex(o, m.start);
		uf__out_ch(o, '+');
		uf__out_hex(o, pc - m.start);
	} else {
		uf__out_str(o, base_name(m.path));
		uf__out_ch(o, '+');
		uf__out_hex(o, s.have_vaddr || m.path[0] == '/' ? vaddr : pc - m.start);
	}
	if (!strchr(m.perms, 'x'))
		uf__out_str(o, ", not executable");
	uf__out_ch(o, ')');
}

UF_SIGCTX int uf__explain_perms(uintptr_t addr, char perms[5])
{
	struct mapping m;
	if (!maps_find(addr, &m))
		return -ENOENT;
	memcpy(perms, m.perms, 5);
	return 0;
}

UF_SIGCTX int uf__explain_code_addr(uintptr_t pc, int return_addr, char *buf, size_t len)
{
	struct uf__out o = {buf, buf ? len : 0, 0};
	put_code_addr(&o, pc, return_addr);
	return uf__out_end(&o);
}

/* ---- signal and si_code in words ---- */

struct code_text {
	int code;
	const char *name, *text;
};

static const struct code_text segv_codes[] = {
	{SEGV_MAPERR, "SEGV_MAPERR", "address not mapped to an object"},
	{SEGV_ACCERR, "SEGV_ACCERR", "invalid permissions for the mapped object"},
	{SEGV_BNDERR, "SEGV_BNDERR", "failed address bound checks"},
	{SEGV_PKUERR, "SEGV_PKUERR", "access denied by a memory protection key"},
	{SEGV_MTEAERR, "SEGV_MTEAERR", "asynchronous memory tag check fault"},
	{SEGV_MTESERR, "SEGV_MTESERR", "synchronous memory tag check fault"},
	{SEGV_CPERR, "SEGV_CPERR", "control-protection fault (shadow stack mismatch)"},
};
static const struct code_text bus_codes[] = {
	{BUS_ADRALN, "BUS_ADRALN", "invalid address alignment"},
	{BUS_ADRERR, "BUS_ADRERR", "nonexistent physical address (no backing data for the page)"},
	{BUS_OBJERR, "BUS_OBJERR", "object-specific hardware error"},
	{BUS_MCEERR_AR, "BUS_MCEERR_AR", "hardware memory error consumed (machine check)"},
	{BUS_MCEERR_AO, "BUS_MCEERR_AO", "hardware memory error detected, action optional"},
};
static const struct code_text ill_codes[] = {
	{ILL_ILLOPC, "ILL_ILLOPC", "illegal opcode"},
	{ILL_ILLOPN, "ILL_ILLOPN", "illegal operand"},
	{ILL_ILLADR, "ILL_ILLADR", "illegal addressing mode"},
	{ILL_ILLTRP, "ILL_ILLTRP", "illegal trap"},
	{ILL_PRVOPC, "ILL_PRVOPC", "privileged opcode"},
	{ILL_PRVREG, "ILL_PRVREG", "privileged register"},
	{ILL_COPROC, "ILL_COPROC", "coprocessor error"},
	{ILL_BADSTK, "ILL_BADSTK", "internal stack error"},
	{ILL_BADIADDR, "ILL_BADIADDR", "unimplemented instruction address"},
};
static const struct code_text fpe_codes[] = {
	{FPE_INTDIV, "FPE_INTDIV", "integer divide by zero"},
	{FPE_INTOVF, "FPE_INTOVF", "integer overflow"},
	{FPE_FLTDIV, "FPE_FLTDIV", "floating-point divide by zero"},
	{FPE_FLTOVF, "FPE_FLTOVF", "floating-point overflow"},
	{FPE_FLTUND, "FPE_FLTUND", "floating-point underflow"},
	{FPE_FLTRES, "FPE_FLTRES", "floating-point inexact result"},
	{FPE_FLTINV, "FPE_FLTINV", "invalid floating-point operation"},
	{FPE_FLTSUB, "FPE_FLTSUB", "subscript out of range"},
	{FPE_FLTUNK, "FPE_FLTUNK", "undiagnosed floating-point exception"},
	{FPE_CONDTRAP, "FPE_CONDTRAP", "trap on condition"},
};
static const struct code_text trap_codes[] = {
	{TRAP_BRKPT, "TRAP_BRKPT", "breakpoint"},
	{TRAP_TRACE, "TRAP_TRACE", "trace trap"},
	{TRAP_BRANCH, "TRAP_BRANCH", "branch trap"},
	{TRAP_HWBKPT, "TRAP_HWBKPT", "hardware breakpoint or watchpoint"},
	{TRAP_UNK, "TRAP_UNK", "undiagnosed trap"},
};
static const struct code_text sys_codes[] = {
	{SYS_SECCOMP, "SYS_SECCOMP", "system call forbidden by a seccomp filter"},
};
/* si_code values any signal can carry (sent signals and the kernel). */
static const struct code_text any_codes[] = {
	{SI_USER, "SI_USER", "sent with kill()"},
	{SI_KERNEL, "SI_KERNEL", "sent by the kernel"},
	{SI_QUEUE, "SI_QUEUE", "sent with sigqueue()"},
	{SI_TIMER, "SI_TIMER", "a POSIX timer expired"},
	{SI_MESGQ, "SI_MESGQ", "a message arrived on a POSIX message queue"},
	{SI_ASYNCIO, "SI_ASYNCIO", "asynchronous I/O completed"},
	{SI_SIGIO, "SI_SIGIO", "I/O is possible (queued SIGIO)"},
	{SI_TKILL, "SI_TKILL", "sent to this thread with tgkill() (raise() and abort() use it)"},
	{SI_ASYNCNL, "SI_ASYNCNL", "asynchronous name lookup completed"},
};

static const struct {
	int sig;
	const char *name, *text;
} sig_names[] = {
	{SIGSEGV, "SIGSEGV", "segmentation fault"},
	{SIGBUS, "SIGBUS", "bus error"},
	{SIGILL, "SIGILL", "illegal instruction"},
	{SIGFPE, "SIGFPE", "arithmetic exception"},
	{SIGABRT, "SIGABRT", "aborted"},
	{SIGTRAP, "SIGTRAP", "trace/breakpoint trap"},
	{SIGSYS, "SIGSYS", "bad system call"},
	{SIGKILL, "SIGKILL", "killed"},
	{SIGTERM, "SIGTERM", "terminated"},
	{SIGINT, "SIGINT", "interrupt"},
	{SIGQUIT, "SIGQUIT", "quit"},
	{SIGHUP, "SIGHUP", "hangup"},
	{SIGPIPE, "SIGPIPE", "broken pipe"},
	{SIGALRM, "SIGALRM", "alarm clock"},
	{SIGUSR1, "SIGUSR1", "user signal 1"},
	{SIGUSR2, "SIGUSR2", "user signal 2"},
	{SIGXCPU, "SIGXCPU", "CPU time limit exceeded"},
	{SIGXFSZ, "SIGXFSZ", "file size limit exceeded"},
};

UF_SIGCTX static const struct code_text *find_code(int sig, int code)
{
	const struct code_text *t = NULL;
	size_t n = 0;
	/* A positive code below SI_KERNEL is signal specific. */
	if (code > 0 && code != SI_KERNEL) {
		switch (sig) {
		case SIGSEGV: t = segv_codes, n = UF__ARRAY_SIZE(segv_codes); break;
		case SIGBUS: t = bus_codes, n = UF__ARRAY_SIZE(bus_codes); break;
		case SIGILL: t = ill_codes, n = UF__ARRAY_SIZE(ill_codes); break;
		case SIGFPE: t = fpe_codes, n = UF__ARRAY_SIZE(fpe_codes); break;
		case SIGTRAP: t = trap_codes, n = UF__ARRAY_SIZE(trap_codes); break;
		case SIGSYS: t = sys_codes, n = UF__ARRAY_SIZE(sys_codes); break;
		}
	} else {
		t = any_codes, n = UF__ARRAY_SIZE(any_codes);
	}
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return &t[i];
	return NULL;
}

/* Kernel-generated, with si_addr meaningful. SI_KERNEL carries no address. */
UF_SIGCTX static bool is_hw_fault(const siginfo_t *si)
{
	if (si->si_code <= 0 || si->si_code == SI_KERNEL)
		return false;
	switch (si->si_signo) {
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGTRAP:
		return true;
	}
	return false;
}

UF_SIGCTX static void put_signal(struct uf__out *o, const siginfo_t *si)
{
	int sig = si->si_signo;
	const char *name = NULL, *text = NULL;
	for (size_t i = 0; i < UF__ARRAY_SIZE(sig_names); i++)
		if (sig_names[i].sig == sig) {
			name = sig_names[i].name;
			text = sig_names[i].text;
		}
	if (name) {
		uf__out_str(o, name);
		uf__out_str(o, " (");
		uf__out_str(o, text);
		uf__out_ch(o, ')');
	} else {
		uf__out_str(o, "signal ");
		uf__out_dec(o, sig);
	}
	const struct code_text *c = find_code(sig, si->si_code);
	uf__out_str(o, ", ");
	if (c) {
		uf__out_str(o, c->name);
		uf__out_str(o, ": ");
		uf__out_str(o, c->text);
	} else {
		uf__out_str(o, "si_code ");
		uf__out_dec(o, si->si_code);
	}
	uf__out_ch(o, '.');
}

/* For signals somebody sent: who, and what it usually means. */
UF_SIGCTX static void put_sender(struct uf__out *o, const siginfo_t *si)
{
	int code = si->si_code;
	if (code == SI_USER || code == SI_TKILL || code == SI_QUEUE) {
		if (si->si_pid == getpid()) {
			uf__out_str(o, " The process raised it itself");
			if (si->si_signo == SIGABRT)
				uf__out_str(o, ": abort() was called - a failed assert(), an uncaught C++ "
				       "exception, or a fatal error the C library detected (heap "
				       "corruption, a stack-protector failure); its message, if any, "
				       "is just above in the error output");
			else if (si->si_signo == SIGSEGV || si->si_signo == SIGBUS ||
				 si->si_signo == SIGILL || si->si_signo == SIGFPE)
				uf__out_str(o, " (raise() or kill()): not a hardware fault, so there is no "
				       "faulting address");
			uf__out_ch(o, '.');
		} else {
			uf__out_str(o, " It was sent by process ");
			uf__out_dec(o, si->si_pid);
			uf__out_str(o, " (uid ");
			uf__out_dec(o, si->si_uid);
			uf__out_str(o, "); it is not a hardware fault, so there is no faulting address.");
		}
	} else if (code == SI_KERNEL && si->si_signo == SIGSEGV) {
		uf__out_str(o, " A general protection fault: the kernel reports no address. Typical causes "
		       "are a non-canonical pointer (the upper bits are not copies of bit 47, e.g. "
		       "a corrupted or uninitialised pointer), a misaligned SSE operand, or a "
		       "privileged instruction.");
	}
}

/* ---- the faulting address ---- */

UF_SIGCTX static const char *access_word(int access)
{
	switch (access) {
	case UF_ACCESS_READ: return "read";
	case UF_ACCESS_WRITE: return "write";
	case UF_ACCESS_EXEC: return "instruction fetch";
	default: return "access (type unknown)";
	}
}

/* The return address of the call that jumped to a bad address: the first
 * word at SP on x86_64 (the call pushed it), the link register on aarch64.
 * The word at SP is read only if maps says it is readable. */
UF_SIGCTX uintptr_t uf__explain_caller(const void *uc)
{
#if defined(__x86_64__)
	uintptr_t sp = uf__arch_sp(uc);
	struct mapping m;
	if (!sp || !maps_find(sp, &m) || m.perms[0] != 'r' || m.end - sp < sizeof(uintptr_t))
		return 0;
	/* Fault-safe even so: maps may be stale by now (another thread
	 * unmapped the stack), and a readable page may still fail to load (a
	 * userfault region whose store fails). The fuzzer (fuzz_explain)
	 * found the plain load crashing the explainer. */
	uintptr_t ret;
	return uf_try_read(&ret, (const void *)sp, sizeof(ret)) ? 0 : ret;
#elif defined(__aarch64__)
	return (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.regs[30];
#else
	(void)uc;
	return 0;
#endif
}

UF_SIGCTX static void put_distance(struct uf__out *o, uint64_t d, const char *dir)
{
	put_size(o, d);
	uf__out_ch(o, ' ');
	uf__out_str(o, dir);
}

/* What the address is: the verdict, then the mapping around it. */
/* The address is in a region or raw area of ours. */
/* sf: what ended the store call for this very block, if a fault did. */
UF_SIGCTX static void put_ours(struct uf__out *o, const struct uf__range *rg, uintptr_t addr, int sig,
			       int access, bool read_only, const struct uf__store_fault *sf)
{
	if (rg->kind == UF__KIND_REGION) {
		uf__out_str(o, "The address is inside a userfault region (");
		uf__out_hex(o, rg->start);
		uf__out_ch(o, '-');
		uf__out_hex(o, rg->end);
		uf__out_str(o, ", ");
		uf__out_hex(o, addr - rg->start);
		uf__out_str(o, " into it)");
		if (sig == SIGBUS && sf) {
			uf__out_str(o, ": its store could not provide this block: the store's "
				       "callback ");
			if (sf->sig) {
				uf__out_str(o, sf->sig == SIGBUS ? "took SIGBUS" : "took SIGSEGV");
				uf__out_str(o, " at ");
				uf__out_hex(o, sf->addr);
				uf__out_str(o, " (the instruction at ");
				put_code_addr(o, sf->pc, false);
				uf__out_str(o, "), which ended it");
			} else {
				uf__out_str(o, "read another userfault region at ");
				uf__out_hex(o, sf->addr);
				uf__out_str(o, ", whose load failed");
			}
		} else if (sig == SIGBUS) {
			uf__out_str(o, ": its store could not provide this block (the store's read "
			       "failed, or the page lies past the end of the store)");
		} else if (access == UF_ACCESS_WRITE && read_only)
			uf__out_str(o, ": a write to a region mapped read-only");
		else
			uf__out_str(o, ": userfault did not serve the fault (was the region being "
			       "unmapped?)");
		uf__out_ch(o, '.');
	} else {
		uf__out_str(o, "The address is inside a raw fault area registered with "
		       "uf_area_register() (");
		uf__out_hex(o, rg->start);
		uf__out_ch(o, '-');
		uf__out_hex(o, rg->end);
		uf__out_str(o, "), whose handler did not resolve the fault.");
	}
}

/* The address is inside mapping a->cur: what about it refused the access. */
UF_SIGCTX static void put_in_mapping(struct uf__out *o, const siginfo_t *si, int access,
				     const struct around *a, uintptr_t sp, bool near_sp)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	int sig = si->si_signo, code = si->si_code;
	const struct mapping *m = &a->cur;
	const struct mapping *up = a->has_next && a->next.start == m->end ? &a->next : NULL;
	bool stack_above = up && ((is_anon(up) && !strcmp(up->perms, "rw-p")) ||
				  !strcmp(up->path, "[stack]"));
	/* Only the faulting thread's own stack pointer tells a stack
	 * guard from any PROT_NONE page that happens to sit below a
	 * read-write mapping; other threads' stack pointers are unknown. */
	bool this_stack = stack_above && ((sp >= m->start && sp < up->end) || near_sp);
	if (!strncmp(m->perms, "---", 3) && this_stack) {
		uf__out_str(o, uf__gettid() == getpid()
			       ? "Stack overflow: the address is in the guard page below "
				 "the main thread's stack (stack "
			       : "Stack overflow: the address is in the guard page below "
				 "this thread's stack (stack ");
		uf__out_hex(o, up->start);
		uf__out_ch(o, '-');
		uf__out_hex(o, up->end);
		uf__out_str(o, ", ");
		put_size(o, up->end - up->start);
		uf__out_str(o, "; the guard is ");
		put_size(o, m->end - m->start);
		uf__out_str(o, ").");
	} else if (!strncmp(m->perms, "---", 3)) {
		uf__out_str(o, "The address is in a PROT_NONE mapping: no access is allowed "
		       "(a guard region, reserved address space, or memory made "
		       "inaccessible with mprotect).");
		if (stack_above)
			uf__out_str(o, " It lies directly below a read-write mapping, as the guard "
			       "page of a thread stack does.");
	} else if (sig == SIGSEGV && code == SEGV_PKUERR) {
		uf__out_str(o, "Memory protection key ");
#ifdef si_pkey
		uf__out_dec(o, si->si_pkey);
#endif
		uf__out_str(o, " forbids this access although the mapping allows it.");
	} else if (access == UF_ACCESS_WRITE && m->perms[1] != 'w') {
		uf__out_str(o, "A write to a read-only mapping");
		if (strchr(m->perms, 'x'))
			uf__out_str(o, " (program code)");
		else if (!is_anon(m) && m->path[0] == '/')
			uf__out_str(o, " (constants of a program or library, or a read-only file "
			       "mapping; string literals live here)");
		uf__out_ch(o, '.');
	} else if (access == UF_ACCESS_EXEC && m->perms[2] != 'x') {
		uf__out_str(o, "An instruction fetch from a mapping that is not executable: the "
		       "program jumped into data (a corrupted function pointer or return "
		       "address).");
	} else if (access == UF_ACCESS_READ && m->perms[0] != 'r') {
		uf__out_str(o, "A read from a mapping that is not readable.");
	} else if (sig == SIGBUS && code == BUS_ADRERR && !is_anon(m) &&
		   m->path[0] == '/') {
		uf__out_str(o, "The page lies beyond the end of the file backing this mapping "
		       "(the file is shorter than the mapping, or was truncated), or "
		       "reading it failed with an I/O error.");
	} else if (sig == SIGBUS) {
		uf__out_str(o, "The mapping has no backing data for this page (a memfd or "
		       "shared memory object that is too small, a missing page of a "
		       "userfaultfd range in SIGBUS mode, or an I/O error).");
	} else if (code == SEGV_ACCERR && access == UF_ACCESS_UNKNOWN) {
		uf__out_str(o, "The mapping's permissions (");
		uf__out_str(o, m->perms);
		uf__out_str(o, ") do not allow this access.");
	} else {
		uf__out_str(o, "The mapping's permissions (");
		uf__out_str(o, m->perms);
		uf__out_str(o, ") allow this access, so the page itself was protected by other "
		       "means (userfaultfd write-protection, a protection key) or the "
		       "mapping changed since the fault.");
	}
	uf__out_str(o, " It is at offset ");
	uf__out_hex(o, addr - m->start);
	uf__out_str(o, " of ");
	put_mapping(o, m);
	uf__out_ch(o, '.');
}

/* The address is in the gap below the main thread's stack. */
UF_SIGCTX static void put_main_stack_gap(struct uf__out *o, uintptr_t addr, const struct around *a)
{
	uf__out_str(o, "Stack overflow of the main thread: the address is in the gap below "
	       "the main stack, ");
	put_distance(o, a->stack.start - addr, "below its lowest page (stack ");
	uf__out_hex(o, a->stack.start);
	uf__out_ch(o, '-');
	uf__out_hex(o, a->stack.end);
	uf__out_str(o, ", now ");
	put_size(o, a->stack.end - a->stack.start);
	struct rlimit rl;
	if (!getrlimit(RLIMIT_STACK, &rl)) {
		uf__out_str(o, "; RLIMIT_STACK ");
		if (rl.rlim_cur == RLIM_INFINITY)
			uf__out_str(o, "unlimited");
		else
			put_size(o, rl.rlim_cur);
	}
	uf__out_str(o, ").");
}

/* The address is not mapped at all: what it most likely was. */
UF_SIGCTX static void put_unmapped(struct uf__out *o, uintptr_t addr, uintptr_t sp, bool near_sp,
				   const struct around *a)
{
	if (near_sp && (!a->has_next || sp < a->next.end)) {
		uf__out_str(o, "Probably a stack overflow: the address is not mapped and lies close "
		       "to the stack pointer ");
		uf__out_hex(o, sp);
		uf__out_str(o, ".");
	} else if ((uint64_t)addr >= USER_TOP) {
		uf__out_str(o, "The address is above the user address space: a corrupted, "
		       "uninitialised or freed-and-overwritten pointer.");
	} else {
		uf__out_str(o, "The address is not mapped: a dangling, corrupted or uninitialised "
		       "pointer, or an index past the end of an object.");
	}
}

/* Unmapped: the neighbours help tell "just past a buffer" from "wild". */
UF_SIGCTX static void put_neighbours(struct uf__out *o, uintptr_t addr, const struct around *a)
{
	uf__out_str(o, " Nearest mappings: ");
	if (a->has_prev) {
		uf__out_str(o, "below, ");
		put_mapping(o, &a->prev);
		if (addr == a->prev.end) {
			uf__out_str(o, " ending right at the address");
		} else {
			uf__out_str(o, " ending ");
			put_distance(o, addr - a->prev.end, "below the address");
		}
	} else {
		uf__out_str(o, "nothing below");
	}
	uf__out_str(o, "; ");
	if (a->has_next) {
		uf__out_str(o, "above, ");
		put_mapping(o, &a->next);
		uf__out_str(o, " starting ");
		put_distance(o, a->next.start - addr, "above it");
	} else {
		uf__out_str(o, "nothing above");
	}
	uf__out_ch(o, '.');
}

UF_SIGCTX static void put_address_verdict(struct uf__out *o, const siginfo_t *si, const void *uc,
					  int access)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	int sig = si->si_signo, code = si->si_code;
	uintptr_t sp = uc ? uf__arch_sp(uc) : 0;
	bool near_sp = sp && addr + SP_SLACK >= sp && addr <= sp + SP_SLACK;

	/* Hardware memory errors and alignment do not depend on the mapping. */
	if (sig == SIGBUS && code == BUS_ADRALN) {
		uf__out_str(o, " The address is not aligned the way the instruction requires.");
		return;
	}
	if (sig == SIGBUS && (code == BUS_MCEERR_AR || code == BUS_MCEERR_AO)) {
		uf__out_str(o, " The memory holding this page failed (machine check); the kernel "
		       "poisoned the page. This is a hardware problem, not a program bug.");
		return;
	}

	/* Ours: a region or a raw area. Its bookkeeping is read under the
	 * registry's read-side section, so it cannot be freed meanwhile
	 * (asynchronous signals are blocked: uf_explain). */
	struct uf__range rg;
	unsigned tok = uf__registry_enter();
	bool ours = uf__registry_find(addr, &rg);
	/* The region's protection, not the mapping's: the userfaultfd engine
	 * maps a read-only region writable and write-protects its pages. */
	bool read_only = ours && rg.kind == UF__KIND_REGION &&
			 !(((const struct uf_region *)rg.obj)->prot & PROT_WRITE);
	/* A SIGBUS whose block's last read was ended by a fault in the
	 * store's callback (store.c): say where. */
	struct uf__store_fault sf;
	bool by_fault = false;
	if (ours && rg.kind == UF__KIND_REGION && sig == SIGBUS) {
		const struct uf_region *r = rg.obj;
		by_fault = uf__store_fault_at(r->store, r->soff + (addr - rg.start), &sf);
	}
	uf__registry_exit(tok);

	struct around a;
	bool have_maps = maps_around(addr, &a);

	uf__out_ch(o, ' ');
	if (ours && (rg.kind == UF__KIND_REGION || rg.kind == UF__KIND_AREA)) {
		put_ours(o, &rg, addr, sig, access, read_only, by_fault ? &sf : NULL);
	} else if (addr < NULL_LIMIT && !(have_maps && a.has_cur)) {
		uf__out_str(o, "NULL pointer dereference (offset ");
		uf__out_dec(o, (long long)addr);
		uf__out_str(o, "): the program used a null pointer, or a member or element of a "
		       "structure or array it points to.");
		return;
	} else if (!have_maps) {
		uf__out_str(o, "(/proc/self/maps could not be read: no mapping information.)");
		return;
	} else if (a.has_cur) {
		put_in_mapping(o, si, access, &a, sp, near_sp);
		return;
	} else if (a.has_stack && addr < a.stack.start && a.has_next &&
		   a.next.start == a.stack.start && (a.stack.start - addr <= MAIN_GAP || near_sp)) {
		put_main_stack_gap(o, addr, &a);
		return;
	} else {
		put_unmapped(o, addr, sp, near_sp, &a);
	}
	if (have_maps && !a.has_cur)
		put_neighbours(o, addr, &a);
}

UF_SIGCTX static void put_fault_record(struct uf__out *o, const void *uc)
{
	int valid = 0;
	uint64_t code = uf__arch_fault_code(uc, &valid);
	uf__out_str(o, " Fault record: ");
	if (valid) {
		uf__arch_decode(code, o);
	} else {
		uf__out_str(o, "none (the ");
		uf__out_str(o, uf__arch_name);
		uf__out_str(o, " context carries no fault record for this signal, or an emulator "
		       "left it out)");
	}
	uf__out_ch(o, '.');
}

UF_SIGCTX static int explain(const siginfo_t *si, const void *uc, char *buf, size_t len);

/* Asynchronous signals wait while it runs: a signal handler that left it
 * by siglongjmp would leave a file of its open (or, for the program's
 * life, a registry reader counted), and one that forked in it would hand
 * the child a registry reader that leaves twice. */
UF_SIGCTX int uf_explain(const siginfo_t *si, const void *uc, char *buf, size_t len)
{
	if (!si || (!buf && len))
		return -EINVAL;
	int saved = errno;
	sigset_t old;
	uf__async_block(&old);
	int n = explain(si, uc, buf, len);
	uf__async_restore(&old);
	errno = saved;
	return n;
}

UF_SIGCTX static int explain(const siginfo_t *si, const void *uc, char *buf, size_t len)
{
	struct uf__out o = {buf, len, 0};
	int sig = si->si_signo;

	put_signal(&o, si);
	if (!is_hw_fault(si)) {
		put_sender(&o, si);
		if (uc) {
			bool gp = si->si_code == SI_KERNEL && (sig == SIGSEGV || sig == SIGBUS);
			uf__out_str(&o, gp ? " The faulting instruction is at " : " The thread was at ");
			put_code_addr(&o, uf__arch_pc(uc), false);
			uf__out_ch(&o, '.');
		}
	} else if (sig == SIGSEGV || sig == SIGBUS) {
		int access = uc ? uf__arch_access(uc) : UF_ACCESS_UNKNOWN;
		uintptr_t addr = (uintptr_t)si->si_addr;
		uintptr_t pc = uc ? uf__arch_pc(uc) : 0;
		char perms[5];
		bool code_page = !uf__explain_perms(addr, perms) && perms[2] == 'x';
		if (uc && (access == UF_ACCESS_EXEC || pc == addr) && code_page) {
			/* Real code whose page could not be provided (a truncated
			 * executable, a failed read of a userfault region). */
			uf__out_str(&o, " An instruction fetch of the code at ");
			put_code_addr(&o, addr, false);
			uf__out_ch(&o, '.');
			access = UF_ACCESS_EXEC;
		} else if (uc && (access == UF_ACCESS_EXEC || pc == addr)) {
			/* pc is the bad address itself: say where the jump came from. */
			uf__out_str(&o, " An instruction fetch from ");
			uf__out_hex(&o, addr);
			uf__out_str(&o, ": the program jumped or returned there");
			uintptr_t from = uf__explain_caller(uc);
			if (from) {
				uf__out_str(&o, " (the return address in the call frame is ");
				put_code_addr(&o, from, true);
				uf__out_ch(&o, ')');
			}
			uf__out_ch(&o, '.');
			if (access == UF_ACCESS_UNKNOWN)
				access = UF_ACCESS_EXEC;
		} else {
			uf__out_str(&o, access == UF_ACCESS_UNKNOWN ? " An " : " A ");
			uf__out_str(&o, access_word(access));
			uf__out_str(&o, access == UF_ACCESS_WRITE ? " to address " : " of address ");
			uf__out_hex(&o, addr);
			if (uc) {
				uf__out_str(&o, " by the instruction at ");
				put_code_addr(&o, pc, false);
			}
			uf__out_ch(&o, '.');
		}
		put_address_verdict(&o, si, uc, access);
		if (uc)
			put_fault_record(&o, uc);
	} else {
		/* SIGILL/SIGFPE/SIGTRAP: si_addr is the instruction. */
		uf__out_str(&o, " The instruction at ");
		put_code_addr(&o, uc ? uf__arch_pc(uc) : (uintptr_t)si->si_addr, false);
		uf__out_ch(&o, '.');
		if (sig == SIGFPE && si->si_code == FPE_INTDIV)
			uf__out_str(&o, " An integer division by zero (on x86 also the overflowing "
				"INT_MIN / -1).");
		else if (sig == SIGTRAP && si->si_code == TRAP_BRKPT)
			uf__out_str(&o, " A breakpoint instruction (int3, brk): __builtin_trap() on "
				"aarch64, or a breakpoint left in the code with no debugger "
				"attached.");
		else if (sig == SIGILL)
			uf__out_str(&o, " Compilers emit a trapping instruction (ud2, udf, brk) for "
				"__builtin_trap(), unreachable code and some sanitizer checks; "
				"otherwise the program ran into data or needs a CPU feature this "
				"machine lacks.");
	}

	uf__out_str(&o, " Thread ");
	uf__out_dec(&o, uf__gettid());
	uf__out_str(&o, " of process ");
	uf__out_dec(&o, getpid());
	uf__out_ch(&o, '.');
	return uf__out_end(&o);
}

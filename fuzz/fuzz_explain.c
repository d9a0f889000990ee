/*
 * fuzz_explain.c - libFuzzer harness for uf_explain: hostile siginfo and
 * ucontext values (every signal and code, wild addresses, pc and sp) and
 * hostile /proc/self/maps contents (overlong lines, missing fields, huge
 * or reversed ranges, no newline, NUL bytes, paths of files that are not
 * ELF or cannot be opened).
 *
 * The seam: this program links the library's objects statically and
 * defines open(), which the explainer's open("/proc/self/maps") then calls:
 * it returns a memfd holding the fuzzed text. Any other path the fuzzed
 * text names is refused (-ENOENT), except this program's own binary, so
 * the ELF reader runs on a real file without the fuzzer opening arbitrary
 * files. Nothing is added to the library for it.
 *
 * Checked: uf_explain returns a length or a negative errno, never writes
 * past len, always NUL-terminates, and never crashes or hangs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "userfault.h"

static const uint8_t *maps_text;
static size_t maps_len;
static char self_path[4096];

static int real_open(const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (maps_text && !strcmp(path, "/proc/self/maps")) {
		int fd = memfd_create("maps", MFD_CLOEXEC);
		if (fd < 0)
			return -1;
		if (maps_len && write(fd, maps_text, maps_len) != (ssize_t)maps_len) {
			close(fd);
			return -1;
		}
		lseek(fd, 0, SEEK_SET);
		return fd;
	}
	if (maps_text && strcmp(path, self_path)) {
		errno = ENOENT;
		return -1;
	}
	return real_open(path, flags, mode);
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

struct in {
	const uint8_t *p;
	size_t n;
};
static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->n--)
		v = v << 8 | *in->p++;
	return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n > 0)
		self_path[n] = 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	static uint8_t code_page_dummy;
	uintptr_t interesting[] = {0, 1, 4096, (uintptr_t)&code_page_dummy,
				   (uintptr_t)LLVMFuzzerTestOneInput, (uintptr_t)&in,
				   UINTPTR_MAX, (uintptr_t)1 << 47, ((uintptr_t)1 << 47) - 8,
				   (uintptr_t)-4096};
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGKILL, 0, 64, -1};
	si.si_signo = sigs[take(&in, 1) % 10];
	si.si_code = (int)(int8_t)take(&in, 1);
	unsigned pick = (unsigned)take(&in, 1);
	si.si_addr = (void *)(pick < 200 ? interesting[pick % 10] : (uintptr_t)take(&in, 8));
	ucontext_t uc;
	memset(&uc, 0, sizeof(uc));
	int use_uc = (int)(take(&in, 1) % 4);
	if (use_uc) {
		/* Registers from the input; the pointers a real context holds
		 * (fpregs, uc_link, the signal stack) stay valid or NULL. */
		for (int i = 0; i < NGREG; i++) {
			unsigned k = (unsigned)take(&in, 1);
			uc.uc_mcontext.gregs[i] =
				(greg_t)(k < 128 ? interesting[k % 10] + (k / 10) * 8 : take(&in, 8));
		}
		uc.uc_mcontext.fpregs = use_uc == 2 ? NULL : &uc.__fpregs_mem;
	}
	/* The rest of the input is the maps text. */
	maps_text = in.p;
	maps_len = in.n;
	size_t lens[] = {0, 1, 2, 16, 80, 256, 4096};
	size_t len = lens[(size ? data[0] : 0) % 7];
	char *buf = malloc(len + 16);
	if (!buf)
		return 0;
	memset(buf, 0x5A, len + 16);
	int e = uf_explain(&si, use_uc ? &uc : NULL, len ? buf : NULL, len);
	maps_text = NULL;
	if (e < 0 && e > -4096) {
		free(buf);
		return 0;
	}
	if (e < 0)
		abort();
	if (len) {
		size_t n = strnlen(buf, len);
		if (n >= len)
			abort(); /* not NUL-terminated */
		if (n != ((size_t)e < len - 1 ? (size_t)e : len - 1))
			abort(); /* the length wanted, like snprintf */
	}
	for (size_t i = len; i < len + 16; i++)
		if ((uint8_t)buf[i] != 0x5A)
			abort(); /* wrote past len */
	free(buf);
	return 0;
}

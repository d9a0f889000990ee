/* SPDX-License-Identifier: MIT */
/*
 * test_explain_fifo.c - uf_explain never blocks on the file a mapping names.
 *
 * A program counter inside a mapping whose file was unlinked and replaced
 * by a FIFO (under the same name, and under the "NAME (deleted)" name
 * /proc/self/maps shows) must be explained at once, without symbols: an
 * open of the FIFO would wait for a writer forever. The harness timeout
 * turns a hang into a failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>

#include "harness.h"

static void set_pc(ucontext_t *uc, void *pc)
{
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)pc;
#elif defined(__aarch64__)
	uc->uc_mcontext.pc = (uintptr_t)pc;
#endif
}

static void check(const char *dir, int deleted_name)
{
	char path[256], fifo[300];
	snprintf(path, sizeof(path), "%s/libfake%d.so", dir, deleted_name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT(fd >= 0);
	ASSERT_EQ(ftruncate(fd, 4096), 0);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	ASSERT(p != MAP_FAILED);
	close(fd);
	ASSERT_EQ(unlink(path), 0);
	snprintf(fifo, sizeof(fifo), "%s%s", path, deleted_name ? " (deleted)" : "");
	ASSERT_EQ(mkfifo(fifo, 0600), 0);

	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGSEGV;
	si.si_addr = (void *)16; /* a NULL dereference by an instruction in p */
	si.si_code = SEGV_MAPERR;
	ucontext_t uc;
	/* getcontext() leaves the fault fields (trap number, error code)
	 * alone: zero them rather than pass stack garbage (valgrind). */
	memset(&uc, 0, sizeof(uc));
	ASSERT_EQ(getcontext(&uc), 0);
	set_pc(&uc, (char *)p + 16);
	char buf[4096];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int n = uf_explain(&si, &uc, buf, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT_GT(n, 0);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%s: %.3f s: %s\n", deleted_name ? "FIFO named NAME (deleted)" : "FIFO under the name", s, buf);
	ASSERT(strstr(buf, "libfake") != NULL);
	ASSERT_LT(s, 5.0);
	munmap(p, 4096);
	unlink(fifo);
}

int main(void)
{
	test_init(30);
	char dir[] = "/tmp/uf-fifo-XXXXXX";
	ASSERT(mkdtemp(dir) != NULL);
	check(dir, 0);
	check(dir, 1);
	rmdir(dir);
	printf("ok\n");
	return 0;
}

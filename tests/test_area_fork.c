/* SPDX-License-Identifier: MIT */
/*
 * uf_area_unregister(3) in a fork child, for an area whose handler another
 * parent thread was running at the fork, or had left by siglongjmp without
 * uf_fault_leave: that thread is not in the child, so nothing there can
 * release its hold, and the child's call returns at once (it waited for
 * ever). In the parent the holds stay until released (the running handler
 * returns; the thread that jumped exits).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

static char *g_page[2];
static uf_area *g_area[2];
static _Atomic int g_inside, g_release, g_jumped, g_done;
static __thread sigjmp_buf t_jb;

static void pause_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* Area 0: waits inside until released, then serves the page. */
static int hold_handler(const struct uf_fault *f, void *arg)
{
	(void)f;
	(void)arg;
	atomic_store(&g_inside, 1);
	while (!atomic_load(&g_release))
		pause_ms(1);
	mprotect(g_page[0], page_size(), PROT_READ | PROT_WRITE);
	return UF_HANDLED;
}

/* Area 1: leaves by siglongjmp, without uf_fault_leave. */
static int jump_handler(const struct uf_fault *f, void *arg)
{
	(void)f;
	(void)arg;
	siglongjmp(t_jb, 1);
}

static void *holder(void *arg)
{
	(void)arg;
	g_page[0][3] = 1;
	return NULL;
}

static void *jumper(void *arg)
{
	(void)arg;
	if (sigsetjmp(t_jb, 1) == 0)
		g_page[1][5] = 1;
	atomic_store(&g_jumped, 1);
	while (!atomic_load(&g_done)) /* alive, no other fault: the hold stays */
		pause_ms(1);
	return NULL;
}

/* Forks; the child unregisters area i within 5 s, or its alarm fires (the
 * harness's SIGALRM handler: exit 124). */
static void child_unregisters(int i)
{
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(5);
		_exit(uf_area_unregister(g_area[i]) == 0 ? 0 : 2);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("area %d: the child's uf_area_unregister: status 0x%x (%s)", i, st,
		     WIFEXITED(st) && WEXITSTATUS(st) == 124 ? "it waited 5 s" : "failed");
}

int main(void)
{
	test_init(30);
	size_t ps = page_size();
	for (int i = 0; i < 2; i++) {
		g_page[i] = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT(g_page[i] != MAP_FAILED);
	}
	ASSERT_OK(uf_area_register(g_page[0], ps, hold_handler, NULL, &g_area[0]));
	ASSERT_OK(uf_area_register(g_page[1], ps, jump_handler, NULL, &g_area[1]));

	pthread_t th, tj;
	ASSERT_OK(pthread_create(&th, NULL, holder, NULL));
	ASSERT_OK(pthread_create(&tj, NULL, jumper, NULL));
	while (!atomic_load(&g_inside) || !atomic_load(&g_jumped))
		pause_ms(1);

	child_unregisters(0); /* a parent thread is inside its handler */
	child_unregisters(1); /* a parent thread left its handler by a jump */

	/* The parent still waits for both holds, and gets past each once it
	 * is released. */
	atomic_store(&g_release, 1);
	ASSERT_OK(pthread_join(th, NULL));
	ASSERT_EQ(g_page[0][3], 1);
	ASSERT_OK(uf_area_unregister(g_area[0]));
	atomic_store(&g_done, 1);
	ASSERT_OK(pthread_join(tj, NULL));
	ASSERT_OK(uf_area_unregister(g_area[1]));
	printf("ok\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * threads.h - starting the library's own threads. Never installed.
 */
#ifndef UF_THREADS_H
#define UF_THREADS_H

#include "internal.h"

/* pthread_create for a library thread, -errno on failure: the thread is
 * counted, so that the process ends when only library threads are left
 * after its main thread called pthread_exit (threads.c). Not signal
 * context (it allocates). */
int uf__thread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif

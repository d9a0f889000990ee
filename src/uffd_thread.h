/* uffd_thread.h - the one hook the handler-thread engine needs in the fault
 * path (engine_uffd_thread.c). */
#ifndef UF_UFFD_THREAD_H
#define UF_UFFD_THREAD_H

#include <signal.h>

#include "internal.h"

struct uf__range;
/* A thread of a uffd-thread region (rg, referenced: dropped here) took
 * SIGBUS there: it hit a page a handler thread poisoned after a failed load
 * (UFFDIO_POISON raises BUS_MCEERR_AR on older kernels, BUS_ADRERR on 6.18).
 * Delivers the load's error to this thread (error callback or SIGBUS), or
 * retries the load. UF__PASS if the poison is not ours (a real memory
 * error). */
UF_SIGCTX int uf__uffd_thread_poisoned(const struct uf__range *rg, siginfo_t *si, void *uc);

#endif

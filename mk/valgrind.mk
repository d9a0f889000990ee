# SPDX-License-Identifier: MIT
# valgrind.mk - make check-valgrind: the tests where memcheck means something
# (the signal engine, the stores, uf_explain) under valgrind's memcheck, with
# full leak checking; any memcheck error or definite leak fails the test.
#
# - Engine: signal only. Valgrind does not know userfaultfd(2) (it answers
#   ENOSYS and warns "unhandled syscall"), so prog_engines under valgrind
#   lists the signal engine alone and USERFAULT_ENGINE=uffd* would only
#   measure the refusal; ENGINES=signal says so up front.
# - --vex-iropt-register-updates=allregs-at-mem-access: by default valgrind
#   keeps only SP and IP exact at a memory access, so a fault handler that
#   returns (the signal engine's whole design: serve the fault, run the
#   access again) resumes with stale registers from the signal frame (a
#   store through a pointer then writes through whatever the register held
#   before: a crash at a small address). With it every register is exact.
# - Memcheck reports every first touch of a PROT_NONE mapping as an invalid
#   access, before it faults and the library serves it: the library marks
#   its region mappings addressable for memcheck (uf__vg_served in
#   src/sanitizer.h) when valgrind's header is installed (UF_HAVE_VALGRIND,
#   checked here). No suppressions are needed for the tests below; a new
#   one goes in tests/valgrind.supp with a comment saying why.
# Not in the set, and why: tests that measure RSS, mappings or descriptors
# (valgrind's own memory and descriptors count there: test_engine_budget,
# _huge, _leave, _leave_callouts, _map_limits, _big_blocks, _no_pressure,
# _rlimit_as, _cgroup_mem); timing, signal-storm and thread-storm tests
# (valgrind runs one thread at a time, 20-50 times slower: _slow_*, _storm,
# _reentry, _threads, _stress, _sync_race, _unmap_race, _fork_threads,
# test_error_threads, test_signal_limits); tests that touch their own
# PROT_NONE memory or crash on purpose (test_area, test_stack_guard,
# test_engine_chain, test_engine_handler, test_explain, test_ufcatch);
# test_engine_select (compares this process's engines with a re-executed
# child, which runs natively); and two found not to work under valgrind
# 3.19 (left open): uf_probe's write probe (a faulting `lock orb` is
# restarted with rsp 8 bytes off, reproduced without the library:
# test_engine_safe_access) and uf_try_read's fixup of a fault on an
# address nobody serves (the byte loop's second fault ends the process:
# test_safe_access). Shell-script tests never run under RUNNER.
# A test load whose value is unused must be kept (a volatile sink):
# valgrind drops such a load, and it never faults (test_engine_sigbus).
VALGRIND ?= valgrind
VALGRIND_TESTS ?= test_args test_diag test_explain_fifo \
	test_store_blockdev test_syscall test_redis_store test_engine_errno \
	test_engine_fault_kinds test_engine_file test_engine_fn_store test_engine_fork \
	test_engine_inject test_engine_ra_error test_engine_readback \
	test_engine_sigbus test_engine_stale test_engine_store_nested \
	test_engine_unmap test_engine_write_sync test_engine_exit
VALGRIND_RUN = $(VALGRIND) -q --tool=memcheck --error-exitcode=97 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--vex-iropt-register-updates=allregs-at-mem-access --child-silent-after-fork=no \
	--suppressions=$(abspath tests/valgrind.supp)

HAVE_VALGRIND_H := $(shell printf '\#include <valgrind/memcheck.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo yes)
ifeq ($(HAVE_VALGRIND_H),yes)
LIB_CFLAGS += -DUF_HAVE_VALGRIND=1
endif

.PHONY: check-valgrind
check-valgrind: all
	@command -v $(VALGRIND) >/dev/null || { echo "check-valgrind: $(VALGRIND) not installed"; exit 1; }
	@[ "$(HAVE_VALGRIND_H)" = yes ] || { echo "check-valgrind: <valgrind/memcheck.h> not found: the library cannot mark its regions for memcheck"; exit 1; }
	ENGINES=signal UF_TEST_VALGRIND=1 TEST_TIMEOUT_SECS=300 RUNNER="$(VALGRIND_RUN)" \
		BUILD=$(BUILD) tests/run.sh -j2 $(VALGRIND_TESTS)

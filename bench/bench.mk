# SPDX-License-Identifier: MIT
# bench/bench.mk - the benchmarks (included by the top-level Makefile).
#   $(BUILD)/bench/ufbench      bench/ufbench*.c, the comparison suite
#   $(BUILD)/bench/bench_NAME   every bench/bench_NAME.c, standalone
#   make bench                  the standard run: results JSON + gnuplot table
#                               (+ PNG if gnuplot is installed) in $(BUILD)/bench/
# libsigsegv (the classic-pager baseline) is optional: without <sigsegv.h>
# ufbench builds without it and reports that system as unavailable.

UFBENCH_SRCS := $(sort $(wildcard bench/ufbench*.c))
BENCH_HDRS := $(wildcard bench/*.h)
BENCH_PROGS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))

# Ask the compiler, so cross and multiarch include paths count too.
HAVE_LIBSIGSEGV := $(shell printf '\043include <sigsegv.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
SIGSEGV_CFLAGS := $(if $(HAVE_LIBSIGSEGV),-DHAVE_LIBSIGSEGV=1)
SIGSEGV_LIBS := $(if $(HAVE_LIBSIGSEGV),-lsigsegv)

# `all` was expanded before this file was read: name the extra programs here.
BENCH += $(BENCH_PROGS)
all: $(BENCH_PROGS)

$(BUILD)/bench/ufbench: $(UFBENCH_SRCS) $(BENCH_HDRS) $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SIGSEGV_CFLAGS) -Ibench $(UFBENCH_SRCS) -o $@ $(LINK_UF) $(SIGSEGV_LIBS) -lm

$(BUILD)/bench/bench_%: bench/bench_%.c $(BENCH_HDRS) $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench $< -o $@ $(LINK_UF) -lm

# The standard set: every scenario, userfault (each engine) against its
# baselines, interleaved rep by rep. A few minutes on a 2-vCPU guest.
BENCH_ARGS ?= --compare
BENCH_OUT := $(BUILD)/bench
bench: $(BUILD)/bench/ufbench $(BENCH_PROGS)
	$(BUILD)/bench/ufbench $(BENCH_ARGS) --json --dat $(BENCH_OUT)/results.dat --md $(BENCH_OUT)/results.md \
		> $(BENCH_OUT)/results.json; st=$$?; \
	if command -v gnuplot >/dev/null 2>&1; then \
		gnuplot -e "datafile='$(BENCH_OUT)/results.dat'; outfile='$(BENCH_OUT)/ufbench.png'" \
			bench/plot.gp && echo "plot: $(BENCH_OUT)/ufbench.png"; \
	else echo "gnuplot not installed: no plot ($(BENCH_OUT)/results.dat has the data)"; fi; \
	echo "results: $(BENCH_OUT)/results.json"; exit $$st

# LLNL UMap against userfault (bench/umap_bench.cpp), only when pointed at a
# UMap install: make UMAP_DIR=/path/to/umap-install $(BUILD)/bench/umap_bench
# (UMAP_DIR/include/umap/umap.h and UMAP_DIR/lib/libumap.so). See
# docs/PERFORMANCE.md, "LLNL UMap against userfault".
ifneq ($(UMAP_DIR),)
CXX ?= g++
UMAP_CXXFLAGS ?= -O2 -g -Wall -Wextra -Wno-unused-parameter -std=gnu++17 -pthread
$(BUILD)/bench/umap_bench_util.o: bench/ufbench_util.c bench/ufbench.h include/userfault.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -Ibench -c $< -o $@
$(BUILD)/bench/umap_bench: bench/umap_bench.cpp $(BUILD)/bench/umap_bench_util.o include/userfault.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CXX) $(UMAP_CXXFLAGS) -Iinclude -I$(UMAP_DIR)/include $< $(BUILD)/bench/umap_bench_util.o -o $@ $(LINK_UF) \
		-L$(UMAP_DIR)/lib -Wl,-rpath,$(abspath $(UMAP_DIR)/lib) -lumap -lm
endif

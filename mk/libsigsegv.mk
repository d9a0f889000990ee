# SPDX-License-Identifier: MIT
# mk/libsigsegv.mk - the libsigsegv drop-in (compat/libsigsegv/): a
# libsigsegv.so.2 built on userfault's public API, its sigsegv.h, and the
# tests that run it against libsigsegv's own suite and real programs.
#   $(BUILD)/compat/libsigsegv.so.2   (+ sigsegv.h next to it)
#   make check-sigsegv                libsigsegv's test suite on every engine
# Installed into $(LIBDIR)/userfault/, never over the system's copy.

SIGSEGV_COMPAT_DIR := $(BUILD)/compat
SIGSEGV_COMPAT := $(SIGSEGV_COMPAT_DIR)/libsigsegv.so.2
SIGSEGV_COMPAT_HDR := $(SIGSEGV_COMPAT_DIR)/sigsegv.h

all: $(SIGSEGV_COMPAT) $(SIGSEGV_COMPAT_HDR)

# Links libuserfault.so.0 dynamically, found one directory up ($ORIGIN/..)
# both in the build tree and once installed.
$(SIGSEGV_COMPAT): compat/libsigsegv/sigsegv.c compat/libsigsegv/sigsegv.h include/userfault.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -Icompat/libsigsegv -shared -Wl,-soname,libsigsegv.so.2 -Wl,-z,defs \
		-Wl,-rpath,'$$ORIGIN/..' \
		-o $@ $< -L$(BUILD) -luserfault $(LINK_FLAGS) $(LDLIBS)
	ln -sf libsigsegv.so.2 $(SIGSEGV_COMPAT_DIR)/libsigsegv.so
$(SIGSEGV_COMPAT_HDR): compat/libsigsegv/sigsegv.h
	@mkdir -p $(dir $@)
	cp $< $@

# libsigsegv's own test suite (fetched with apt-get source into
# $(BUILD)/sigsegv-cache, built against our header and library, run on every
# engine), then Debian's clisp and gawk on the drop-in. tests/run.sh runs the
# same scripts as part of make check.
# Host-only: the scripts compile with the host's cc and run host programs
# (a cross build's tests/run.sh would hand them to qemu).
ifeq ($(CROSS),)
SIGSEGV_TESTS := $(BUILD)/tests/test_sigsegv_suite $(BUILD)/tests/test_sigsegv_programs \
	$(BUILD)/tests/test_sigsegv_threads $(BUILD)/tests/test_sigsegv_fork
else
SIGSEGV_TESTS :=
endif
all: $(SIGSEGV_TESTS)
$(BUILD)/tests/test_sigsegv_%: tests/sigsegv_%.sh
	@mkdir -p $(dir $@)
	cp $< $@ && chmod +x $@

# Thread safety beyond libsigsegv, and overlapping areas, against the
# drop-in's own header and library.
$(BUILD)/tests/test_sigsegv_threads: tests/sigsegv_threads.c tests/overflow.h $(SIGSEGV_COMPAT) $(SIGSEGV_COMPAT_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icompat/libsigsegv $< -o $@ -L$(SIGSEGV_COMPAT_DIR) \
		-Wl,-rpath,$(abspath $(SIGSEGV_COMPAT_DIR)) -lsigsegv $(LINK_FLAGS) $(LDLIBS)
# fork() while other threads dispatch, against the same.
$(BUILD)/tests/test_sigsegv_fork: tests/sigsegv_fork.c tests/harness.h $(SIGSEGV_COMPAT) $(SIGSEGV_COMPAT_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icompat/libsigsegv $< -o $@ -L$(SIGSEGV_COMPAT_DIR) \
		-Wl,-rpath,$(abspath $(SIGSEGV_COMPAT_DIR)) -lsigsegv $(LINK_FLAGS) $(LDLIBS)

.PHONY: check-sigsegv
check-sigsegv: all
	for t in $(SIGSEGV_TESTS); do $$t || exit 1; done

# make install: the drop-in goes to $(LIBDIR)/userfault/ (its rpath finds
# libuserfault one directory up), the header to $(INCDIR)/userfault/; the
# system's libsigsegv is never replaced. Use it per program with
# LD_LIBRARY_PATH=$(LIBDIR)/userfault. make uninstall removes them
# (mk/install.mk).
install: $(SIGSEGV_COMPAT) $(SIGSEGV_COMPAT_HDR)
INSTALL_FILES += $(SIGSEGV_COMPAT):$(LIBDIR)/userfault:755 $(SIGSEGV_COMPAT_HDR):$(INCDIR)/userfault:644
INSTALL_LINKS += $(LIBDIR)/userfault/libsigsegv.so:libsigsegv.so.2
OWN_DIRS += $(LIBDIR)/userfault $(INCDIR)/userfault

# The benchmark: one program built against each library; `make
# bench-sigsegv` runs them alternately (bench/sigsegv.sh).
SIGSEGV_BENCH := $(BUILD)/bench/sigsegv_bench_uf $(if $(HAVE_LIBSIGSEGV),$(BUILD)/bench/sigsegv_bench_real)
all: $(SIGSEGV_BENCH)
$(BUILD)/bench/sigsegv_bench_uf: bench/sigsegv_bench.c $(SIGSEGV_COMPAT)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icompat/libsigsegv $< -o $@ -L$(SIGSEGV_COMPAT_DIR) \
		-Wl,-rpath,$(abspath $(SIGSEGV_COMPAT_DIR)) -lsigsegv $(LINK_FLAGS) $(LDLIBS)
$(BUILD)/bench/sigsegv_bench_real: bench/sigsegv_bench.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ -lsigsegv $(LINK_FLAGS) $(LDLIBS)
.PHONY: bench-sigsegv
bench-sigsegv: $(SIGSEGV_BENCH)
	bench/sigsegv.sh $(BUILD)

# Tests built by the generic rule that share tests/overflow.h.
$(patsubst tests/%.c,$(BUILD)/tests/%,$(shell grep -l '"overflow.h"' tests/test_*.c)): tests/overflow.h
$(patsubst tests/%.c,$(BUILD)/tests/%,$(shell grep -l '"leaks.h"' tests/test_*.c)): tests/leaks.h

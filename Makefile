# SPDX-License-Identifier: MIT
# userfault - one build system: plain GNU make.
#   make            library (shared + static), tests, examples, tools, bench
#   make demo       build and run the demo
#   make check      build and run the whole test suite (every engine)
#   make bench      run the standard benchmark set
#   make install    PREFIX=/usr/local DESTDIR=  (and make uninstall; mk/install.mk)
# Variables: BUILD (output dir), CC, SAN=address|thread (sanitizer build), CROSS=aarch64

# The version lives in include/userfault.h; everything else derives from it.
VMAJOR := $(shell sed -n 's/^\#define UF_VERSION_MAJOR \([0-9]*\)/\1/p' include/userfault.h)
VMINOR := $(shell sed -n 's/^\#define UF_VERSION_MINOR \([0-9]*\)/\1/p' include/userfault.h)
VPATCH := $(shell sed -n 's/^\#define UF_VERSION_PATCH \([0-9]*\)/\1/p' include/userfault.h)
VERSION := $(VMAJOR).$(VMINOR).$(VPATCH)

ifeq ($(CROSS),aarch64)
CC := aarch64-linux-gnu-gcc
BUILD ?= build-aarch64
endif
CC ?= cc
BUILD ?= build
ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := $(CPPFLAGS) $(CFLAGS) $(WARN) -std=gnu11 -fPIC -Iinclude -pthread
LIB_CFLAGS := $(ALL_CFLAGS) -fvisibility=hidden
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
LIB_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
SAN_LDFLAGS := -fsanitize=$(SAN)
endif
# Every link: the sanitizer's runtime and the caller's LDFLAGS (a
# distribution's -Wl,-z,relro -Wl,-z,now, say); CPPFLAGS and CFLAGS go on
# every compile.
LINK_FLAGS := $(SAN_LDFLAGS) $(LDFLAGS)
LDLIBS := -pthread

SONAME := libuserfault.so.$(VMAJOR)
LIB_SRCS := $(wildcard src/*.c) $(wildcard src/arch/$(ARCH)/*.c) $(wildcard src/arch/$(ARCH)/*.S)
LIB_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(LIB_SRCS))
SHLIB := $(BUILD)/libuserfault.so.$(VERSION)
STLIB := $(BUILD)/libuserfault.a
CATCH_SRCS := $(wildcard src/catch/*.c)
CATCHLIB := $(BUILD)/libuserfault-catch.so

TEST_SRCS := $(wildcard tests/test_*.c)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_HELPERS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/prog_*.c))
# examples/redis_demo.c needs the Redis store: mk/redis.mk builds it with hiredis.
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(filter-out examples/redis_demo.c,$(wildcard examples/*.c)))
TOOLS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH := $(if $(BENCH_SRCS),$(BUILD)/bench/ufbench)

.PHONY: all lib demo check bench clean check-asan check-tsan check-aarch64
all: lib $(CATCHLIB) $(TESTS) $(TEST_HELPERS) $(EXAMPLES) $(TOOLS) $(BENCH)
lib: $(SHLIB) $(STLIB)

$(BUILD)/obj/%.c.o: %.c $(wildcard src/*.h src/arch/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@
$(BUILD)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(SHLIB): $(LIB_OBJS) src/libuserfault.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libuserfault.map -Wl,-z,defs \
		$(LINK_FLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libuserfault.so
$(STLIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# --exclude-libs: the preload must not export (and so override) the
# program's own libuserfault symbols.
CATCH_LDFLAGS := -Wl,--exclude-libs,ALL -Wl,-soname,$(notdir $(CATCHLIB))
$(CATCHLIB): $(CATCH_SRCS) $(STLIB)
	$(if $(CATCH_SRCS),$(CC) $(LIB_CFLAGS) -shared $(CATCH_LDFLAGS) -o $@ $(CATCH_SRCS) $(STLIB) $(LDLIBS) -ldl $(LINK_FLAGS),@true)

LINK_UF := -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -luserfault $(LINK_FLAGS) $(LDLIBS)
$(BUILD)/tests/%: tests/%.c tests/harness.h $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Isrc $< -o $@ $(LINK_UF)
$(BUILD)/examples/%: examples/%.c $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LINK_UF) -lm
$(BUILD)/tools/%: tools/%.c $(SHLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LINK_UF)

include $(wildcard bench/bench.mk)
# Optional components and extra test suites add themselves here (one
# fragment each: compat/, stores, fuzzing); see mk/README.
include $(sort $(wildcard mk/*.mk))

demo: $(BUILD)/examples/demo
	$(BUILD)/examples/demo

# The native suite, then (where the cross toolchain and qemu-user are
# installed, as .ci/run does) the same suite built for aarch64 under qemu.
check: all
	BUILD=$(BUILD) tests/run.sh
	@if [ -z "$(CROSS)" ] && command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then \
		$(MAKE) --no-print-directory check-aarch64; \
	else \
		echo "check: aarch64 cross toolchain or qemu-user not installed: aarch64 suite not run (.ci/aarch64.sh installs them)"; \
	fi

# Sanitizer runs. The sanitizers' own SIGSEGV/SIGBUS handlers would sit
# under ours and turn the deaths some tests expect into exit(1): off. Tests
# that measure RSS or mappings skip their measurement (the runtime's own
# memory counts there). TSan cannot see the ordering userfaultfd gives
# (fault -> message -> handler thread); see docs/ENGINES.md.
SAN_ENV := ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:detect_leaks=0 \
	TSAN_OPTIONS=handle_segv=0:handle_sigbus=0 TEST_TIMEOUT_SECS=900 TEST_TIMEOUT=600
check-asan:
	$(MAKE) BUILD=build-asan SAN=address,undefined all
	$(SAN_ENV) BUILD=build-asan tests/run.sh
check-tsan:
	$(MAKE) BUILD=build-tsan SAN=thread all
	$(SAN_ENV) BUILD=build-tsan tests/run.sh
# Cross-built, run under qemu-user (no userfaultfd there: the signal engine
# is tested; uffd-only tests skip). .ci/aarch64.sh installs the toolchain.
AARCH64_BUILD ?= build-aarch64
AARCH64_RUNNER ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
check-aarch64:
	@command -v aarch64-linux-gnu-gcc >/dev/null && command -v $(firstword $(AARCH64_RUNNER)) >/dev/null || \
		{ echo "check-aarch64: needs aarch64-linux-gnu-gcc and qemu-aarch64 (run .ci/aarch64.sh)"; exit 1; }
	@# HAVE_LIBSIGSEGV= : the host's <sigsegv.h> is visible to the cross
	@# compiler, but there is no arm64 libsigsegv to link.
	$(MAKE) CROSS=aarch64 BUILD=$(AARCH64_BUILD) HAVE_LIBSIGSEGV= all
	BUILD=$(AARCH64_BUILD) RUNNER="$(AARCH64_RUNNER)" tests/run.sh

# install, uninstall and userfault.pc: mk/install.mk.

clean:
	rm -rf build build-asan build-tsan build-aarch64

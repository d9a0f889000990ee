# SPDX-License-Identifier: MIT
# sigctx.mk - make check-sigctx: the external calls of every function marked
# UF_SIGCTX, from GCC's call graph of each library object (-fcallgraph-info,
# GCC 10+), must be async-signal-safe (tests/check_sigctx.sh has the list).
# Run by make check. Skipped, saying so, with a compiler without the option.
SIGCTX_SRCS := $(LIB_SRCS:%.S=) $(CATCH_SRCS)
SIGCTX_SRCS := $(filter %.c,$(SIGCTX_SRCS))
SIGCTX_CI := $(patsubst %.c,$(BUILD)/sigctx/%.ci,$(SIGCTX_SRCS))
HAVE_CALLGRAPH := $(shell $(CC) -fcallgraph-info -x c -c /dev/null -o /dev/null -dumpdir /tmp/ 2>/dev/null && echo yes; rm -f /tmp/null.ci)

$(BUILD)/sigctx/%.ci: %.c $(wildcard src/*.h src/arch/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -fcallgraph-info -c $< -o $(basename $@).o -dumpbase $(notdir $(basename $@)) -dumpdir $(dir $@)

.PHONY: check-sigctx
ifeq ($(HAVE_CALLGRAPH),yes)
check-sigctx: $(SIGCTX_CI) $(filter %.S.o,$(LIB_OBJS))
	ASM_OBJS="$(filter %.S.o,$(LIB_OBJS))" NM=$(NM) tests/check_sigctx.sh $(BUILD)/sigctx src
else
check-sigctx:
	@echo "check-sigctx: $(CC) has no -fcallgraph-info (GCC 10+): not checked"
endif
check: check-sigctx

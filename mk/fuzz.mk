# Fuzzing (fuzz/): libFuzzer harnesses built with clang against the library
# objects compiled with ASan + UBSan + fuzzer coverage.
#   make fuzz             build, then run each harness FUZZ_SECONDS (60)
#   make fuzz-build       build only
# New inputs go to $(FUZZ_BUILD)/corpus-NAME; fuzz/corpus/NAME (in the
# repository, small) seeds each run and is never written.
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 $(WARN) -std=gnu11 -Iinclude -Isrc -pthread $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(patsubst %,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS))
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_NAMES))

$(FUZZ_BUILD)/obj/%.c.o: %.c $(wildcard src/*.h src/arch/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -fvisibility=hidden -c $< -o $@
$(FUZZ_BUILD)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJS) -o $@ -pthread

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
# Our fault handler sits above the sanitizer's (it chains to it), so real
# crashes are still reported; leaks of a region mapped by an aborted input
# are not bugs of the library.
fuzz: fuzz-build
	@for n in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
		echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
		ASAN_OPTIONS=detect_leaks=0:allow_user_segv_handler=1 \
		$(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 \
			-print_final_stats=1 $(FUZZ_BUILD)/corpus-$$n fuzz/corpus/$$n \
			> $(FUZZ_BUILD)/fuzz_$$n.log 2>&1; rc=$$?; \
		grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY' $(FUZZ_BUILD)/fuzz_$$n.log; \
		if [ $$rc -ne 0 ]; then tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; exit 1; fi; \
	done
.PHONY: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_BUILD)
clean: fuzz-clean

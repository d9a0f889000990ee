# SPDX-License-Identifier: MIT
# pkgtests.mk - tests that are shell scripts (tests/test_NAME.sh becomes
# $(BUILD)/tests/test_NAME) with the source tree, the build tree and the
# compiler filled in, so they run from any directory.
NM ?= $(if $(filter aarch64,$(CROSS)),aarch64-linux-gnu-nm,nm)
SCRIPT_TESTS := $(patsubst tests/%.sh,$(BUILD)/tests/%,$(wildcard tests/test_*.sh))
$(BUILD)/tests/%: tests/%.sh
	@mkdir -p $(dir $@)
	sed -e 's|@SRCDIR@|$(abspath .)|g' -e 's|@BUILD@|$(abspath $(BUILD))|g' -e 's|@CC@|$(CC)|g' \
	    -e 's|@CXX@|$(CXX)|g' -e 's|@NM@|$(NM)|g' -e 's|@SANFLAGS@|$(LINK_FLAGS)|g' $< > $@ && chmod +x $@
all: $(SCRIPT_TESTS)

# SPDX-License-Identifier: MIT
# install.mk - make install / make uninstall, userfault.pc, installed tools.
#
#   make install   PREFIX=/usr/local DESTDIR= [LIBDIR= INCDIR= BINDIR= MANDIR=]
#   make uninstall (same variables) removes exactly the files install put
#                  there, then the directories install created (listed in
#                  $(BUILD)/install.dirs) that are left empty; the list
#                  keeps the others (another DESTDIR's) for their uninstall
#
# Everything installed depends only on the install's own PREFIX/LIBDIR:
# userfault.pc and the installed tools are rebuilt whenever those change
# ($(BUILD)/install.vars holds the values of the last build), and the
# installed tools find libuserfault through a RUNPATH relative to their own
# location ($ORIGIN/<BINDIR to LIBDIR>), never through the build tree, so a
# DESTDIR staging tree can be moved into place and still run (none at all
# for a LIBDIR on the dynamic linker's default path: INSTALL_RUNPATH below).
# Fragments that install more files add them to INSTALL_FILES as
# "source:destination-dir:mode" words (see mk/README).
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

INSTALL_VARS := PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCDIR=$(INCDIR) BINDIR=$(BINDIR) MANDIR=$(MANDIR) \
	INSTALL_RUNPATH=$(INSTALL_RUNPATH)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(BUILD)/install.vars 2>/dev/null)" = '$(INSTALL_VARS)' ] || \
	printf '%s\n' '$(INSTALL_VARS)' > $(BUILD)/install.vars; })
endif
# The library directory seen from the binary directory, for $ORIGIN.
BIN_TO_LIB := $(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR))
# A LIBDIR the dynamic linker searches anyway (a distribution's
# PREFIX=/usr LIBDIR=/usr/lib/<multiarch>) needs no RUNPATH, and a
# distribution's tools carry none: INSTALL_RUNPATH=auto (the default) leaves
# it out there; yes or no force it.
INSTALL_RUNPATH ?= auto
comma := ,
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
SYSTEM_LIBDIRS := /lib /usr/lib /lib64 /usr/lib64 $(if $(MULTIARCH),/lib/$(MULTIARCH) /usr/lib/$(MULTIARCH))
ifeq ($(INSTALL_RUNPATH),auto)
TOOL_RUNPATH := $(if $(filter $(abspath $(LIBDIR)),$(SYSTEM_LIBDIRS)),,yes)
else
TOOL_RUNPATH := $(filter yes,$(INSTALL_RUNPATH))
endif

# libdir/includedir relative to ${prefix} when they are below it, so
# `pkg-config --define-prefix` works on a staged tree too.
pc_rel = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}/$(patsubst $(PREFIX)/%,%,$(1)),$(1))
# Libs.private: the libraries the static library needs (LDLIBS: -pthread,
# and -lhiredis when the Redis store is built, see mk/redis.mk); rewritten
# with the library, whose link line they are.
$(BUILD)/userfault.pc: userfault.pc.in include/userfault.h $(BUILD)/install.vars $(SHLIB)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_rel,$(LIBDIR))|' \
	    -e 's|@INCDIR@|$(call pc_rel,$(INCDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(LDLIBS))|' $< > $@

# Tools as installed: same sources, linked for the install's LIBDIR.
INST_TOOLS := $(patsubst tools/%.c,$(BUILD)/inst/%,$(wildcard tools/*.c))
$(BUILD)/inst/%: tools/%.c $(SHLIB) $(BUILD)/install.vars
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DUF_LIBDIR=\"$(LIBDIR)\" -DUF_LIBDIR_REL=\"$(BIN_TO_LIB)\" $< -o $@ \
		-L$(BUILD) $(if $(TOOL_RUNPATH),-Wl$(comma)-rpath$(comma)'$$ORIGIN/$(BIN_TO_LIB)') -luserfault \
		$(LINK_FLAGS) $(LDLIBS)

# What install puts where: "file:dir:mode". Man alias pages (a single .so
# line) are installed as symlinks to the page they name (see man/README).
MAN_PAGES := $(wildcard man/*.[137])
man_alias = $(shell sed -n '1s|^\.so man/\(.*\)|\1|p' $(1))
INSTALL_FILES += include/userfault.h:$(INCDIR):644 \
	$(SHLIB):$(LIBDIR):755 $(STLIB):$(LIBDIR):644 \
	$(BUILD)/userfault.pc:$(PKGCONFIGDIR):644 \
	$(if $(CATCH_SRCS),$(CATCHLIB):$(LIBDIR):755) \
	$(foreach t,$(INST_TOOLS),$(t):$(BINDIR):755)
INSTALL_LINKS += $(LIBDIR)/$(SONAME):$(notdir $(SHLIB)) $(LIBDIR)/libuserfault.so:$(SONAME)
$(foreach m,$(MAN_PAGES),$(eval man_sec := $(patsubst .%,%,$(suffix $(m)))) \
	$(if $(call man_alias,$(m)),\
	$(eval INSTALL_LINKS += $(MANDIR)/man$(man_sec)/$(notdir $(m)):$(call man_alias,$(m))),\
	$(eval INSTALL_FILES += $(m):$(MANDIR)/man$(man_sec):644)))

w1 = $(word 1,$(subst :, ,$(1)))
w2 = $(word 2,$(subst :, ,$(1)))
w3 = $(word 3,$(subst :, ,$(1)))

# Directories no other package uses (fragments add theirs).
OWN_DIRS +=
.PHONY: install uninstall
# mkd DIR: install -d, noting in $(BUILD)/install.dirs each directory it
# creates, so that uninstall removes those and no directory that was there.
MKD := mkd() { d="$$1"; n=""; while [ ! -d "$$d" ]; do n="$$d\n$$n"; d=$$(dirname "$$d"); done; \
	printf "$$n" >> $(BUILD)/install.dirs; install -d "$$1"; }
install: lib $(if $(CATCH_SRCS),$(CATCHLIB)) $(INST_TOOLS) $(BUILD)/userfault.pc
	@set -e; $(MKD); $(foreach f,$(INSTALL_FILES), \
		mkd '$(DESTDIR)$(call w2,$(f))'; \
		echo "install $(call w1,$(f)) $(DESTDIR)$(call w2,$(f))/"; \
		install -m $(call w3,$(f)) '$(call w1,$(f))' '$(DESTDIR)$(call w2,$(f))/$(notdir $(call w1,$(f)))';) \
	$(foreach l,$(INSTALL_LINKS), \
		mkd '$(DESTDIR)$(dir $(call w1,$(l)))'; \
		echo "ln -sf $(call w2,$(l)) $(DESTDIR)$(call w1,$(l))"; \
		ln -sfn '$(call w2,$(l))' '$(DESTDIR)$(call w1,$(l))';) true

uninstall:
	@$(foreach f,$(INSTALL_FILES), \
		echo "rm -f $(DESTDIR)$(call w2,$(f))/$(notdir $(call w1,$(f)))"; \
		rm -f '$(DESTDIR)$(call w2,$(f))/$(notdir $(call w1,$(f)))';) \
	$(foreach l,$(INSTALL_LINKS), \
		echo "rm -f $(DESTDIR)$(call w1,$(l))"; rm -f '$(DESTDIR)$(call w1,$(l))';) true
	@# deepest first; rmdir removes a directory only if it is empty
	@# the record keeps what is still there (another DESTDIR's, or one
	@# holding files of someone else's) for a later uninstall
	@if [ -f $(BUILD)/install.dirs ]; then : > $(BUILD)/install.dirs.left; \
		sort -u $(BUILD)/install.dirs | while read -r d; do echo "$${#d} $$d"; done | sort -rn | \
		cut -d' ' -f2- | while read -r d; do if rmdir "$$d" 2>/dev/null; then echo "rmdir $$d"; \
		elif [ -d "$$d" ]; then echo "$$d" >> $(BUILD)/install.dirs.left; fi; done; \
		if [ -s $(BUILD)/install.dirs.left ]; then mv -f $(BUILD)/install.dirs.left $(BUILD)/install.dirs; \
		else rm -f $(BUILD)/install.dirs $(BUILD)/install.dirs.left; fi; fi; true
	@# directories only userfault uses go when empty even without the
	@# record (a build tree other than the one that installed)
	@for d in $(foreach d,$(OWN_DIRS),'$(DESTDIR)$(d)'); do \
		if [ -d "$$d" ] && rmdir "$$d" 2>/dev/null; then echo "rmdir $$d"; fi; done; true


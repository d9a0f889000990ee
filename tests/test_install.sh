#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install - make install / make uninstall as a packager runs them.
#
# Builds a fresh tree in a temporary directory, installs it twice with
# DESTDIR into two staging trees for two prefixes (the second with its own
# LIBDIR), moves each staged tree into place, removes the build tree, then
# checks from each prefix: userfault.pc names that prefix, the installed
# ufcatch has no RUNPATH into the build tree and preloads its own prefix's
# reporter, catches a crash, and a program built with pkg-config runs
# against that prefix's library, and one linked with the static library
# and `pkg-config --static` (Libs.private) runs too. Finally make uninstall (once in place,
# once under DESTDIR) must leave no file behind, and, for an install and
# uninstall of one build, no directory the install created, also when one
# build installed into two DESTDIRs and both are uninstalled in turn.
# For a LIBDIR the dynamic linker searches (PREFIX=/usr), the tools have no
# RUNPATH at all, and the crash reporter module has a SONAME. An uninstall
# from another build tree removes the files and userfault's own directories.
set -u
SRC='@SRCDIR@'
CC='@CC@'
unset MAKEFLAGS MFLAGS MAKELEVEL
T=$(mktemp -d /tmp/uf-install.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -z "${RUNNER:-}" ] || { echo "SKIP: installs and runs target programs: not under RUNNER=$RUNNER" >&2; exit 77; }
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not installed" >&2; exit 77; }
command -v readelf >/dev/null || { echo "SKIP: readelf not installed" >&2; exit 77; }

mk() { make -s -C "$SRC" CC="$CC" "$@" >>"$T/make.log" 2>&1 || { tail -20 "$T/make.log" >&2; fail "make $*"; }; }

# prefix, libdir
install_one() {
	local s=$T/stage.${1##*/}
	mk -j2 BUILD="$T/build" PREFIX="$1" LIBDIR="$2" DESTDIR="$s" install
	grep -q "^prefix=$1\$" "$s$2/pkgconfig/userfault.pc" || fail "userfault.pc of $1 says $(grep ^prefix= "$s$2/pkgconfig/userfault.pc")"
	mv "$s$1" "$1" || fail "moving the staged tree into place"
}
A=$T/a B=$T/b
install_one "$A" "$A/lib"
install_one "$B" "$B/lib64"

cat >"$T/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <userfault.h>
int main(void)
{
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "libuserfault.so")) {
			printf("%s", strchr(line, '/'));
			break;
		}
	return uf_version() == UF_VERSION_MAJOR * 10000 + UF_VERSION_MINOR * 100 + UF_VERSION_PATCH ? 0 : 1;
}
C
# README: from the build tree without installing, cc -Iinclude prog.c
# -Lbuild -luserfault, run with LD_LIBRARY_PATH=build (here the build tree is $T/build).
$CC -I"$SRC/include" -o "$T/prog_tree" "$T/prog.c" -L"$T/build" -luserfault || fail "building against the build tree"
got=$(LD_LIBRARY_PATH="$T/build" "$T/prog_tree") || fail "the build-tree program exits $?"
case "$got" in "$T/build/"*) ;; *) fail "the build-tree program ran against ${got:-no libuserfault}" ;; esac
mv "$T/build" "$T/build.gone"
# Uses the Redis store's object (which needs hiredis when it was built
# with it); uf_store_redis(NULL, ...) is -EINVAL either way.
cat >"$T/prog_static.c" <<'C'
#include <errno.h>
#include <userfault.h>
int main(void) { return uf_store_redis(0, 0) == -EINVAL && uf_version() ? 0 : 1; }
C
printf 'int main(void) { *(volatile int *)8 = 1; return 0; }\n' >"$T/crash.c"
$CC -o "$T/crash" "$T/crash.c" || fail "building the crashing program"

# prefix, libdir
check_one() {
	local p=$1 l=$2
	local rp
	rp=$(readelf -d "$p/bin/ufcatch" | grep -E 'RUNPATH|RPATH')
	case $rp in *"$T/build"*) fail "$p/bin/ufcatch keeps a RUNPATH into the build tree: $rp" ;; esac
	local flags
	flags=$(PKG_CONFIG_PATH="$l/pkgconfig" pkg-config --cflags --libs userfault) || fail "pkg-config for $p"
	# shellcheck disable=SC2086
	$CC -o "$T/prog" "$T/prog.c" $flags -Wl,-rpath,"$l" || fail "building with pkg-config ($flags)"
	local used
	used=$("$T/prog") || fail "program built against $p: wrong version"
	[ "$used" = "$l/libuserfault.so.0" ] || [ "$(realpath "$used")" = "$(realpath "$l/libuserfault.so.0")" ] ||
		fail "program built against $p loaded $used"
	# Static linking takes the libraries the static library needs from
	# Libs.private: -lhiredis when it was built with the Redis store.
	local priv
	priv=$(sed -n 's/^Libs.private: *//p' "$l/pkgconfig/userfault.pc")
	if pkg-config --exists hiredis; then
		case " $priv " in *" -lhiredis "*) ;; *) fail "userfault.pc of $p: Libs.private '$priv' lacks -lhiredis (built with hiredis)" ;; esac
	else
		case " $priv " in *hiredis*) fail "userfault.pc of $p: Libs.private '$priv' names hiredis, built without it" ;; esac
	fi
	local sflags
	sflags=$(PKG_CONFIG_PATH="$l/pkgconfig" pkg-config --static --cflags --libs userfault) || fail "pkg-config --static for $p"
	sflags=$(printf '%s\n' "$sflags" | sed "s|-luserfault|$l/libuserfault.a|")
	# shellcheck disable=SC2086
	$CC -o "$T/prog_static" "$T/prog_static.c" $sflags || fail "linking the static library with pkg-config --static ($sflags)"
	"$T/prog_static" >/dev/null || fail "program linked with $l/libuserfault.a: wrong version"
	local pre
	pre=$("$p/bin/ufcatch" -- sh -c 'echo "$LD_PRELOAD"') || fail "$p/bin/ufcatch does not run"
	[ "$pre" = "$(realpath "$l/libuserfault-catch.so")" ] || fail "$p/bin/ufcatch preloads '$pre', not $l/libuserfault-catch.so"
	# Moved away from its prefix, it still finds the reporter at the
	# absolute LIBDIR it was installed for (ufcatch(1)).
	mkdir -p "$T/moved" && cp "$p/bin/ufcatch" "$T/moved/ufcatch" || fail "copying ufcatch"
	pre=$(LD_LIBRARY_PATH="$l" "$T/moved/ufcatch" -- sh -c 'echo "$LD_PRELOAD"') || fail "a moved ufcatch does not run"
	[ "$pre" = "$(realpath "$l/libuserfault-catch.so")" ] || fail "ufcatch moved out of $p preloads '$pre', not $l/libuserfault-catch.so"
	{ "$p/bin/ufcatch" -o "$T/report" -- "$T/crash"; } 2>/dev/null
	local rc=$?
	[ $rc -eq 139 ] || fail "installed ufcatch: crash exit status $rc, want 139"
	grep -q SIGSEGV "$T/report" || fail "installed ufcatch wrote no report: $(cat "$T/report")"
	if command -v man >/dev/null; then
		local out
		out=$(MANWIDTH=80 man -l "$p/share/man/man3/uf_try_write.3" 2>&1 >/dev/null)
		[ -z "$out" ] || fail "installed alias page: $out"
		MANWIDTH=80 man -l "$p/share/man/man3/uf_try_write.3" 2>/dev/null | grep -q uf_try_write ||
			fail "installed alias page uf_try_write.3 does not show uf_try_read.3"
	fi
	echo "ok: $p"
}
check_one "$A" "$A/lib"
check_one "$B" "$B/lib64"

leftovers() { find "$1" ! -type d | sed 's/^/    /'; }
mk BUILD="$T/build2" PREFIX="$A" LIBDIR="$A/lib" uninstall
[ -z "$(leftovers "$A")" ] || fail "make uninstall left in $A:
$(leftovers "$A")"
mv "$B" "$T/stage.b$B"
mk BUILD="$T/build2" PREFIX="$B" LIBDIR="$B/lib64" DESTDIR="$T/stage.b" uninstall
[ -z "$(leftovers "$T/stage.b")" ] || fail "make uninstall DESTDIR= left:
$(leftovers "$T/stage.b")"
# What a packager's install and uninstall of one build do to a tree: every
# directory install created is gone again, none that was there is removed.
C=$T/stage.c
mkdir -p "$C/usr/local/include"
mk -j2 BUILD="$T/build2" PREFIX=/usr/local DESTDIR="$C" install
mk BUILD="$T/build2" PREFIX=/usr/local DESTDIR="$C" uninstall
[ "$(cd "$C" && find . -mindepth 1 | sort | xargs)" = "./usr ./usr/local ./usr/local/include" ] ||
	fail "make uninstall left in a /usr/local tree: $(cd "$C" && find . -mindepth 1 | xargs)"
# Two staging trees from one build, uninstalled in turn: the second
# uninstall still knows the directories its install made.
for d in d1 d2; do mk -j2 BUILD="$T/build2" PREFIX=/usr DESTDIR="$T/$d" install; done
for d in d1 d2; do mk BUILD="$T/build2" PREFIX=/usr DESTDIR="$T/$d" uninstall; done
for d in d1 d2; do
	[ ! -e "$T/$d" ] || fail "make uninstall after installs to two DESTDIRs left in $d: $(cd "$T/$d" && find . -mindepth 1 | xargs)"
done
# A distribution's layout (PREFIX=/usr, LIBDIR=/usr/lib/<multiarch>): the
# dynamic linker searches that LIBDIR anyway, so the tools carry no RUNPATH
# (INSTALL_RUNPATH=auto); INSTALL_RUNPATH=yes puts it back. The crash
# reporter, a preload module, names itself (SONAME).
ma=$($CC -print-multiarch 2>/dev/null)
SL=/usr/lib${ma:+/$ma}
E=$T/stage.e
mk -j2 BUILD="$T/build2" PREFIX=/usr LIBDIR="$SL" DESTDIR="$E" install
for t in ufcatch ufstat; do
	rp=$(readelf -d "$E/usr/bin/$t" | grep -E 'RUNPATH|RPATH')
	[ -z "$rp" ] || fail "$t installed for LIBDIR=$SL keeps a RUNPATH: $rp"
	LD_LIBRARY_PATH="$E$SL" "$E/usr/bin/$t" -h >/dev/null 2>&1 || fail "$t installed for LIBDIR=$SL does not run"
done
readelf -d "$E$SL/libuserfault-catch.so" | grep -q 'SONAME.*\[libuserfault-catch\.so\]' ||
	fail "libuserfault-catch.so has no SONAME: $(readelf -d "$E$SL/libuserfault-catch.so" | grep SONAME)"
mk BUILD="$T/build2" PREFIX=/usr LIBDIR="$SL" DESTDIR="$E" uninstall
mk -j2 BUILD="$T/build2" PREFIX=/usr LIBDIR="$SL" INSTALL_RUNPATH=yes DESTDIR="$E" install
readelf -d "$E/usr/bin/ufcatch" | grep -q 'RUNPATH.*\$ORIGIN' || fail "INSTALL_RUNPATH=yes: ufcatch has no \$ORIGIN RUNPATH"
mk BUILD="$T/build2" PREFIX=/usr LIBDIR="$SL" INSTALL_RUNPATH=yes DESTDIR="$E" uninstall
[ ! -e "$E" ] || fail "make uninstall of the $SL install left: $(cd "$E" && find . -mindepth 1 | xargs)"
# Uninstalled from another build tree (no record of what install made):
# the files go, and the directories only userfault uses.
mk -j2 BUILD="$T/build2" PREFIX=/usr/local DESTDIR="$E" install
mk BUILD="$T/build3" PREFIX=/usr/local DESTDIR="$E" uninstall
[ -z "$(leftovers "$E")" ] || fail "make uninstall from another build tree left:
$(leftovers "$E")"
for d in lib/userfault include/userfault; do
	[ ! -e "$E/usr/local/$d" ] || fail "make uninstall from another build tree left the directory /usr/local/$d"
done
echo "ok: install twice, run from each prefix without the build tree, uninstall leaves no file; no directory it made, also for two DESTDIRs; no RUNPATH for a system LIBDIR"

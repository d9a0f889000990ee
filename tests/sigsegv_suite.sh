#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_sigsegv_suite - GNU libsigsegv's own test suite against the drop-in
# (compat/libsigsegv): fetches Debian's libsigsegv source package with
# apt-get source into $BUILD/sigsegv-cache (a deb-src entry for the mirror
# the system uses, kept there: the system's apt configuration is not
# touched), builds every program of its tests/ against our sigsegv.h and
# libsigsegv.so.2, checks the binaries load our library, and runs each on
# every engine. Nothing of libsigsegv's source is committed.
# Exit 0 pass, 1 fail, 77 skip (no network, no apt-get, no source).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$here/.." && pwd)
compat=$build/compat
cache=$build/sigsegv-cache
skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$compat/libsigsegv.so.2" ] && [ -f "$compat/sigsegv.h" ] || fail "drop-in not built in $compat"
# A sanitizer build's drop-in needs its runtime loaded first, which the
# uninstrumented programs here do not do.
if ldd "$compat/libsigsegv.so.2" | grep -Eq 'lib(a|t|ub)san'; then
	skip "sanitizer build: uninstrumented programs cannot load the instrumented drop-in (run without SAN=)"
fi
command -v apt-get >/dev/null || skip "apt-get not available: cannot fetch libsigsegv's source"
CC=${CC:-cc}

fetch() {
	mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/etc"
	# The mirror of the system's own Debian entry (deb822 or one-line).
	local mirror suite
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
	[ -n "$mirror" ] || mirror=$(sed -n 's/^deb  *\(\[[^]]*\] *\)\{0,1\}\(http[^ ]*debian\)\/* .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-bookworm}")
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror ${suite:-bookworm} main" \
		> "$cache/etc/sources.list"
	local opts=(-o Dir::Etc::SourceList="$cache/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o Dir::State::Lists="$cache/lists" -o Dir::Cache="$cache" -o Debug::NoLocking=1
		-o APT::Sandbox::User="$(id -un)" -q)
	echo "fetching libsigsegv source from $mirror ${suite:-bookworm} (deb-src, cache $cache)"
	( cd "$cache" && timeout 300 apt-get "${opts[@]}" update >apt-update.log 2>&1 &&
	  timeout 300 apt-get "${opts[@]}" source --download-only libsigsegv >apt-source.log 2>&1 )
}

orig=$(ls "$cache"/libsigsegv_*.orig.tar.* 2>/dev/null | head -n1)
if [ -z "$orig" ]; then
	fetch || skip "could not fetch libsigsegv's source with apt-get source (no network?): $(tail -n1 "$cache"/apt-*.log 2>/dev/null | tr '\n' ' ')"
	orig=$(ls "$cache"/libsigsegv_*.orig.tar.* 2>/dev/null | head -n1)
	[ -n "$orig" ] || skip "apt-get source gave no libsigsegv tarball"
fi
src=$cache/src
rm -rf "$src" && mkdir -p "$src" && tar xf "$orig" -C "$src" --strip-components=1 || fail "cannot unpack $orig"
[ -d "$src/tests" ] || fail "no tests/ in $orig"

# What libsigsegv's configure finds on Linux, for the tests' #if lines.
cat > "$src/tests/config.h" <<'CFG'
#define HAVE_STDINT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_SETRLIMIT 1
#define HAVE_MMAP_ANONYMOUS 1
#define HAVE_MMAP_ANON 1
#define HAVE_EFAULT_SUPPORT 1
CFG

bindir=$cache/bin
mkdir -p "$bindir"
progs=()
for c in "$src"/tests/*.c; do
	p=$(basename "$c" .c)
	# -I order: our sigsegv.h, never the system's /usr/include/sigsegv.h.
	$CC -O2 -g -w -DHAVE_CONFIG_H -I"$src/tests" -I"$compat" -o "$bindir/$p" "$c" \
		-L"$compat" -Wl,-rpath,"$compat" -lsigsegv 2>"$bindir/$p.cc.log" ||
		fail "$p does not build against our sigsegv.h: $(head -n5 "$bindir/$p.cc.log")"
	progs+=("$p")
done
echo "built ${#progs[@]} programs: ${progs[*]}"

# Every engine the kernel offers (the write-tracking variant is the same
# engine for this purpose).
engines=$(for e in ${ENGINES:-$("$here/prog_engines" 2>/dev/null)}; do echo "${e%-wpsync}"; done | awk '!seen[$0]++')
[ -n "$engines" ] || engines="uffd uffd-thread signal"
bad=0 runs=0 skips=0
for p in "${progs[@]}"; do
	# The program must load the drop-in, not the system's copy.
	lib=$(ldd "$bindir/$p" | awk '/libsigsegv/ { print $3 }')
	[ "$lib" = "$compat/libsigsegv.so.2" ] || fail "$p loads '$lib', not $compat/libsigsegv.so.2"
	for e in $engines; do
		out=$(cd "$bindir" && USERFAULT_ENGINE=$e timeout 60 "./$p" 2>&1)
		rc=$?
		runs=$((runs + 1))
		case $rc in
		0) echo "PASS $p [$e]: $(echo "$out" | tail -n1)" ;;
		77) skips=$((skips + 1)); echo "SKIP $p [$e] (the program says this system lacks what it tests)" ;;
		*) bad=$((bad + 1)); echo "FAIL $p [$e] rc=$rc"; echo "$out" | tail -n 10 | sed 's/^/    /' ;;
		esac
	done
done
echo "libsigsegv suite: $runs runs, $bad failed, $skips skipped"
[ $bad -eq 0 ] || exit 1
[ $skips -eq 0 ] || fail "$skips runs skipped: the drop-in must support everything libsigsegv's tests check"
exit 0

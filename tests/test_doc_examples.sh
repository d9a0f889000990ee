#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_doc_examples - every ```c block in README.md and docs/*.md compiles.
#
# The convention (README "What it does"): each C block is a complete file,
# includes and all. It is compiled against the tree's header with -Wall
# -Wextra -Werror and linked with the built library; a block with a main()
# is run and must exit 0, or, for an example that shows a crash being
# explained, die of the signal after writing uf_explain's text on stderr.
set -u
SRC='@SRCDIR@'
B='@BUILD@'
CC='@CC@'
SANFLAGS='@SANFLAGS@' # the sanitizer the library was built with, if any
T=$(mktemp -d /tmp/uf-docs.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail=0 n=0
for md in "$SRC"/README.md "$SRC"/docs/*.md; do
	awk -v dir="$T" -v base="$(basename "$md" .md)" '
		/^```c[ \t]*$/ { k++; f = sprintf("%s/%s_%d_line%d.c", dir, base, k, NR + 1); inb = 1; next }
		/^```/ { inb = 0; next }
		inb { print > f }' "$md"
done
for c in "$T"/*.c; do
	[ -e "$c" ] || continue
	n=$((n + 1))
	name=$(basename "$c" .c)
	if ! "$CC" -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror $SANFLAGS -I"$SRC/include" "$c" -o "$T/$name" \
		-L"$B" -Wl,-rpath,"$B" -luserfault -pthread 2>"$T/err"; then
		if grep -q 'undefined reference to `main' "$T/err" &&
			"$CC" -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror -I"$SRC/include" -c "$c" -o "$T/$name.o" 2>"$T/err"; then
			echo "ok: $name compiles (no main: not run)"
			continue
		fi
		echo "FAIL: $name (${name%_*_line*}.md, block starting at line ${name##*line}) does not compile:"
		sed 's/^/    /' "$T/err" | head -20
		fail=1
		continue
	fi
	if [ -n "${RUNNER:-}" ]; then
		echo "ok: $name compiles (not run under RUNNER=$RUNNER)"
		continue
	fi
	{ timeout 60 "$T/$name" >"$T/out" 2>"$T/err"; } 2>/dev/null
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok: $name compiles and runs"
	elif [ $rc -gt 128 ] && [ $rc -ne 124 ] && grep -q 'SIGSEGV (segmentation fault)' "$T/err"; then
		echo "ok: $name compiles, explains its crash and dies of it"
	else
		echo "FAIL: $name exits with $rc:"; sed 's/^/    /' "$T/out" "$T/err" | head -20
		fail=1
	fi
done
[ $n -gt 0 ] || { echo "FAIL: no C block found"; exit 1; }
exit $fail

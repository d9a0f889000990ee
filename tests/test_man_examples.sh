#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_man_examples - the EXAMPLE section of every section-3 man page is a
# complete C program that compiles and runs.
#
# The convention: the code blocks (.EX/.EE or .nf/.fi) of a page's EXAMPLE
# or EXAMPLES section, in order, make one C file, includes and main and all
# (text may come between them). Two roff comment lines steer the test:
#   .\" example: output          the next block shows what the program
#                                prints: it is not code
#   .\" example: compile-only    (anywhere in the section) compile and link,
#                                do not run: the example needs a server, or
#                                it shows the process dying
# The roff escapes of the code are undone (\e \- \& \(aq \(dq \(ti \(ha
# \(ga \(rs \% and font changes); any other escape, or a request line inside
# a block (it would not show on the rendered page), fails the test. The
# program is compiled like test_doc_examples compiles README's blocks, with
# #line directives so that errors name the page's lines, and then run: it
# must exit 0 within 60 s. Under RUNNER (qemu-user) examples are only
# compiled.
set -u
SRC='@SRCDIR@'
B='@BUILD@'
CC='@CC@'
SANFLAGS='@SANFLAGS@' # the sanitizer the library was built with, if any
command -v "${CC%% *}" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC)"; exit 77; }
cd "$SRC" || exit 1
T=$(mktemp -d /tmp/uf-man-examples.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

# page, output .c file, file for problems; prints "compile-only" if the
# page says so and the number of code blocks.
extract() {
	awk -v page="$1" -v out="$2" -v errf="$3" '
	function unescape(s) {
		gsub(/\\e|\\\(rs|\\\[rs\]/, "\001", s)
		gsub(/\\-/, "-", s)
		gsub(/\\\(aq|\\\[aq\]/, "\047", s)
		gsub(/\\\(dq|\\\[dq\]/, "\"", s)
		gsub(/\\\(ti|\\\[ti\]/, "~", s)
		gsub(/\\\(ha|\\\[ha\]/, "^", s)
		gsub(/\\\(ga|\\\[ga\]/, "`", s)
		gsub(/\\f\[[A-Z]*\]|\\f\([A-Z][A-Z]|\\f[BIRP]|\\&|\\%/, "", s)
		if (index(s, "\\"))
			printf "%s:%d: a roff escape the test does not know: %s\n", page, NR, $0 > errf
		return s
	}
	function line(n) { printf "#line %d \"%s\"\n", n, page > out }
	/^\.SH/ { sec = $0 ~ /^\.SH[ \t]+"?EXAMPLES?"?[ \t]*$/; inb = 0; next }
	!sec { next }
	/^\.\\"[ \t]*example:[ \t]*compile-only/ { only = 1 }
	/^\.\\"[ \t]*example:[ \t]*output/ { skipnext = 1 }
	!inb && /^\.(EX|nf)[ \t]*$/ { inb = 1; skip = skipnext; skipnext = 0; if (!skip) { k++; line(NR + 1) }; next }
	!inb { next }
	/^\.(EE|fi)[ \t]*$/ { inb = 0; next }
	skip { next }
	/^\.\\"/ { line(NR + 1); next }
	/^[.\047]/ { printf "%s:%d: a roff request inside the example: %s\n", page, NR, $0 > errf; next }
	{ print unescape($0) > out }
	END { if (only) print "compile-only"; print k + 0 }' "$1"
}

fail=0 n=0
for page in man/*.3; do
	grep -qE '^\.SH[[:space:]]+"?EXAMPLES?"?[[:space:]]*$' "$page" || continue
	n=$((n + 1))
	name=$(basename "$page" .3)
	: >"$T/$name.raw" && : >"$T/problems"
	info=$(extract "$page" "$T/$name.raw" "$T/problems")
	tr '\001' '\134' <"$T/$name.raw" >"$T/$name.c"
	blocks=${info##*$'\n'}
	only=; [ "$info" != "$blocks" ] && only=1
	if [ "$blocks" -eq 0 ]; then
		echo "FAIL: $page: the EXAMPLE section has no .EX/.EE or .nf/.fi block"
		fail=1
		continue
	fi
	if [ -s "$T/problems" ]; then
		echo "FAIL: $page: the example does not read as C:"
		sed 's/^/    /' "$T/problems"
		fail=1
		continue
	fi
	if ! "$CC" -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror $SANFLAGS -I"$SRC/include" \
		"$T/$name.c" -o "$T/$name" -L"$B" -Wl,-rpath,"$B" -luserfault -pthread >"$T/err" 2>&1; then
		echo "FAIL: $page: the example does not compile:"
		sed 's/^/    /' "$T/err" | head -30
		fail=1
		continue
	fi
	if [ -n "$only" ]; then
		echo "ok: $page: example compiles (compile-only: not run)"
		continue
	fi
	if [ -n "${RUNNER:-}" ]; then
		echo "ok: $page: example compiles (not run under RUNNER=$RUNNER)"
		continue
	fi
	{ timeout 60 "$T/$name" >"$T/out" 2>&1 </dev/null; } 2>/dev/null
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok: $page: example compiles and runs"
	else
		[ $rc -eq 124 ] && why="timed out after 60 s" || why="exits with $rc"
		[ $rc -gt 128 ] && [ $rc -ne 124 ] && why="dies of signal $((rc - 128))"
		echo "FAIL: $page: the example $why:"
		sed 's/^/    /' "$T/out" | head -30
		fail=1
	fi
done
[ $n -gt 0 ] || { echo "FAIL: no man/*.3 page has an EXAMPLE section"; exit 1; }
exit $fail

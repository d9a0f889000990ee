#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_man - the man pages, read from the source tree.
#
# Every call the header declares has a page man/NAME.3; an alias page (a
# single ".so man/PAGE" line) names a page that exists and lists the alias
# in its NAME section; and every page renders with `man -l man/PAGE` from
# the top of the tree (as README tells a reader to) without a warning; every
# .TH has the same source and manual.
set -u
SRC='@SRCDIR@'
cd "$SRC" || exit 1
fail=0
for n in $(grep -h '^UF_API' include/userfault.h | sed 's/(.*//; s/.*[ *]//'); do
	[ -f "man/$n.3" ] || { echo "FAIL: $n is declared in userfault.h but has no man/$n.3"; fail=1; }
done
for p in man/*.[137]; do
	t=$(sed -n '1s|^\.so \(.*\)|\1|p' "$p")
	[ -n "$t" ] || continue
	name=$(basename "$p"); name=${name%.*}
	if [ ! -f "$t" ]; then
		echo "FAIL: $p: .so $t: no such page"; fail=1
	elif ! sed -n '/^\.SH NAME/,/^\.SH/p' "$t" | grep -qE "(^|[ ,])$name([ ,]|$)"; then
		echo "FAIL: $p points to $t, whose NAME does not list $name"; fail=1
	fi
done
# Every page's header has the same source and manual ("userfault", without
# a version: userfault.h is the one place the version is written).
for p in man/*.[137]; do
	t=$(grep -m1 '^\.TH' "$p") || continue
	case "$t" in
	*' "userfault" "userfault manual"') ;;
	*) echo "FAIL: $p: .TH is not '.TH NAME N DATE \"userfault\" \"userfault manual\"': $t"; fail=1 ;;
	esac
done
if ! command -v man >/dev/null; then
	echo "SKIP: man not installed (apt-get install man-db): pages checked, not rendered" >&2
	[ $fail -eq 0 ] && exit 77
	exit $fail
fi
for p in man/*.[137]; do
	err=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
	[ -z "$err" ] || { echo "FAIL: man -l $p:"; echo "$err" | sed 's/^/    /' | head; fail=1; }
done
[ $fail -eq 0 ] && echo "ok: $(ls man/*.[137] | wc -l) pages render from the tree"
exit $fail

#!/usr/bin/env bash
# test_exports - the library exports exactly the calls the header declares.
#
# The set of names declared UF_API in include/userfault.h, the names listed
# in src/libuserfault.map and the library's defined dynamic symbols (nm -D)
# must be the same set, every symbol carries a USERFAULT_* version, and no
# name appears in two version nodes.
set -u
SRC='@SRCDIR@'
LIB='@BUILD@/libuserfault.so'
fail=0
command -v nm >/dev/null || { echo "SKIP: nm not installed" >&2; exit 77; }
T=$(mktemp -d /tmp/uf-exports.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

# Declarations: the identifier before the first '(' on each UF_API line.
grep -h '^UF_API' "$SRC/include/userfault.h" | sed 's/(.*//; s/.*[ *]//' | sort >"$T/header"
# The map: names inside global: sections.
sed 's|/\*.*\*/||g' "$SRC/src/libuserfault.map" |
	awk '/global:/ { g = 1; next } /local:|}/ { g = 0 } g' | tr -d ' \t;' | grep -v '^$' | sort >"$T/map"
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' >"$T/nm"
sed 's/@.*//' "$T/nm" | sort >"$T/exported"

cmp_sets() { # a, b, label
	if ! diff -u "$1" "$2" >"$T/d"; then
		echo "FAIL: $3 differ:"; sed -n '3,$p' "$T/d" | grep '^[-+]' | sed 's/^/    /'
		fail=1
	fi
}
cmp_sets "$T/header" "$T/exported" "UF_API names in userfault.h (-) and symbols exported by $LIB (+)"
cmp_sets "$T/header" "$T/map" "UF_API names in userfault.h (-) and names in src/libuserfault.map (+)"
dups=$(uniq -d "$T/map")
[ -z "$dups" ] || { echo "FAIL: in two version nodes: $dups"; fail=1; }
unv=$(grep -v '@@\?USERFAULT_[0-9.]*$' "$T/nm")
[ -z "$unv" ] || { echo "FAIL: exported without a USERFAULT_* version: $unv"; fail=1; }
[ $fail -eq 0 ] && echo "ok: $(wc -l <"$T/header") calls, header = map = exported"
exit $fail

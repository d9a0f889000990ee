#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_options - one options table, one page.
#
# Every environment variable the library reads is in src/options.c's table
# and documented in man/userfault.7's ENVIRONMENT section, and the other way
# round; the library's sources call no getenv() except through the table
# (uf__getenv); every call the header declares is listed in userfault(7).
# Tools may read their own variables: each must be in userfault(7) too.
set -u
SRC='@SRCDIR@'
cd "$SRC" || exit 1
fail=0
T=$(mktemp -d /tmp/uf-options.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

sed -n '/g_options\[\] = {/,/^};/p' src/options.c | grep -o '"USERFAULT_[A-Z0-9_]*"' | tr -d '"' | sort -u >"$T/table"
grep -rhoE 'uf__getenv(_on|_off)?\("[A-Z0-9_]+"\)' src | grep -oE '"[A-Z0-9_]+"' | tr -d '"' | sort -u >"$T/used"
sed -n '/^\.SH ENVIRONMENT/,/^\.SH [^E]/p' man/userfault.7 | grep -A0 '^\.B USERFAULT_' | awk '{print $2}' | sort -u >"$T/doc"
grep -rhoE '(secure_)?getenv\("USERFAULT_[A-Z0-9_]+"\)' tools | grep -oE 'USERFAULT_[A-Z0-9_]+' | sort -u >"$T/tools"

missing() { comm -23 "$1" "$2"; }
for v in $(missing "$T/used" "$T/table"); do echo "FAIL: $v is read by src/ (uf__getenv) but missing from src/options.c's table"; fail=1; done
for v in $(missing "$T/table" "$T/doc"); do echo "FAIL: $v is in src/options.c's table but not documented in man/userfault.7 (ENVIRONMENT)"; fail=1; done
sort -u "$T/table" "$T/tools" >"$T/known"
for v in $(missing "$T/doc" "$T/known"); do echo "FAIL: man/userfault.7 documents $v, which nothing reads"; fail=1; done
for v in $(missing "$T/tools" "$T/doc"); do
	grep -q "$v" man/userfault.7 || { echo "FAIL: $v is read by a tool but not named in man/userfault.7"; fail=1; }
done
# Direct getenv in the library, outside the table.
bad=$(grep -rnE '\b(secure_)?getenv\(' src --include='*.c' | grep -v '^src/options.c:')
[ -z "$bad" ] || { echo "FAIL: getenv outside src/options.c (use uf__getenv and add the variable to the table):"; echo "$bad" | sed 's/^/    /'; fail=1; }
for n in $(grep -h '^UF_API' include/userfault.h | sed 's/(.*//; s/.*[ *]//'); do
	grep -qE "(^|[ \"])$n( |\"|$)" man/userfault.7 || { echo "FAIL: $n is not listed in man/userfault.7"; fail=1; }
done
[ $fail -eq 0 ] && echo "ok: $(wc -l <"$T/table") variables in one table, each documented; $(grep -c '^UF_API' include/userfault.h) calls listed"
exit $fail

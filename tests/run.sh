#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run.sh - runs the test programs under a timeout and prints one
# summary line "N passed, N failed, N skipped".
#
#   tests/run.sh [-j N] [TEST|PATTERN ...]
#
# With no arguments every $BUILD/tests/test_* runs; otherwise only those
# whose name matches one of the arguments (a name, "test_engine_*", or a
# name with its engine: "test_engine_budget[signal]"). -j N runs N at a time
# (default 1; timing-sensitive tests tolerate a loaded machine).
#
# Tests named test_engine_* are behavioural tests of regions: they run once
# per engine this kernel offers (tests/prog_engines lists them; uffd-wpsync
# is the in-thread engine with asynchronous write tracking turned off).
# Others run once. A skip (exit 77) is reported and never counted as a pass.
# Tests that are scripts (#!) run directly, never under $RUNNER; they see
# RUNNER in their environment.
#
# After each test the kernel log is checked: a new WARNING:, BUG:, Oops or
# "general protection" line that appeared while the test ran fails it (with
# -j, every test running at that time is blamed). Where dmesg cannot be
# read (kernel.dmesg_restrict), the runner says so once and goes on.
#
# ENGINE_SPREAD=1 (the sanitizer runs, to fit CI's time): each test_engine_*
# runs on one engine, taking the engines in turn, so every test and every
# engine run at least once; those named in ALL_ENGINES still run on all.
set -u
BUILD=${BUILD:-build}
RUNNER=${RUNNER:-}
TIMEOUT=${TEST_TIMEOUT_SECS:-180}
export BUILD RUNNER
jobs=1
pats=()
while [ $# -gt 0 ]; do
	case $1 in
	-j) jobs=${2:?-j needs a number}; shift 2 ;;
	-j*) jobs=${1#-j}; shift ;;
	-h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) pats+=("$1"); shift ;;
	esac
done
case $jobs in ''|*[!0-9]*|0) echo "run.sh: -j wants a positive number" >&2; exit 2 ;; esac

if [ -n "${ENGINES:-}" ]; then
	engines=$ENGINES
else
	engines=$($RUNNER "$BUILD/tests/prog_engines" 2>/dev/null) || engines=""
fi
[ -n "$engines" ] || { echo "run.sh: no engine available?"; engines="auto"; }
echo "engines under test: $engines"
case $RUNNER in *qemu*) export UF_TEST_QEMU=1 ;; esac

KPAT='WARNING:|BUG:|Oops|general protection'
if dmesg >/dev/null 2>&1; then
	kcount() { dmesg 2>/dev/null | grep -cE "$KPAT"; }
else
	echo "run.sh: dmesg not readable (kernel.dmesg_restrict?): kernel warnings not checked"
	kcount() { echo 0; }
fi

RES=$(mktemp -d /tmp/uf-run.XXXXXX) || exit 1
trap 'rm -rf "$RES"' EXIT

# name, env...: runs one test, prints its line, leaves its verdict in $RES.
run_one() {
	local name=$1; shift
	local bin="$BUILD/tests/${name%%[*}"
	local out rc start end k0 k1 t runner=$RUNNER
	[ "$(head -c 2 "$bin")" = "#!" ] && runner=""
	k0=$(kcount)
	start=$EPOCHREALTIME
	out=$(env "$@" timeout -k 5 "$TIMEOUT" $runner "$bin" 2>&1)
	rc=$?
	end=$EPOCHREALTIME
	k1=$(kcount)
	t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
	local kern=""
	if [ "$k1" -gt "$k0" ]; then
		kern=$(dmesg 2>/dev/null | grep -E "$KPAT" | tail -n $((k1 - k0)))
		[ $rc -eq 0 ] || [ $rc -eq 77 ] && rc=1
	fi
	local v
	case $rc in
	0) v=pass; printf 'PASS %-40s %6ss\n' "$name" "$t" ;;
	77) v=skip; printf 'SKIP %-40s %s\n' "$name" "$(echo "$out" | grep -m1 SKIP)" ;;
	*) v=fail
	   {
		printf 'FAIL %-40s rc=%d after %ss\n' "$name" "$rc" "$t"
		[ -z "$kern" ] || { echo "    new kernel log lines while it ran:"; echo "$kern" | sed 's/^/    | /'; }
		echo "$out" | tail -n 30 | sed 's/^/    /'
	   } | cat ;;
	esac
	echo "$v $name" >"$RES/$(printf '%s' "$name" | tr '/[]' '___')"
}

selected() { # name of a run (with [engine])
	[ ${#pats[@]} -eq 0 ] && return 0
	local p
	for p in "${pats[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == "$p" || $1 == $p || ${1%%[*} == $p ]] && return 0
	done
	return 1
}

running=0
launch() {
	selected "$1" || return 0
	if [ "$jobs" -le 1 ]; then
		run_one "$@"
	else
		while [ $running -ge "$jobs" ]; do
			wait -n 2>/dev/null
			running=$((running - 1))
		done
		run_one "$@" &
		running=$((running + 1))
	fi
}

read -r -a engine_list <<< "$engines"
spread_i=0
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	case $name in
	test_engine_*)
		these=$engines
		if [ -n "${ENGINE_SPREAD:-}" ] && [[ " ${ALL_ENGINES:-} " != *" $name "* ]]; then
			these=${engine_list[spread_i % ${#engine_list[@]}]}
			spread_i=$((spread_i + 1))
		fi
		for e in $these; do
			case $e in
			# the in-thread engine with one write-protect fault per first
			# write instead of asynchronous write tracking
			*-wpsync) launch "$name[$e]" USERFAULT_ENGINE="${e%-wpsync}" USERFAULT_WP_ASYNC=0 ;;
			*) launch "$name[$e]" USERFAULT_ENGINE="$e" ;;
			esac
		done ;;
	*) launch "$name" ;;
	esac
done
wait

pass=0 fail=0 skip=0
failed=()
for f in "$RES"/*; do
	[ -e "$f" ] || continue
	read -r v name <"$f"
	case $v in
	pass) pass=$((pass + 1)) ;;
	skip) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)); failed+=("$name") ;;
	esac
done
if [ ${#pats[@]} -gt 0 ] && [ $((pass + fail + skip)) -eq 0 ]; then
	echo "run.sh: no test matches: ${pats[*]}"
	fail=1
fi
echo
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# tests/run.sh - runs every test program under a timeout and prints one
# summary line "N passed, N failed, N skipped".
#
# Tests named test_engine_* are behavioural tests of regions: they run once
# per engine this kernel offers (tests/prog_engines lists them; uffd-wpsync
# is the in-thread engine with asynchronous write tracking turned off).
# Others run once. A skip (exit 77) is reported and never counted as a pass.
#
# ENGINE_SPREAD=1 (the sanitizer runs, to fit CI's time): each test_engine_*
# runs on one engine, taking the engines in turn, so every test and every
# engine run at least once; those named in ALL_ENGINES still run on all.
set -u
BUILD=${BUILD:-build}
RUNNER=${RUNNER:-}
TIMEOUT=${TEST_TIMEOUT_SECS:-180}
pass=0 fail=0 skip=0
failed=()

if [ -n "${ENGINES:-}" ]; then
	engines=$ENGINES
else
	engines=$($RUNNER "$BUILD/tests/prog_engines" 2>/dev/null) || engines=""
fi
[ -n "$engines" ] || { echo "run.sh: no engine available?"; engines="auto"; }
echo "engines under test: $engines"
case $RUNNER in *qemu*) export UF_TEST_QEMU=1 ;; esac

run_one() { # name, env...
	local name=$1; shift
	local bin="$BUILD/tests/${name%%[*}"
	local out rc start end
	start=$EPOCHREALTIME
	out=$(env "$@" timeout -k 5 "$TIMEOUT" $RUNNER "$bin" 2>&1)
	rc=$?
	end=$EPOCHREALTIME
	local t
	t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS %-40s %6ss\n' "$name" "$t" ;;
	77) skip=$((skip + 1)); printf 'SKIP %-40s %s\n' "$name" "$(echo "$out" | grep -m1 SKIP)" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   printf 'FAIL %-40s rc=%d\n' "$name" "$rc"; echo "$out" | tail -n 30 | sed 's/^/    /' ;;
	esac
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
			*-wpsync) run_one "$name[$e]" USERFAULT_ENGINE="${e%-wpsync}" USERFAULT_WP_ASYNC=0 ;;
			*) run_one "$name[$e]" USERFAULT_ENGINE="$e" ;;
			esac
		done ;;
	*) run_one "$name" ;;
	esac
done

echo
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/umap_ab.sh - LLNL UMap against userfault side by side on a noisy
# machine: ROUNDS rounds, each running one rep of every system (the order
# reversed every other round), then the median ns per 4 KiB page of each,
# wall and CPU time, and the ratios to UMap.
#   bench/umap_ab.sh ROUNDS umap_bench-args... [-- ufbench-args...]
# Systems per round: umap_bench --system umap, userfault, userfault-file with
# the given arguments, and (after --) ufbench itself with its arguments, as
# a check that umap_bench's userfault loop measures what ufbench does.
# e.g.
#   bench/umap_ab.sh 7 --page-size 64K -- --scenario rand-read --system userfault \
#       --engine uffd --block-size 64K --ops 65536
# UMAP_BENCH and UFBENCH name the binaries (default build/bench/...).
set -eu
UB=${UMAP_BENCH:-build/bench/umap_bench}
UF=${UFBENCH:-build/bench/ufbench}
N=$1
shift
UARGS=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do UARGS="$UARGS $1"; shift; done
[ $# -gt 0 ] && shift
FARGS="$*"
SYSTEMS="umap userfault userfault-file"
[ -n "$FARGS" ] && SYSTEMS="$SYSTEMS ufbench"
REV=$(printf '%s\n' $SYSTEMS | tac | tr '\n' ' ')
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# one SYSTEM: appends "wall cpu" to $TMP/SYSTEM
one() {
	if [ "$1" = ufbench ]; then
		# shellcheck disable=SC2086
		"$UF" $FARGS --reps 1 2>/dev/null |
			awk '$2 ~ /^userfault/ && $4 ~ /^[0-9.]+$/ { print $4, "-"; exit }' >>"$TMP/$1"
	else
		# shellcheck disable=SC2086
		"$UB" --system "$1" $UARGS --reps 1 |
			awk '$1 == "result:" { print $9, $11 }' >>"$TMP/$1"
	fi
}
i=0
while [ "$i" -lt "$N" ]; do
	if [ $((i % 2)) -eq 0 ]; then order=$SYSTEMS; else order=$REV; fi
	for s in $order; do one "$s"; done
	i=$((i + 1))
done
med() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mw_umap=$(cut -d' ' -f1 "$TMP/umap" | med)
mc_umap=$(cut -d' ' -f2 "$TMP/umap" | med)
# ratio of medians, and the median of the per-round ratios (each system's
# rep divided by UMap's rep of the same round: drift between rounds cancels)
printf '%-15s %9s %9s %9s %9s %9s %9s   %s\n' system wall/page cpu/page wall/UMap cpu/UMap "rnd wall" "rnd cpu" \
	"rounds (wall cpu)"
for s in $SYSTEMS; do
	mw=$(cut -d' ' -f1 "$TMP/$s" | med)
	mc=$(cut -d' ' -f2 "$TMP/$s" | grep -v '^-$' | med)
	rw=$(paste -d' ' "$TMP/$s" "$TMP/umap" | awk '{ print $1 / $3 }' | med)
	rc=$(paste -d' ' "$TMP/$s" "$TMP/umap" | awk '$2 != "-" { print $2 / $4 }' | med)
	awk -v s="$s" -v w="$mw" -v c="$mc" -v uw="$mw_umap" -v uc="$mc_umap" -v rw="$rw" -v rc="$rc" \
		-v r="$(tr '\n' ',' <"$TMP/$s")" \
		'BEGIN { printf "%-15s %9s %9s %9.3f %9s %9.3f %9s   %s\n", s, w, c, w / uw,
			(c == "-") ? "-" : sprintf("%.3f", c / uc), rw, (rc == "-") ? "-" : sprintf("%.3f", rc), r }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

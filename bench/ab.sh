#!/bin/sh
# bench/ab.sh - compare two builds of ufbench side by side on a noisy machine:
# runs A and B alternately ROUNDS times (one rep each, after ufbench's own
# warm-up) and prints the median ns/page of each and the ratio B/A.
#   bench/ab.sh OLD/bench/ufbench NEW/bench/ufbench ROUNDS ufbench-args...
# e.g. (a build of the base commit in /tmp/base):
#   git archive main | tar -x -C /tmp/base && make -C /tmp/base -j2
#   bench/ab.sh /tmp/base/build/bench/ufbench build/bench/ufbench 7 \
#       --scenario rand-read --system userfault --engine uffd --block-size 64K
# The figure is the first "read"/first metric row of each run.
set -eu
A=$1 B=$2 N=$3
shift 3
one() { b=$1; shift; "$b" "$@" --reps 1 2>/dev/null | awk '$2 ~ /^(userfault|kernel|libsigsegv|copy)/ && $4 ~ /^[0-9.]+$/ { print $4; exit }'; }
ra= rb=
i=0
while [ $i -lt "$N" ]; do
	if [ $((i % 2)) -eq 0 ]; then
		ra="$ra $(one "$A" "$@")"; rb="$rb $(one "$B" "$@")"
	else
		rb="$rb $(one "$B" "$@")"; ra="$ra $(one "$A" "$@")"
	fi
	i=$((i + 1))
done
med() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ma=$(med "$ra") mb=$(med "$rb")
echo "A:$ra"
echo "B:$rb"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "median A %s  B %s  B/A %.3f\n", a, b, b / a }'

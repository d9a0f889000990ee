#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/sigsegv.sh BUILD - GNU libsigsegv against userfault's drop-in, same
# program (bench/sigsegv_bench.c), alternating runs; prints ns per event and
# the ratio real/drop-in (above 1: the drop-in is faster). `make bench-sigsegv`.
set -eu
b=${1:-build}/bench
real=$b/sigsegv_bench_real uf=$b/sigsegv_bench_uf
[ -x "$uf" ] || { echo "build first: make bench-sigsegv"; exit 1; }
[ -x "$real" ] || { echo "libsigsegv (libsigsegv-dev) not installed: no baseline"; exit 0; }
runs=${RUNS:-5}
for i in $(seq "$runs"); do "$real" | sed 's/^/real /'; "$uf" | sed 's/^/uf /'; done |
awk -v runs="$runs" '
	{ v[$1, $2, ++n[$1, $2]] = $3; keys[$2] = 1 }
	function med(sys, k,   a, i, j, t, m) {
		m = n[sys, k]; for (i = 1; i <= m; i++) a[i] = v[sys, k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((m + 1) / 2)]
	}
	END {
		printf "%-9s %14s %14s %8s   (median of %d runs, each a median of 9 rounds)\n", "event", "libsigsegv ns", "drop-in ns", "ratio", runs
		split("fault dispatch overflow", order, " ")
		for (i = 1; i <= 3; i++) { k = order[i]; r = med("real", k); u = med("uf", k)
			printf "%-9s %14.0f %14.0f %8.2f\n", k, r, u, r / u }
	}'

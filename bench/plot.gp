# SPDX-License-Identifier: MIT
# bench/plot.gp - ufbench medians, one cluster per figure, one bar per system.
#   gnuplot -e "datafile='build/bench/results.dat'; outfile='build/bench/ufbench.png'" bench/plot.gp
# `make bench` runs exactly that; bench/results.dat is the committed data of
# the run quoted in docs/PERFORMANCE.md.
if (!exists("datafile")) datafile = 'bench/results.dat'
if (!exists("outfile")) outfile = 'ufbench.png'
set terminal pngcairo size 1500,650 noenhanced font ",10"
set output outfile
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.0001:*]
set format y '%g'
set ylabel 'microseconds per page (median; log scale; lower is better)'
set xtics nomirror rotate by -20
set grid ytics
set key outside right top
set title 'ufbench: cost per page, userfault engines against the kernel and the classic libsigsegv pager'
# ufbench writes only the systems that produced figures: count the columns.
ncols = int(system("awk '!/^#/ { print NF; exit }' '" . datafile . "'"))
plot for [i=2:ncols] datafile using i:xtic(1) title columnheader(i)

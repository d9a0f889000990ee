#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_sigctx.sh - what the functions marked UF_SIGCTX call (make check-sigctx).
#
#   tests/check_sigctx.sh CI_DIR SRC_DIR...
#
# CI_DIR holds one GCC call graph (-fcallgraph-info, computed after
# inlining, so it is what the compiled code calls) per library object.
# Starting from every function marked UF_SIGCTX in the sources, it follows
# the calls inside the library (a function reached this way runs in signal
# context too, marked or not) and lists every call that leaves the library.
# It fails on any callee outside ALLOWED (async-signal-safe: POSIX's list
# as in signal-safety(7), and Linux system-call wrappers that keep no
# user-space state: mprotect, mmap, madvise, ioctl, fallocate, nanosleep...,
# and glibc's sigset_t arithmetic: sigorset, sigandset, sigisemptyset) unless ACCEPTED
# names it with the reason it is safe here. Indirect calls (store and
# engine callbacks, function pointers) cannot be followed: they are counted.
set -u
ci=$1; shift
ALLOWED="write read pread pread64 pwrite pwrite64 open open64 openat close fstat fstat64 stat stat64 lstat
 syscall __errno_location strlen memcpy memset memcmp memmove memchr strchr strrchr strcmp strncmp strcspn strspn
 sigprocmask pthread_sigmask sigaction sigemptyset sigfillset sigaddset sigdelset sigismember raise kill
 sigorset sigandset sigisemptyset
 getpid getppid gettid sched_yield clock_gettime _exit abort __stack_chk_fail sigaltstack
 fcntl fcntl64 lseek lseek64 dup dup2 pipe signal
 mprotect mmap mmap64 munmap madvise mincore ioctl fallocate fallocate64 nanosleep clock_nanosleep
 __sigsetjmp _setjmp siglongjmp longjmp _longjmp __longjmp_chk sigsetjmp getrlimit prlimit prlimit64 getuid geteuid
 __builtin_unreachable"
# Not on POSIX's list, and why calling them here is safe.
ACCEPTED="backtrace:catch.c calls it once at load time (libgcc_s is loaded then), so in a crash it only walks the stack
 _Unwind_Backtrace:the unwinder, loaded at start by catch.c; reads the stack and unwind tables, no lock on this path
 __tls_get_addr:TLS of the library in a thread that already touched it (the handler's own thread)
 __memcpy_chk:memcpy with a bounds check (FORTIFY_SOURCE)
 __memset_chk:memset with a bounds check (FORTIFY_SOURCE)
 __read_chk:read with a bounds check (FORTIFY_SOURCE)
 sysconf:only sysconf(_SC_PAGESIZE), in uf__page_size (cached after the first call): glibc returns what the loader stored, no lock
 pthread_setspecific:uf__inflight_push, once per thread, only for a key below 32 (made at load time; checked): glibc stores the value in the thread's descriptor (specific_1stblock), no allocation, no lock; musl stores into the thread's tsd array
 pthread_setcancelstate:uf__cancel_hold/release around a fault's service: glibc and musl update the calling thread's own cancel word with atomics, no lock, no allocation (an enabled, pending asynchronous cancel acts at the release, when the library holds nothing)
 pthread_once:uf__fault_init (handler installation) reached from uf_probe; after the first call one load of the done flag; a first call from a handler that interrupted the same thread inside its first call would wait (reported to the lead)"

# The library's assembly routines (copy.S, objects in ASM_OBJS): they
# call nothing.
asm=""
for o in ${ASM_OBJS:-}; do asm="$asm $(${NM:-nm} --defined-only "$o" | awk '$2 ~ /[Tt]/ {print $3}')"; done
ALLOWED="$ALLOWED $asm"
marked=$(grep -rhoE 'UF_SIGCTX[^(;]*\(' "$@" | sed -E 's/\($//; s/.*[ *]//' | grep -v '^$' | sort -u)
[ -n "$marked" ] || { echo "check-sigctx: no UF_SIGCTX function found in $*"; exit 1; }
mapfile -t graphs < <(find "$ci" -name '*.ci' | sort)
[ ${#graphs[@]} -gt 0 ] || { echo "check-sigctx: no call graph in $ci"; exit 1; }

awk -v marked="$marked" -v allowed="$ALLOWED" -v accepted="$ACCEPTED" '
function q(s) { gsub(/^"|"$/, "", s); return s }
# GCC names some static functions "file:name" in the graph, and clones
# "name.isra.0", "name.constprop.0", "name.part.0", "name.cold".
function fname(s) { s = q(s); sub(/^.*:/, "", s); sub(/\.(isra|constprop|part|cold|lto_priv)(\.[0-9]+)*$/, "", s); return s }
BEGIN {
	n = split(marked, m, "\n"); for (i = 1; i <= n; i++) if (m[i] != "") MARK[m[i]] = 1
	n = split(allowed, a, /[ \n]+/); for (i = 1; i <= n; i++) if (a[i] != "") OK[a[i]] = 1
	n = split(accepted, a, "\n")
	for (i = 1; i <= n; i++) { sub(/^ +/, "", a[i]); k = index(a[i], ":"); if (k) WHY[substr(a[i], 1, k - 1)] = substr(a[i], k + 1) }
}
FNR == 1 { f = FILENAME; sub(/\.ci$/, "", f) }
/^node:/ {
	match($0, /title: "[^"]*"/); name = fname(substr($0, RSTART + 7, RLENGTH - 7))
	if ($0 !~ /shape : ellipse/) { DEF[f SUBSEP name] = 1; WHERE[name] = WHERE[name] " " f }
}
/^edge:/ {
	match($0, /sourcename: "[^"]*"/); s = fname(substr($0, RSTART + 12, RLENGTH - 12))
	match($0, /targetname: "[^"]*"/); t = fname(substr($0, RSTART + 12, RLENGTH - 12))
	match($0, /label: "[^"]*"/); at = q(substr($0, RSTART + 7, RLENGTH - 7))
	E[f SUBSEP s] = E[f SUBSEP s] SUBSEP t "@" at
}
END {
	# roots: every definition of a marked name
	for (k in DEF) { split(k, p, SUBSEP); if (p[2] in MARK) { Q[++qn] = k; SEEN[k] = 1; FROM[k] = p[2] } }
	for (qi = 1; qi <= qn; qi++) {
		k = Q[qi]; split(k, p, SUBSEP); f = p[1]; fn = p[2]
		ne = split(E[k], es, SUBSEP)
		for (j = 2; j <= ne; j++) {
			t = es[j]; at = t; sub(/@.*/, "", t); sub(/^[^@]*@/, "", at)
			if (t == "__indirect_call") { indirect++; continue }
			if ((f SUBSEP t) in DEF) tgt[1] = f SUBSEP t
			else if (t in WHERE) { split(WHERE[t], w, " "); tgt[1] = w[1] SUBSEP t }
			else {
				if (t in OK) { ext_ok[t]++; continue }
				chain = FROM[k] (FROM[k] == fn ? "" : " -> ... -> " fn)
				if (t in WHY) { acc[t] = WHY[t]; accat[t] = accat[t] "\n      " chain " (" at ")"; continue }
				bad[t] = bad[t] "\n      " chain " (" at ")"; nbad++
				continue
			}
			if (!(tgt[1] in SEEN)) {
				SEEN[tgt[1]] = 1; Q[++qn] = tgt[1]; FROM[tgt[1]] = FROM[k]
				if (!(t in MARK)) unmarked[t] = unmarked[t] " " fn
			}
		}
	}
	nroot = 0; for (k in DEF) { split(k, p, SUBSEP); if (p[2] in MARK) nroot++ }
	printf "check-sigctx: %d UF_SIGCTX definitions, %d functions reached, %d indirect calls not followed\n", nroot, qn, indirect
	s = ""; for (t in ext_ok) s = s " " t; print "  async-signal-safe calls:" s
	for (t in acc) printf "  accepted: %s (%s), from:%s\n", t, acc[t], accat[t]
	nu = 0; for (t in unmarked) nu++
	if (nu) { s = ""; for (t in unmarked) s = s " " t; print "  reached from signal context but not marked UF_SIGCTX (mark them):" s }
	for (t in bad) printf "  NOT async-signal-safe: %s, called from:%s\n", t, bad[t]
	if (nbad) { print "check-sigctx: FAILED: make these calls safe, or (if they are) add them to tests/check_sigctx.sh with the reason"; exit 1 }
	print "check-sigctx: ok"
}' "${graphs[@]}"

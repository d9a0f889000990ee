#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_sigsegv_programs - real programs that link GNU libsigsegv, run on the
# drop-in (LD_LIBRARY_PATH=$BUILD/compat), checked against the system's
# libsigsegv in the same run:
#   clisp: the drop-in is the library mapped (/proc/PID/maps); recovery from
#     C-stack overflow (EQUAL on two distinct lists nested 3 million deep:
#     "Program stack overflow. RESET"), twice in one process, which keeps
#     working; an allocation-heavy workload prints the same as on the real
#     libsigsegv.
#   gawk: what it uses libsigsegv for is turning a crash (any SIGSEGV, a
#     C-stack overflow included: its SIGSEGV handler aborts at once, before
#     any overflow check) into "fatal error: internal error: segfault" and
#     abort(): a regular expression nested 300,000 deep overflows regcomp's
#     recursion; message and exit status must match the real library's.
# Skips (77) name what is missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$here/.." && pwd)
compat=$build/compat
skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$compat/libsigsegv.so.2" ] || fail "drop-in not built in $compat"
# A sanitizer build's drop-in needs its runtime loaded first, which the
# uninstrumented programs here do not do.
if ldd "$compat/libsigsegv.so.2" | grep -Eq 'lib(a|t|ub)san'; then
	skip "sanitizer build: uninstrumented programs cannot load the instrumented drop-in (run without SAN=)"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/uf-sigsegv.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ran=0

links_sigsegv() { ldd "$1" 2>/dev/null | grep -q 'libsigsegv\.so\.2'; }

# ---- clisp ----
clisp_overflow() { # the drop-in, interactively through a coprocess
	coproc CL { exec env LD_LIBRARY_PATH="$compat" clisp -q -norc 2>&1; }
	local pid=$CL_PID line
	send() { printf '%s\n' "$1" >&"${CL[1]}"; }
	expect() {
		while IFS= read -r -t 120 line <&"${CL[0]}"; do
			echo "  clisp: $line"
			[[ $line == *"$1"* ]] && return 0
		done
		return 1
	}
	send '(progn (defvar *a* nil) (defvar *b* nil) (dotimes (i 3000000) (setq *a* (list *a*) *b* (list *b*))) (print :built))'
	expect ":BUILT" || { kill $pid; fail "clisp did not build the lists"; }
	grep -q "$compat/libsigsegv.so.2" /proc/$pid/maps || { kill $pid; fail "clisp (pid $pid) has not mapped $compat/libsigsegv.so.2"; }
	grep -q "libuserfault.so" /proc/$pid/maps || { kill $pid; fail "clisp has not mapped libuserfault"; }
	if grep libsigsegv /proc/$pid/maps | grep -vq "$compat/"; then
		kill $pid; fail "clisp also mapped another libsigsegv"
	fi
	echo "clisp pid $pid maps the drop-in and libuserfault"
	for i in 1 2; do
		send '(equal *a* *b*)'
		expect "Program stack overflow. RESET" || { kill $pid; fail "clisp: overflow $i not recovered"; }
		send "(print (list :alive $i (length (make-list 100000))))"
		expect "(:ALIVE $i 100000)" || { kill $pid; fail "clisp not working after overflow $i"; }
	done
	send '(ext:quit 0)'
	wait $pid || fail "clisp exit status $?"
}

clisp_workload() {
	cat > "$tmp/work.lisp" <<'LISP'
(defun churn (n)
  (let ((h (make-hash-table :test 'equal)) (acc 0))
    (dotimes (i n)
      (setf (gethash (format nil "k~d" (mod i 5000)) h) (make-list (mod i 17) :initial-element i))
      (incf acc (length (gethash (format nil "k~d" (mod (* i 7) 5000)) h))))
    (list acc (hash-table-count h))))
(print (churn 100000))
(defvar *keep* (make-array 1000))
(dotimes (r 20) (dotimes (i 1000) (setf (aref *keep* i) (make-list (+ r (mod i 50)) :initial-element r))) (ext:gc))
(print (reduce #'+ (map 'list #'length *keep*)))
(print (length (sort (loop for i below 200000 collect (mod (* i 7919) 100003)) #'<)))
(print :done)
LISP
	timeout 300 clisp -q -norc "$tmp/work.lisp" > "$tmp/real.out" 2>&1 || fail "clisp workload failed on the real libsigsegv"
	LD_LIBRARY_PATH="$compat" timeout 300 clisp -q -norc "$tmp/work.lisp" > "$tmp/ours.out" 2>&1 ||
		fail "clisp workload failed on the drop-in: $(tail -n3 "$tmp/ours.out")"
	cmp -s "$tmp/real.out" "$tmp/ours.out" || fail "clisp workload output differs: $(diff "$tmp/real.out" "$tmp/ours.out" | head)"
	grep -q ":DONE" "$tmp/ours.out" || fail "clisp workload did not finish"
	echo "clisp workload: same output on both ($(tr -s '\n ' ' ' < "$tmp/ours.out"))"
}

if ! command -v clisp >/dev/null; then
	echo "clisp not installed: clisp checks not run"
elif ! links_sigsegv "$(ls /usr/lib/clisp*/base/lisp.run 2>/dev/null | head -n1)"; then
	echo "this clisp does not link libsigsegv.so.2: clisp checks not run"
else
	clisp_overflow
	clisp_workload
	ran=$((ran + 1))
fi

# ---- gawk ----
gawk_crash() { # prints "<exit status> <stderr>"
	LD_LIBRARY_PATH=$1 timeout 60 gawk 'BEGIN { getline re < ARGV[1]; if ("a" ~ re) print "match" }' "$tmp/re" 2>&1
	echo "exit $?"
}
if ! command -v gawk >/dev/null; then
	echo "gawk not installed: gawk checks not run"
elif ! links_sigsegv "$(command -v gawk)"; then
	echo "this gawk does not link libsigsegv.so.2: gawk checks not run"
else
	maps=$(LD_LIBRARY_PATH="$compat" gawk '{ print }' /proc/self/maps)
	echo "$maps" | grep -q "$compat/libsigsegv.so.2" || fail "gawk has not mapped the drop-in"
	n=300000
	{ head -c $n /dev/zero | tr '\0' '('; printf a; head -c $n /dev/zero | tr '\0' ')'; echo; } > "$tmp/re"
	real=$(gawk_crash "")
	ours=$(gawk_crash "$compat")
	echo "gawk, regex nested $n deep: real libsigsegv: $(echo $real); drop-in: $(echo $ours)"
	[ "$real" = "$ours" ] || fail "gawk behaves differently on the drop-in"
	[[ $ours == *"fatal error: internal error: segfault"* ]] || fail "gawk's SIGSEGV handler did not run on the drop-in"
	# And an ordinary run is unchanged.
	a=$(seq 1 200000 | gawk '{ s += $1 * $1; w[$1 % 97]++ } END { print s, length(w) }')
	b=$(seq 1 200000 | LD_LIBRARY_PATH="$compat" gawk '{ s += $1 * $1; w[$1 % 97]++ } END { print s, length(w) }')
	[ "$a" = "$b" ] || fail "gawk output differs: $a vs $b"
	ran=$((ran + 1))
fi
[ $ran -gt 0 ] || skip "neither clisp nor gawk (linking libsigsegv.so.2) is installed (.ci/packages lists them)"
echo ok

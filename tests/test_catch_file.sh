#!/usr/bin/env bash
# test_catch_file - where the crash reporter writes: ufcatch -o FILE and
# USERFAULT_CATCH_FILE create the report with mode 0600, never through a
# symlink, and a FIFO under that name neither blocks ufcatch nor the dying
# program (the report goes to stderr instead).
set -u
B='@BUILD@'
[ -x "$B/tools/ufcatch" ] && [ -x "$B/tests/prog_crash" ] || { echo "SKIP: ufcatch or prog_crash not built" >&2; exit 77; }
[ -z "${RUNNER:-}" ] || { echo "SKIP: ufcatch execs target binaries: not under $RUNNER" >&2; exit 77; }
T=$(mktemp -d /tmp/uf-catchfile.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
crash() { "$B/tools/ufcatch" "$@" -- "$B/tests/prog_crash" null-read; }

{ crash -o "$T/report"; } >/dev/null 2>&1
[ "$(stat -c %a "$T/report")" = 600 ] || fail "report mode $(stat -c %a "$T/report"), want 600"
grep -q SIGSEGV "$T/report" || fail "no report in $T/report"

echo secret >"$T/target"
ln -s "$T/target" "$T/link"
{ crash -o "$T/link"; } >/dev/null 2>"$T/err"
[ "$(cat "$T/target")" = secret ] || fail "ufcatch -o wrote through a symlink"
# The reporter itself (LD_PRELOAD, no ufcatch) must not follow one either.
{ USERFAULT_CATCH_FILE="$T/link" LD_PRELOAD="$B/libuserfault-catch.so" "$B/tests/prog_crash" null-read; } >/dev/null 2>"$T/err"
[ "$(cat "$T/target")" = secret ] || fail "USERFAULT_CATCH_FILE wrote through a symlink"
grep -q SIGSEGV "$T/err" || fail "report not sent to stderr when the file is a symlink: $(cat "$T/err")"

mkfifo "$T/fifo"
start=$SECONDS
{ timeout 20 "$B/tools/ufcatch" -o "$T/fifo" -- true; } >/dev/null 2>&1
[ $? -ne 124 ] || fail "ufcatch -o FIFO blocked"
{ USERFAULT_CATCH_FILE="$T/fifo" LD_PRELOAD="$B/libuserfault-catch.so" timeout 20 "$B/tests/prog_crash" null-read; } >/dev/null 2>"$T/err"
[ $? -ne 124 ] || fail "the reporter blocked on a FIFO"
grep -q SIGSEGV "$T/err" || fail "report not on stderr when USERFAULT_CATCH_FILE is a FIFO"
echo "ok: 0600, no symlink followed, no FIFO waited for ($((SECONDS - start)) s)"

#!/usr/bin/env bash
# test_header - include/userfault.h compiles warning-free (-Wall -Wextra
# -pedantic -Werror) as C99, C11 and C17 (strict ISO: siginfo_t is then not
# declared, the header must still compile; and with _POSIX_C_SOURCE, where
# the signal calls take a real siginfo_t *) and as C++98 to C++20, with gcc,
# g++, clang and clang++. A compiler that is not installed is reported; the
# test skips only if neither gcc nor clang is there.
set -u
SRC='@SRCDIR@'
T=$(mktemp -d /tmp/uf-header.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail=0 ran=0

# Uses every kind of declaration: types, enums, macros, the signal calls.
cat >"$T/use.h" <<'C'
#include <userfault.h>
static int use_all(void)
{
	struct uf_map_opts o;
	struct uf_stats st;
	uf_store *s = 0;
	uf_region *r = 0;
	uf_map_opts_init(&o);
	uf_stats_init(&st);
	o.engine = UF_ENGINE_SIGNAL;
	o.flags = UF_MAP_NO_READAHEAD | UF_MAP_WP_FAULTS;
	if (uf_store_mem(0, 0, UF_STORE_RDONLY, &s) == 0 && uf_map(s, 0, 0, 1, &o, &r) == 0)
		(void)uf_unmap(r, UF_UNMAP_DISCARD);
	return uf_version() + (int)uf_engine_features() + UF_ERR_RETRY + UF_PROBE_READ + UF_HANDLED;
}
#ifdef WITH_SIGINFO
static void handler(int sig, siginfo_t *si, void *uc)
{
	char buf[256];
	struct uf_fault f;
	f.info = si;
	if (!uf_handle_fault(sig, f.info, uc))
		(void)uf_explain(si, uc, buf, sizeof(buf));
}
#endif
int main(void)
{
#ifdef WITH_SIGINFO
	(void)handler;
#endif
	return use_all() > 0 ? 0 : 1;
}
C
try() { # compiler, language, std, extra flags...
	local cc=$1 lang=$2 std=$3; shift 3
	command -v "$cc" >/dev/null || return 0
	ran=$((ran + 1))
	# Not -Wshadow in C++: uf_stats() shares its name with struct
	# uf_stats, as stat() does with struct stat.
	local warn="-Wall -Wextra -pedantic -Werror -Wundef"
	[ "$lang" = c ] && warn="$warn -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
	# shellcheck disable=SC2086
	if ! "$cc" -x "$lang" -std="$std" $warn "$@" -I"$SRC/include" -c "$T/use.h" -o "$T/use.o" 2>"$T/err"; then
		echo "FAIL: $cc -std=$std $*:"; sed 's/^/    /' "$T/err" | head -20
		fail=1
	fi
}
for cc in gcc clang; do
	command -v $cc >/dev/null || echo "note: $cc not installed, not tried"
	for std in c99 c11 c17; do
		try $cc c $std
		try $cc c $std -D_POSIX_C_SOURCE=200809L -DWITH_SIGINFO
	done
	try $cc c gnu11 -DWITH_SIGINFO
done
for cxx in g++ clang++; do
	command -v $cxx >/dev/null || echo "note: $cxx not installed, not tried"
	for std in c++98 c++03 c++11 c++14 c++17 c++20; do
		try $cxx c++ $std -DWITH_SIGINFO
	done
done
[ $ran -gt 0 ] || { echo "SKIP: no gcc or clang" >&2; exit 77; }
[ $fail -eq 0 ] && echo "ok: $ran compilations warning-free"
exit $fail

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_spdx - every source file names its licence in its first two lines.
#
# Source files: C, headers, assembly, the linker map (*.c *.h *.S *.map),
# and shell, make, pkg-config and gnuplot files (*.sh *.mk *.in *.gp,
# Makefile, .ci/run, .ci/aarch64.sh), tracked by git or new and not ignored.
set -u
SRC='@SRCDIR@'
cd "$SRC" || exit 1
if git rev-parse --git-dir >/dev/null 2>&1; then
	list=$( { git ls-files; git ls-files --others --exclude-standard; } | sort -u)
else
	list=$(find . -path ./build\* -prune -o -type f -print | sed 's|^\./||')
fi
missing=()
n=0
while IFS= read -r f; do
	[ -f "$f" ] || continue
	case $f in
	*.c|*.h|*.S|*.map|*.sh|*.mk|*.in|*.gp|Makefile|*/Makefile|.ci/run|.ci/aarch64.sh) ;;
	*) continue ;;
	esac
	n=$((n + 1))
	head -n 2 "$f" | grep -q 'SPDX-License-Identifier: MIT' || missing+=("$f")
done <<<"$list"
if [ ${#missing[@]} -gt 0 ]; then
	echo "FAIL: ${#missing[@]} source file(s) without a licence line:"
	printf '    %s\n' "${missing[@]}"
	echo "Every source file starts with its SPDX licence line (the project is MIT, see LICENSE):"
	echo "    /* SPDX-License-Identifier: MIT */   first line of C, header, assembly and .map files"
	echo "    # SPDX-License-Identifier: MIT       first line of make/pkg-config/gnuplot files,"
	echo "                                         second line (after #!) of scripts"
	echo "New files need it too: add the line to each file listed above."
	exit 1
fi
echo "ok: $n source files carry SPDX-License-Identifier: MIT"

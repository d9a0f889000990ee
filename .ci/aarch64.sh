#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI: cross-build for aarch64 and run the whole test suite under qemu-user.
# qemu-user has no userfaultfd, so regions run on the signal engine there and
# uffd-only tests skip. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq $missing >/dev/null
fi

make check-aarch64

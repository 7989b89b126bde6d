#!/bin/sh
# Linux's x86 selftests (tools/testing/selftests/x86 of Debian's
# linux-source-6.1, the guest kernel's version): user programs that check
# what the CPU and the kernel show a process — signal frames and sigreturn
# to each kind of segment, the LDT and GDT, single-stepping over system
# calls, MOV SS with a watchpoint, SYSRET's corner cases, x87 compares, the
# vDSO — as 64- and 32-bit static binaries for the guest.
# usage: build.sh OUT_DIR
set -eu
out=$(realpath -m "$1")
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || { echo "$tarball is missing: apt-get install linux-source-6.1" >&2; exit 1; }
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
top=linux-source-6.1
tar -xJf "$tarball" -C "$src" "$top/tools/testing/selftests/x86" \
    "$top/tools/testing/selftests/kselftest.h" "$top/tools/testing/selftests/lib.mk" \
    "$top/arch/x86/include/asm/desc_defs.h"
mkdir -p "$out.tmp"
# static: the guest's initramfs has no i386 libraries; CC carries it so that
# the Makefile's own per-target flags (check_initial_reg_state's entry) stay
if ! make -s -C "$src/$top/tools/testing/selftests/x86" OUTPUT="$out.tmp" CC="gcc -static" \
    all_64 all_32 >"$src/log" 2>&1; then
    cat "$src/log" >&2
    exit 1
fi
rm -rf "$out"
mv "$out.tmp" "$out"
echo "selftests: $(ls "$out" | wc -l) programs in $out"

#!/bin/sh
# Extract the ELF vmlinux from a bzImage whose payload is LZ4-compressed
# (Debian's cloud kernels). Used to test ember's ELF/PVH loader on the same
# kernel as the bzImage path.
# Usage: guest/extract-vmlinux.sh BZIMAGE OUT
set -eu
img=${1:?usage: extract-vmlinux.sh BZIMAGE OUT}
out=${2:?usage: extract-vmlinux.sh BZIMAGE OUT}
u32() { od -An -t u4 -j "$1" -N 4 "$img" | tr -d ' '; }
setup_sects=$(od -An -t u1 -j 497 -N 1 "$img" | tr -d ' ')
[ "$setup_sects" -eq 0 ] && setup_sects=4
payload_off=$(( (setup_sects + 1) * 512 + $(u32 584) ))
payload_len=$(u32 588)
magic=$(od -An -t x1 -j "$payload_off" -N 4 "$img" | tr -d ' ')
if [ "$magic" != "02214c18" ]; then
    echo "extract-vmlinux: payload of $img is not legacy LZ4 (magic $magic)" >&2
    exit 1
fi
tail -c +"$((payload_off + 1))" "$img" | head -c "$payload_len" |
    lz4 -d -c 2>/dev/null > "$out.tmp" || true
if [ "$(od -An -c -j 1 -N 3 "$out.tmp" | tr -d ' ')" != "ELF" ]; then
    echo "extract-vmlinux: decompressed payload is not ELF" >&2
    rm -f "$out.tmp"; exit 1
fi
mv "$out.tmp" "$out"

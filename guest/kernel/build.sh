#!/bin/sh
# Build ember's minimal microVM guest kernel from Debian's linux-source-6.1
# (the same version as the cloud kernel of the default guest) with the
# configuration in guest/kernel/microvm.config, merged onto allnoconfig.
# The source is unpacked once into WORKDIR (a stamp names the tarball it
# came from); the object tree stays there too, so a rebuild after a change
# to the configuration compiles only what changed.
# Usage: guest/kernel/build.sh WORKDIR OUTDIR   (writes OUTDIR/vmlinuz,
# OUTDIR/vmlinux and OUTDIR/config)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: build.sh WORKDIR OUTDIR}
out=${2:?usage: build.sh WORKDIR OUTDIR}
tarball=/usr/src/linux-source-6.1.tar.xz
fragment=$here/microvm.config
if [ ! -f "$tarball" ]; then
    echo "guest-kernel: $tarball missing: install linux-source-6.1 (make deps)" >&2
    exit 1
fi
mkdir -p "$work" "$out"
work=$(cd "$work" && pwd)
src=$work/linux-source-6.1
obj=$work/obj
stamp=$work/.unpacked

# Unpacked once per tarball (a newer linux-source-6.1 unpacks afresh).
tar_id=$(stat -c '%s %Y' "$tarball")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$tar_id" ]; then
    echo "guest-kernel: unpacking $tarball"
    rm -rf "$src" "$obj"
    tar -xJf "$tarball" -C "$work"
    echo "$tar_id" > "$stamp"
fi

kmake() {
    make -C "$src" O="$obj" ARCH=x86_64 -s "$@"
}
# allnoconfig with the fragment as the values to force (merge_config.sh -n),
# then olddefconfig for whatever the fragment's choices newly expose.
mkdir -p "$obj"
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "$fragment") \
    > "$obj/merge.log" 2>&1 || { cat "$obj/merge.log" >&2; exit 1; }
kmake olddefconfig
# merge_config.sh only warns when a value did not stick (a dependency is
# missing, the option needs CONFIG_EXPERT, or a symbol is misspelt): here
# that is an error.
sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1=n/p; /^CONFIG_/p' "$fragment" |
while IFS= read -r line; do
    sym=${line%%=*}
    val=${line#*=}
    if [ "$val" = n ]; then
        if grep -q "^$sym=" "$obj/.config"; then
            echo "guest-kernel: $sym is set, wanted off" >&2; echo x
        fi
    elif ! grep -qx "$sym=$val" "$obj/.config"; then
        echo "guest-kernel: $line did not stick" \
             "($(grep "^$sym=\|^# $sym is not set" "$obj/.config" || echo absent))" >&2
        echo x
    fi
done > "$obj/config-check"
if [ -s "$obj/config-check" ]; then
    exit 1
fi

# Under make -jN (make guest-kernel) the kernel's make joins its jobserver;
# run by hand, it uses every CPU (or JOBS).
case " ${MAKEFLAGS:-} " in
*jobserver*) parallel= ;;
*) parallel=-j${JOBS:-$(nproc)} ;;
esac
start=$(date +%s)
kmake $parallel bzImage
echo "guest-kernel: built in $(($(date +%s) - start)) s"
cp "$obj/arch/x86/boot/bzImage" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
cp "$obj/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$obj/.config" "$out/config"
echo "guest-kernel: $out/vmlinuz $(stat -c %s "$out/vmlinuz") bytes," \
     "vmlinux $(stat -c %s "$out/vmlinux") bytes"

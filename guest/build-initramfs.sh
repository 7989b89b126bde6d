#!/bin/sh
# Build the default guest's initramfs (uncompressed newc cpio) from the files
# fetch-debs.sh unpacked: busybox-static, the kernel's virtio, pvpanic and
# virtio-pmem (nvdimm) modules in an order that satisfies their depends=,
# and guest/init, with guest/sigdfl.c built (static) for the console shell.
# Usage: guest/build-initramfs.sh DEBDIR OUT.cpio SIGDFL [--no-modules]
# --no-modules: the same guest for a kernel with its drivers built in (the
# project's minimal kernel): the cloud kernel's modules are 2.3 of the
# 5.1 MB, copied into guest memory and unpacked by the guest at every boot
# for nothing.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
debs=${1:?usage: build-initramfs.sh DEBDIR OUT}
out=${2:?usage: build-initramfs.sh DEBDIR OUT SIGDFL}
sigdfl=${3:?usage: build-initramfs.sh DEBDIR OUT SIGDFL}
with_modules=true
[ "${4:-}" = --no-modules ] && with_modules=false
kver=$(cat "$debs/kernel-version")
mods="$debs/kernel/lib/modules/$kver/kernel"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
         "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/root" \
         "$root/etc/ember/init.d" "$root/lib/modules" "$root/mnt"
cp "$debs/busybox/bin/busybox" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$app" ] || ln -s /bin/busybox "$root/$app"
done
cp "$sigdfl" "$root/bin/sigdfl"
cp "$src/init" "$root/init"
chmod 755 "$root/init"
cp "$src/udhcpc.script" "$root/etc/udhcpc.script"
chmod 755 "$root/etc/udhcpc.script"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"

# Load order satisfies each module's depends= (checked below).
order="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio
virtio_blk failover net_failover virtio_net virtio_console virtio-rng virtio_balloon
vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport
fuse virtiofs overlay pvpanic pvpanic-mmio
libnvdimm nd_btt nd_pmem nd_virtio virtio_pmem"
: > "$root/lib/modules/load-order"
echo "$kver" > "$root/lib/modules/kernel-version" # init loads them only into this kernel
$with_modules || order=
for m in $order; do
    f=$(find "$mods" -name "$m.ko" | head -1)
    if [ -z "$f" ]; then
        echo "build-initramfs: module $m.ko not found in $kver" >&2
        exit 1
    fi
    for dep in $(strings "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do
        grep -qx "$(echo "$dep" | tr _ -)\|$dep\|$(echo "$dep" | tr - _)" \
            "$root/lib/modules/load-order" || {
            echo "build-initramfs: $m needs $dep loaded first" >&2; exit 1; }
    done
    cp "$f" "$root/lib/modules/"
    echo "$m" >> "$root/lib/modules/load-order"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
mv "$out.tmp" "$out"

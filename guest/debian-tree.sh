#!/bin/sh
# A minimal Debian root file system for the `ember run --rootfs` test: the
# files of libc6, dash, bash, coreutils and the libraries they load, unpacked
# from Debian's packages (apt-get download, kept in DEBDIR/debs like the
# guest's kernel) with dpkg -x, and written as a tar. Nothing is installed
# and no maintainer script runs, so /bin/sh (dash's postinst) is made here.
# debootstrap would give a complete system, but it downloads and configures
# about a hundred packages (in a chroot, as root); this is 8 MB and enough to
# show a dynamically linked Debian userland run from a share.
# Usage: guest/debian-tree.sh DEBDIR OUT.tar
set -eu
debs=${1:?usage: debian-tree.sh DEBDIR OUT.tar}
out=${2:?usage: debian-tree.sh DEBDIR OUT.tar}
pkgs="libc6 dash bash libtinfo6 coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0"
mkdir -p "$debs/debs"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
cd "$debs/debs"
for pkg in $pkgs; do
    if ! ls "${pkg}"_*.deb >/dev/null 2>&1; then
        apt-get download "$pkg" >/dev/null 2>&1 || {
            echo "debian-tree: apt-get download $pkg failed" >&2; exit 1; }
    fi
done
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
for pkg in $pkgs; do
    dpkg -x "$(ls "${pkg}"_*.deb | head -1)" "$root"
done
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/root" "$root/etc"
ln -sf dash "$root/bin/sh"
echo "root:x:0:0:root:/root:/bin/bash" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
tar -C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "debian-tree: $(echo $pkgs | wc -w) packages, $(du -sk "$root" | cut -f1) KiB"

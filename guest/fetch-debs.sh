#!/bin/sh
# Fetch the Debian packages the default guest and the nested harness are built
# from: the cloud kernel (guest and L1 host) and busybox-static. Nothing is
# installed into the host; the packages are unpacked under $OUT.
# Usage: guest/fetch-debs.sh OUTDIR
set -eu
OUT=${1:?usage: fetch-debs.sh OUTDIR}
mkdir -p "$OUT/debs"
cd "$OUT/debs"

kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
    echo "fetch-debs: cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2
    exit 1
fi
for pkg in "$kpkg" busybox-static; do
    if ! ls "${pkg}"_*.deb >/dev/null 2>&1; then
        apt-get download "$pkg" >/dev/null 2>&1 || {
            echo "fetch-debs: apt-get download $pkg failed" >&2; exit 1; }
    fi
done
rm -rf ../kernel ../busybox
dpkg -x "$(ls "${kpkg}"_*.deb | head -1)" ../kernel
dpkg -x "$(ls busybox-static_*.deb | head -1)" ../busybox
kver=$(ls ../kernel/lib/modules | head -1)
echo "$kver" > ../kernel-version
cp "../kernel/boot/vmlinuz-$kver" ../vmlinuz
echo "fetch-debs: kernel $kver, busybox $(ls busybox-static_*.deb)"

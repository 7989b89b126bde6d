#!/bin/sh
# A full Debian 12 system on a disk image, for the test that boots an
# unmodified distribution the way its users boot it: its own kernel
# (linux-image-cloud-amd64) and initramfs-tools' initrd, which loads
# virtio_blk from the image's modules; systemd as init with udev, journald,
# logind and networkd (DHCP on the first NIC); root on /dev/vda.
#
# debootstrap fetches and configures the packages from the machine's own
# Debian mirror (the URIs apt uses), as root, in a chroot: about two
# minutes. The only thing added beyond Debian's defaults is the unit the
# test reads (ember-check.service): once systemd says the boot has finished
# it prints the system state, any failed unit, the kernel and the address
# DHCP gave, then powers the machine off.
#
# Usage: guest/debian-system.sh OUTDIR   (writes vmlinuz, initrd.img, rootfs.img)
set -eu
out=${1:?usage: debian-system.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v debootstrap >/dev/null || { echo "debian-system: debootstrap is missing (.ci/install-deps)" >&2; exit 1; }

mirror=http://deb.debian.org/debian
src=/etc/apt/sources.list.d/debian.sources
if [ -r "$src" ]; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$src")
    [ -n "$m" ] && mirror=$m
fi

tree=$(mktemp -d "$out/tree.XXXXXX")
trap 'umount "$tree/proc" 2>/dev/null || true; rm -rf "$tree"' EXIT
debootstrap --variant=minbase \
    --include=systemd-sysv,udev,kmod,iproute2,linux-image-cloud-amd64,initramfs-tools \
    bookworm "$tree" "$mirror" > "$out/debootstrap.log" 2>&1 || {
    tail -20 "$out/debootstrap.log" >&2; echo "debian-system: debootstrap failed" >&2; exit 1; }

echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$tree/etc/fstab"
echo ember-debian > "$tree/etc/hostname"
chroot "$tree" passwd -d root >/dev/null
mkdir -p "$tree/etc/systemd/network"
cat > "$tree/etc/systemd/network/80-ember.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
ln -sf /lib/systemd/system/systemd-networkd.service \
    "$tree/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# The check's lines go to the console through journald, which writes each
# with one writev to /dev/console and drops it if that fails (a CI run lost
# the 'state' line while the lines after it came; getty hanging up ttyS0 at
# that moment would do it, not confirmed). The test reads them from
# /ember-check.txt on the disk.
cat > "$tree/etc/systemd/system/ember-check.service" <<'EOF'
[Unit]
Description=ember's boot check
After=multi-user.target

[Service]
Type=simple
StandardOutput=journal+console
ExecStart=/bin/sh -c '{ echo "EMBER-CHECK state $(systemctl is-system-running --wait)"; \
  systemctl --failed --no-legend --plain | sed "s/^/EMBER-FAILED /"; \
  echo "EMBER-CHECK kernel $(uname -r)"; \
  echo "EMBER-CHECK addr $(ip -4 -o addr show scope global | awk "{print \\$4}" | head -1)"; \
  echo "EMBER-CHECK uptime $(cut -d" " -f1 /proc/uptime)"; } | tee /ember-check.txt; \
  sync; systemctl poweroff'

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ember-check.service \
    "$tree/etc/systemd/system/multi-user.target.wants/ember-check.service"

cp "$(ls "$tree"/boot/vmlinuz-* | head -1)" "$out/vmlinuz.tmp"
cp "$(ls "$tree"/boot/initrd.img-* | head -1)" "$out/initrd.img.tmp"
rm -f "$out/rootfs.img.tmp"
truncate -s 2G "$out/rootfs.img.tmp"
mkfs.ext4 -q -F -L debian-root -d "$tree" "$out/rootfs.img.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/rootfs.img.tmp" "$out/rootfs.img"
echo "debian-system: $(du -sk "$tree" | cut -f1) KiB in $(ls "$tree"/var/lib/dpkg/info/*.list | wc -l) packages"

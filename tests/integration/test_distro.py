"""A full distribution, booted as its users boot it: Debian 12 made by
debootstrap (guest/debian-system.sh, 'make guest-distro'), with its own
cloud kernel and initramfs-tools' initrd, root on a virtio-blk disk, systemd
as init with udev, journald, logind and networkd. Nothing of ember's default
guest is involved: the initrd loads virtio_blk from the image, udev loads
virtio_net, networkd asks libslirp's DHCP for an address. A unit in the
image prints what systemd says once the boot has finished, then powers off;
the disk must check clean afterwards."""
import os
import shlex

from framework import TestSkipped, expect, expect_ember_rc, expect_no_output, expect_output, \
    guest_test, job


@guest_test("a full Debian 12 system boots from its disk on 2 vCPUs (its own kernel and initrd, "
            "systemd, udev, networkd with DHCP over user-mode networking): systemd reports 'running' "
            "with no failed unit, powers off, and the disk checks clean", kernel="debian")
def debian_system(ctx):
    distro = os.path.join(ctx.build, "distro")
    image = os.path.join(distro, "rootfs.img")
    if not os.path.exists(image):
        raise TestSkipped(f"{image} is missing: 'make guest-distro' builds it "
                          "(guest/debian-system.sh, debootstrap from Debian's mirror)")
    kernel, initrd = (shlex.quote(os.path.join(distro, f)) for f in ("vmlinuz", "initrd.img"))
    script = (
        # A copy: the boot writes to its root file system.
        f"cp --sparse=always {shlex.quote(image)} root.img\n"
        f'"$EMBER" run --cpus 2 --kernel {kernel} --initrd {initrd} --disk path=root.img --net user '
        "--mem 1G --cmdline 'console=ttyS0 root=/dev/vda rw panic=1' < /dev/null > vm.txt 2>&1\n"
        'echo "ember rc=$?"\n'
        # the check's own file on the disk; its console lines only as a record
        "debugfs -R 'cat /ember-check.txt' root.img 2>/dev/null\n"
        "grep -a 'EMBER-' vm.txt | sed 's/^/console: /'\n"
        "grep -a -c 'Reached target.*Multi-User System' vm.txt | sed 's/^/multi-user /'\n"
        "grep -a -o 'Brought up 1 node, [0-9]* CPUs' vm.txt\n"
        "e2fsck -fn root.img > fsck.txt 2>&1; echo \"fsck rc=$?\"\n"
        "grep -a -i 'kernel panic\\|engine error\\|Call Trace' vm.txt | head -5 | "
        "sed 's/^/trouble /'\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^EMBER-CHECK state running$",
                      "systemd's 'running' (every unit started; 'degraded' means one failed)")
        expect_no_output(j, r"^EMBER-FAILED .*", "a failed unit")
        expect_output(j, r"^EMBER-CHECK kernel 6\.1\.\d+-\d+-cloud-amd64$",
                      "Debian's own cloud kernel")
        expect_output(j, r"^EMBER-CHECK addr 10\.0\.2\.15/24$", "networkd's DHCP address")
        expect_output(j, r"^multi-user [1-9]", "systemd's multi-user target on the console")
        expect_output(j, r"^fsck rc=0$", "the disk clean after the power-off")
        expect_no_output(j, r"^trouble .*", "a panic, an engine error or a kernel trace")
        expect("EMBER-CHECK uptime" in j.output, "the check unit did not finish")
        expect_output(j, r"^Brought up 1 node, 2 CPUs$", "both vCPUs brought up")
    return job("debian-system", script, timeout=300), check

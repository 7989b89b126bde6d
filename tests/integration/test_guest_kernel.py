"""The project's minimal guest kernel (make guest-kernel, guest/kernel): the
default initramfs boots on it with every driver built in (no module loaded),
and virtio-blk, virtio-net (user mode: DHCP and a page from the host),
virtio-console, virtio-vsock and virtio-fs work; its vmlinux boots as an ELF
(the PVH entry under KVM). The rest of the suite boots it in place of
Debian's kernel with tests/run.py --guest-kernel min."""
import os
import re

from framework import (TestSkipped, ember_run, expect, expect_ember_rc, expect_output,
                       default_cmdline, guest_test, job, on_engine)
from test_api import b64
from test_net import free_port
from test_vsock import initrd_with_vsockperf, sums

# The drivers the guest must have bound without loading a module.
DRIVERS = ("virtio_blk", "virtio_net", "virtio_console", "vmw_vsock_virtio_transport",
           "virtiofs", "virtio_rng", "virtio_balloon", "virtio_pmem")

GUEST = r'''
echo "kernel $(uname -r) modules=$([ -e /proc/modules ] && echo yes || echo no)"
echo "drivers $(ls /sys/bus/virtio/drivers | tr '\n' ' ')"
echo "bound $(ls /sys/bus/virtio/devices/*/driver 2>/dev/null | wc -l)"
echo "disk $(cat /sys/block/vda/size) $(head -c 9 /dev/vda)"
echo written-by-guest | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null
mkdir -p /mnt/s && mount -t virtiofs work /mnt/s && echo "fs $(cat /mnt/s/host.txt)" &&
  echo guest-fs > /mnt/s/guest.txt && umount /mnt/s
echo "net $(wget -q -O - http://10.0.2.2:%d/page.txt)"
vsockperf send vsock:2:5001 1 --seed 3
for i in $(seq 50); do [ -e /dev/hvc0 ] && break; usleep 100000; done
echo "hvc-$((6*7)) on hvc0" > /dev/hvc0
'''


def minimal_kernel(ctx):
    """build/guest-min's vmlinuz and vmlinux, or a loud skip."""
    d = os.path.join(ctx.build, "guest-min")
    files = {f: os.path.join(d, f) for f in ("vmlinuz", "vmlinux")}
    missing = [p for p in files.values() if not os.path.exists(p)]
    if missing:
        raise TestSkipped(f"the minimal guest kernel is not built ({missing[0]} missing): "
                          "run 'make guest-kernel'")
    return files


@guest_test("minimal guest kernel: the default initramfs boots with every driver built in; "
            "virtio-blk, -net (DHCP, a page), -console (hvc0), -vsock and -fs work",
            batch="kernel-min", mmio=True)
def minimal_kernel_devices(ctx):
    kernel = minimal_kernel(ctx)
    port = free_port()
    cmdline = f"{default_cmdline()} ember_cmd={b64(GUEST % port)}"
    script = (
        "BB=busybox\n"
        "mkdir share && printf from-host > share/host.txt && printf page-from-host > page.txt\n"
        "printf DISK-HOST > d.img && truncate -s 16M d.img\n"
        f'$BB httpd -f -p 127.0.0.1:{port} -h "$DATA" & httpd=$!\n'
        'vsockperf recv unix:$DATA/v.sock_5001 > host-recv.txt 2>&1 &\n'
        '"$EMBER" run --kernel "$DATA/vmlinuz" --initrd "$DATA/initrd.cpio" --disk path=d.img '
        "--net user --share share,tag=work --vsock cid=3,uds=$DATA/v.sock --console virtio "
        f"--cmdline '{cmdline}' < /dev/null; echo \"ember rc=$?\"\n"
        "kill $httpd; wait\n"
        'echo "host-disk $(dd if=d.img bs=512 skip=1 count=1 2>/dev/null | head -1)"\n'
        'echo "host-fs $(cat share/guest.txt)"\n'
        "cat host-recv.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        m = re.search(r"^kernel (\S+) modules=(\w+)$", j.output, re.M)
        expect(m, "no 'kernel' line from the guest")
        expect(m.group(1).endswith("-ember-min") and m.group(2) == "no",
               f"expected the minimal kernel without module support, got {m.group(0)}")
        drivers = re.search(r"^drivers (.*)$", j.output, re.M)
        absent = [d for d in DRIVERS if not drivers or d not in drivers.group(1).split()]
        expect(not absent, f"virtio drivers not built in: {absent}")
        expect_output(j, r"^ember-guest: eth0 10\.0\.2\.15/24$", "a DHCP lease")
        expect_output(j, r"^disk 32768 DISK-HOST$", "virtio-blk: the host's bytes on vda")
        expect_output(j, r"^host-disk written-by-guest$", "virtio-blk: the guest's write")
        expect_output(j, r"^fs from-host$", "virtio-fs: the host's file in the guest")
        expect_output(j, r"^host-fs guest-fs$", "virtio-fs: the guest's file on the host")
        expect_output(j, r"^net page-from-host$", "virtio-net: the page from the host")
        expect_output(j, r"hvc-42 on hvc0", "virtio-console: the line written to hvc0")
        got, sent = sums(j.output, "received"), sums(j.output, "sent")
        expect(got and sent and got[0][0] == "1048576" and got[0][2] == sent[0][2],
               f"virtio-vsock guest -> host: host {got}, guest {sent}")
    return job("kernel-min-devices", script, timeout=150,
               files={"vmlinuz": kernel["vmlinuz"],
                      "initrd.cpio": initrd_with_vsockperf(ctx)}), check


@guest_test("minimal guest kernel: its vmlinux boots as an ELF (the PVH entry with KVM)",
            batch="kernel-min")
def minimal_kernel_pvh(ctx):
    kernel = minimal_kernel(ctx)
    j = job("kernel-min-pvh", ember_run('-v --kernel "$DATA/vmlinux" --initrd '
                                        '"$GUEST/initramfs.cpio"',
                                        guest_cmd='echo "pvh-ok $(uname -r)"'),
            files={"vmlinux": kernel["vmlinux"]}, timeout=120)

    def check(j):
        expect_ember_rc(j, 0)
        if on_engine():  # the engine starts in long mode: the 64-bit entry, note or not
            expect_output(j, r"kernel: ELF, 64-bit entry at 0x1000000")
        else:
            expect_output(j, r"kernel: ELF, PVH entry at 0x[0-9a-f]+")
        expect_output(j, r"^pvh-ok \S+-ember-min$", "the minimal kernel's init")
    return j, check

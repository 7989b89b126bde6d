"""virtio devices in a real guest: disks (sizes, ids, a file system written in
the guest and read on the host, read-only images, three disks, data surviving
SIGKILL after a flush, O_DIRECT), entropy, the virtio console, INTx without
MSI, and a BAR the guest moves."""
import hashlib
import os
import re
import subprocess
import sys

from framework import (ember_run, expect, expect_ember_rc, expect_no_output, expect_output,
                       guest_cmdline, guest_test, host_test, job, mmio_words, run_host)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "harness"))
from overlay import build_initrd_with  # noqa: E402


def initrd_with_e2fsprogs(ctx):
    """The default initramfs plus mke2fs (as mkfs.ext4) for the guest."""
    out = os.path.join(ctx.prep_dir, "initrd-e2fs.cpio")
    if not os.path.exists(out):
        build_initrd_with({"/usr/local/sbin/mke2fs": "/sbin/mke2fs",
                           "/etc/mke2fs.conf": "/etc/mke2fs.conf"},
                          os.path.join(ctx.guest_dir, "initramfs.cpio"), out,
                          links={"/usr/local/sbin/mkfs.ext4": "mke2fs"})
    return out


@guest_test("virtio-blk: three disks with their sizes, ids and separate contents",
            batch="virtio", mmio=True)
def three_disks():
    script = (
        "truncate -s 64M a.img; truncate -s 32M b.img; truncate -s 16M c.img\n" +
        ember_run('--disk path=a.img,id=first --disk path=b.img,id=second '
                  '--disk path="$DATA/c.img"', guest_cmd=(
                      "for d in vda vdb vdc; do echo \"$d $(cat /sys/block/$d/size) "
                      "$(cat /sys/block/$d/serial) $(blockdev --getsize64 /dev/$d)\"; done\n"
                      "for d in vda vdb vdc; do echo \"data-of-$d\" | dd of=/dev/$d conv=fsync "
                      "2>/dev/null; done")) +
        "\nfor f in a b c; do echo \"$f.img: $(head -c 11 $f.img)\"; done")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^vda 131072 first 67108864$", "vda: 64 MiB, id 'first'")
        expect_output(j, r"^vdb 65536 second 33554432$", "vdb: 32 MiB, id 'second'")
        expect_output(j, r"^vdc 32768 c\.img 16777216$", "vdc: 16 MiB, id from its name")
        for f, d in (("a", "vda"), ("b", "vdb"), ("c", "vdc")):
            expect_output(j, rf"^{f}\.img: data-of-{d}$", f"{d}'s data in {f}.img")
    return job("three-disks", script), check


@guest_test("virtio-blk: ext4 made and written in the guest, read back on the host",
            batch="virtio", mmio="both", backend="both")
def ext4_roundtrip(ctx):
    initrd = initrd_with_e2fsprogs(ctx)
    script = (
        "truncate -s 64M disk.img\n" +
        ember_run('--disk path=disk.img --initrd "$DATA/initrd.cpio"', guest_cmd=(
            "/usr/local/sbin/mkfs.ext4 -q -F /dev/vda && mount /dev/vda /mnt && "
            "echo 'written by the guest' > /mnt/hello.txt && "
            "dd if=/dev/urandom of=/mnt/blob bs=64k count=64 2>/dev/null && "
            "md5sum /mnt/blob > /mnt/blob.md5 && sync && umount /mnt && echo guest-done")) +
        "\n/sbin/debugfs -R 'cat /hello.txt' disk.img 2>/dev/null"
        "\n/sbin/debugfs -R 'dump /blob blob.out' disk.img 2>/dev/null"
        "\n/sbin/debugfs -R 'cat /blob.md5' disk.img 2>/dev/null | cut -c1-32"
        "\nmd5sum blob.out | cut -c1-32"
        "\n/sbin/e2fsck -fn disk.img > /dev/null 2>&1; echo \"fsck rc=$?\"")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^guest-done$")
        expect_output(j, r"^written by the guest$", "the file read with debugfs")
        sums = re.findall(r"^([0-9a-f]{32})$", j.output, re.M)
        expect(len(sums) == 2 and sums[0] == sums[1],
               f"4 MiB written in the guest reads back differently on the host: {sums}")
        expect_output(j, r"^fsck rc=0$", "a clean file system")
    return job("ext4-roundtrip", script, timeout=150, files={"initrd.cpio": initrd}), check


@guest_test("virtio-blk: a read-only image mounts, refuses writes, stays unchanged",
            batch="virtio")
def read_only_disk(ctx):
    tree = os.path.join(ctx.prep_dir, "ro-tree")
    os.makedirs(tree, exist_ok=True)
    with open(os.path.join(tree, "readme.txt"), "w") as f:
        f.write("made on the host\n")
    image = os.path.join(ctx.prep_dir, "ro.img")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, image, "8M"], check=True)
    script = (
        "sha256sum ro.img\n" +
        ember_run('--disk path=ro.img,ro', guest_cmd=(
            "cat /sys/block/vda/ro\n"
            "mount /dev/vda /mnt 2>&1 | tail -1; mount | grep -c '/mnt.*ro,'\n"
            "cat /mnt/readme.txt\n"
            "touch /mnt/new 2>&1 | grep -c 'Read-only'\n"
            "umount /mnt\n"
            "dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync 2>&1 | "
            "grep -c -i 'not permitted\\|read-only'\n"
            "blockdev --setrw /dev/vda\n"
            "dd if=/dev/zero of=/dev/vda bs=512 count=8 conv=fsync 2>/dev/null; "
            "echo \"forced write rc=$?\"")) +
        "\nsha256sum ro.img")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^1$", "the disk flagged read-only")
        expect_output(j, r"^made on the host$", "the file read in the guest")
        expect_output(j, r"forced write rc=[1-9]", "the device refusing a forced write")
        sums = re.findall(r"^([0-9a-f]{64})\s+ro\.img$", j.output, re.M)
        expect(len(sums) == 2 and sums[0] == sums[1], f"image changed: {sums}")
        expect_no_output(j, r"^0$", "a step that should have failed succeeding (count 0)")
    return job("read-only", script, files={"ro.img": image}), check


@guest_test("virtio-blk: flushed data survives SIGKILL of ember", batch="virtio")
def sigkill_after_flush():
    script = (
        "truncate -s 16M d.img\n"
        '"$RUNWATCH" --when "flushed-now" --signal KILL -- "$EMBER" run --disk path=d.img '
        f"--cmdline '{guest_cmdline('echo survives-the-kill | dd of=/dev/vda conv=fsync 2>/dev/null && echo flushed-now; sleep 60')}'"
        '; echo "ember rc=$?"\n'
        "echo \"image: $(head -c 17 d.img)\"")

    def check(j):
        expect_ember_rc(j, 137)
        expect_output(j, r"^image: survives-the-kill$", "the data in the image")
    return job("sigkill", script), check


@guest_test("virtio-blk: cache=none (O_DIRECT) on an ext4 file system", batch="virtio")
def cache_none(ctx):
    script = (
        'if [ -n "$EMBER_NESTED" ]; then\n'
        "  insmod /lib/modules/l1/loop.ko 2>/dev/null\n"
        "  truncate -s 96M fs.img && /sbin/mke2fs -q -t ext4 fs.img && mkdir -p mnt && "
        "mount -o loop fs.img mnt || echo 'no ext4 in L1'\n"
        "else mkdir -p mnt; fi\n"
        "truncate -s 32M mnt/direct.img\n" +
        ember_run('--disk path=mnt/direct.img,cache=none', guest_cmd=(
            "cat /sys/block/vda/queue/logical_block_size\n"
            "dd if=/dev/urandom of=/tmp/p bs=4096 count=256 2>/dev/null\n"
            "dd if=/tmp/p of=/dev/vda bs=4096 conv=fsync 2>/dev/null\n"
            "echo 3 > /proc/sys/vm/drop_caches\n"
            "dd if=/dev/vda bs=4096 count=256 2>/dev/null | md5sum | cut -c1-32\n"
            "md5sum /tmp/p | cut -c1-32")) +
        "\nhead -c 1048576 mnt/direct.img | md5sum | cut -c1-32\n"
        '[ -n "$EMBER_NESTED" ] && umount mnt')

    def check(j):
        expect_ember_rc(j, 0)
        expect_no_output(j, r"no ext4 in L1")
        expect_output(j, r"^4096$", "4096-byte logical blocks with O_DIRECT")
        sums = re.findall(r"^([0-9a-f]{32})$", j.output, re.M)
        expect(len(sums) == 3 and len(set(sums)) == 1, f"checksums differ: {sums}")
    return job("cache-none", script), check


@guest_test("virtio-rng: /dev/hwrng gives random bytes; --no-rng removes it", batch="virtio", mmio=True)
def hwrng():
    jobs = [
        job("rng", ember_run(guest_cmd=(
            "cat /sys/class/misc/hw_random/rng_current\n"
            "for i in 1 2; do dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -A n -t x1 | "
            "tr -d ' \\n'; echo; done"))),
        job("no-rng", ember_run("--no-rng", guest_cmd=(
            "cat /sys/class/misc/hw_random/rng_available; echo \"[end]\""))),
    ]

    def check(rng, none):
        expect_ember_rc(rng, 0)
        expect_output(rng, r"^virtio_rng\.0$")
        blobs = re.findall(r"^([0-9a-f]{128})$", rng.output, re.M)
        expect(len(blobs) == 2 and blobs[0] != blobs[1], f"two reads of 64 bytes: {blobs}")
        expect(all(len(set(b[i:i + 2] for i in range(0, 128, 2))) > 16 for b in blobs),
               "the bytes do not look random")
        expect_ember_rc(none, 0)
        expect_no_output(none, r"virtio_rng", "an rng with --no-rng")
    return jobs, check


@guest_test("virtio-console: a shell on hvc0 with the host's stdin", batch="virtio", mmio=True)
def hvc_shell():
    # Typed once the shell is up: Linux's virtio_console drops data that
    # arrives before its console port is connected.
    j = job("hvc0", (
        '"$RUNWATCH" --timeout 80 --when "ready on hvc0" '
        "--send 'echo hvc-$((6*7)) on $(tty)\\npoweroff -f\\n' "
        f'-- "$EMBER" run --console virtio --cmdline "console=ttyS0 quiet{mmio_words()}"; '
        'echo "ember rc=$?"'))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"ember-guest: ready on hvc0")
        expect_output(j, r"^hvc-42 on /dev/hvc0", "the shell's answer on hvc0")
    return j, check


# The guest floods hvc0 (and writes to ttyS0) while nobody reads ember's
# stdout: a FIFO held open, never read, until the end. The event loop must go
# on serving the API (it used to block in write() — or spin on EAGAIN — on
# the first full pipe), pause and resume must work, and once the reader comes
# every byte arrives, the flood's end marker included.
HVC_FLOOD = r"""
for i in $(seq 50); do [ -e /dev/hvc0 ] && break; usleep 100000; done
echo "flood start"
{ stty -F /dev/hvc0 -opost; yes ABCDEFGHIJKLMNO | head -c 196608; echo FLOOD-END; } > /dev/hvc0
echo "flood done"
"""


@guest_test("virtio-console: a guest flooding hvc0 while nobody reads stdout does not stall "
            "the event loop (API, pause, resume); all output arrives later", batch="virtio")
def hvc_flood_backpressure():
    cmdline = guest_cmdline(HVC_FLOOD, base="console=ttyS0 reboot=k panic=1 quiet")
    script = (
        "BB=busybox\n"
        "api() { curl -s -S --max-time 3 --unix-socket api.sock -o /dev/null "
        "-w '%{http_code}' \"$@\"; }\n"
        "mkfifo out.fifo; exec 5<>out.fifo; echo \"start at $(date +%s)\"\n"
        f'"$EMBER" run --console virtio --api-sock api.sock --cmdline \'{cmdline}\' '
        "< /dev/null > out.fifo 2> err.txt & pid=$!\n"
        # Wait until ember has written a full pipe's worth (the reader is away).
        "i=0; while :; do w=$(awk '/^wchar/ {print $2}' /proc/$pid/io 2>/dev/null); "
        "[ \"${w:-0}\" -ge 65536 ] && break; i=$((i+1)); "
        "[ $i -gt 3000 ] && { echo 'stdout never filled'; break; }; $BB usleep 100000; done\n"
        "sleep 1\n"
        "for n in 1 2 3 4 5 6 7 8; do echo \"get-$n $(api http://x/)\"; $BB usleep 250000; done\n"
        "echo \"pause $(api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}')\"\n"
        "echo \"resume $(api -X PATCH http://x/vm -d '{\"state\": \"Resumed\"}')\"\n"
        "echo \"get-after $(api http://x/)\"\n"
        # The reader comes back: everything arrives and the guest finishes.
        "echo \"reader at $(date +%s)\"; cat <&5 > out.bin & cat_pid=$!\n"
        "wait $pid; rc=$?; echo \"ember done at $(date +%s)\"; echo \"ember rc=$rc\"\n"
        "sleep 1; kill $cat_pid 2>/dev/null\n"
        "echo \"flood-lines $(grep -a -c '^ABCDEFGHIJKLMNO' out.bin)\"\n"
        "grep -a -o 'FLOOD-END' out.bin; grep -a -o 'flood done' out.bin\n"
        "cat err.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        for n in range(1, 9):
            expect_output(j, rf"^get-{n} 200$", f"GET / answered (#{n}) while stdout was full")
        expect_output(j, r"^pause 204$", "pause while stdout was full")
        expect_output(j, r"^resume 204$", "resume while stdout was full")
        m = re.search(r"^flood-lines (\d+)$", j.output, re.M)
        # 12288 lines of 16 bytes: 192 KiB, half as much again as the pipe
        # and ember's buffer hold; a serial line interleaved may split one.
        # The guest's tty does no output processing (-opost) so that it
        # writes whole blocks: with it, each line costs hvc0 two kicks (the
        # text, then CR LF) and 192 KiB took 400 s in the nested harness.
        expect(m and int(m.group(1)) >= 12288 - 2, f"all 192 KiB of the flood: {m and m.group(1)}")
        expect_output(j, r"^FLOOD-END$", "the flood's end marker")
        expect_output(j, r"^flood done$", "the guest's serial output after the flood")
    return job("hvc-flood", script, timeout=540), check


@guest_test("virtio-pci: INTx when the guest does not use MSI-X", batch="virtio2")
def intx_fallback():
    j = job("intx", "truncate -s 8M i.img\n" + ember_run(
        "--disk path=i.img", cmdline=guest_cmdline(
            "echo intx-data | dd of=/dev/vda conv=fsync 2>/dev/null; "
            "echo 3 > /proc/sys/vm/drop_caches; head -c 9 /dev/vda; echo; "
            "dd if=/dev/hwrng bs=8 count=1 2>/dev/null | wc -c; "
            "grep virtio /proc/interrupts",
            base="console=ttyS0 reboot=k panic=1 quiet pci=nomsi")))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^intx-data$", "disk I/O completing by INTx")
        expect_output(j, r"^8$", "entropy by INTx")
        expect_output(j, r"IO-APIC\s+\d+-fasteoi\s+virtio", "virtio on the IOAPIC")
        expect_no_output(j, r"PCI-MSI", "MSI in use")
    return j, check


@guest_test("virtio-pci: the guest moves a BAR and the device follows", batch="virtio2")
def bar_move():
    # Unbind, reprogram BAR 0, remove and rescan: Linux then re-reads and
    # (re)assigns the BAR itself before the driver binds again.
    dev = "/sys/bus/pci/devices/0000:00:01.0"
    j = job("bar-move", ember_run(guest_cmd=(
        f"head -1 {dev}/resource | cut -c1-18\n"
        "echo 0000:00:01.0 > /sys/bus/pci/drivers/virtio-pci/unbind\n"
        f"printf '\\000\\000\\200\\301' | dd of={dev}/config bs=4 seek=4 count=1 conv=notrunc "
        "2>/dev/null\n"
        f"echo 1 > {dev}/remove; echo 1 > /sys/bus/pci/rescan; sleep 1\n"
        f"head -1 {dev}/resource | cut -c1-18\n"
        "dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c")))

    def check(j):
        expect_ember_rc(j, 0)
        bars = re.findall(r"^(0x[0-9a-f]{16})$", j.output, re.M)
        expect(len(bars) == 2, f"BAR addresses: {bars}")
        expect(bars[0] == "0x00000000c1010000", f"ember placed the BAR at {bars[0]}")
        expect(bars[1] != bars[0], "the guest did not move the BAR")
        expect_output(j, r"^16$", "the device answering at its new address")
    return j, check


@host_test("disk setup errors: missing, directory, locked, bad options (an empty image is a "
           "disk of capacity 0)")
def disk_setup_errors(ctx):
    from test_cli import expect_setup_error, kernel
    k = ["run", "--kernel", kernel(ctx)]
    expect_setup_error(ctx, k + ["--disk", "path=/nonexistent.img"],
                       r"disk /nonexistent\.img: No such file")
    expect_setup_error(ctx, k + ["--disk", f"path={ctx.tmp}"],
                       r"Is a directory|not a regular file")
    img = os.path.join(ctx.tmp, "d.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    expect_setup_error(ctx, k + ["--disk", f"path={img}", "--disk", f"path={img}"],
                       r"d\.img: in use by another process")
    expect_setup_error(ctx, k + ["--disk", "ro"], r"--disk: path=FILE is required")
    expect_setup_error(ctx, k + ["--disk", f"path={img},colour=red"],
                       r"unknown setting 'colour=red'")
    expect_setup_error(ctx, k + ["--disk", f"path={img},cache=sometimes"],
                       r"cache must be none or writeback")
    expect_setup_error(ctx, k + ["--disk", f"path={img},id=" + "x" * 21],
                       r"longer than 20 characters")
    expect_setup_error(ctx, k + ["--console", "vga"], r"--console: expected serial or virtio")
    # Two read-only users of one image are fine (they get past the disks, to
    # the host check that --accel kvm asks for).
    rc, out = run_host([ctx.ember] + k + ["--accel", "kvm", "--disk", f"path={img},ro",
                                          "--disk", f"path={img},ro"])
    expect(rc != 2, f"two read-only users refused: {out}")


@guest_test("virtio-blk: blkdiscard in the guest punches a hole in the image", batch="virtio2")
def discard_in_guest():
    j = job("discard", (
        "dd if=/dev/urandom of=disc.img bs=1M count=8 2>/dev/null\n"
        "echo \"before: $(du -k disc.img | cut -f1)\"\n" +
        ember_run("--disk path=disc.img", guest_cmd=(
            "cat /sys/block/vda/queue/discard_max_bytes\n"
            "blkdiscard -o 1048576 -l 4194304 /dev/vda && echo discarded")) +
        "\necho \"after: $(du -k disc.img | cut -f1)\"\n"
        "echo \"zeros: $(dd if=disc.img bs=1M skip=1 count=4 2>/dev/null | tr -d '\\000' | wc -c)\"\n"
        "echo \"kept: $(dd if=disc.img bs=1M count=1 2>/dev/null | tr -d '\\000' | wc -c)\""))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^discarded$")
        expect_no_output(j, r"^0$", "discard_max_bytes of 0 (DISCARD not offered)")
        expect_output(j, r"^zeros: 0$", "the discarded 4 MiB reading as zeros on the host")
        before = int(re.search(r"^before: (\d+)", j.output, re.M).group(1))
        after = int(re.search(r"^after: (\d+)", j.output, re.M).group(1))
        expect(after <= before - 4000, f"image not sparser: {before} KiB -> {after} KiB")
        kept = int(re.search(r"^kept: (\d+)", j.output, re.M).group(1))
        expect(kept > 1000000, f"data outside the range lost ({kept} non-zero bytes left)")
    return j, check

#!/usr/bin/env python3
"""ember's figures side by side with QEMU (-accel kvm), measured alternately in
one run: in the nested harness on hosts without hardware KVM (one VMM run per
freshly booted L1, since later runs in the same L1 are slower), directly
otherwise. A benchmark, not a test: it never fails because a figure is slow,
only when it cannot measure.

Suites: boot (start -> first init line and -> power-off, peak RSS),
blk (virtio-blk sequential MB/s and random-read IOPS, with L1's own figure),
net (virtio-net TCP throughput each way, TAP and user mode), vsock (throughput
and connect latency each way, next to QEMU's vhost-vsock), fs (a shared
directory: virtio-fs next to virtio-blk with ext4), api (start ->
control socket accepting; start request -> init), snapshot (restore -> the
guest's next console line, restored RSS, file sizes), density (1, 10, 20 idle
guests in one host: memory per VM, with free page reporting and KSM on and
off), bootprof (where boot time goes: ember's start-up steps, exits by
reason, the guest's own timeline; bootprof.py)."""
import argparse
import datetime
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from nested import DirectHost, Job, L1Files, NestedHost, host_has_hw_kvm  # noqa: E402
from overlay import build_initrd_with  # noqa: E402
from bootprof import BootProfileSuite  # noqa: E402
import common  # noqa: E402
from common import (INIT_LINE, INITRD, KERNEL, VMLINUX, Figure, cmdline,  # noqa: E402
                    guest_kernel_words, qemu_cmd)

QEMU_FILES = ["qboot.rom", "kvmvapic.bin", "linuxboot.bin", "linuxboot_dma.bin",
              "multiboot.bin", "multiboot_dma.bin", "pvh.bin"]

# Where a failed run's whole output is kept (bench/results/failed-DATE/).
FAILED_OUTPUT_DIR = os.path.join(HERE, "results", "failed-" +
                                 datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))

BASELINE = "ember-baseline"  # another build of ember (--baseline), run side by side
baseline_path = "/usr/bin/ember-baseline"  # where it is where the VMMs run


def ember_binary(vmm):
    return shlex.quote(baseline_path) if vmm == BASELINE else '"$EMBER"'


def ember_cmd(mem, cpus, cl, initrd=INITRD, extra="", vmm="ember", kernel=KERNEL):
    return (f'{ember_binary(vmm)} run --kernel {kernel} --initrd {initrd} --mem {mem}M '
            f"--cpus {cpus} {extra} --cmdline '{cl}'")


def l1_files(build):
    files = {f"/usr/share/qemu/{f}": os.path.join("/usr/share/qemu", f) for f in QEMU_FILES}
    files.update(vsock_modules(build))
    files["/usr/share/qemu/bios-microvm.bin"] = "/usr/share/qemu/qboot.rom"
    for f in os.listdir("/usr/share/seabios"):
        files[f"/usr/share/seabios/{f}"] = os.path.join("/usr/share/seabios", f)
    return L1Files(files=files, programs={
        "/usr/bin/qemu-system-x86_64": "/usr/bin/qemu-system-x86_64",
        "/usr/bin/runwatch": os.path.join(build, "tools", "runwatch"),
        "/usr/bin/ioperf": os.path.join(build, "tools", "ioperf"),
        "/usr/bin/tcpperf": os.path.join(build, "tools", "tcpperf"),
        "/usr/bin/kvmexit": os.path.join(build, "tools", "kvmexit"),
        "/usr/bin/vsockperf": os.path.join(build, "tools", "vsockperf"),
        "/usr/bin/uffd_handler": os.path.join(build, "tools", "uffd_handler"),
        "/usr/bin/fsperf": os.path.join(build, "tools", "fsperf"),
        "/usr/bin/mkfs.ext4": "/sbin/mke2fs",  # the fs suite's ext4 image
        "/usr/bin/curl": "/usr/bin/curl"})


def vsock_modules(build):
    """L1's vhost_vsock and what it needs, for QEMU's vhost-vsock-pci."""
    mods = os.path.join(build, "debs", "kernel", "lib", "modules")
    if not os.path.isdir(mods):
        return {}
    kdir = os.path.join(mods, os.listdir(mods)[0], "kernel")
    found = {}
    for root, _, names in os.walk(kdir):
        for n in names:
            if n[:-3] in VsockSuite.L1_MODULES and n.endswith(".ko"):
                found[f"/lib/modules/l1/{n}"] = os.path.join(root, n)
    return found


# --- suites ----------------------------------------------------------------

class BootSuite:
    name = "boot"
    # ember-mmio: the same guest with pci=off, its devices on virtio-mmio.
    vmms = ["ember", "ember-mmio", "qemu-microvm", "qemu-pc"]

    def __init__(self, args):
        self.args = args
        if args.baseline:
            self.vmms = ["ember", BASELINE] + self.vmms[1:]
        if args.pvh:  # the kernel's ELF too, entered at its PVH note
            self.vmms = (self.vmms[:1] + ["ember-pvh"] + self.vmms[1:2] +
                         ["ember-mmio-pvh", "ember-bare-pvh"] + self.vmms[2:] +
                         ["qemu-microvm-pvh", "qemu-microvm-pvh-pcioff"])
        self.figures = [Figure("VMM start → first init line", "ms"),
                        Figure("VMM start → guest power-off", "ms"),
                        Figure("peak RSS of the VMM", "MiB", scale=1 / 1024),
                        Figure("RSS minus guest RAM resident (VMM's own, peak)", "MiB",
                               scale=1 / 1024),
                        Figure("guest RAM resident then", "MiB", scale=1 / 1024)]

    def script(self, vmm):
        cl = cmdline("poweroff -f")
        a = self.args
        cmd = {"ember": ember_cmd(a.mem, a.cpus, cl),
               "ember-mmio": ember_cmd(a.mem, a.cpus, cl + " pci=off"),
               BASELINE: ember_cmd(a.mem, a.cpus, cl, vmm=BASELINE),
               "ember-pvh": ember_cmd(a.mem, a.cpus, cl, kernel=VMLINUX),
               "ember-mmio-pvh": ember_cmd(a.mem, a.cpus, cl + " pci=off", kernel=VMLINUX),
               # no virtio device, as QEMU microvm here
               "ember-bare-pvh": ember_cmd(a.mem, a.cpus, cl + " pci=off", kernel=VMLINUX,
                                           extra="--no-rng"),
               "qemu-microvm": qemu_cmd("microvm,rtc=on", a.mem, a.cpus, cl),
               "qemu-microvm-pvh": qemu_cmd("microvm,rtc=on", a.mem, a.cpus, cl,
                                            kernel=VMLINUX),
               "qemu-microvm-pvh-pcioff": qemu_cmd("microvm,rtc=on", a.mem, a.cpus,
                                                   cl + " pci=off", kernel=VMLINUX),
               "qemu-pc": qemu_cmd("pc", a.mem, a.cpus, cl)}[vmm]
        return (f"runwatch --guest-mem {a.mem} --stamp '{INIT_LINE}' -- "
                f"sh -c {shlex.quote(cmd)}")

    def record(self, vmm, output):
        stamp = re.search(r"runwatch: stamp ([\d.]+) " + re.escape(INIT_LINE), output)
        exited = re.search(r"runwatch: exited ([\d.]+) status (\d+) maxrss (\d+)", output)
        memory = re.search(r"runwatch: memory overhead (\d+) guest (\d+) samples [1-9]", output)
        if not exited or int(exited.group(2)) != 0 or not stamp:
            return "no clean run (exit report or init line missing)"
        values = [float(stamp.group(1)), float(exited.group(1)), int(exited.group(3))]
        if memory:
            values += [int(memory.group(1)), int(memory.group(2))]
        for fig, value in zip(self.figures, values):
            fig.add(vmm, value)
        return None

    def note(self):
        return (f"{self.args.mem} MiB, {self.args.cpus} vCPU, {guest_kernel_words()}; "
                "the guest powers off at once "
                "(ember-mmio: the same with pci=off, so its virtio-rng is virtio-mmio; "
                "-pvh: the kernel's vmlinux, entered at its PVH note; ember-bare-pvh: "
                "pci=off and --no-rng, no virtio device as QEMU microvm here; -pcioff: QEMU "
                "with pci=off on the command line too). "
                "Peak RSS from wait4; the VMM's own memory sampled from /proc/PID/smaps every "
                "250 ms as its resident set minus its guest-RAM mapping's. The boot-time "
                "distributions are plotted in the PNG next to the report.")

    def files(self, ctx):
        return {}


class BlkSuite:
    """virtio-blk in the guest with O_DIRECT on a raw image in L1's memory,
    both VMMs with their default (host page cache) caching; and L1 itself
    on the same file for reference."""
    name = "blk"
    vmms = ["ember", "qemu-pc", "L1 host"]
    SEQ_MIB, RAND_SECONDS = 256, 5

    def __init__(self, args):
        self.args = args
        self.figures = [Figure("sequential write, 1 MiB blocks", "MB/s", True),
                        Figure("sequential read, 1 MiB blocks", "MB/s", True),
                        Figure("random read, 4 KiB blocks", "IOPS", True)]

    def io_commands(self, dev):
        return (f"ioperf seqwrite {dev} {self.SEQ_MIB}; ioperf seqread {dev} {self.SEQ_MIB}; "
                f"ioperf randread {dev} {self.RAND_SECONDS}")

    def script(self, vmm):
        setup = "truncate -s 1G disk.img\n"
        if vmm == "L1 host":
            return setup + self.io_commands("disk.img").replace("ioperf", "/usr/bin/ioperf")
        cl = cmdline(self.io_commands("/dev/vda"))
        initrd = '"$DATA/initrd.cpio"'
        cmd = {"ember": ember_cmd(512, 1, cl, initrd, "--disk path=disk.img"),
               "qemu-pc": qemu_cmd("pc", 512, 1, cl, initrd,
                                   "-drive file=disk.img,format=raw,if=none,id=d0,"
                                   "cache=writeback -device virtio-blk-pci,drive=d0")}[vmm]
        return setup + cmd

    def record(self, vmm, output):
        found = {m: re.search(rf"ioperf: {m} ([\d.]+) MB/s ([\d.]+) IOPS direct=(\d)", output)
                 for m in ("seqwrite", "seqread", "randread")}
        if not all(found.values()):
            return "ioperf did not report all three figures"
        self.figures[0].add(vmm, float(found["seqwrite"].group(1)))
        self.figures[1].add(vmm, float(found["seqread"].group(1)))
        self.figures[2].add(vmm, float(found["randread"].group(2)))
        if vmm == "L1 host":
            self.l1_direct = found["seqread"].group(3) == "1"
        return None

    def files(self, ctx):
        return {"initrd.cpio": ctx["guest_initrd_ioperf"]}

    def note(self):
        how = "O_DIRECT" if getattr(self, "l1_direct", False) else \
            "buffered I/O (L1's initramfs file system has no O_DIRECT)"
        return (f"Guest: O_DIRECT on /dev/vda, {self.SEQ_MIB} MiB each way, then "
                f"{self.RAND_SECONDS} s of random 4 KiB reads, one at a time; 512 MiB, 1 vCPU. "
                f"The image is a sparse 1 GiB file in L1's RAM; 'L1 host' runs the same "
                f"program on it directly, with {how}.")


class NetSuite:
    """TCP throughput through virtio-net, one stream each way, with a TAP
    device in L1 and with user-mode networking; QEMU uses the same backends
    (-netdev tap with vhost off, -netdev user)."""
    name = "net"
    vmms = ["ember", "qemu-pc"]
    variants = ["TAP", "user"]
    MIB = 32

    def __init__(self, args):
        self.args = args
        self.figures = [Figure(f"{v} guest → host", "MB/s", True) for v in self.variants] + \
                       [Figure(f"{v} host → guest", "MB/s", True) for v in self.variants]

    def script(self, vmm, variant):
        tap = variant == "TAP"
        host_ip, guest_ip = ("192.168.77.1", "192.168.77.2") if tap else ("10.0.2.2", None)
        guest = ((f"ifconfig eth0 {guest_ip} netmask 255.255.255.0 up\n" if tap else "") +
                 f"tcpperf send {host_ip} 9000 -{self.MIB}\ntcpperf recv 9001")
        cl = cmdline(guest).replace("quiet", "quiet ember_dhcp=0" if tap else "quiet")
        initrd = '"$DATA/initrd.cpio"'
        if vmm == "ember":
            nic = "--net tap=tap0" if tap else "--net user,hostfwd=tcp::19001-:9001"
            cmd = ember_cmd(512, 1, cl, initrd, nic)
        else:
            netdev = ("tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off" if tap else
                      "user,id=n0,hostfwd=tcp::19001-:9001")
            cmd = qemu_cmd("pc", 512, 1, cl, initrd,
                           f"-netdev {netdev} -device virtio-net-pci,netdev=n0,romfile=")
        target = f"{guest_ip} 9001" if tap else "127.0.0.1 19001"
        setup = ("insmod /lib/modules/l1/tun.ko 2>/dev/null; busybox tunctl -t tap0 >/dev/null; "
                 "ip link set tap0 up; ip addr add 192.168.77.1/24 dev tap0\n" if tap else "")
        return (setup +
                "tcpperf recv 9000 > g2h.txt & receiver=$!\n"
                f"( {cmd} ) > vmm.txt 2>&1 &\n"
                "wait $receiver; cat g2h.txt\n"
                "i=0; until grep -q 'listening on 9001' vmm.txt; do i=$((i+1)); "
                "[ $i -gt 600 ] && break; busybox usleep 100000; done\n"
                f"tcpperf send {target} -{self.MIB} > /dev/null\n"
                "i=0; until grep -q 'received' vmm.txt; do i=$((i+1)); [ $i -gt 300 ] && break; "
                "busybox usleep 100000; done\n"
                "sed 's/^tcpperf: received/guest received/' vmm.txt\n"
                "kill %1 2>/dev/null; wait\n")

    def record(self, vmm, variant, output):
        g2h = re.search(r"^tcpperf: received (\d+) bytes in [\d.]+ s, ([\d.]+) MB/s", output,
                        re.M)
        h2g = re.search(r"guest received (\d+) bytes in [\d.]+ s, ([\d.]+) MB/s", output)
        expected = str(self.MIB << 20)
        if not g2h or not h2g or g2h.group(1) != expected or h2g.group(1) != expected:
            return "a stream did not complete"
        by_title = {f.title: f for f in self.figures}
        by_title[f"{variant} guest → host"].add(vmm, float(g2h.group(2)))
        by_title[f"{variant} host → guest"].add(vmm, float(h2g.group(2)))
        return None

    def files(self, ctx):
        return {"initrd.cpio": ctx["guest_initrd_tools"]}

    def note(self):
        return (f"One TCP stream of {self.MIB} MiB each way, measured by the receiver "
                "(tcpperf); 512 MiB, 1 vCPU. TAP: a tap device in L1 with an address and the "
                "guest at a static one; user: libslirp (ember) and QEMU's slirp, the guest "
                "reaching L1 at 10.0.2.2 and L1 reaching the guest through a port forward.")


class VsockSuite:
    """vsock throughput each way and connect latency each way: ember's
    virtio-vsock with Firecracker's Unix-socket host side, next to QEMU's
    vhost-vsock-pci (the host kernel's vhost_vsock, AF_VSOCK on the host) and
    ember's own virtio-net on a TAP device (TCP) — the three ways a guest
    agent reaches its host."""
    name = "vsock"
    vmms = ["ember", "qemu-vhost", "ember-tcp-tap"]
    MIB = 32
    CONNECTS = 200
    L1_MODULES = ["vsock", "vmw_vsock_virtio_transport_common", "vhost_iotlb", "vhost",
                  "vhost_vsock"]

    def __init__(self, args):
        self.args = args
        self.figures = [Figure("guest → host", "MB/s", True), Figure("host → guest", "MB/s", True),
                        Figure("connect, host → guest", "µs"),
                        Figure("connect, guest → host", "µs")]

    def script(self, vmm):
        if vmm == "ember-tcp-tap":
            g = lambda p: f"tcp:192.168.77.2:{p}"      # noqa: E731 (the guest, from L1)
            h = lambda p: f"tcp:192.168.77.1:{p}"      # noqa: E731 (L1, from the guest)
            hl = lambda p: f"tcp:0.0.0.0:{p}"          # noqa: E731
            gl = hl
        elif vmm == "ember":
            g = lambda p: f"hybrid:$DATA/v.sock:{p}"   # noqa: E731
            h = lambda p: f"vsock:2:{p}"               # noqa: E731
            hl = lambda p: f"unix:$DATA/v.sock_{p}"    # noqa: E731
            gl = lambda p: f"vsock:0:{p}"              # noqa: E731
        else:
            g = lambda p: f"vsock:3:{p}"               # noqa: E731
            h = lambda p: f"vsock:2:{p}"               # noqa: E731
            hl = gl = lambda p: f"vsock:0:{p}"         # noqa: E731
        guest = ((f"ifconfig eth0 192.168.77.2 netmask 255.255.255.0 up\n"
                  if vmm == "ember-tcp-tap" else "") +
                 f"vsockperf recv {gl(5000)}\n"
                 f"vsockperf send {h(5001)} {self.MIB}\n"
                 f"vsockperf echo {gl(5002)} {self.CONNECTS}\n"
                 f"vsockperf lat {h(5003)} {self.CONNECTS}\n")
        cl = cmdline(guest).replace("quiet", "quiet ember_dhcp=0")
        initrd = '"$DATA/initrd.cpio"'
        if vmm == "ember":
            cmd = ember_cmd(512, 1, cl, initrd, "--vsock cid=3,uds=$DATA/v.sock")
            setup = ""
        elif vmm == "ember-tcp-tap":
            cmd = ember_cmd(512, 1, cl, initrd, "--net tap=tap0")
            setup = ("insmod /lib/modules/l1/tun.ko 2>/dev/null; busybox tunctl -t tap0 "
                     ">/dev/null; ip link set tap0 up; ip addr add 192.168.77.1/24 dev tap0\n")
        else:
            cmd = qemu_cmd("pc", 512, 1, cl, initrd, "-device vhost-vsock-pci,guest-cid=3")
            setup = "".join(f"insmod /lib/modules/l1/{m}.ko\n" for m in self.L1_MODULES)
        wait = ("i=0; until [ $(grep -c '%s' vmm.txt) -ge %d ]; do i=$((i+1)); "
                "[ $i -gt 900 ] && break; busybox usleep 100000; done\n")
        return (setup +
                f"vsockperf recv {hl(5001)} > g2h.txt 2>&1 &\n"
                f"vsockperf echo {hl(5003)} {self.CONNECTS} > echo.txt 2>&1 &\n"
                f"( {cmd} ) > vmm.txt 2>&1 &\n" +
                wait % ("vsockperf: listening", 1) +
                f"vsockperf send {g(5000)} {self.MIB} > /dev/null\n" +
                wait % ("vsockperf: listening", 2) +
                f"vsockperf lat {g(5002)} {self.CONNECTS} > lat.txt\n" +
                wait % ("connects, mean", 1) +
                "sed 's/^vsockperf: received/guest received/; s/^vsockperf: [0-9]* connects/"
                "guest connects/' vmm.txt\n"
                "cat g2h.txt lat.txt\n"
                "kill %1 %2 2>/dev/null; wait\n")

    def record(self, vmm, output):
        g2h = re.search(r"^vsockperf: received (\d+) bytes in [\d.]+ s, ([\d.]+) MB/s", output,
                        re.M)
        h2g = re.search(r"guest received (\d+) bytes in [\d.]+ s, ([\d.]+) MB/s", output)
        lat_h = re.search(r"^vsockperf: \d+ connects, mean ([\d.]+) us", output, re.M)
        lat_g = re.search(r"guest connects, mean ([\d.]+) us", output)
        expected = str(self.MIB << 20)
        if not g2h or not h2g or g2h.group(1) != expected or h2g.group(1) != expected:
            return "a stream did not complete"
        if not lat_h or not lat_g:
            return "the connect latencies were not measured"
        for fig, value in zip(self.figures, (g2h.group(2), h2g.group(2), lat_h.group(1),
                                             lat_g.group(1))):
            fig.add(vmm, float(value))
        return None

    def files(self, ctx):
        return {"initrd.cpio": ctx["guest_initrd_tools"]}

    def note(self):
        return (f"One stream of {self.MIB} MiB each way, measured by the receiver (vsockperf, "
                f"FNV-checked); connect latency: the mean of {self.CONNECTS} connects (for "
                "ember, a host connect includes the CONNECT/OK handshake; each connect is "
                "followed by a one-byte echo, not counted). 512 MiB, 1 vCPU, guest CID 3. "
                "ember: --vsock, the host side on Unix sockets in L1; qemu-vhost: QEMU pc "
                "with -device vhost-vsock-pci (L1's vhost_vsock), AF_VSOCK on the host; "
                "ember-tcp-tap: the same programs over TCP through ember's virtio-net on a "
                "TAP device in L1.")


class ApiSuite:
    """The control API: how soon after the process starts a client can
    connect (on this host, no guest: ember's API socket, QEMU's QMP socket
    with the machine created but stopped), and from the start request to the
    guest's first init line in the harness (ember: PUT /actions InstanceStart
    after configuring with curl; QEMU: QMP 'cont' on a machine started with
    -S and the same kernel and initramfs)."""
    name = "api"
    vmms = ["ember", "qemu-pc"]
    START_LINE = "InstanceStart: starting the microVM"
    QMP_GREETING = '{"QMP"'

    def __init__(self, args):
        self.args = args
        self.figures = [Figure("process start → control socket accepting (this host)", "ms"),
                        Figure("start request → first init line", "ms")]

    def local(self, runs):
        hw, _ = host_has_hw_kvm()
        self.qemu_accel = "kvm" if hw else "tcg"
        work = tempfile.mkdtemp(prefix="ember-bench-api-")
        try:
            for r in range(runs):
                for vmm in self.vmms:
                    sock = os.path.join(work, f"{vmm}-{r}.sock")
                    cmd = ([os.path.join(self.args.build, "ember"), "--api-sock", sock]
                           if vmm == "ember" else
                           ["qemu-system-x86_64", "-S", "-M", "pc", "-accel", self.qemu_accel,
                            "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
                            "-qmp", f"unix:{sock},server=on,wait=off"])
                    ms = time_to_accept(cmd, sock)
                    if ms is not None:
                        self.figures[0].add(vmm, ms)
        finally:
            subprocess.run(["rm", "-rf", work])

    def script(self, vmm):
        cl = cmdline("poweroff -f")
        a = self.args
        if vmm == "ember":
            api = "curl -s --unix-socket api.sock"
            body = ('{"kernel_image_path": "\'$GUEST/vmlinuz\'", '
                    '"initrd_path": "\'$GUEST/initramfs.cpio\'", "boot_args": "%s"}' % cl)
            inner = (f'"$EMBER" -v --api-sock api.sock & pid=$!\n'
                     f"i=0; until {api} http://x/ >/dev/null; do i=$((i+1)); [ $i -gt 2000 ] && exit 1; "
                     "busybox usleep 5000; done\n"
                     f"{api} -X PUT http://x/boot-source -d '{body}'\n"
                     f"{api} -X PUT http://x/machine-config -d "
                     f"'{{\"vcpu_count\": {a.cpus}, \"mem_size_mib\": {a.mem}}}'\n"
                     f"{api} -X PUT http://x/actions -d "
                     "'{\"action_type\": \"InstanceStart\"}'\n"
                     "wait $pid\n")
            return (f"cat > start.sh <<'EOF'\n{inner}EOF\n"
                    f"runwatch --stamp '{self.START_LINE}' --stamp '{INIT_LINE}' -- sh start.sh")
        cmd = qemu_cmd("pc", a.mem, a.cpus, cl).replace(
            "-serial stdio", "-S -serial file:/proc/self/fd/1 -qmp stdio")
        send = '{"execute":"qmp_capabilities"}\\n{"execute":"cont"}\\n'
        return (f"runwatch --when '{self.QMP_GREETING}' --send '{send}' "
                f"--stamp '{self.QMP_GREETING}' --stamp '{INIT_LINE}' -- sh -c {shlex.quote(cmd)}")

    def record(self, vmm, output):
        start = self.START_LINE if vmm == "ember" else self.QMP_GREETING
        stamps = {p: float(v) for v, p in re.findall(r"runwatch: stamp ([\d.]+) (.*)$", output,
                                                     re.M)}
        exited = re.search(r"runwatch: exited ([\d.]+) status (\d+)", output)
        if start not in stamps or INIT_LINE not in stamps or not exited or exited.group(2) != "0":
            return "no clean run (start line, init line or exit missing)"
        self.figures[1].add(vmm, stamps[INIT_LINE] - stamps[start])
        return None

    def files(self, ctx):
        return {}

    def note(self):
        return ("Control socket: median of the runs on this host, polling connect() every "
                f"millisecond; QEMU with -S, -accel {getattr(self, 'qemu_accel', '?')}, its QMP "
                "socket. Start → init: in the harness, measured by runwatch from ember's "
                "InstanceStart log line or QEMU's QMP greeting (answered at once with "
                "qmp_capabilities and cont) to the guest's first init line; 256 MiB, 1 vCPU.")


class ExitSuite:
    """What one VM exit costs: a 1.5 KiB PVH guest (tests/tools/exitguest.S)
    writes EXITS times to port 0x80 between two markers on COM1, then
    triple-faults; the time between the markers over EXITS is ns per exit
    (exit, the VMM's dispatch to its port handler, re-entry). The yardstick is
    kvmexit, the same loop on the raw KVM API with nothing else around it."""
    name = "exit"
    vmms = ["ember", "qemu-pc", "raw KVM loop"]
    EXITS = 100000

    def __init__(self, args):
        self.args = args
        if args.baseline:
            self.vmms = ["ember", BASELINE] + self.vmms[1:]
        self.figures = [Figure("port-I/O exit round trip", "ns")]

    def script(self, vmm):
        guest = '"$DATA/exitguest"'
        if vmm == "raw KVM loop":
            return f"kvmexit {self.EXITS}"
        cmd = {"ember": f'"$EMBER" run --kernel {guest} --mem 64M',
               BASELINE: f'{ember_binary(BASELINE)} run --kernel {guest} --mem 64M',
               "qemu-pc": ("qemu-system-x86_64 -M pc -accel kvm -cpu host -m 64 -nodefaults "
                           "-no-user-config -display none -serial stdio -no-reboot "
                           f"-L /usr/share/qemu -L /usr/share/seabios -kernel {guest}")}[vmm]
        return f"runwatch --stamp '<go>' --stamp '<end>' -- sh -c {shlex.quote(cmd)}"

    def record(self, vmm, output):
        if vmm == "raw KVM loop":
            m = re.search(r"kvmexit: (\d+) exits in [\d.]+ ms, (\d+) ns/exit", output)
            if not m or int(m.group(1)) != self.EXITS:
                return "kvmexit did not finish"
            self.figures[0].add(vmm, float(m.group(2)))
            return None
        stamps = {p: float(v) for v, p in re.findall(r"runwatch: stamp ([\d.]+) (.*)$", output,
                                                     re.M)}
        if "<go>" not in stamps or "<end>" not in stamps:
            return "the guest's markers are missing"
        self.figures[0].add(vmm, (stamps["<end>"] - stamps["<go>"]) * 1e6 / self.EXITS)
        return None

    def files(self, ctx):
        return {"exitguest": os.path.join(self.args.build, "tools", "exitguest")}

    def note(self):
        return (f"{self.EXITS} `out` instructions to port 0x80 (accepted and ignored by each "
                "VMM) timed between two console markers by runwatch, or inside kvmexit from "
                "its first exit to the guest's halt. In the nested harness every exit "
                "of the L2 guest goes through L0 (TCG) and L1's KVM, so the absolute figures "
                "are far above hardware's; the ratios are the point.")


class SnapshotSuite:
    """Restore to running: a guest printing a tick every 10 ms is saved and
    restored; the figure is from the restoring VMM's start to the guest's
    next tick. ember: 'ember snapshot' through the API of 'ember run', then
    'ember restore' (memory mapped copy-on-write from the file); ember-uffd:
    the same snapshot restored with --mem-uffd through the example page-fault
    handler (tests/tools/uffd_handler) serving the memory file; QEMU: a
    migration to a file (the state and the RAM in one stream) and
    '-incoming exec:cat FILE', which reads the whole stream before the guest
    runs."""
    name = "snapshot"
    vmms = ["ember", "ember-uffd", "qemu-pc"]
    variants = ["256 MiB", "2048 MiB"]
    TICKS = 6000  # long enough for QEMU to migrate a 2 GiB guest in the harness
    QMP_START = ('{"execute":"qmp_capabilities"}\\n{"execute":"migrate-set-capabilities",'
                 '"arguments":{"capabilities":[{"capability":"events","state":true}]}}\\n')
    QMP_MIGRATE = '{"execute":"migrate","arguments":{"uri":"exec:cat > s.mig"}}\\n'
    # The restored VMM is stopped (SIGTERM) as soon as the guest's first line
    # appears: the point is how soon it runs.
    RESTORED = "--stamp 'tick ' --when 'tick ' --signal TERM --timeout 120"

    def __init__(self, args):
        self.args = args
        self.figures = []
        for v in self.variants:
            self.figures += [Figure(f"restore → next console line, {v}", "ms"),
                             Figure(f"peak RSS of the restored VMM, {v}", "MiB", scale=1 / 1024),
                             Figure(f"saved files on disk (allocated), {v}", "MiB",
                                    scale=1 / 1024),
                             Figure(f"state file alone, {v}", "KiB")]
            self.figures[-1].na = {"qemu-pc": "one stream holds state and memory"}
            self.figures.append(Figure(f"pages faulted in, first second after restore, {v}",
                                       "pages"))
            self.figures[-1].na = {"ember": "the kernel maps the file; no handler counts",
                                   "qemu-pc": "RAM is read whole before the guest runs"}

    def mem(self, variant):
        return int(variant.split()[0])

    def script(self, vmm, variant):
        ticker = (f"i=0; while [ $i -lt {self.TICKS} ]; do i=$((i+1)); echo \"tick $i\"; "
                  "usleep 10000; done")
        cl = cmdline(ticker)
        mem = self.mem(variant)
        wait = ("i=0; until grep -q 'tick 20' vm.txt; do i=$((i+1)); [ $i -gt 600 ] && "
                "{ echo 'bench: the source never ticked'; tail -20 vm.txt; exit 1; }; "
                "busybox usleep 50000; done\n")
        if vmm.startswith("ember"):
            run = ember_cmd(mem, 1, cl, extra="--api-sock api.sock")
            uffd = vmm == "ember-uffd"
            # The handler serves every restore; a second restore runs 2 s
            # for its count of pages served in the first second.
            handler = ("uffd_handler $PWD/h.sock s.mem > h.txt 2>&1 & h=$!\n"
                       "until [ -S h.sock ]; do busybox usleep 10000; done\n") if uffd else ""
            mem_opt = "--mem-uffd $PWD/h.sock" if uffd else "--mem s.mem"
            after = ("timeout -s TERM 2 \"$EMBER\" restore --snapshot s.state "
                     f"{mem_opt} < /dev/null > /dev/null 2>&1\n"
                     "kill $h; wait $h; sed 's/^/bench: /' h.txt\n") if uffd else ""
            return (f"( {run} ) < /dev/null > vm.txt 2>&1 & vm=$!\n" + wait +
                    '"$EMBER" snapshot --api-sock api.sock --snapshot s.state --mem s.mem '
                    "--keep-paused || exit 1\n"
                    "kill -9 $vm; wait $vm\n"
                    'echo "bench: files $(du -k s.state s.mem | awk \'{t += $1} END {print t}\') '
                    '$(wc -c < s.state)"\n'
                    + handler +
                    f"runwatch {self.RESTORED} -- \"$EMBER\" restore --snapshot s.state "
                    f"{mem_opt} < /dev/null\n" + after)
        src = qemu_cmd("pc", mem, 1, cl).replace("-serial stdio",
                                                 "-serial file:/proc/self/fd/1 -qmp stdio")
        dst = qemu_cmd("pc", mem, 1, cl, extra="-incoming 'exec:cat s.mig'")
        return (f"runwatch --when 'tick 20' --send '{self.QMP_START}' "
                f"--when 'tick 20' --send '{self.QMP_MIGRATE}' "
                "--when '\"completed\"' --send '{\"execute\":\"quit\"}\\n' --timeout 120 "
                f"-- sh -c {shlex.quote(src)} > vm.txt 2>&1\n"
                "grep -q '\"completed\"' vm.txt || { echo 'bench: migration did not complete'; "
                "tail -20 vm.txt; exit 1; }\n"
                'echo "bench: files $(du -k s.mig | cut -f1) 0"\n'
                f"runwatch {self.RESTORED} -- sh -c {shlex.quote('exec ' + dst)} < /dev/null\n")

    def record(self, vmm, variant, output):
        stamp = re.search(r"runwatch: stamp ([\d.]+) tick ", output)
        exited = re.search(r"runwatch: exited ([\d.]+) status (\d+) maxrss (\d+)", output)
        files = re.search(r"^bench: files (\d+) (\d+)$", output, re.M)
        # runwatch's stamp can land inside the line it matched (COM1 sends a
        # character at a time): take it out before reading the ticks.
        restored = re.sub(r"runwatch: stamp [\d.]+ tick \n", "",
                          output[files.end():]) if files else ""
        ticks = [int(t) for t in re.findall(r"tick (\d+)", restored)]
        if not stamp or not exited or exited.group(2) not in ("0", "143") or not files:
            return "no clean restore (tick, exit or file sizes missing)"
        if not ticks or ticks[0] <= 20 or INIT_LINE in restored:
            return "the restored guest did not continue from its snapshot"
        by_title = {f.title: f for f in self.figures}
        by_title[f"restore → next console line, {variant}"].add(vmm, float(stamp.group(1)))
        by_title[f"peak RSS of the restored VMM, {variant}"].add(vmm, int(exited.group(3)))
        by_title[f"saved files on disk (allocated), {variant}"].add(vmm, int(files.group(1)))
        if vmm.startswith("ember"):
            by_title[f"state file alone, {variant}"].add(vmm, int(files.group(2)) / 1024)
        if vmm == "ember-uffd":
            first = re.findall(r"^bench: uffd_handler: vm 2: (\d+) pages in the first second",
                               output, re.M)
            if not first:
                return "the handler did not report the second restore's first second"
            by_title[f"pages faulted in, first second after restore, {variant}"].add(
                vmm, int(first[0]))
        return None

    def files(self, ctx):
        return {}

    def note(self):
        return ("1 vCPU; the guest prints 'tick N' every 10 ms and is saved after tick 20 "
                "(QEMU: a live migration started then); the restored VMM is stopped at the "
                "guest's first line after the restore, which must continue the count. "
                "Restore time: from the restoring process's start to "
                "the guest's first tick after it (runwatch), which includes up to 10 ms of the "
                "guest's interrupted sleep. ember-uffd's RSS is ember's alone (the handler "
                "holds the memory file's pages). Files: `du` of ember's state + memory file (the "
                "memory file is sparse: zero and never-touched pages are holes) or of QEMU's "
                "migration stream (zero pages are compressed to flags).")


def time_to_accept(cmd, sock, limit=10.0):
    """Milliseconds from spawning cmd until its Unix socket accepts."""
    import socket as socketlib
    import time
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < limit and p.poll() is None:
            s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            try:
                s.connect(sock)
                return (time.monotonic() - t0) * 1000
            except OSError:
                time.sleep(0.001)
            finally:
                s.close()
        return None
    finally:
        p.kill()
        p.wait()


class SoftSuite:
    """Without hardware virtualization: ember's own CPU engine against QEMU's
    TCG, directly on this host (no nested harness), same kernel, initramfs,
    memory and one vCPU, with and without the kernel's crypto self-tests
    (cryptomgr.notests). Guest MIPS: the instructions ember's engine retired
    over the boot (it reports them with -v) over each VMM's time to
    power-off — the same guest work, so QEMU's figure is 'effective'.
    The 'work' variant (booted with cryptomgr.notests) times guest work
    between console lines, so that speed is not tuned to the boot alone:
    busybox gzip, md5sum and sha256sum over 2 MB of text, a syscall-heavy
    loop (dd with 1-byte blocks: 2 syscalls a byte), and a sequential
    O_DIRECT read of a virtio-blk disk (ioperf, in the guest)."""
    name = "soft"
    vmms = ["ember", "qemu-tcg"]
    variants = ["default", "notests", "work"]
    direct = True
    # QEMU's qemu64 model (AuthenticAMD family 15, like the engine's) with
    # the engine's extensions, so both guests take the same code paths
    # (all but SHA, which QEMU 7.2's TCG lacks; busybox does not use it).
    QEMU_CPU = ("qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+movbe,+rdrand,+pdpe1gb,+rdtscp,"
                "+bmi1,+bmi2,+adx,+fsgsbase,+aes,+pclmulqdq")
    DATA_LINES, SYSCALL_BYTES, BLK_MIB = 300000, 100000, 64
    # (figure, console line that starts it, console line that ends it)
    WORK = [("gzip -1, 2 MB of text", "bench: gzip start", "bench: gzip done"),
            ("md5sum, 2 MB", "bench: gzip done", "bench: md5 done"),
            ("sha256sum, 2 MB", "bench: md5 done", "bench: sha256 done"),
            (f"dd bs=1, {SYSCALL_BYTES // 1000}k bytes (2 syscalls a byte)", "bench: sha256 done",
             "bench: syscalls done")]

    def __init__(self, args):
        self.args = args
        self.insns = {v: [] for v in self.variants}
        self.figures = []
        for v in self.variants[:2]:
            self.figures += [Figure(f"VMM start → first init line, {v}", "ms"),
                             Figure(f"VMM start → guest power-off, {v}", "ms"),
                             Figure(f"guest MIPS over the boot, {v}", "MIPS",
                                    higher_is_better=True)]
        self.figures += [Figure(f"{w[0]}, work", "ms") for w in self.WORK]
        self.figures += [Figure(f"virtio-blk sequential read (O_DIRECT, 1 MiB), work", "MB/s",
                                higher_is_better=True)]

    def fig(self, title, variant):
        return next(f for f in self.figures if f.title == f"{title}, {variant}")

    def guest_cmd(self, variant):
        if variant != "work":
            return "poweroff -f"
        return (f"seq 1 {self.DATA_LINES} > /tmp/d; echo bench: gzip start; "
                "gzip -1 -c /tmp/d > /tmp/d.gz; echo bench: gzip done; "
                "md5sum /tmp/d > /dev/null; echo bench: md5 done; "
                "sha256sum /tmp/d > /dev/null; echo bench: sha256 done; "
                f"dd if=/dev/zero of=/dev/null bs=1 count={self.SYSCALL_BYTES} 2>/dev/null; "
                "echo bench: syscalls done; "
                f"ioperf seqread /dev/vda {self.BLK_MIB}; poweroff -f")

    def script(self, vmm, variant):
        cl = cmdline(self.guest_cmd(variant)) + ("" if variant == "default"
                                                 else " cryptomgr.notests")
        a = self.args
        work = variant == "work"
        initrd = '"$DATA/initrd.cpio"' if work else INITRD
        if vmm == "ember":
            cmd = ember_cmd(a.mem, 1, cl, initrd,
                            extra="--accel soft -v" + (" --disk path=disk.img" if work else ""))
        else:
            disk = (" -drive file=disk.img,format=raw,if=none,id=d0 "
                    "-device virtio-blk-device,drive=d0" if work else "")
            cmd = (f"qemu-system-x86_64 -M microvm,rtc=on -accel tcg -cpu {self.QEMU_CPU} "
                   f"-m {a.mem} -smp 1 -nodefaults -no-user-config -display none "
                   f"-serial stdio -no-reboot -kernel {KERNEL} -initrd {initrd}{disk} "
                   f"-append '{cl}{self.qemu_tsc_words()}'")
        stamps = [INIT_LINE] + sorted({p for w in self.WORK for p in w[1:]} if work else [])
        setup = f"truncate -s {self.BLK_MIB * 2}M disk.img\n" if work else ""
        return (setup + "runwatch " + " ".join(f"--stamp '{p}'" for p in stamps) +
                f" -- sh -c {shlex.quote(cmd)} < /dev/null")

    @staticmethod
    def host_tsc_khz():
        """The host's TSC rate, which TCG's guest TSC runs at, from
        /proc/cpuinfo when the kernel knows it (constant_tsc, tsc_known_freq)."""
        try:
            with open("/proc/cpuinfo") as f:
                info = f.read()
        except OSError:
            return None
        flags = re.search(r"^flags\s*:(.*)$", info, re.M)
        mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)
        if not (flags and mhz and "constant_tsc" in flags.group(1).split()):
            return None
        return int(float(mhz.group(1)) * 1000)

    def qemu_tsc_words(self):
        """QEMU's microvm guest has no kvm-clock under TCG and calibrates its
        TSC against the PIT, which fails on a loaded host ('Unable to
        calibrate against PIT') and leaves the guest spinning. The host's
        TSC rate on its command line skips that; it can only make QEMU
        faster (ember's guest reads its rate from kvm-clock)."""
        khz = self.host_tsc_khz()
        return f" tsc_early_khz={khz}" if khz else ""

    def record(self, vmm, variant, output):
        def stamp(p):
            m = re.search(r"runwatch: stamp ([\d.]+) " + re.escape(p), output)
            return float(m.group(1)) if m else None
        exited = re.search(r"runwatch: exited ([\d.]+) status (\d+)", output)
        if not exited or int(exited.group(2)) != 0 or stamp(INIT_LINE) is None:
            return "no clean run (exit report or init line missing)"
        if variant == "work":
            times = [(w[0], stamp(w[1]), stamp(w[2])) for w in self.WORK]
            blk = re.search(r"ioperf: seqread ([\d.]+) MB/s", output)
            if any(t0 is None or t1 is None for _, t0, t1 in times) or not blk:
                return "the guest did not report every workload"
            for title, t0, t1 in times:
                self.fig(title, variant).add(vmm, t1 - t0)
            self.fig("virtio-blk sequential read (O_DIRECT, 1 MiB)", variant).add(
                vmm, float(blk.group(1)))
            return None
        if vmm == "ember":
            insns = re.search(r"instructions (\d+)", output)
            if not insns:
                return "ember did not report its instruction count"
            self.insns[variant].append(int(insns.group(1)))
        if not self.insns[variant]:
            return "no instruction count from ember's run yet"
        off_ms = float(exited.group(1))
        self.fig("VMM start → first init line", variant).add(vmm, stamp(INIT_LINE))
        self.fig("VMM start → guest power-off", variant).add(vmm, off_ms)
        work = statistics.median(self.insns[variant])
        self.fig("guest MIPS over the boot", variant).add(vmm, work / off_ms / 1000.0)
        return None

    def note(self):
        load = os.getloadavg()
        return (f"{self.args.mem} MiB, 1 vCPU, directly on this host: `ember run --accel soft` "
                f"against `qemu-system-x86_64 -M microvm,rtc=on -accel tcg -cpu "
                f"{self.QEMU_CPU}`; 'notests' adds cryptomgr.notests to both command lines; "
                f"QEMU's also gets `{self.qemu_tsc_words().strip() or 'no tsc_early_khz'}` "
                "(the host's TSC rate: without it its guest's PIT calibration fails under "
                "load; ember's guest reads the rate from kvm-clock). "
                "MIPS = the instructions ember's engine retired during the boot (median over "
                "its runs) / each VMM's time to power-off. 'work': booted with "
                f"cryptomgr.notests, times between the guest's console lines for busybox gzip "
                f"-1, md5sum and sha256sum of `seq 1 {self.DATA_LINES}` (2 MB), dd of "
                f"{self.SYSCALL_BYTES} 1-byte blocks from /dev/zero to /dev/null, and ioperf's "
                f"sequential O_DIRECT read of {self.BLK_MIB} MiB from a virtio-blk disk "
                "(ember: virtio-pci; QEMU microvm: virtio-mmio), a sparse file on the host. "
                f"Host load average at the end of the suite: {load[0]:.2f} {load[1]:.2f} "
                f"{load[2]:.2f}.")

    def files(self, ctx):
        return {"initrd.cpio": ctx["guest_initrd_ioperf"]}


class FsSuite:
    """A host directory in the guest: ember's virtio-fs (its in-process FUSE
    server) next to ember's own virtio-blk with ext4 on an image in the same
    place (L1's RAM), QEMU's 9p (`-virtfs`'s backend on virtio-mmio, with
    the project's minimal kernel only: Debian's cloud kernel is built
    without 9p), and L1 itself on that file system. QEMU's virtio-fs is not
    a peer: it needs a virtiofsd that Debian 12 does not ship."""
    name = "fs"
    vmms = ["ember", "ember-tuned", "ember-direct", "ember-blk-ext4", "qemu-9p", "L1 host"]
    MIB, FILES = 128, 10000
    # ember-direct measures data only: with cache=never every metadata
    # operation is a round trip, as in the plain variant's pass, and that
    # pass set off the L2 triple fault or wedge of L1's nested SVM (see
    # tests/harness/nested.py) in 3 of 3 L1s on 2026-12-05
    DATA_ONLY = ("ember-direct",)
    timeout = 600  # 30000 file operations through nested KVM
    # 9p wrote at 0.9 MB/s and did under 67 metadata ops/s in the harness
    # (2026-12-02): its pass needs about half an hour
    timeouts = {"qemu-9p": 2700}

    def __init__(self, args):
        self.args = args
        if args.guest_kernel != "min":
            self.vmms = [v for v in self.vmms if v != "qemu-9p"]
        self.figures = [Figure("sequential write + fsync, 1 MiB blocks", "MB/s", True),
                        Figure("sequential read, 1 MiB blocks (cold)", "MB/s", True),
                        Figure("random read, 4 KiB blocks", "IOPS", True),
                        Figure(f"metadata: create + stat + unlink of {self.FILES} files",
                               "ops/s", True)]
        self.figures[-1].na = {v: "data passes only" for v in self.DATA_ONLY}

    def script(self, vmm):
        files = 0 if vmm in self.DATA_ONLY else self.FILES
        work = f"fsperf /mnt {self.MIB} {files}"
        if vmm == "L1 host":
            return f"mkdir -p l1dir && /usr/bin/fsperf l1dir {self.MIB} {self.FILES}\n"
        if vmm in ("ember", "ember-tuned", "ember-direct"):
            # tuned: cache=always, the guest trusting its dentries and
            # attributes as 9p's cache=loose does (cache=auto revalidates
            # after 1 s), and a 1 MiB readahead window as the guest's init
            # gives a --rootfs share (FUSE's default is 128 KiB)
            tuned = vmm == "ember-tuned"
            setup = "mkdir -p share\n"
            extra = "--share share,tag=bench" + {"ember-tuned": ",cache=always",
                                                 "ember-direct": ",cache=never"}.get(vmm, "")
            ra = ("echo 1024 > /sys/class/bdi/$(awk '$5 == \"/mnt\" { print $3 }' "
                  "/proc/self/mountinfo)/read_ahead_kb && " if tuned else "")
            guest = f"mount -t virtiofs bench /mnt && {ra}{work}"
        elif vmm == "qemu-9p":
            # cache=loose: the guest's page cache in front of 9p, as
            # virtio-fs's cache=auto; msize 512 KiB, 9p2000.L
            guest = ("mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose "
                     f"bench /mnt && {work}")
            extra = ("-fsdev local,id=fs0,path=share,security_model=none "
                     "-device virtio-9p-device,fsdev=fs0,mount_tag=bench")
            return "mkdir -p share\n" + qemu_cmd("microvm,rtc=on", 512, 1, cmdline(guest),
                                                 '"$DATA/initrd.cpio"', extra)
        else:
            setup = "truncate -s 1G disk.img && /usr/bin/mkfs.ext4 -q -F disk.img\n"
            extra = "--disk path=disk.img"
            guest = f"mount -t ext4 /dev/vda /mnt && {work}"
        return setup + ember_cmd(512, 1, cmdline(guest), '"$DATA/initrd.cpio"', extra)

    def record(self, vmm, output):
        found = [re.search(p, output) for p in (
            r"fsperf: seqwrite ([\d.]+) MB/s", r"fsperf: seqread ([\d.]+) MB/s",
            r"fsperf: randread ([\d.]+) IOPS direct=(\d)", r"fsperf: meta \d+ files ([\d.]+) ops/s")]
        if vmm in self.DATA_ONLY:
            found = found[:3]
        if not all(found):
            return f"fsperf did not report all {len(found)} figures"
        for fig, m in zip(self.figures, found):
            fig.add(vmm, float(m.group(1)))
        self.direct = getattr(self, "direct", {})
        self.direct[vmm] = found[2].group(2) == "1"
        return None

    def files(self, ctx):
        return {"initrd.cpio": ctx["guest_initrd_tools"]}

    def note(self):
        direct = getattr(self, "direct", {})
        how = ", ".join(f"{v}: {'O_DIRECT' if d else 'buffered'}" for v, d in direct.items())
        return (f"fsperf in the guest (512 MiB, 1 vCPU): {self.MIB} MiB written (fsync "
                f"included) and read back after dropping the page cache, 3 s of random 4 KiB "
                f"reads of it ({how or 'O_DIRECT where allowed'}), then {self.FILES} empty "
                "files created, stat()ed and unlinked in one directory (ops/s over the three "
                "passes). ember: `--share` (virtio-fs, cache=auto), the guest mounts it; "
                "ember-tuned: the same with `cache=always` (dentries and attributes trusted "
                "for a day, as 9p's cache=loose trusts them) and the guest's readahead window "
                "on the share at 1 MiB (`read_ahead_kb`; FUSE's default is 128 KiB); "
                "ember-direct: `cache=never` (direct I/O: the guest's FUSE client moves data "
                "between the request and the program's own buffer, no page cache copy; no "
                "name or attribute caching), the data passes only; "
                "ember-blk-ext4: a 1 GiB sparse image made ext4 in L1, `--disk`; both in L1's "
                "RAM; 'L1 host': fsperf on L1's own root (a RAM file system) for reference. "
                + ("qemu-9p: `-M microvm,rtc=on`, `-fsdev local,security_model=none` + "
                   "`virtio-9p-device`, mounted `trans=virtio,version=9p2000.L,msize=524288,"
                   "cache=loose`. " if "qemu-9p" in self.vmms else
                   "QEMU's 9p is not here: Debian's cloud guest kernel has no 9p "
                   "(CONFIG_NET_9P is not set); `--guest-kernel min` adds it."))


class DensitySuite:
    """Idle default guests packed into one host: started one after another
    (each once the one before it reached init), measured at N = 1, 10 and 20
    after they settle — the processes' proportional set sizes (PSS: a page
    shared by k processes counts 1/k to each, so their sum is the memory the
    VMs cost the host), their guest-RAM mappings' resident pages, and what
    remains (the VMM's own); then the same again after the host's KSM ran,
    and KSM's merges undone before the next VMs start. Variants: without
    and with free page reporting (ember's --balloon reporting=on; QEMU's
    virtio-balloon-device,free-page-reporting=on). One L1 boot per VMM and
    variant; heavy, so one run whatever --runs says."""
    name = "density"
    vmms = ["ember", "qemu-microvm"]
    variants = ["plain", "reporting"]
    CHECKPOINTS = (1, 10, 20)
    SETTLE = 30  # s after the Nth VM's init line: reporting waits ~2 s, then works in 2 MiB blocks
    KSM_SCANS, KSM_LIMIT = 2, 120  # KSM merges a page on its second scan; at most this many s
    max_runs = 1
    timeout = 3000
    l1_mem_mb = 6144  # 20 guests of 256 MiB that keep what they touched, and L1 itself
    GUEST = "echo idle; sleep 1000000"
    KINDS = [("host memory per VM (PSS sum / N)", "pss"),
             ("guest RAM resident per VM", "guest_rss"),
             ("VMM's own per VM (RSS − guest RSS)", "own_rss"),
             ("VMM's own per VM (PSS − guest PSS)", "own_pss"),
             ("L1 MemAvailable drop / N", "avail"),
             ("start → first init line of the Nth VM", "boot")]

    def __init__(self, args):
        self.args = args
        self.checkpoints = tuple(n for n in self.CHECKPOINTS if n <= args.density_max)
        if args.density_max not in self.checkpoints:
            self.checkpoints += (args.density_max,)
        self.figures, self.by_key = [], {}
        for tag in [t for v in self.variants for t in (v, v + "+ksm")]:
            for title, kind in self.KINDS:
                if kind == "boot" and tag.endswith("+ksm"):
                    continue  # KSM runs only between boots
                for n in self.checkpoints:
                    unit, scale = ("ms", 1.0) if kind == "boot" else ("MiB", 1 / 1024)
                    fig = Figure(f"{title}, N={n}, {tag}", unit, scale=scale)
                    self.figures.append(fig)
                    self.by_key[(tag, kind, n)] = fig
        self.notes = {}

    def vm_cmd(self, vmm, variant):
        a, cl = self.args, cmdline(self.GUEST)
        if vmm == "ember":  # --ksm only marks guest RAM mergeable; ksmd decides
            extra = ("--balloon amount=0,reporting=on " if variant == "reporting" else "")
            return ember_cmd(a.mem, a.cpus, cl, extra=extra + "--ksm")
        extra = ("-device virtio-balloon-device,free-page-reporting=on"
                 if variant == "reporting" else "")
        return qemu_cmd("microvm,rtc=on", a.mem, a.cpus, cl, extra=extra)

    def script(self, vmm, variant):
        guest_kib = self.args.mem * 1024
        # One line per process: RSS, PSS, and those of its guest-RAM mapping
        # (the one mapping of the guest's size, give or take alignment).
        smaps = ("awk -v g=%d '/^Size:/ {s = $2} /^Rss:/ {r += $2; if (s >= g && s <= g + 8192) "
                 "gr += $2} /^Pss:/ {p += $2; if (s >= g && s <= g + 8192) gp += $2} "
                 "END {print r + 0, p + 0, gr + 0, gp + 0}' /proc/$p/smaps" % guest_kib)
        # The first VMM's resident memory by mapping (pathname, or anon + size).
        by_map = ("awk '/^[0-9a-f]+-[0-9a-f]+ / {n = $6; if (n == \"\") n = \"anon\"} "
                  "/^Size:/ {s = $2} /^Rss:/ {r = $2} /^Pss:/ {if (r) print \"map\", n, s, r, $2}' "
                  "/proc/$(head -1 pids)/smaps")
        return f"""
K=/sys/kernel/mm/ksm
echo 2 > $K/run; echo 2000 > $K/pages_to_scan; echo 10 > $K/sleep_millisecs
up() {{ awk '{{printf "%d", $1 * 1000}}' /proc/uptime; }}
avail() {{ awk '/^MemAvailable/ {{print $2}}' /proc/meminfo; }}
measure() {{
    for p in $(cat pids); do {smaps}; done |
        awk -v n=$1 -v t=$2 -v a0=$avail0 -v a=$(avail) '{{r += $1; p += $2; gr += $3; gp += $4}}
            END {{print "mem", n, t, r, p, gr, gp, a0 - a}}'
}}
ksm_settle() {{
    s0=$(cat $K/full_scans); echo 1 > $K/run; i=0
    while [ $(( $(cat $K/full_scans) - s0 )) -lt {self.KSM_SCANS} ] && [ $i -lt {self.KSM_LIMIT} ]; do
        sleep 1; i=$((i+1))
    done
    echo "ksm $1 $(cat $K/pages_sharing) $(cat $K/pages_shared) $(( $(cat $K/full_scans) - s0 )) $i"
}}
sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
avail0=$(avail)
: > pids
for n in $(seq 1 {self.args.density_max}); do
    t0=$(up)
    {self.vm_cmd(vmm, variant)} < /dev/null > out.$n 2>&1 &
    echo $! >> pids
    i=0; until grep -q '{INIT_LINE}' out.$n; do
        i=$((i+1)); [ $i -gt 6000 ] && break
        kill -0 $! 2>/dev/null || break
        busybox usleep 50000
    done
    grep -q '{INIT_LINE}' out.$n || {{ echo "vm $n did not reach init"; tail -5 out.$n; break; }}
    echo "boot $n $(( $(up) - t0 ))"
    case " {' '.join(map(str, self.checkpoints))} " in *" $n "*)
        sleep {self.SETTLE}; measure $n {variant}
        [ $n = 1 ] && {by_map}
        ksm_settle $n; measure $n {variant}+ksm
        echo 2 > $K/run;;  # unmerged again before more VMs start
    esac
done
cat /proc/loadavg | sed 's/^/loadavg /'
for p in $(cat pids); do kill $p 2>/dev/null; done
for p in $(cat pids); do wait $p 2>/dev/null; done
echo density-done
"""

    def record(self, vmm, variant, output):
        boots = {int(n): float(ms) for n, ms in re.findall(r"^boot (\d+) (\d+)$", output, re.M)}
        mems = re.findall(r"^mem (\d+) (\S+) (\d+) (\d+) (\d+) (\d+) (-?\d+)$", output, re.M)
        failed = re.search(r"^vm (\d+) did not reach init", output, re.M)
        if not mems:
            return f"VM {failed.group(1)} did not reach init" if failed else "no measurement"
        for m in mems:
            n, tag = int(m[0]), m[1]
            rss, pss, grss, gpss, avail = (int(x) for x in m[2:])
            values = {"pss": pss / n, "guest_rss": grss / n, "own_rss": (rss - grss) / n,
                      "own_pss": (pss - gpss) / n, "avail": avail / n, "boot": boots.get(n)}
            for kind, v in values.items():
                if (tag, kind, n) in self.by_key and v is not None:
                    self.by_key[(tag, kind, n)].add(vmm, v)
        for n, sharing, shared, scans, secs in re.findall(
                r"^ksm (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.M):
            self.notes.setdefault("ksm", []).append(
                f"{vmm} {variant} N={n}: {int(sharing) * 4 / 1024:.0f} MiB of pages merged into "
                f"{int(shared) * 4 / 1024:.0f} MiB ({scans} full scans in {secs} s)")
        load = re.search(r"^loadavg ([\d.]+ [\d.]+ [\d.]+)", output, re.M)
        if load:
            self.notes.setdefault("load", []).append(f"{vmm} {variant}: {load.group(1)}")
        maps = re.findall(r"^map (\S+) (\d+) (\d+) (\d+)$", output, re.M)
        if maps:
            self.maps = getattr(self, "maps", {})
            self.maps[(vmm, variant)] = maps
        reached = max(int(m[0]) for m in mems)
        if reached < self.checkpoints[-1]:
            return f"reached N={reached} only" + (
                f" (VM {failed.group(1)} did not reach init)" if failed else "")
        return None

    def files(self, ctx):
        return {}

    def breakdown(self):
        """The first VMM's own resident memory by mapping, at N=1."""
        lines = []
        for (vmm, variant), maps in sorted(getattr(self, "maps", {}).items()):
            total = {}
            for name, size, rss, pss in maps:
                if self.args.mem * 1024 <= int(size) <= self.args.mem * 1024 + 8192:
                    continue  # guest RAM
                key = os.path.basename(name) if name != "anon" else "anonymous"
                r, p = total.get(key, (0, 0))
                total[key] = (r + int(rss), p + int(pss))
            top = sorted(total.items(), key=lambda kv: -kv[1][0])
            lines.append(f"- {vmm} {variant}, N=1, own RSS by mapping (KiB, RSS/PSS): " +
                         ", ".join(f"{k} {r}/{p}" for k, (r, p) in top if r))
        return "\n".join(lines)

    def note(self):
        a = self.args
        ksm = "; ".join(self.notes.get("ksm", []))
        load = "; ".join(self.notes.get("load", []))
        return (f"Idle default guests ({a.mem} MiB, {a.cpus} vCPU, {guest_kernel_words()}, "
                "the guest's command `sleep`), started one after another in one L1 host "
                f"({self.l1_mem_mb} MiB, 2 vCPUs): each VMM starts once the one before it "
                f"printed its first init line; at N = {', '.join(map(str, self.checkpoints))} "
                f"the VMs settle {self.SETTLE} s, then every VMM's /proc/PID/smaps is summed; "
                f"then L1's KSM runs (2000 pages per 10 ms) until {self.KSM_SCANS} more full "
                f"scans (at most {self.KSM_LIMIT} s) and they are summed again ('+ksm'); KSM "
                "is then stopped and its merges undone before more VMs start. ember runs "
                "with `--ksm` (guest RAM offered to KSM), QEMU marks guest RAM mergeable by "
                "default. Host memory per VM: the sum of the processes' PSS over N (shared "
                "library text, and pages KSM merged, divided among the processes that map "
                "them). Guest RAM resident: the guest-RAM mapping's RSS. The VMM's own: the "
                "rest (RSS-based as in the boot suite, and PSS-based). L1 MemAvailable drop: "
                "L1's MemAvailable before the first VM minus now, over N (includes the host "
                "kernel's per-VM cost: page tables, KVM's structures, and KSM's). 'reporting': "
                "ember `--balloon amount=0,reporting=on`, QEMU `-device "
                "virtio-balloon-device,free-page-reporting=on`. One run (one L1 boot per VMM "
                "and variant). " + (f"KSM: {ksm}. " if ksm else "") +
                (f"L1 load average at the end: {load}." if load else "") +
                ("\n\n" + self.breakdown() if getattr(self, "maps", None) else ""))


SUITES = {"boot": BootSuite, "blk": BlkSuite, "net": NetSuite, "vsock": VsockSuite, "fs": FsSuite,
          "api": ApiSuite, "snapshot": SnapshotSuite, "exit": ExitSuite, "soft": SoftSuite,
          "density": DensitySuite, "bootprof": BootProfileSuite}


# --- running and reporting ---------------------------------------------------

def summarize(values):
    return (statistics.median(values), min(values), max(values)) if values else None


def fmt(stat, unit, why=None):
    if stat is None:
        return f"n/a ({why})" if why else "n/a (no run measured it)"
    med, lo, hi = stat
    digits = 0 if max(abs(med), abs(hi)) >= 100 else 1
    return f"{med:.{digits}f} {unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def render_suite(suite, failures, notes):
    peers = [v for v in suite.vmms if v != "ember"]
    lines = [f"## {suite.name}", ""]
    if hasattr(suite, "note"):
        lines += [suite.note(), ""]
    lines += ["| figure | " + " | ".join(suite.vmms) + " | " +
              " | ".join(f"ember/{p}" for p in peers) + " |",
              "|" + " --- |" * (1 + len(suite.vmms) + len(peers))]
    for fig in suite.figures:
        stats = {v: summarize(fig.samples.get(v, [])) for v in suite.vmms}
        ratios = [f"{stats['ember'][0] / stats[p][0]:.2f}" if stats.get("ember") and stats[p]
                  and stats[p][0] else "n/a" for p in peers]
        lines.append(f"| {fig.title} | " + " | ".join(fmt(stats[v], fig.unit, fig.na.get(v))
                                                    for v in suite.vmms) +
                     " | " + " | ".join(ratios) + " |")
    lines.append("")
    for v in suite.vmms:
        if failures.get(v):
            lines.append(f"- {v}: {len(failures[v])} run(s) failed to measure: "
                         + "; ".join(failures[v]))
        for n in sorted(notes.get(v, ())):
            lines.append(f"- {v}: {n}")
    return "\n".join(lines) + "\n"


def run_suite(suite, host, ctx, runs):
    failures, notes = {}, {}
    if hasattr(suite, "local"):
        suite.local(runs)
    variants = getattr(suite, "variants", [None])
    runs = min(runs, getattr(suite, "max_runs", runs))
    for r in range(runs):
        for variant in variants:
            for vmm in suite.vmms:  # alternate within each round
                run_case(suite, host, ctx, r, vmm, variant, failures, notes)
    return failures, notes


def run_case(suite, host, ctx, r, vmm, variant, failures, notes):
    name = f"{suite.name}-{vmm}-{variant or ''}-{r}".replace(" ", "_")
    args = (vmm, variant) if variant else (vmm,)
    timeout = getattr(suite, "timeouts", {}).get(vmm, getattr(suite, "timeout", 240))
    job = Job(name, suite.script(*args), timeout=timeout,
              files=suite.files(ctx))
    host.run([job], label=f"bench-{name}")
    err = job.error or suite.record(*args, job.output)
    if "XSAVE consistency problem" in job.output:
        notes.setdefault(vmm, set()).add("guest warned 'XSAVE consistency problem'")
    label = f"{vmm} {variant}" if variant else vmm
    if err:
        failures.setdefault(vmm, []).append(f"{variant + ': ' if variant else ''}{err}")
        kept = os.path.join(FAILED_OUTPUT_DIR, f"failed-{name}.txt")
        os.makedirs(FAILED_OUTPUT_DIR, exist_ok=True)
        with open(kept, "w") as f:  # the whole of it, for a failure worth a look
            f.write(job.output)
        print(f"  {suite.name} {label} run {r}: FAILED to measure: {err} (whole output in "
              f"{os.path.relpath(kept, ROOT)})\n" + job.output[-1200:], flush=True)
    else:
        last = ", ".join(f"{f.title.split(',')[0]} {f.samples[vmm][-1]:.1f} {f.unit}"
                         for f in suite.figures
                         if f.samples.get(vmm) and (not variant or variant in f.title))
        print(f"  {suite.name} {label} run {r}: {last}", flush=True)


def plot_boot(suite, path):
    """The boot suite's start → init samples per VMM as a gnuplot PNG: each
    run a point, each VMM's median a bar. Returns the PNG's path or None."""
    fig = suite.figures[0]
    vmms = [v for v in suite.vmms if fig.samples.get(v)]
    if not vmms or not shutil.which("gnuplot"):
        return None
    data = path + ".dat"
    with open(data, "w") as f:
        for i, v in enumerate(vmms):
            for x in fig.samples[v]:
                f.write(f"{i} {x:.1f}\n")
    medians = "\n".join(f"set arrow from {i - 0.3},{statistics.median(fig.samples[v]):.1f} "
                        f"to {i + 0.3},{statistics.median(fig.samples[v]):.1f} nohead lw 2"
                        for i, v in enumerate(vmms))
    xtics = ", ".join(f'"{v}" {i}' for i, v in enumerate(vmms))
    script = (f'set terminal pngcairo size 800,500\nset output "{path}"\n'
              f'set title "{fig.title} ({len(fig.samples[vmms[0]])} runs each)"\n'
              f'set ylabel "ms"\nset xtics ({xtics})\nset xrange [-0.5:{len(vmms) - 0.5}]\n'
              f'set yrange [0:*]\nset grid ytics\nset key bottom right\n{medians}\n'
              f'plot "{data}" using 1:2 with points pt 7 ps 1.2 title "runs (bar: median)"\n')
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
    except subprocess.CalledProcessError:
        return None
    finally:
        os.unlink(data)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--baseline", metavar="EMBER",
                    help="another ember binary (an earlier build) to run side by side in the "
                         "boot and exit suites, to see what a change costs")
    ap.add_argument("--guest-kernel", choices=("debian", "min"), default="debian",
                    help="the guest's kernel: Debian's cloud kernel (build/guest) or the "
                         "project's minimal one (build/guest-min, 'make guest-kernel')")
    ap.add_argument("--pvh", action="store_true",
                    help="boot suite: also boot the kernel's vmlinux at its PVH entry "
                         "(ember-pvh, qemu-microvm-pvh)")
    ap.add_argument("--density-max", type=int, default=20,
                    help="density suite: how many VMs at most (checkpoints 1, 10, 20 up to it)")
    ap.add_argument("--vmms", default="",
                    help="only these of each suite's VMMs (comma-separated, e.g. ember,qemu-9p)")
    ap.add_argument("--guest-append", metavar="WORDS", default="",
                    help="add these words to every guest's kernel command line, for every "
                         "VMM alike (e.g. nokaslr)")
    ap.add_argument("--l1-log", metavar="FILE",
                    help="nested: append every L1's console to FILE as it runs")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if re.search(r"['\\]", args.guest_append):
        sys.exit("bench: --guest-append takes plain words (no quote or backslash)")
    common.GUEST_APPEND = args.guest_append.strip()
    guest_dir = os.path.join(args.build, "guest" if args.guest_kernel == "debian" else
                             "guest-min")
    if not os.path.exists(os.path.join(guest_dir, "vmlinux")):
        sys.exit(f"bench: {guest_dir} has no vmlinux (make guest / make guest-kernel)")
    os.environ["EMBER_TEST_GUEST_DIR"] = guest_dir  # what the hosts give the jobs as $GUEST
    hw, why = host_has_hw_kvm()
    mode = "direct (hardware KVM)" if hw else f"nested harness ({why}), one run per fresh L1"
    print(f"bench: {mode}; {args.runs} runs per VMM", flush=True)
    work = tempfile.mkdtemp(prefix="ember-bench-")
    initrd = build_initrd_with(
        {"/usr/bin/ioperf": os.path.join(args.build, "tools", "ioperf"),
         "/usr/bin/tcpperf": os.path.join(args.build, "tools", "tcpperf"),
         "/usr/bin/vsockperf": os.path.join(args.build, "tools", "vsockperf"),
         "/usr/bin/fsperf": os.path.join(args.build, "tools", "fsperf")},
        os.path.join(guest_dir, "initramfs.cpio"),
        os.path.join(work, "initrd-tools.cpio"))
    ctx = {"guest_initrd_ioperf": initrd, "guest_initrd_tools": initrd}
    if hw:
        host = DirectHost(args.build)
        os.environ["PATH"] = os.path.join(args.build, "tools") + ":" + os.environ["PATH"]
        if args.baseline:
            global baseline_path
            baseline_path = os.path.abspath(args.baseline)
    else:
        extra = l1_files(args.build)
        if args.baseline:
            extra.programs["/usr/bin/ember-baseline"] = os.path.abspath(args.baseline)
        host = NestedHost(args.build, extra=extra, smp=2, live_log=args.l1_log)
    sections, measured = [], False
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = os.path.join(HERE, "results")
    os.makedirs(results, exist_ok=True)
    direct, others = None, []
    try:
        for name in args.suites.split(","):
            suite = SUITES[name](args)
            if args.vmms:
                suite.vmms = [v for v in suite.vmms if v in args.vmms.split(",")]
            where = host
            if getattr(suite, "l1_mem_mb", None) and not hw:  # an L1 of its size
                where = NestedHost(args.build, extra=l1_files(args.build), smp=2,
                                   mem_mb=suite.l1_mem_mb)
                others.append(where)
            if getattr(suite, "direct", False) and not hw:
                if direct is None:
                    direct = DirectHost(args.build)
                    os.environ["PATH"] = (os.path.join(args.build, "tools") + ":" +
                                          os.environ["PATH"])
                where = direct
            failures, notes = run_suite(suite, where, ctx, args.runs)
            measured |= any(f.samples.get("ember") for f in suite.figures)
            sections.append(render_suite(suite, failures, notes))
            if name == "boot":
                png = plot_boot(suite, os.path.join(results, f"bench-{stamp}-boot.png"))
                sections[-1] += (f"\nPlot: `bench/results/{os.path.basename(png)}`\n" if png
                                 else "\nPlot: n/a (gnuplot missing or failed)\n")
    finally:
        host.close()
        for h in others:
            h.close()
        subprocess.run(["rm", "-rf", work])
    ember_bin = os.path.join(args.build, "ember")
    stripped = os.path.join(tempfile.gettempdir(), "ember-stripped")
    subprocess.run(["strip", "-o", stripped, ember_bin], check=True)
    report = (f"# ember benchmark ({datetime.date.today()})\n\nMode: {mode}. Median "
              f"(min–max) of {args.runs} runs; ratio = ember / peer, compare it with the "
              f"figure's direction (times and memory: lower is better; MB/s and IOPS: higher "
              f"is better). ember binary: {os.path.getsize(ember_bin) / 1024:.0f} KiB "
              f"({os.path.getsize(stripped) / 1024:.0f} KiB stripped)." +
              (f" Every guest's command line had `{common.GUEST_APPEND}` added." if
               common.GUEST_APPEND else "") + "\n\n" + "\n".join(sections))
    os.unlink(stripped)
    print("\n" + report)
    path = os.path.join(results, f"bench-{stamp}.md")
    with open(path, "w") as f:
        f.write(report)
    print(f"written to {os.path.relpath(path, ROOT)}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ember's figures side by side with QEMU (-accel kvm), measured alternately in
one run: in the nested harness on hosts without hardware KVM (one VMM run per
freshly booted L1, since later runs in the same L1 are slower), directly
otherwise. A benchmark, not a test: it never fails because a figure is slow,
only when it cannot measure.

Suites: boot (start -> first init line and -> power-off, peak RSS),
blk (virtio-blk sequential MB/s and random-read IOPS, with L1's own figure),
net (virtio-net TCP throughput each way, TAP and user mode)."""
import argparse
import base64
import datetime
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from nested import DirectHost, Job, L1Files, NestedHost, host_has_hw_kvm  # noqa: E402
from overlay import build_initrd_with  # noqa: E402

INIT_LINE = "ember-guest: init started"
QEMU_FILES = ["qboot.rom", "kvmvapic.bin", "linuxboot.bin", "linuxboot_dma.bin",
              "multiboot.bin", "multiboot_dma.bin", "pvh.bin"]
KERNEL, INITRD = '"$GUEST/vmlinuz"', '"$GUEST/initramfs.cpio"'


def cmdline(guest_cmd):
    b64 = base64.b64encode(guest_cmd.encode()).decode()
    return f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={b64}"


def ember_cmd(mem, cpus, cl, initrd=INITRD, extra=""):
    return (f'"$EMBER" run --kernel {KERNEL} --initrd {initrd} --mem {mem}M --cpus {cpus} '
            f"{extra} --cmdline '{cl}'")


def qemu_cmd(machine, mem, cpus, cl, initrd=INITRD, extra=""):
    return (f"qemu-system-x86_64 -M {machine} -accel kvm -cpu host -m {mem} -smp {cpus} "
            "-nodefaults -no-user-config -display none -serial stdio -no-reboot "
            "-L /usr/share/qemu -L /usr/share/seabios "
            f"-kernel {KERNEL} -initrd {initrd} {extra} -append '{cl}'")


def l1_files(build):
    files = {f"/usr/share/qemu/{f}": os.path.join("/usr/share/qemu", f) for f in QEMU_FILES}
    files["/usr/share/qemu/bios-microvm.bin"] = "/usr/share/qemu/qboot.rom"
    for f in os.listdir("/usr/share/seabios"):
        files[f"/usr/share/seabios/{f}"] = os.path.join("/usr/share/seabios", f)
    return L1Files(files=files, programs={
        "/usr/bin/qemu-system-x86_64": "/usr/bin/qemu-system-x86_64",
        "/usr/bin/runwatch": os.path.join(build, "tools", "runwatch"),
        "/usr/bin/ioperf": os.path.join(build, "tools", "ioperf"),
        "/usr/bin/tcpperf": os.path.join(build, "tools", "tcpperf"),
        "/usr/bin/curl": "/usr/bin/curl"})


class Figure:
    """One row of the report: samples per VMM."""

    def __init__(self, title, unit, higher_is_better=False, scale=1.0):
        self.title, self.unit = title, unit
        self.higher_is_better, self.scale = higher_is_better, scale
        self.samples = {}

    def add(self, vmm, value):
        self.samples.setdefault(vmm, []).append(value * self.scale)


# --- suites ----------------------------------------------------------------

class BootSuite:
    name = "boot"
    vmms = ["ember", "qemu-microvm", "qemu-pc"]

    def __init__(self, args):
        self.args = args
        self.figures = [Figure("VMM start → first init line", "ms"),
                        Figure("VMM start → guest power-off", "ms"),
                        Figure("peak RSS of the VMM", "MiB", scale=1 / 1024)]

    def script(self, vmm):
        cl = cmdline("poweroff -f")
        a = self.args
        cmd = {"ember": ember_cmd(a.mem, a.cpus, cl),
               "qemu-microvm": qemu_cmd("microvm,rtc=on", a.mem, a.cpus, cl),
               "qemu-pc": qemu_cmd("pc", a.mem, a.cpus, cl)}[vmm]
        return f"runwatch --stamp '{INIT_LINE}' -- sh -c {shlex.quote(cmd)}"

    def record(self, vmm, output):
        stamp = re.search(r"runwatch: stamp ([\d.]+) " + re.escape(INIT_LINE), output)
        exited = re.search(r"runwatch: exited ([\d.]+) status (\d+) maxrss (\d+)", output)
        if not exited or int(exited.group(2)) != 0 or not stamp:
            return "no clean run (exit report or init line missing)"
        for fig, value in zip(self.figures, (float(stamp.group(1)), float(exited.group(1)),
                                             int(exited.group(3)))):
            fig.add(vmm, value)
        return None

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


SUITES = {"boot": BootSuite, "blk": BlkSuite, "net": NetSuite, "api": ApiSuite}


# --- running and reporting ---------------------------------------------------

def summarize(values):
    return (statistics.median(values), min(values), max(values)) if values else None


def fmt(stat, unit):
    if stat is None:
        return "n/a"
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
        ratios = [f"{stats['ember'][0] / stats[p][0]:.2f}" if stats["ember"] and stats[p]
                  and stats[p][0] else "n/a" for p in peers]
        lines.append(f"| {fig.title} | " + " | ".join(fmt(stats[v], fig.unit)
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
    for r in range(runs):
        for variant in variants:
            for vmm in suite.vmms:  # alternate within each round
                run_case(suite, host, ctx, r, vmm, variant, failures, notes)
    return failures, notes


def run_case(suite, host, ctx, r, vmm, variant, failures, notes):
    name = f"{suite.name}-{vmm}-{variant or ''}-{r}".replace(" ", "_")
    args = (vmm, variant) if variant else (vmm,)
    job = Job(name, suite.script(*args), timeout=240, files=suite.files(ctx))
    host.run([job], label=f"bench-{name}")
    err = job.error or suite.record(*args, job.output)
    if "XSAVE consistency problem" in job.output:
        notes.setdefault(vmm, set()).add("guest warned 'XSAVE consistency problem'")
    label = f"{vmm} {variant}" if variant else vmm
    if err:
        failures.setdefault(vmm, []).append(f"{variant + ': ' if variant else ''}{err}")
        print(f"  {suite.name} {label} run {r}: FAILED to measure: {err}\n"
              + job.output[-1200:], flush=True)
    else:
        last = ", ".join(f"{f.title.split(',')[0]} {f.samples[vmm][-1]:.1f} {f.unit}"
                         for f in suite.figures
                         if f.samples.get(vmm) and (not variant or variant in f.title))
        print(f"  {suite.name} {label} run {r}: {last}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--suites", default=",".join(SUITES))
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    hw, why = host_has_hw_kvm()
    mode = "direct (hardware KVM)" if hw else f"nested harness ({why}), one run per fresh L1"
    print(f"bench: {mode}; {args.runs} runs per VMM", flush=True)
    work = tempfile.mkdtemp(prefix="ember-bench-")
    initrd = build_initrd_with(
        {"/usr/bin/ioperf": os.path.join(args.build, "tools", "ioperf"),
         "/usr/bin/tcpperf": os.path.join(args.build, "tools", "tcpperf")},
        os.path.join(args.build, "guest", "initramfs.cpio"),
        os.path.join(work, "initrd-tools.cpio"))
    ctx = {"guest_initrd_ioperf": initrd, "guest_initrd_tools": initrd}
    if hw:
        host = DirectHost(args.build)
        os.environ["PATH"] = os.path.join(args.build, "tools") + ":" + os.environ["PATH"]
    else:
        host = NestedHost(args.build, extra=l1_files(args.build), smp=2)
    sections, measured = [], False
    try:
        for name in args.suites.split(","):
            suite = SUITES[name](args)
            failures, notes = run_suite(suite, host, ctx, args.runs)
            measured |= any(f.samples.get("ember") for f in suite.figures)
            sections.append(render_suite(suite, failures, notes))
    finally:
        host.close()
        subprocess.run(["rm", "-rf", work])
    ember_bin = os.path.join(args.build, "ember")
    stripped = os.path.join(tempfile.gettempdir(), "ember-stripped")
    subprocess.run(["strip", "-o", stripped, ember_bin], check=True)
    report = (f"# ember benchmark ({datetime.date.today()})\n\nMode: {mode}. Median "
              f"(min–max) of {args.runs} runs; ratio = ember / peer, compare it with the "
              f"figure's direction (times and memory: lower is better; MB/s and IOPS: higher "
              f"is better). ember binary: {os.path.getsize(ember_bin) / 1024:.0f} KiB "
              f"({os.path.getsize(stripped) / 1024:.0f} KiB stripped).\n\n" + "\n".join(sections))
    os.unlink(stripped)
    print("\n" + report)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(HERE, "results", f"bench-{stamp}.md")
    with open(path, "w") as f:
        f.write(report)
    print(f"written to {os.path.relpath(path, ROOT)}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())

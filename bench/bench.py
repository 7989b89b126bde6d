#!/usr/bin/env python3
"""ember's figures side by side with QEMU (-accel kvm), measured alternately in
one run: in the nested harness on hosts without hardware KVM (one VMM run per
freshly booted L1, since later runs in the same L1 are slower), directly
otherwise. A benchmark, not a test: it never fails because a figure is slow,
only when it cannot measure.

Figures so far: VMM start -> the guest's first init line, VMM start -> guest
power-off (VMM exit), the VMM's peak RSS, and ember's binary size."""
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

INIT_LINE = "ember-guest: init started"
QEMU_FILES = ["qboot.rom", "kvmvapic.bin", "linuxboot.bin", "linuxboot_dma.bin",
              "multiboot.bin", "multiboot_dma.bin", "pvh.bin"]


def cmdline():
    poweroff = base64.b64encode(b"poweroff -f").decode()
    return f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={poweroff}"


def vmm_commands(mem_mb, cpus):
    """Shell command per VMM; the same kernel, initramfs, memory and vCPUs."""
    k, i = '"$GUEST/vmlinuz"', '"$GUEST/initramfs.cpio"'
    cl = cmdline()
    qemu = ("qemu-system-x86_64 -accel kvm -cpu host -m {m} -smp {c} -nodefaults "
            "-no-user-config -display none -serial stdio -no-reboot "
            "-L /usr/share/qemu -L /usr/share/seabios "
            f"-kernel {k} -initrd {i} -append '{cl}'").format(m=mem_mb, c=cpus)
    return {
        "ember": f'"$EMBER" run --kernel {k} --initrd {i} --mem {mem_mb}M --cpus {cpus} '
                 f"--cmdline '{cl}'",
        "qemu-microvm": qemu + " -M microvm,rtc=on",
        "qemu-pc": qemu + " -M pc",
    }


def qemu_l1_files():
    files = {}
    for f in QEMU_FILES:
        files[f"/usr/share/qemu/{f}"] = os.path.join("/usr/share/qemu", f)
    files["/usr/share/qemu/bios-microvm.bin"] = "/usr/share/qemu/qboot.rom"
    for f in os.listdir("/usr/share/seabios"):
        files[f"/usr/share/seabios/{f}"] = os.path.join("/usr/share/seabios", f)
    return L1Files(files=files, programs={
        "/usr/bin/qemu-system-x86_64": "/usr/bin/qemu-system-x86_64",
        "/usr/bin/runwatch": os.path.join(ROOT, "build", "tools", "runwatch")})


def parse_run(output):
    stamp = re.search(r"runwatch: stamp ([\d.]+) " + re.escape(INIT_LINE), output)
    exited = re.search(r"runwatch: exited ([\d.]+) status (\d+) maxrss (\d+)", output)
    if not exited:
        return None, "no exit report"
    if int(exited.group(2)) != 0:
        return None, f"VMM exited {exited.group(2)}"
    if not stamp:
        return None, "the guest's init line never appeared"
    return {"init_ms": float(stamp.group(1)), "poweroff_ms": float(exited.group(1)),
            "rss_kib": int(exited.group(3))}, None


def summarize(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(stat, unit, scale=1.0):
    if stat is None:
        return "n/a"
    med, lo, hi = (v * scale for v in stat)
    return f"{med:.0f} {unit} ({lo:.0f}–{hi:.0f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--vmms", default="ember,qemu-microvm,qemu-pc")
    args = ap.parse_args()
    hw, why = host_has_hw_kvm()
    mode = "direct (hardware KVM)" if hw else f"nested harness ({why}), one run per fresh L1"
    print(f"bench: {mode}; {args.runs} runs per VMM, {args.mem} MiB, {args.cpus} vCPU(s)",
          flush=True)
    vmms = args.vmms.split(",")
    cmds = vmm_commands(args.mem, args.cpus)
    if hw:
        host = DirectHost(args.build)
        os.environ["RUNWATCH"] = os.path.join(args.build, "tools", "runwatch")
    else:
        host = NestedHost(args.build, extra=qemu_l1_files(), smp=2)
    results = {v: [] for v in vmms}
    failures = {v: [] for v in vmms}
    notes = {v: set() for v in vmms}
    try:
        for r in range(args.runs):
            for v in vmms:  # alternate VMMs within each round
                runwatch = '"${RUNWATCH:-runwatch}"'
                script = f"{runwatch} --stamp '{INIT_LINE}' -- sh -c {shlex.quote(cmds[v])}"
                job = Job(f"{v}-{r}", script, timeout=120)
                host.run([job], label=f"bench-{v}-{r}")
                sample, err = parse_run(job.output) if job.error is None else (None, job.error)
                if "XSAVE consistency problem" in job.output:
                    notes[v].add("guest warned 'XSAVE consistency problem'")
                if sample:
                    results[v].append(sample)
                    print(f"  {v:13} run {r}: init {sample['init_ms']:.0f} ms, power-off "
                          f"{sample['poweroff_ms']:.0f} ms, peak RSS {sample['rss_kib']} KiB",
                          flush=True)
                else:
                    failures[v].append(err)
                    print(f"  {v:13} run {r}: FAILED to measure: {err}\n"
                          + job.output[-1500:], flush=True)
    finally:
        host.close()
    report = render(args, mode, vmms, results, failures, notes)
    print("\n" + report)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(HERE, "results", f"boot-{stamp}.md")
    with open(path, "w") as f:
        f.write(report)
    print(f"written to {os.path.relpath(path, ROOT)}")
    return 0 if results.get("ember") else 1


def render(args, mode, vmms, results, failures, notes):
    ember_bin = os.path.join(args.build, "ember")
    stripped = tempfile.mktemp()
    subprocess.run(["strip", "-o", stripped, ember_bin], check=True)
    size, ssize = os.path.getsize(ember_bin), os.path.getsize(stripped)
    os.unlink(stripped)
    lines = [f"# ember boot figures ({datetime.date.today()})", "",
             f"Mode: {mode}. Guest: Debian cloud kernel (bzImage) + the default initramfs, "
             f"{args.mem} MiB, {args.cpus} vCPU; the guest powers off as soon as init has "
             f"loaded its modules. Median (min–max) of {args.runs} runs; ratio = ember / peer "
             "(below 1: ember is faster or smaller).", ""]
    figures = [("VMM start → first init line", "init_ms", "ms"),
               ("VMM start → guest power-off", "poweroff_ms", "ms"),
               ("peak RSS of the VMM", "rss_kib", "MiB")]
    header = "| figure | " + " | ".join(vmms) + " | " + \
        " | ".join(f"ember/{v}" for v in vmms if v != "ember") + " |"
    lines += [header, "|" + " --- |" * (1 + len(vmms) + len(vmms) - 1)]
    for title, key, unit in figures:
        scale = 1 / 1024 if unit == "MiB" else 1.0
        stats = {v: summarize([s[key] for s in results[v]]) for v in vmms}
        cells = [fmt(stats[v], unit, scale) for v in vmms]
        ratios = []
        for v in vmms:
            if v == "ember":
                continue
            if stats.get("ember") and stats[v]:
                ratios.append(f"{stats['ember'][0] / stats[v][0]:.2f}")
            else:
                ratios.append("n/a")
        lines.append(f"| {title} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += ["", f"ember binary: {size / 1024:.0f} KiB ({ssize / 1024:.0f} KiB stripped).", ""]
    for v in vmms:
        if failures[v]:
            lines.append(f"- {v}: {len(failures[v])} run(s) failed to measure: "
                         + "; ".join(failures[v]))
        for n in sorted(notes[v]):
            lines.append(f"- {v}: {n}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

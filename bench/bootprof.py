"""The boot profile (bench suite `bootprof`): where a boot's time goes, for
ember and QEMU microvm side by side in the same L1 (or host).

Each run boots the guest once with L1's KVM tracepoints on (trace clock
CLOCK_MONOTONIC): the VMM's exec (sched_process_exec), its first guest
entry (the first kvm_entry), the guest's first kvm-clock MSR write (the end
of its earliest boot), and up to the guest's init line every exit by reason
(kvm_exit), every exit to user space by reason (kvm_userspace_exit) and the
emulated accesses per port and MMIO page. ember runs with -v, so its own
start-up timeline (util/timeline.c: each step's end, and main's monotonic
time) and KVM's per-vCPU statistics come too. The guest boots with
initcall_debug and, once init runs, prints its own timeline from dmesg:
the printk time of 'Run /init', the sum of its initcalls and every initcall
of 1 ms or more. The tracing costs a little per exit, so the times to init
here run slightly above the boot suite's; the exit counts are exact."""
import re
import statistics

from common import (INIT_LINE, INITRD, KERNEL, VMLINUX, Figure, cmdline, guest_kernel_words,
                    qemu_cmd)

# Runs in the guest once init has started: its boot as the kernel logged it.
GUEST_SUMMARY = r'''
dmesg | awk '
function stamp() { return substr($0, 2, index($0, "]") - 2) + 0 }
/Run \/init as init process/ { print "gprof run-init " stamp() * 1000 }
/initcall .* returned .* after .* usecs/ {
    for (i = 1; i < NF; i++) if ($i == "initcall") name = $(i + 1)
    sub(/\+0x.*/, "", name); us = $(NF - 1); n++; sum += us
    if (us >= 1000) print "gprof initcall " name " " us
}
END { print "gprof initcalls " n " " sum / 1000 }'
poweroff -f
'''

# Runs in L1 after the VMM exited: the trace, summed up. Exits count until
# the guest's init line (runwatch's stamp of it, on CLOCK_MONOTONIC like the
# trace), so what the guest prints after does not.
TRACE_SUMMARY = r'''cut=$(awk 'match($0, /runwatch: t0 monotonic [0-9.]+/) {
    t0 = substr($0, RSTART + 23, RLENGTH - 23) }
match($0, /runwatch: stamp [0-9.]+ @INIT@/) {
    s = substr($0, RSTART + 16); s = substr(s, 1, index(s, " ") - 1) }
END { if (t0 && s) printf "%.3f", t0 + s }' vmm.txt)
echo "prof cutoff ${cut:-none}"
awk -v bin="$BIN" -v cut="${cut:-0}" '
function ts() { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) return substr($i, 1, length($i) - 1) * 1000; return 0 }
function reason() { for (i = 1; i < NF; i++) if ($i == "reason") return $(i + 1); return "?" }
/entries-in-buffer/ { print "prof buffer " $0 }
/sched_process_exec:/ { if (!ex && $0 ~ ("filename=[^ ]*/" bin " ")) ex = ts(); next }
/ kvm_entry:/ { if (ex && !first) first = ts(); next }
/ kvm_msr: msr_write 4b564d01 / { if (ex && !clock) clock = ts() }
/ kvm_exit:/ { if (ts() <= cut) { n[reason()]++; total++ }; next }
/ kvm_userspace_exit:/ { if (ts() <= cut) { u[reason()]++; utotal++ }; next }
/ kvm_pio:/ { if (ts() <= cut) for (i = 1; i < NF; i++) if ($i == "at") { p[$(i + 1)]++; break }; next }
/ kvm_mmio:/ { if (ts() <= cut) for (i = 1; i < NF; i++) if ($i == "gpa") { g = $(i + 1); m[substr(g, 1, length(g) - 3) "000"]++; break }; next }
END {
    printf "prof exec %.3f\nprof first-entry %.3f\nprof kvm-clock %.3f\n", ex, first, clock
    printf "prof exits %d\nprof user-exits %d\n", total, utotal
    for (r in n) print "prof exit " r " " n[r]
    for (r in u) print "prof user-exit " r " " u[r]
    for (r in p) print "prof pio " r " " p[r]
    for (r in m) print "prof mmio " r " " m[r]
}' "$T/trace"
'''.replace("@INIT@", INIT_LINE)

TRACE_ON = r'''T=/sys/kernel/tracing
mount -t tracefs nodev $T 2>/dev/null
echo 16384 > $T/buffer_size_kb && echo mono > $T/trace_clock || { echo "no tracefs"; exit 1; }
for e in kvm/kvm_entry kvm/kvm_exit kvm/kvm_userspace_exit kvm/kvm_pio kvm/kvm_mmio kvm/kvm_msr \
         sched/sched_process_exec; do
    echo 1 > $T/events/$e/enable || { echo "no trace event $e"; exit 1; }
done
echo > $T/trace; echo 1 > $T/tracing_on
'''


def parse_trace(text):
    """The L1 trace summary: {'exec', 'first-entry', 'kvm-clock' (the
    guest's first write of its kvm-clock MSR, early in its setup_arch),
    'cutoff' (the init line)} in ms, 'exits' and 'user-exits' totals until the cutoff, and
    per-reason counts, 'pio' per port and 'mmio' per 4 KiB page (the
    accesses KVM emulated, in the kernel or in user space); None if any of
    the three times is missing or the trace lost events."""
    out = {"exit": {}, "user-exit": {}, "pio": {}, "mmio": {}}
    for kind, a, b in re.findall(r"^prof (\S+) (\S+)(?: (\S+))?$", text, re.M):
        if kind in ("exit", "user-exit", "pio", "mmio") and b:
            out[kind][a] = int(b)
        elif kind in ("exec", "first-entry", "kvm-clock", "cutoff") and a != "none":
            out[kind] = float(a)
        elif kind in ("exits", "user-exits"):
            out[kind] = int(a)
    if not all(out.get(k) for k in ("exec", "first-entry", "kvm-clock", "cutoff")):
        return None
    kept = re.search(r"^prof buffer # entries-in-buffer/entries-written: (\d+)/(\d+)", text, re.M)
    if not kept or kept.group(1) != kept.group(2):  # the ring overflowed: counts short
        return None
    return out


def parse_timeline(text):
    """ember -v's start-up line: (main's monotonic ms, [(step, own ms)])."""
    m = re.search(r"start-up: main at monotonic ([\d.]+) ms, [\d.]+ ms of CPU before it; "
                  r"(.*) = [\d.]+ ms after main", text)
    if not m:
        return None
    steps = [(name.strip(), float(ms)) for name, ms in
             re.findall(r"([^,+]+) \+([\d.]+)", m.group(2))]
    return float(m.group(1)), steps


def parse_guest(text):
    """The guest's summary: ('Run /init' ms, initcalls' total ms, {initcall: ms})."""
    run_init = re.search(r"^gprof run-init ([\d.]+)", text, re.M)
    total = re.search(r"^gprof initcalls \d+ ([\d.]+)", text, re.M)
    if not run_init or not total:
        return None
    slow = {name: int(us) / 1000 for name, us in
            re.findall(r"^gprof initcall (\S+) (\d+)", text, re.M)}
    return float(run_init.group(1)), float(total.group(1)), slow


class BootProfileSuite:
    name = "bootprof"
    # ember-mmio-pvh: the vmlinux with pci=off (its virtio-rng on virtio-mmio);
    # ember-bare-pvh: also --no-rng, no virtio device as QEMU microvm here
    vmms = ["ember", "ember-pvh", "ember-mmio-pvh", "ember-bare-pvh", "qemu-microvm",
            "qemu-microvm-pvh"]
    EMBER_ONLY = "ember's own figure"

    def __init__(self, args):
        self.args = args
        self.runs = {}  # vmm -> runs recorded (to back-fill new exit reasons with 0)
        self.steps = {}  # ember vmm -> step -> [ms]
        self.initcalls = {}  # vmm -> initcall -> [ms]
        self.accesses = {}  # vmm -> ("pio"|"mmio", where) -> total over its runs
        self.figures = [
            Figure("VMM start → first init line (traced)", "ms"),
            Figure("VMM exec → first guest entry", "ms"),
            Figure("first guest entry → the guest sets up kvm-clock", "ms"),
            Figure("kvm-clock → the init line", "ms"),
            Figure("ember: exec → main", "ms"),
            Figure("ember: KVM_CREATE_VM", "ms"),
            Figure("ember: main → first guest entry, without KVM_CREATE_VM", "ms"),
            Figure("guest: printk time of 'Run /init'", "ms"),
            Figure("guest: its initcalls, summed", "ms"),
            Figure("exits, all (L1's KVM)", ""),
            Figure("exits to the VMM (user space)", ""),
        ]
        for fig in self.figures[4:7]:
            fig.na = {v: self.EMBER_ONLY for v in self.vmms if not v.startswith("ember")}
        self.by_reason = {}  # ("exit"|"user-exit", reason) -> Figure

    def script(self, vmm):
        a = self.args
        pci_off = "-mmio" in vmm or "-bare" in vmm
        cl = cmdline(GUEST_SUMMARY) + " initcall_debug" + (" pci=off" if pci_off else "")
        kernel = VMLINUX if vmm.endswith("-pvh") else KERNEL
        if vmm.startswith("ember"):
            cmd = (f'"$EMBER" run -v --kernel {kernel} --initrd {INITRD} --mem {a.mem}M '
                   f"--cpus {a.cpus} {'--no-rng ' if '-bare' in vmm else ''}--cmdline '{cl}'")
            binary = 'BIN=$(basename "$EMBER")'
        else:
            cmd = qemu_cmd("microvm,rtc=on", a.mem, a.cpus, cl, kernel=kernel)
            binary = "BIN=qemu-system-x86_64"
        return (TRACE_ON + binary + "\n" +
                # bounded below the job's limit: a hung guest still leaves its
                # console and the trace's summary for a look
                f"runwatch --timeout 150 --stamp '{INIT_LINE}' -- {cmd} > vmm.txt 2>&1\n"
                "echo 0 > $T/tracing_on\ncat vmm.txt\n" + TRACE_SUMMARY)

    def _reason_figure(self, kind, reason):
        key = (kind, reason)
        if key not in self.by_reason:
            words = "exits" if kind == "exit" else "exits to user space"
            fig = Figure(f"{words}: {reason}", "")
            for vmm, n in self.runs.items():  # the runs before it had none
                fig.samples[vmm] = [0.0] * n
            self.by_reason[key] = fig
            self.figures.append(fig)
        return self.by_reason[key]

    def record(self, vmm, output):
        trace = parse_trace(output)
        guest = parse_guest(output)
        stamp = re.search(r"runwatch: stamp ([\d.]+) " + re.escape(INIT_LINE), output)
        exited = re.search(r"runwatch: exited [\d.]+ status (\d+)", output)
        if exited and exited.group(1) != "0":
            return f"the VMM exited {exited.group(1)}" + (
                " (ember: the guest triple-faulted)" if "triple-faulted" in output else "")
        if not trace or not guest or not stamp or not exited:
            return "no clean traced run (trace, guest summary, init line or exit missing)"
        timeline = parse_timeline(output) if vmm.startswith("ember") else None
        if vmm.startswith("ember") and not timeline:
            return "ember -v printed no start-up timeline"
        f = self.figures
        f[0].add(vmm, float(stamp.group(1)))
        f[1].add(vmm, trace["first-entry"] - trace["exec"])
        f[2].add(vmm, trace["kvm-clock"] - trace["first-entry"])
        f[3].add(vmm, trace["cutoff"] - trace["kvm-clock"])
        if timeline:
            main_ms, steps = timeline
            create = sum(ms for name, ms in steps if name == "KVM_CREATE_VM")
            f[4].add(vmm, main_ms - trace["exec"])
            f[5].add(vmm, create)
            f[6].add(vmm, sum(ms for _, ms in steps) - create)
            for name, ms in steps:
                self.steps.setdefault(vmm, {}).setdefault(name, []).append(ms)
        run_init, initcalls, slow = guest
        f[7].add(vmm, run_init)
        f[8].add(vmm, initcalls)
        for name, ms in slow.items():
            self.initcalls.setdefault(vmm, {}).setdefault(name, []).append(ms)
        f[9].add(vmm, trace.get("exits", 0))
        f[10].add(vmm, trace.get("user-exits", 0))
        for kind in ("exit", "user-exit"):
            for reason in trace[kind]:
                self._reason_figure(kind, reason)
        for (kind, reason), fig in self.by_reason.items():
            fig.add(vmm, trace[kind].get(reason, 0))
        counts = self.accesses.setdefault(vmm, {})
        for kind in ("pio", "mmio"):
            for where, n in trace[kind].items():
                counts[(kind, where)] = counts.get((kind, where), 0) + n
        self.runs[vmm] = self.runs.get(vmm, 0) + 1
        return None

    def files(self, ctx):
        return {}

    def note(self):
        lines = [f"{self.args.mem} MiB, {self.args.cpus} vCPU, {guest_kernel_words()}, "
                 "booted with initcall_debug; QEMU microvm with rtc=on; -pvh: the vmlinux "
                 "entered at its PVH note. L1's KVM tracepoints (trace clock "
                 "CLOCK_MONOTONIC) give the VMM's exec, its first guest entry and every exit "
                 "by reason; ember -v its own start-up steps; the guest's dmesg the printk "
                 "time of 'Run /init' and its initcalls. Tracing costs a little per exit, so "
                 "the time to init runs above the boot suite's."]
        for vmm, steps in self.steps.items():
            lines.append(f"- {vmm}'s start-up, median ms per step (util/timeline.c): " +
                         ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in steps.items()))
        for vmm, counts in self.accesses.items():
            runs = self.runs.get(vmm, 1)
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:10]
            lines.append(f"- {vmm}: emulated accesses before the init line, mean per run (port, "
                         "or MMIO page): " +
                         ", ".join(f"{kind} {where} {n / runs:.0f}" for (kind, where), n in top))
        for vmm, calls in self.initcalls.items():
            runs = self.runs.get(vmm, 1)
            top = sorted(calls.items(), key=lambda kv: -sum(kv[1]) / runs)[:8]
            lines.append(f"- {vmm}: the guest's slowest initcalls (mean ms over {runs} runs, "
                         "counting 0 where under 1 ms): " +
                         ", ".join(f"{n} {sum(v) / runs:.1f}" for n, v in top))
        return "\n".join(lines)

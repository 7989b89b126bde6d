"""The boot profile's parts: ember -v's start-up timeline and KVM statistics
from a real boot, and the bench's trace and dmesg summaries (bench/bootprof.py,
run in L1 and in the guest with busybox awk) on known input."""
import os
import subprocess
import sys

from framework import (ember_run, expect, expect_ember_rc, expect_output, guest_test, host_test,
                       job, on_engine)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import bootprof  # noqa: E402

STEPS = ["seccomp", "files", "host check", "guest memory", "Landlock", "backend's VM",
         "memory slots", "interrupt controllers", "devices", "ACPI", "boot parameters", "vCPUs",
         "kernel and initrd", "first guest entry"]
# Unmapped while vCPU 0 starts the guest: in the line only when it came first.
RACING_STEP = "images released"


@guest_test("ember -v: the start-up timeline names every step from main to the first guest "
            "entry (and KVM_CREATE_VM on KVM), and KVM's own exit counts", backend="both")
def startup_timeline():
    j = job("startup-timeline", ember_run("-v", guest_cmd="true"))

    def check(j):
        expect_ember_rc(j, 0)
        timeline = bootprof.parse_timeline(j.output)
        expect(timeline, "no start-up line the boot profile can parse")
        names = [name for name, _ in timeline[1]]
        want = STEPS if on_engine() else STEPS[:5] + ["KVM_CREATE_VM"] + STEPS[5:]
        if RACING_STEP in names:
            expect(names.index(RACING_STEP) == len(names) - 2,
                   f"'{RACING_STEP}' not right before the first entry: {names}")
        names = [n for n in names if n != RACING_STEP]
        expect(names == want, f"steps {names}, expected {want} ('{RACING_STEP}' aside)")
        expect(all(ms >= 0 for _, ms in timeline[1]), "a step took negative time")
        if not on_engine():
            # The guest printed through the 8250 and halted: KVM saw port
            # exits among all the others.
            expect_output(j, r"vCPU 0 kvm backend: kvm_exits [1-9]\d*, kvm_io_exits [1-9]",
                          "KVM's statistics with exits and port exits")
    return j, check


SAMPLE_TRACE = """# tracer: nop
#
# entries-in-buffer/entries-written: 14/14   #P:2
#
              sh-199     [000] .....   99.000000: sched_process_exec: filename=/bin/embers pid=199 old_pid=199
           <...>-200     [000] .....  100.000100: sched_process_exec: filename=/usr/bin/ember pid=200 old_pid=200
           ember-201     [001] .....  100.004100: kvm_entry: vcpu 0, rip 0x1000000
           ember-201     [001] d..1.  100.004200: kvm_exit: vcpu 0 reason io rip 0x1 info1 0x0000000003f80000 info2 0x0 intr_info 0x00000000 error_code 0x00000000
           ember-201     [001] .....  100.004250: kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x41
           ember-201     [001] .....  100.004300: kvm_userspace_exit: reason KVM_EXIT_IO (2)
           ember-201     [001] .....  100.004350: kvm_mmio: mmio write len 4 gpa 0xfee000b0 val 0x0
           ember-201     [001] .....  100.004400: kvm_entry: vcpu 0, rip 0x2
           ember-201     [001] .....  100.004450: kvm_msr: msr_write 4b564d01 = 0x7fe5001
           ember-201     [001] .....  100.004460: kvm_msr: msr_write 4b564d01 = 0x7fe5001
           ember-201     [001] d..1.  100.004500: kvm_exit: vcpu 0 reason npf rip 0x2 info1 0x0 info2 0x0 intr_info 0x00000000 error_code 0x00000000
           ember-201     [001] .....  100.004550: kvm_entry: vcpu 0, rip 0x3
           ember-201     [001] d..1.  100.004600: kvm_exit: vcpu 0 reason io rip 0x3 info1 0x0 info2 0x0 intr_info 0x00000000 error_code 0x00000000
           ember-201     [001] .....  100.004650: kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x42
"""

SAMPLE_DMESG = """[    0.000000] Linux version 6.1.0
[    0.120000] initcall fast_init+0x0/0x10 returned 0 after 12 usecs
[    0.130000] initcall acpi_init+0x0/0x4a0 returned 0 after 40000 usecs
[    0.140000] initcall slow_probe+0x0/0x22 @ 1
[    0.150000] initcall pci_subsys_init+0x0/0x80 returned 0 after 1500 usecs
[    0.433015] Run /init as init process
"""


def busybox_awk_path(tmp):
    """A PATH whose awk is busybox's, as in L1 and the guest."""
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    link = os.path.join(bindir, "awk")
    if not os.path.exists(link):
        os.symlink(subprocess.run(["sh", "-c", "command -v busybox"], capture_output=True,
                                  text=True).stdout.strip(), link)
    return bindir + ":" + os.environ["PATH"]


@host_test("boot profile: L1's trace summed up by busybox awk (the VMM's exec, its first "
           "entry, exits by reason until the init line) and the guest's dmesg (Run /init, "
           "initcalls) parse exactly")
def bootprof_summaries(ctx):
    with open(os.path.join(ctx.tmp, "trace"), "w") as f:
        f.write(SAMPLE_TRACE)
    with open(os.path.join(ctx.tmp, "vmm.txt"), "w") as f:  # the init line at 100004.55
        f.write("runwatch: t0 monotonic 100000.000\n"
                "ember-guest: init startedrunwatch: stamp 4.55 ember-guest: init started\n")
    env = dict(os.environ, PATH=busybox_awk_path(ctx.tmp), T=ctx.tmp, BIN="ember")
    r = subprocess.run(["sh", "-c", bootprof.TRACE_SUMMARY], env=env, cwd=ctx.tmp,
                       capture_output=True, text=True, timeout=30)
    trace = bootprof.parse_trace(r.stdout)
    expect(trace, f"no trace summary: {r.stdout} {r.stderr}")
    expect(abs(trace["exec"] - 100000.1) < 1e-6 and abs(trace["first-entry"] - 100004.1) < 1e-6,
           f"exec {trace['exec']} / first entry {trace['first-entry']}: not the VMM's")
    expect(abs(trace["cutoff"] - 100004.55) < 1e-6, f"cutoff {trace['cutoff']}")
    expect(abs(trace["kvm-clock"] - 100004.45) < 1e-6, f"kvm-clock at {trace['kvm-clock']}")
    # the last io exit came after the init line
    expect(trace["exits"] == 2 and trace["exit"] == {"io": 1, "npf": 1},
           f"exits {trace['exits']} {trace['exit']}")
    expect(trace["user-exits"] == 1 and trace["user-exit"] == {"KVM_EXIT_IO": 1},
           f"user exits {trace['user-exits']} {trace['user-exit']}")
    expect(trace["pio"] == {"0x3f8": 1} and trace["mmio"] == {"0xfee00000": 1},
           f"accesses: ports {trace['pio']}, MMIO pages {trace['mmio']}")

    guest_script = bootprof.GUEST_SUMMARY.replace("dmesg |", "cat dmesg.txt |").replace(
        "poweroff -f", "")
    with open(os.path.join(ctx.tmp, "dmesg.txt"), "w") as f:
        f.write(SAMPLE_DMESG)
    r = subprocess.run(["sh", "-c", guest_script], env=env, cwd=ctx.tmp, capture_output=True,
                       text=True, timeout=30)
    guest = bootprof.parse_guest(r.stdout)
    expect(guest, f"no guest summary: {r.stdout} {r.stderr}")
    run_init, total, slow = guest
    expect(abs(run_init - 433.015) < 1e-6, f"Run /init at {run_init} ms")
    expect(abs(total - 41.512) < 1e-6, f"initcalls sum {total} ms")
    expect(slow == {"acpi_init": 40.0, "pci_subsys_init": 1.5}, f"slow initcalls {slow}")

"""Several vCPUs working together, checked by tests/tools/smpstress in the
guest: LOCK XADD and mutex counters exact across threads on every CPU,
cross-modifying code (one CPU rewrites a function another CPU calls, in
3000 handshakes) and TLB shootdowns (threads mapping, writing and unmapping
while others run). On KVM it is the oracle; on ember's engine, where the
vCPUs take turns and the APs start through the ACPI wakeup mailbox, it
checks what the engine must keep right between vCPUs. Both with 2 and 3
vCPUs."""
import os
import re

from framework import (expect, expect_ember_rc, expect_output, guest_cmdline, guest_test, job,
                       initrd_with_tool, on_engine)

CHECKS = ["atomics", "xmodify", "shootdown"]


@guest_test("SMP: smpstress on 2 and 3 vCPUs (exact atomics across CPUs, cross-modifying code "
            "between two CPUs, TLB shootdowns under map/unmap churn); the guest counts its CPUs "
            "and each takes timer interrupts", backend="both")
def smp_stress(ctx):
    guest = ('echo "cpus $(nproc)"; smpstress 50000; echo "stress rc=$?"; '
             'echo "tsc-unstable $(dmesg | grep -c -i \'tsc.*unstable\')"; '
             "awk '/LOC:/ {n=0; for (i=2; i<=NF && $i ~ /^[0-9]+$/; i++) if ($i > 0) n++; "
             "print \"cpus-ticking \" n}' /proc/interrupts")
    script = ""
    for n in (2, 3):
        script += (f'echo "=== {n}"\n'
                   f'"$EMBER" run --cpus {n} --initrd "$DATA/initrd.cpio" '
                   f"--cmdline '{guest_cmdline(guest)}' < /dev/null > vm{n}.txt 2>&1; "
                   'echo "ember rc=$?"\n'
                   f"grep -E '^(cpus|smpstress|stress rc|cpus-ticking|tsc-unstable)' vm{n}.txt\n")

    def check(j):
        for n, text in re.findall(r"^=== (\d)\n(.*?)(?=^=== |\Z)", j.output, re.M | re.S):
            expect(f"cpus {n}\n" in text, f"{n} vCPUs: the guest counts its CPUs:\n{text}")
            for name in CHECKS:
                expect(re.search(rf"^smpstress: {name} ok", text, re.M),
                       f"{n} vCPUs: smpstress's {name} check:\n{text}")
            expect("stress rc=0\n" in text, f"{n} vCPUs: smpstress failed:\n{text}")
            expect(f"cpus-ticking {n}\n" in text,
                   f"{n} vCPUs: every CPU takes local timer interrupts:\n{text}")
            if on_engine():  # one TSC for all vCPUs (under KVM, L1's TSC is not ember's)
                expect("tsc-unstable 0\n" in text,
                       f"{n} vCPUs: the guest found the vCPUs' TSCs apart:\n{text}")
        expect(len(re.findall(r"^=== ", j.output, re.M)) == 2, "both runs")
        expect_ember_rc(j, 0)
        expect_output(j, r"^smpstress: 3 CPUs$", "three CPUs in the second run")
    return job("smp-stress", script, timeout=400,
               files={"initrd.cpio": initrd_with_tool(ctx, "smpstress")}), check

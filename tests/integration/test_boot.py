"""Booting the default guest (Debian's cloud kernel + busybox initramfs) and
checking what it printed: banner, CPUs, memory, power-off/reboot/panic/triple
fault exit statuses, the platform devices, the console and terminal."""
import os
import re

from framework import (TestFailure, ember_run, on_engine, expect, expect_ember_rc, expect_job_ran,
                       expect_no_output, expect_output, guest_cmdline, guest_test, job)

BANNER = r"^ember-guest: Linux \S+, (\d+) CPUs, (\d+) MiB"


def e820_usable_bytes(output):
    total = 0
    for a, b in re.findall(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] usable", output):
        total += int(b, 16) - int(a, 16) + 1
    return total


@guest_test("default guest boots to its shell; console input works", backend="both")
def default_guest():
    # No --kernel, no --cmdline: the project's default guest and command line.
    j = job("default-guest", ember_run(cmdline=False, stdin="echo sum=$((40+2))\npoweroff -f\n"))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^ember-guest: init started")
        expect_output(j, BANNER.replace(r"(\d+) CPUs", "1 CPUs"), "the banner with 1 CPU")
        expect_output(j, r"^ember-guest: ready")
        expect_output(j, r"sum=42", "the shell's answer to input on the console")
    return j, check


@guest_test("--cpus 2: the guest brings up both CPUs with distinct APIC IDs", backend="kvm")
def cpus_two():
    j = job("cpus-2", ember_run("--cpus 2", guest_cmd=(
        "cat /sys/devices/system/cpu/online; grep apicid /proc/cpuinfo")))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, BANNER.replace(r"(\d+) CPUs", "2 CPUs"), "2 CPUs in the banner")
        expect_output(j, r"^0-1$", "CPUs 0-1 online")
        ids = re.findall(r"^apicid\s*:\s*(\d+)", j.output, re.M)
        expect(sorted(ids) == ["0", "1"], f"APIC IDs {ids}, expected 0 and 1")
    return j, check


@guest_test("--cpus 3: a topology that is not a power of two", backend="kvm")
def cpus_three():
    j = job("cpus-3", ember_run("--cpus 3", guest_cmd="cat /sys/devices/system/cpu/online"))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, BANNER.replace(r"(\d+) CPUs", "3 CPUs"), "3 CPUs in the banner")
        expect_output(j, r"^0-2$", "CPUs 0-2 online")
    return j, check


def memory_test(name, size_arg, size_bytes, above_4g):
    j = job(name, ember_run(f"--mem {size_arg}", guest_cmd=(
        "dmesg | grep BIOS-e820; grep MemTotal /proc/meminfo")))

    def check(j):
        expect_ember_rc(j, 0)
        usable = e820_usable_bytes(j.output)
        # All of it but the low 1 MiB's reserved areas (384 KiB).
        expect(size_bytes - (1 << 20) < usable <= size_bytes,
               f"e820 usable {usable} bytes for {size_arg}")
        m = re.search(r"MemTotal:\s+(\d+) kB", j.output)
        expect(m, "no MemTotal")
        ratio = int(m.group(1)) * 1024 / size_bytes
        expect(0.85 < ratio <= 1.0, f"MemTotal is {ratio:.1%} of {size_arg}")
        has_high = re.search(r"BIOS-e820: \[mem 0x0000000100000000-", j.output)
        expect(bool(has_high) == above_4g,
               "RAM above 4 GiB " + ("missing" if above_4g else "unexpected"))
    return j, check


@guest_test("--mem 512M: e820 and MemTotal match")
def mem_512():
    return memory_test("mem-512M", "512M", 512 << 20, False)


@guest_test("--mem 4G: RAM is split around the 32-bit PCI hole", backend="both")
def mem_4g():
    return memory_test("mem-4G", "4G", 4 << 30, True)


@guest_test("guest power-off and reboot exit 0")
def poweroff_reboot():
    jobs = [job("poweroff", ember_run(guest_cmd="poweroff -f")),
            job("reboot", ember_run(guest_cmd="reboot -f"))]

    def check(off, reboot):
        expect_ember_rc(off, 0)
        expect_output(off, r"reboot: Power down")
        expect_ember_rc(reboot, 0)
        expect_output(reboot, r"reboot: Restarting system")
    return jobs, check


@guest_test("guest panic exits 3 whatever its panic= setting")
def panic():
    crash = "echo c > /proc/sysrq-trigger"
    jobs = [job("panic", ember_run(guest_cmd=crash)),
            job("panic-0", ember_run(cmdline=guest_cmdline(
                crash, base="console=ttyS0 reboot=k panic=0 quiet")))]

    def check(*jobs):
        for j in jobs:
            expect_ember_rc(j, 3)
            expect_output(j, r"Kernel panic")
            expect_output(j, r"ember: error: the guest panicked")
    return jobs, check


@guest_test("a triple fault exits 4")
def triple_fault():
    # reboot=t makes Linux reboot by triple-faulting on purpose.
    j = job("triple-fault", ember_run(cmdline=guest_cmdline(
        "reboot -f", base="console=ttyS0 reboot=t panic=1 quiet")))
    j.triple_fault_expected = True

    def check(j):
        expect_ember_rc(j, 4)
        expect_output(j, r"ember: error: vCPU 0 triple-faulted at RIP 0x[0-9a-f]+")
    return j, check


@guest_test("platform: kvm-clock, RTC time, i8042, ACPI tables, PCI host bridge, pvpanic", backend="both")
def platform():
    j = job("platform", ember_run("< /dev/null", guest_cmd=(
        "cat /sys/devices/system/clocksource/clocksource0/current_clocksource\n"
        'echo "guest-time $(date +%s)"\n'
        "cat /sys/bus/pci/devices/0000:00:00.0/vendor /sys/bus/pci/devices/0000:00:00.0/class\n"
        "ls /sys/bus/platform/drivers/pvpanic-mmio/\n"
        "ls /sys/firmware/acpi/tables/\n"
        "dmesg | grep -E 'i8042|serio|rtc_cmos|ACPI|TIMER|Command line'\n"
    )) + '\necho "host-time $(date +%s)"')

    def check(j):
        expect_ember_rc(j, 0)
        if on_engine():
            # kvm-clock is there, but with a constant, non-stop TSC Linux
            # prefers the TSC (the engine derives both from one host clock).
            expect_output(j, r"^tsc$", "the TSC as the clocksource")
        else:
            expect_output(j, r"^kvm-clock$", "kvm-clock as the clocksource")
        g = re.search(r"^guest-time (\d+)", j.output, re.M)
        h = re.search(r"^host-time (\d+)", j.output, re.M)
        expect(g and h, "no times printed")
        expect(abs(int(g.group(1)) - int(h.group(1))) < 120,
               f"guest clock {g.group(1)} vs host {h.group(1)}: the RTC is off")
        expect_output(j, r"^0x1b36$", "the host bridge's vendor ID")
        expect_output(j, r"^0x060000$", "the host bridge's class")
        expect_output(j, r"QEMU0001:00", "pvpanic bound through ACPI")
        for table in ("APIC", "DSDT", "FACP", "FACS"):
            expect_output(j, rf"\b{table}\b", f"ACPI table {table}")
        expect_output(j, r"serio: i8042 KBD port at 0x60,0x64 irq 1", "the i8042 probe")
        expect_output(j, r"rtc_cmos \S+: registered as rtc0", "the RTC driver")
        expect_output(j, r"ACPI: PM-Timer IO Port: 0x608", "the ACPI PM timer")
        expect_no_output(j, r"ACPI (BIOS )?Error|ACPI Warning", "ACPI complaint")
        expect_no_output(j, r"i8042.*(timeout|Can't)", "i8042 probe failure")
    return j, check


@guest_test("the sanitizer build boots the guest cleanly", batch="terminal", backend="both")
def asan_boot():
    j = job("asan-boot", ember_run("--cpus ${EMBER_VCPUS:-2}", guest_cmd="dmesg | tail -3; echo asan-guest-ok")
            .replace('"$EMBER"', '"$EMBER_ASAN"'), timeout=120)

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^asan-guest-ok")
        expect_no_output(j, r"Sanitizer|runtime error", "a sanitizer report")
    return j, check


@guest_test("terminal: raw mode passes Ctrl-C to the guest, where it stops a running command; "
            "Ctrl-A x quits", batch="terminal")
def terminal_keys():
    ctrl_c = job("ctrl-c", (
        '"$RUNWATCH" --pty --timeout 80 '
        # First to the shell's line editor, which drops the typed line...
        "--when 'ember-guest: ready' --send 'sleep 50' "
        "--when 'sleep 50' --send '\\x03' "
        "--when '^C' --send 'echo al\"\"ive\\r' "
        # ...then to a running command, which it must stop (the console
        # shell must not inherit init's ignored SIGINT: guest/sigdfl.c).
        # The quotes keep the typed line's echo from matching.
        "--when 'alive' --send 'echo sl\"\"eeping; sleep 50; echo not-inter\"\"rupted\\r' "
        "--when 'sleeping' --send '\\x03' "
        "--when 'sleeping' --send 'echo st\"\"opped\\r' "
        "--when 'stopped' --send 'poweroff -f\\r' "
        '-- "$EMBER" run; echo "ember rc=$?"'))
    quit_ = job("ctrl-a-x", (
        '"$RUNWATCH" --pty --timeout 80 '
        "--when 'ember-guest: ready' --send '\\x01x' "
        '-- "$EMBER" run; echo "ember rc=$?"'))

    def check(c, q):
        expect_ember_rc(c, 0)
        expect_output(c, r"^alive", "the shell surviving Ctrl-C")
        expect_output(c, r"^stopped", "the shell after Ctrl-C stopped its command")
        expect_no_output(c, r"^not-interrupted", "a command Ctrl-C did not stop")
        expect_output(c, r"runwatch: terminal restored")
        expect_ember_rc(q, 0)
        expect_output(q, r"runwatch: terminal restored")
        expect_no_output(q, r"reboot: Power down", "a guest power-off (Ctrl-A x should quit)")
    return [ctrl_c, quit_], check


@guest_test("SIGTERM stops the VM, restores the terminal, exits 128+15", batch="terminal")
def sigterm():
    j = job("sigterm", (
        '"$RUNWATCH" --pty --timeout 80 --when "ember-guest: ready" --signal TERM '
        '-- "$EMBER" run; echo "ember rc=$?"'))

    def check(j):
        expect_ember_rc(j, 143)
        expect_output(j, r"stopped by signal 15")
        expect_output(j, r"runwatch: terminal restored")
    return j, check


def pvh_note_type_offset(vmlinux):
    """File offset of the type field of the PVH entry note (to disable it)."""
    import struct
    with open(vmlinux, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type != 4:  # PT_NOTE
            continue
        off = p_offset
        while off < p_offset + p_filesz:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            if ntype == 18 and data[off + 12:off + 15] == b"Xen":
                return off + 8
            off += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    raise TestFailure("no PVH note in vmlinux")


@guest_test("ELF vmlinux: PVH entry, and the 64-bit entry when the note is absent",
            batch="elf", backend="both")
def elf_kernels(ctx):
    vmlinux = f"{ctx.guest_dir}/vmlinux"
    off = pvh_note_type_offset(vmlinux)
    pvh = job("elf-pvh", ember_run('-v --kernel "$DATA/vmlinux" --initrd "$GUEST/initramfs.cpio"',
                                   guest_cmd="echo elf-pvh-ok"),
              files={"vmlinux": vmlinux}, timeout=120)
    entry64 = job("elf-64", (
        'cp "$DATA/vmlinux" "$DATA/vmlinux-nopvh" && '
        f"printf '\\023' | dd of=\"$DATA/vmlinux-nopvh\" bs=1 seek={off} conv=notrunc "
        "2>/dev/null && rm \"$DATA/vmlinux\"\n" +
        ember_run('-v --kernel "$DATA/vmlinux-nopvh" --initrd "$GUEST/initramfs.cpio"',
                  guest_cmd="echo elf-64-ok")),
        files={"vmlinux": vmlinux}, timeout=120)
    bz = job("bzimage-entry", ember_run("-v", guest_cmd="echo bz-ok"))

    def check(pvh_job, e64, bzj):
        expect_ember_rc(pvh_job, 0)
        if on_engine():  # the engine starts in long mode: the 64-bit entry, note or not
            expect_output(pvh_job, r"kernel: ELF, 64-bit entry at 0x1000000")
        else:
            expect_output(pvh_job, r"kernel: ELF, PVH entry at 0x[0-9a-f]+")
        expect_output(pvh_job, r"^elf-pvh-ok")
        expect_ember_rc(e64, 0)
        expect_output(e64, r"kernel: ELF, 64-bit entry at 0x1000000")
        expect_output(e64, r"^elf-64-ok")
        expect_ember_rc(bzj, 0)
        expect_output(bzj, r"kernel: bzImage, boot protocol 2\.\d+, 64-bit entry at 0x1000200")
        expect_output(bzj, r"^bz-ok")
    return [pvh, entry64, bz], check


@guest_test("posted port writes (KVM's coalesced PIO): COM1's DLL, the CMOS index and PCI's "
            "CONFIG_ADDRESS land before the read that sees them; a line the guest writes "
            "without reading anything after it still gets out while the guest sits halted",
            batch="elf", backend="kvm")
def posted_port_writes(ctx):
    # tests/tools/postguest.S: the checks are the guest's, the last line
    # is written blind and followed by HLT with interrupts off, so no exit
    # ever delivers it: ember's flush timer must. The guest never ends;
    # the script waits up to 10 s for the line, then stops ember.
    script = ('"$EMBER" run -v --kernel "$DATA/postguest" --mem 64M > /tmp/posted-writes.out 2>&1 &\n'
              'pid=$!; i=0\n'
              'while [ $i -lt 100 ] && ! grep -q "^<tail>" /tmp/posted-writes.out; do sleep 0.1; i=$((i+1)); done\n'
              'grep -q "^<tail>" /tmp/posted-writes.out && echo "the tail came while the guest was halted"\n'
              'kill $pid; wait $pid; echo "ember rc=$?"; cat /tmp/posted-writes.out')
    j = job("posted-writes", script,
            files={"postguest": os.path.join(ctx.build, "tools", "postguest")})

    def check(j):
        for line in ("<post>", "dll ok", "cmos ok", "pci ok"):
            expect_output(j, rf"^{line}$", line)
        expect_output(j, r"^the tail came while the guest was halted$",
                      "the blind last line before ember was stopped")
        posted = re.findall(r"posted port writes: (\d+) delivered without an exit", j.output)
        expect(posted and int(posted[-1]) >= 10,
               f"KVM queued no port writes (needs KVM_CAP_COALESCED_PIO): {posted}")
    return j, check

"""ember's CPU engine (--accel soft) against a hostile guest, directly on this
host: tests/tools/hostile64 executes undefined and invalid opcodes, reads an
MSR nobody implements, divides by zero, runs REP MOVSB into a page that is
not present, traps on INT3, and finally loads an IDT of limit 0 and
triple-faults. Each must get its architectural answer — and the very same
program under KVM (in the nested harness, or directly with hardware KVM)
must print the very same lines, so the expectations are hardware's."""
import os
import re
import subprocess

from framework import expect, expect_ember_rc, guest_test, host_test, job, run_host

# What hostile64 prints (hexadecimal numbers): six opcodes give #UD; the
# MSR's #GP has error code 0; the #PF is at 0x401000 with error code 2 (a
# write to a page not present, from CPL 0); the string ends with RCX 0 and
# RDI 0x401100, the copied bytes summing to 0xff00; INT3's RIP is the next
# instruction.
EXPECTED = ["<hostile>", "#UD 6", "#GP rdmsr 0", "#DE", "#PF 401000 2",
            "rep done 0 401100 ff00", "#BP 0", "<triple>"]


def guest_lines(output):
    lines = [line.strip() for line in output.splitlines()]
    return [line for line in lines if line.startswith(("<", "#", "rep done"))]


def expect_hostile_output(name, output, rc):
    got = guest_lines(output)
    expect(got == EXPECTED, f"{name}: the guest printed {got}, expected {EXPECTED}: {output[-800:]!r}")
    expect(rc == 4 and "triple-faulted" in output,
           f"{name}: expected the triple fault (exit 4), got {rc}: {output[-300:]}")
    expect("Sanitizer" not in output and "runtime error" not in output,
           f"{name}: sanitizer report: {output[-600:]}")


@host_test("engine: a hostile guest gets the architectural answer to each fault, and the "
           "triple fault ends ember with 4")
def hostile_on_engine(ctx):
    guest = os.path.join(ctx.build, "tools", "hostile64")
    for binary in (ctx.ember, ctx.ember_asan):
        rc, out = run_host([binary, "run", "--accel", "soft", "--kernel", guest, "--mem", "64M"],
                           timeout=120)
        expect_hostile_output(os.path.basename(binary), out, rc)


@host_test("engine: EMBER_PERF_MAP=1 names each translated block in /tmp/perf-PID.map "
           "(perf's map for generated code), the hostile guest's among them")
def perf_map(ctx):
    guest = os.path.join(ctx.build, "tools", "hostile64")
    env = dict(os.environ, EMBER_PERF_MAP="1", EMBER_JIT="on")
    p = subprocess.Popen([ctx.ember, "run", "--accel", "soft", "--kernel", guest, "--mem", "64M"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.communicate(timeout=120)[0].decode("utf-8", "replace")
    path = f"/tmp/perf-{p.pid}.map"
    try:
        expect_hostile_output("ember with EMBER_PERF_MAP=1", out, p.returncode)
        expect(os.path.exists(path), f"no {path}: {out[-400:]}")
        with open(path) as f:
            lines = f.read().splitlines()
        bad = [line for line in lines if not re.fullmatch(r"[0-9a-f]+ [0-9a-f]+ guest_[0-9a-f]+", line)]
        expect(lines and not bad, f"{path}: {len(lines)} lines, malformed: {bad[:3]}")
        vas = [int(line.split()[2][6:], 16) for line in lines]
        expect(any(0x100000 <= va < 0x100493 for va in vas),
               f"{path}: no block of hostile64 (0x100000..0x100493): {lines[:5]}")
    finally:
        if os.path.exists(path):
            os.unlink(path)


@guest_test("engine oracle: the hostile guest prints the same under KVM", batch="elf", backend="kvm")
def hostile_on_kvm(ctx):
    j = job("hostile-kvm", '"$EMBER" run --accel kvm --kernel "$DATA/hostile64" --mem 64M; '
                           'echo "ember rc=$?"',
            files={"hostile64": os.path.join(ctx.build, "tools", "hostile64")})
    j.triple_fault_expected = True

    def check(j):
        expect_ember_rc(j, 4)
        expect_hostile_output("KVM", j.output, 4)
    return j, check


@host_test("engine: a snapshot records its backend; restoring it on KVM is refused")
def snapshot_backend_recorded(ctx):
    import base64
    import subprocess
    import time
    guest = base64.b64encode(b"while true; do echo tick; sleep 1; done").decode()
    sock = os.path.join(ctx.tmp, "api.sock")
    state, mem = os.path.join(ctx.tmp, "vm.state"), os.path.join(ctx.tmp, "vm.mem")
    log = open(os.path.join(ctx.tmp, "vm.txt"), "w")
    vm = subprocess.Popen([ctx.ember, "run", "--accel", "soft", "--api-sock", sock, "--cmdline",
                           f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={guest}"],
                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(os.path.join(ctx.tmp, "vm.txt")) as f:
                if "tick" in f.read():
                    break
            time.sleep(0.5)
        rc, out = run_host([ctx.ember, "snapshot", "--api-sock", sock, "--snapshot", state,
                            "--mem", mem], timeout=120)
        expect(rc == 0, f"ember snapshot: {rc} {out}")
    finally:
        vm.kill()
        vm.wait()
        log.close()
    rc, out = run_host([ctx.ember, "restore", "--accel", "kvm", "--snapshot", state, "--mem", mem],
                       timeout=60)
    expect(rc == 2 and "the snapshot was taken on the soft backend; it cannot be restored with "
           "--accel kvm" in out, f"restore on KVM: exit {rc}: {out}")

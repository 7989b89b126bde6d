"""A small integration-test framework for ember.

Two kinds of tests:
  host_test   runs on this machine directly (CLI, file validation, host check);
  guest_test  boots guests: it returns Job(s) — shell scripts that run ember —
              and a check. Where a guest job runs depends on its backend
              (see guest_test): with KVM, directly on a host that has
              hardware KVM or in the nested harness's L1 hosts otherwise; on
              ember's CPU engine, directly on this host.
A check raises TestFailure (via the expect_* helpers) to fail.
"""
import base64
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "harness"))
from nested import Job  # noqa: E402
from overlay import build_initrd_with  # noqa: E402

DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=1 quiet"


class TestFailure(Exception):
    pass


class TestSkipped(Exception):
    pass


@dataclass
class Test:
    name: str
    kind: str  # "host" or "guest"
    fn: object
    batch: str = "default"
    backend: str = "any"  # "any", "kvm" or "both": see guest_test
    mmio: object = False  # False, True or "both": see guest_test
    kernel: str = "any"  # "any" or "debian": see guest_test
    jobs: list = field(default_factory=list)
    check: object = None


REGISTRY = []


def host_test(name):
    def wrap(fn):
        REGISTRY.append(Test(name, "host", fn))
        return fn
    return wrap


BACKENDS = ("any", "kvm", "both")


def guest_test(name, batch="default", backend="any", mmio=False, kernel="any"):
    """The function returns (job or [jobs], check(jobs...)).

    backend says what the test is about:
      "any"   the devices, the API, the VMM: it runs once, on the backend
              ember picks on this host (--accel auto): KVM where the host
              has hardware KVM, ember's CPU engine otherwise;
      "kvm"   the KVM backend itself (several vCPUs, KVM's CPUID, the oracle
              against KVM): with KVM, in the nested harness if need be;
      "both"  the smoke set that keeps each backend's path to the devices
              checked: with KVM (nested if need be) and on the engine.
    mmio=True runs the test once more with pci=off on the guest's command
    line, so that its virtio devices are virtio-mmio ('... [virtio-mmio]'),
    on the backend its "any" run uses; mmio="both" does that on each backend
    the test runs on.
    kernel says which guest kernel the test's engine run may boot: "any"
    lets an "any" test on the engine boot the project's minimal kernel
    (build/guest-min, ten times faster to boot there) when it is built;
    "debian" keeps Debian's cloud kernel (a test of something the minimal
    kernel leaves out). Runs with KVM and the engine's runs of "both" tests
    always boot Debian's kernel: the unmodified distribution kernel."""
    if backend not in BACKENDS:
        raise ValueError(f"{name}: backend {backend!r} is not one of {BACKENDS}")
    if kernel not in ("any", "debian"):
        raise ValueError(f"{name}: kernel {kernel!r} is not 'any' or 'debian'")

    def wrap(fn):
        REGISTRY.append(Test(name, "guest", fn, batch=batch, backend=backend, mmio=mmio,
                             kernel=kernel))
        return fn
    return wrap


def on_mmio():
    """True while guest tests are prepared for their virtio-mmio run."""
    return os.environ.get("EMBER_TEST_MMIO") == "1"


def mmio_words():
    """' pci=off' in the virtio-mmio run, for command lines built by hand."""
    return " pci=off" if on_mmio() else ""


def default_cmdline():
    """The guest's base command line: with pci=off in the virtio-mmio run."""
    return DEFAULT_CMDLINE + (" pci=off" if on_mmio() else "")


# --- the backend a guest test runs on -------------------------------------------

def on_engine():
    """True while guest tests run on ember's CPU engine (--accel soft)."""
    return os.environ.get("EMBER_SOFT") == "1"


def test_vcpus():
    """vCPUs for a test that wants several: 2, or what EMBER_VCPUS says (the
    engine's runs set it: EMBER_SOFT_VCPUS, default 2). Scripts use
    ${EMBER_VCPUS:-2}."""
    return int(os.environ.get("EMBER_VCPUS", "2"))


# --- building guest jobs ------------------------------------------------------

def guest_cmdline(guest_cmd=None, base=None):
    """A kernel command line that makes the default guest's init run
    'guest_cmd' (then power off)."""
    if base is None:
        base = default_cmdline()
    if guest_cmd is None:
        return base
    encoded = base64.b64encode(guest_cmd.encode()).decode()
    return f"{base} ember_cmd={encoded}"


def ember_run(args="", guest_cmd=None, cmdline=None, stdin=None):
    """Shell for one 'ember run', printing its exit status as 'ember rc=N'."""
    line = f'"$EMBER" run {args}'
    if cmdline is None:
        cmdline = guest_cmdline(guest_cmd)
    if cmdline is not False:
        line += f" --cmdline {shlex.quote(cmdline)}"
    if stdin is not None:
        line = f"printf %s {shlex.quote(stdin)} | {line}"
    return f'{line}; echo "ember rc=$?"'


def initrd_with_tool(ctx, *names):
    """The guest's initramfs with build/tools/NAME as /usr/bin/NAME for each
    name (built once)."""
    out = os.path.join(ctx.prep_dir, f"initrd-{'-'.join(names)}.cpio")
    if not os.path.exists(out):
        build_initrd_with({f"/usr/bin/{n}": os.path.join(ctx.build, "tools", n) for n in names},
                          os.path.join(ctx.guest_dir, "initramfs.cpio"), out)
    return out


def job(name, script, timeout=90, files=None):
    return Job(name=name, script=script, timeout=timeout, files=files or {})


# --- checks -------------------------------------------------------------------

def ember_rc(j):
    """The exit status ember reported (the last 'ember rc=N' line)."""
    found = re.findall(r"^ember rc=(\d+)$", j.output, re.M)
    return int(found[-1]) if found else None


def expect(cond, message):
    if not cond:
        raise TestFailure(message)


def expect_job_ran(j):
    expect(j.error is None, f"job {j.name} did not run: {j.error}")


def expect_ember_rc(j, rc):
    expect_job_ran(j)
    got = ember_rc(j)
    expect(got == rc, f"{j.name}: ember exited {got}, expected {rc}")


def expect_output(j, pattern, what=None):
    expect(re.search(pattern, j.output, re.M),
           f"{j.name}: expected {what or repr(pattern)} in the output")


def expect_no_output(j, pattern, what=None):
    m = re.search(pattern, j.output, re.M)
    expect(not m, f"{j.name}: unexpected {what or repr(pattern)}: {m.group(0) if m else ''}")


def no_kvm_reason():
    """What ember's host check names on this host without hardware KVM, as a
    regex: a missing /dev/kvm first, else the PVM module."""
    if not os.path.exists("/dev/kvm"):
        return r"/dev/kvm does not exist"
    if os.path.isdir("/sys/module/kvm_pvm"):
        return r"PVM"
    return r"VT-x or AMD-V"


def run_host(args, stdin=None, timeout=30, env=None):
    """Run a command on this host; returns (rc, stdout+stderr)."""
    p = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def total_metrics(lines):
    """Firecracker's metrics lines added up: counters summed, latencies (the
    latencies_us group: the last request's time, not a count) the largest."""
    total = {}
    for line in lines:
        for group, values in line.items():
            if not isinstance(values, dict) or group in ("ember", "properties"):
                continue
            into = total.setdefault(group, {})
            for key, v in values.items():
                if isinstance(v, int):
                    into[key] = max(into.get(key, 0), v) if group == "latencies_us" \
                        else into.get(key, 0) + v
    return total

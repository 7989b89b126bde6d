#!/usr/bin/env python3
"""ember's test runner: unit tests (cmocka, normal and sanitizer builds), then
integration tests — host tests directly, guest tests on the backend each is
about (framework.guest_test): with KVM directly on a host with hardware KVM,
in the nested harness otherwise; on ember's CPU engine directly. On a host
without hardware KVM the engine's tests run in a second process beside the
nested ones. Last line: 'N passed, N failed'. A run that executed no test
fails."""
import argparse
import contextlib
import copy
import glob
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))
sys.path.insert(0, os.path.join(HERE, "harness"))

import framework  # noqa: E402
from nested import (DirectHost, L1Files, NestedHost, SoftHost, host_has_hw_kvm,  # noqa: E402
                    test_guest_dir)

JOBS_PER_L1 = 7
# Guest tests on ember's CPU engine get this many times their timeouts.
ENGINE_TIMEOUT_SCALE = 10


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = []

    def ok(self, name, detail=""):
        self.passed += 1
        print(f"PASS  {name}{detail}", flush=True)

    def fail(self, name, why, output=None):
        self.failed.append(name)
        print(f"FAIL  {name}: {why}", flush=True)
        if output:
            tail = output.strip().splitlines()[-40:]
            print("      | " + "\n      | ".join(tail), flush=True)

    def skip(self, name, why):
        self.skipped.append((name, why))
        print(f"SKIP  {name}: {why}", flush=True)


def run_unit(build, results, pattern):
    binaries = sorted(b for b in glob.glob(os.path.join(build, "unit", "test_*")) +
                      glob.glob(os.path.join(build, "asan", "unit", "test_*")) +
                      glob.glob(os.path.join(build, "engine", "test_*"))  # src/cpu/engine.mk
                      if os.access(b, os.X_OK) and not b.endswith(".d"))
    if not binaries:
        results.fail("unit tests", f"no unit test binaries under {build}")
        return
    # the engine's tests run twice: interpreter only, and with the translator
    # taking every block at once; test_system a third time with the translator
    # taking a block on its second entry (the engine's default waits for the
    # 32nd), so that loops change from records to host code midway
    runs = [(b, None) for b in binaries if "/engine/" not in b]
    runs += [(b, jit) for b in binaries if "/engine/" in b for jit in ("off", "on")]
    runs += [(b, "lazy") for b in binaries if b.endswith("/engine/test_system")]
    for binary, jit in runs:
        flavour = "asan" if "/asan/" in binary else "unit" if not jit else \
            "engine" if jit == "off" else "engine-jit" if jit == "on" else "engine-jit-lazy"
        suite = os.path.basename(binary)
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        if jit == "lazy":
            env["EMBER_JIT_HOT"] = "2"
        elif jit:
            env["EMBER_JIT"] = jit
        p = subprocess.run([binary], capture_output=True, text=True, env=env, timeout=300)
        cases = re.findall(r"^(ok|not ok) \d+ (?:- )?(.*)$", p.stdout, re.M)
        if not cases:
            results.fail(f"{flavour}/{suite}", f"no TAP results (exit {p.returncode})",
                         p.stdout + p.stderr)
            continue
        for status, case in cases:
            name = f"{flavour}/{suite}: {case.strip()}"
            if pattern and not re.search(pattern, name):
                continue
            if "# SKIP" in case:
                results.skip(name, "skipped by the unit test (see its stderr): " +
                             (p.stderr.strip().splitlines() or ["no reason given"])[-1])
            elif status == "ok":
                results.ok(name)
            else:
                results.fail(name, "failed", p.stdout + p.stderr)
        if p.returncode != 0 and all(s == "ok" for s, _ in cases):
            results.fail(f"{flavour}/{suite}", f"exited {p.returncode}", p.stdout + p.stderr)


class Context:
    def __init__(self, build, hw_kvm):
        self.build = os.path.abspath(build)
        self.ember = os.path.join(self.build, "ember")
        self.ember_asan = os.path.join(self.build, "asan", "ember")
        self.guest_dir = test_guest_dir(self.build)
        self.runwatch = os.path.join(self.build, "tools", "runwatch")
        self.hw_kvm = hw_kvm
        self.tmp = None        # a fresh directory per host test
        self.prep_dir = None   # files guest tests prepare on this host


def load_tests():
    for path in sorted(glob.glob(os.path.join(HERE, "integration", "test_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    return framework.REGISTRY


def call(fn, ctx):
    return fn(ctx) if len(inspect.signature(fn).parameters) else fn()


def run_host_tests(tests, ctx, results):
    for t in tests:
        ctx.tmp = tempfile.mkdtemp(prefix="ember-test-")
        try:
            call(t.fn, ctx)
            results.ok(t.name)
        except framework.TestSkipped as e:
            results.skip(t.name, str(e))
        except framework.TestFailure as e:
            results.fail(t.name, str(e))
        except Exception:
            results.fail(t.name, "error in the test", traceback.format_exc())
        finally:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


def prepare_guest_tests(tests, ctx, results):
    ready = []
    for t in tests:
        try:
            jobs, check = call(t.fn, ctx)
            t.jobs = jobs if isinstance(jobs, list) else [jobs]
            t.check = check
            ready.append(t)
        except framework.TestSkipped as e:
            results.skip(t.name, str(e))
        except Exception:
            results.fail(t.name, "error preparing the test", traceback.format_exc())
    return ready


def batches(tests):
    """Group tests into L1 boots: same batch key, at most JOBS_PER_L1 jobs,
    a test's jobs never split."""
    by_key = {}
    for t in tests:
        by_key.setdefault(t.batch, []).append(t)
    for key, group in by_key.items():
        current, count = [], 0
        for t in group:
            if current and count + len(t.jobs) > JOBS_PER_L1:
                yield key, current
                current, count = [], 0
            current.append(t)
            count += len(t.jobs)
        if current:
            yield key, current


def check_guest_test(t, results):
    try:
        t.check(*t.jobs)
        secs = sum(j.seconds or 0 for j in t.jobs)
        results.ok(t.name, f" ({secs:.1f}s)")
    except framework.TestFailure as e:
        results.fail(t.name, str(e), "\n".join(f"--- {j.name} (rc {j.rc}) ---\n{j.output}"
                                               for j in t.jobs))
    except Exception:
        results.fail(t.name, "error in the check", traceback.format_exc())


def run_guest_tests(tests, ctx, results, log_dir):
    if not tests:
        return
    if ctx.hw_kvm:
        host = DirectHost(ctx.build)
        os.environ["RUNWATCH"] = ctx.runwatch
        os.environ["PATH"] = os.path.join(ctx.build, "tools") + ":" + os.environ["PATH"]
        os.environ["EMBER_ASAN"] = ctx.ember_asan
    else:
        programs = {"/usr/bin/runwatch": ctx.runwatch, "/usr/bin/ember-asan": ctx.ember_asan,
                    "/usr/bin/tcpperf": os.path.join(ctx.build, "tools", "tcpperf"),
                    "/usr/bin/vsockperf": os.path.join(ctx.build, "tools", "vsockperf")}
        # e2fsprogs, to make and check file systems on disk images in L1.
        for tool in ("mke2fs", "debugfs", "e2fsck"):
            programs[f"/sbin/{tool}"] = shutil.which(tool) or f"/sbin/{tool}"
        # curl drives the control API the way its users do.
        programs["/usr/bin/curl"] = shutil.which("curl") or "/usr/bin/curl"
        # gdb drives the GDB stub beside ember (Debian's gdb-minimal: no
        # Python, so its libraries are all it needs).
        programs["/usr/bin/gdb"] = shutil.which("gdb") or "/usr/bin/gdb"
        extra = L1Files(programs=programs)
        host = NestedHost(ctx.build, extra=extra, log_dir=log_dir)
    try:
        for n, (key, group) in enumerate(batches(tests)):
            jobs = [j for t in group for j in t.jobs]
            if not ctx.hw_kvm:
                prefix = ("export RUNWATCH=/usr/bin/runwatch EMBER_ASAN=/usr/bin/ember-asan "
                          "EMBER_NESTED=1\n")
                for j in jobs:
                    j.script = prefix + j.script
            t0 = time.monotonic()
            host.run(jobs, label=f"{n:02d}-{key}")
            print(f"      [{key} batch {n}: {len(jobs)} jobs in {time.monotonic() - t0:.1f}s]",
                  flush=True)
            for t in group:
                check_guest_test(t, results)
    finally:
        host.close()


def mmio_variants(tests, ctx, results, batch_suffix="-mmio"):
    """The given tests prepared afresh with pci=off on the guest's command
    line (their virtio devices are then virtio-mmio), named
    '... [virtio-mmio]', in batches of their own."""
    chosen = []
    for t in tests:
        m = copy.copy(t)
        m.name = t.name + " [virtio-mmio]"
        m.batch = t.batch + batch_suffix
        chosen.append(m)
    os.environ["EMBER_TEST_MMIO"] = "1"
    try:
        return prepare_guest_tests(chosen, ctx, results)
    finally:
        del os.environ["EMBER_TEST_MMIO"]


def split_by_backend(guests, hw, engine_all):
    """(with KVM, its virtio-mmio runs), (on the engine, its virtio-mmio runs)
    as framework.guest_test describes; with --engine-all every test that
    is not about KVM itself runs on the engine as well."""
    if hw:
        kvm = list(guests)
        engine = [t for t in guests if t.backend == "both" or
                  (engine_all and t.backend != "kvm")]
        return (kvm, [t for t in kvm if t.mmio]), (engine, [])
    kvm = [t for t in guests if t.backend in ("kvm", "both")]
    engine = [t for t in guests if t.backend in ("any", "both") or
              (engine_all and t.backend == "kvm")]
    kvm_mmio = [t for t in kvm if t.mmio and (t.backend == "kvm" or t.mmio == "both")]
    engine_mmio = [t for t in engine if t.mmio and t.backend != "kvm"]
    return (kvm, kvm_mmio), (engine, engine_mmio)


def claim(queue, index):
    """With a queue directory shared by two runner processes: True for the
    one that takes test 'index' first."""
    if queue is None:
        return True
    try:
        os.close(os.open(os.path.join(queue, str(index)), os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def run_engine_tests(tests, mmio, ctx, results, queue=None, reverse=False):
    """The given guest tests (and 'mmio' once more on virtio-mmio) directly on
    this host with --accel soft, named '... [engine]'. With a queue, each
    test runs in whichever process claims it first (the nested runner joins
    in from the end of the list once its own tests are done); a test is
    prepared only by the process that runs it."""
    host = SoftHost(ctx.build, ENGINE_TIMEOUT_SCALE)  # EMBER_SOFT=1 while preparing, too
    os.environ["RUNWATCH"] = ctx.runwatch
    tools = os.path.join(ctx.build, "tools")
    if tools not in os.environ["PATH"].split(":"):
        os.environ["PATH"] = tools + ":" + os.environ["PATH"]
    todo = [(t, False) for t in tests] + [(t, True) for t in mmio]
    order = range(len(todo) - 1, -1, -1) if reverse else range(len(todo))
    minimal = minimal_kernel_split(ctx)
    try:
        for index in order:
            if not claim(queue, index):
                if reverse:
                    break  # met the other process: the rest is its
                continue
            t, on_mmio = todo[index]
            on_minimal = minimal and t.backend == "any" and t.kernel == "any"
            with guest_kernel_for(ctx, minimal if on_minimal else None):
                ready = mmio_variants([t], ctx, results) if on_mmio else \
                    prepare_guest_tests([copy.copy(t)], ctx, results)
                for r in ready:
                    r.name += " [engine, minimal kernel]" if on_minimal else " [engine]"
                    t0 = time.monotonic()
                    host.run(r.jobs, label="engine")
                    print(f"      [engine: {len(r.jobs)} jobs in "
                          f"{time.monotonic() - t0:.1f}s]", flush=True)
                    check_guest_test(r, results)
    finally:
        host.close()


def minimal_kernel_split(ctx):
    """build/guest-min when the engine's "any" tests boot the project's
    minimal kernel (framework.guest_test's kernel="any"): when it is built
    and no --guest-kernel chose one kernel for every test; else None."""
    if os.environ.get("EMBER_TEST_GUEST_DIR"):
        return None
    guest = os.path.join(ctx.build, "guest-min")
    files = ("vmlinuz", "vmlinux", "initramfs.cpio")
    return guest if all(os.path.exists(os.path.join(guest, f)) for f in files) else None


@contextlib.contextmanager
def guest_kernel_for(ctx, guest):
    """While preparing and running one test: boot 'guest' (a directory
    like build/guest) instead of the default, if given."""
    if not guest:
        yield
        return
    saved = ctx.guest_dir
    os.environ["EMBER_TEST_GUEST_DIR"] = ctx.guest_dir = guest
    try:
        yield
    finally:
        del os.environ["EMBER_TEST_GUEST_DIR"]
        ctx.guest_dir = saved


class EngineBeside:
    """The engine's guest tests in a second process, beside the nested ones:
    the engine runs on this host's other core while L1 runs the nested
    batches. Once those are done, this process takes the engine's tests
    from the end of the list (help, on the core L1 no longer needs). The
    child's lines are printed, and its results counted, at the end."""

    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="ember-engine-")
        self.results_path = os.path.join(self.dir, "results.json")
        self.log_path = os.path.join(self.dir, "log")
        self.queue = os.path.join(self.dir, "claims")
        os.mkdir(self.queue)
        cmd = [sys.executable, os.path.abspath(__file__), "--build", args.build,
               "--integration-only", "--engine-child", self.results_path,
               "--engine-queue", self.queue]
        if args.filter:
            cmd += ["-k", args.filter]
        if args.engine_all:
            cmd.append("--engine-all")
        if args.no_mmio:
            cmd.append("--no-mmio")
        print("      [the engine's guest tests run beside the nested ones; their lines "
              "follow them]", flush=True)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def finish(self, results):
        rc = self.proc.wait()
        self.log.close()
        with open(self.log_path) as f:
            for line in f:
                if not line.startswith(("ember tests:", "guest tests about KVM ran")):
                    print(line, end="", flush=True)
        try:
            with open(self.results_path) as f:
                got = json.load(f)
            results.passed += got["passed"]
            results.failed += got["failed"]
            results.skipped += [tuple(s) for s in got["skipped"]]
        except (OSError, ValueError, KeyError):
            results.fail("engine guest tests", f"the engine's test process ended with {rc} "
                         "and left no results")
        shutil.rmtree(self.dir, ignore_errors=True)


def use_guest_kernel(build, which):
    """Point the guest tests (and the engine's child process) at the guest
    directory of the chosen kernel; the minimal one must have been built."""
    guest = os.path.join(os.path.abspath(build), "guest" if which == "debian" else "guest-min")
    if not os.path.exists(os.path.join(guest, "vmlinuz")) or \
            not os.path.exists(os.path.join(guest, "initramfs.cpio")):
        sys.exit(f"--guest-kernel {which}: {guest} has no vmlinuz/initramfs.cpio "
                 f"(run 'make {'guest' if which == 'debian' else 'guest-kernel'}')")
    os.environ["EMBER_TEST_GUEST_DIR"] = guest
    print(f"ember tests: the guest tests boot {guest}/vmlinuz by default", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", "--filter", help="regex on test names")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--integration-only", action="store_true")
    ap.add_argument("--log-dir", default=None, help="keep L1 console logs here")
    ap.add_argument("--no-engine", action="store_true",
                    help="skip the guest tests on ember's CPU engine (reported as skipped)")
    ap.add_argument("--engine-only", action="store_true",
                    help="of the guest tests, run only those on ember's CPU engine")
    ap.add_argument("--no-mmio", action="store_true",
                    help="skip the second run of the device tests on virtio-mmio (pci=off)")
    ap.add_argument("--engine-all", action="store_true",
                    help="run every guest test on ember's CPU engine as well, those about "
                         "KVM too (they fail there where they need several vCPUs or KVM)")
    ap.add_argument("--serial", action="store_true",
                    help="run the engine's guest tests after the nested ones instead of "
                         "beside them in a second process")
    ap.add_argument("--guest-kernel", choices=("debian", "min"), default=None,
                    help="the kernel the guest tests boot by default: Debian's cloud kernel "
                         "(build/guest, the default) or the project's minimal one "
                         "(build/guest-min, 'make guest-kernel'); sets EMBER_TEST_GUEST_DIR")
    ap.add_argument("--engine-child", metavar="RESULTS_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--engine-queue", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.guest_kernel:
        use_guest_kernel(args.build, args.guest_kernel)
    results = Results()
    start = time.monotonic()
    hw, why = host_has_hw_kvm()
    mode = "with KVM directly (hardware KVM on this host)" if hw else \
        (f"with KVM in the nested harness ({why}; L1 = qemu-system-x86_64 -accel tcg "
         "-cpu max with kvm-amd)")
    print(f"ember tests: guest tests about KVM run {mode}; on ember's CPU engine directly "
          f"with --accel soft: {'the smoke set' if hw else 'the rest'} "
          "(tests/integration/framework.py: guest_test)", flush=True)

    tests = [t for t in load_tests() if not args.filter or re.search(args.filter, t.name)]
    guests = [t for t in tests if t.kind == "guest"]
    (on_kvm, kvm_mmio), (on_engine, engine_mmio) = split_by_backend(guests, hw, args.engine_all)
    if args.no_mmio:
        kvm_mmio, engine_mmio = [], []
    run_kvm = not (args.unit_only or args.engine_only or args.engine_child)
    run_engine = not (args.unit_only or args.no_engine) and bool(on_engine)
    beside = None
    if run_kvm and run_engine and on_kvm and not (args.serial or hw):
        beside = EngineBeside(args)
    if not args.integration_only:
        run_unit(args.build, results, args.filter)
    if not args.unit_only:
        ctx = Context(args.build, hw)
        if not args.engine_child:
            run_host_tests([t for t in tests if t.kind == "host"], ctx, results)
        ctx.prep_dir = tempfile.mkdtemp(prefix="ember-prep-")
        try:
            if run_kvm:
                guest = prepare_guest_tests(on_kvm, ctx, results)
                guest += mmio_variants(kvm_mmio, ctx, results)
                log_dir = args.log_dir or os.path.join(args.build, "test-logs")
                run_guest_tests(guest, ctx, results, log_dir)
            if beside:
                run_engine_tests(on_engine, engine_mmio, ctx, results, beside.queue,
                                 reverse=True)
                beside.finish(results)
            elif run_engine:
                run_engine_tests(on_engine, engine_mmio, ctx, results, args.engine_queue)
            elif args.no_engine and not hw:
                for t in on_engine:
                    if t.backend == "any":
                        results.skip(t.name, "--no-engine: on this host (no hardware KVM) "
                                             "it runs on ember's CPU engine only")
        finally:
            shutil.rmtree(ctx.prep_dir, ignore_errors=True)
    if args.engine_child:
        with open(args.engine_child, "w") as f:
            json.dump({"passed": results.passed, "failed": results.failed,
                       "skipped": results.skipped}, f)
        return 0

    print(f"\nguest tests about KVM ran {mode}; {time.monotonic() - start:.0f}s in all")
    if results.skipped:
        print(f"SKIPPED {len(results.skipped)} test(s) — not counted as passed:")
        for name, why in results.skipped:
            print(f"  SKIPPED {name}: {why}")
    if results.failed:
        print("failed: " + "; ".join(results.failed))
    if results.passed + len(results.failed) == 0:
        results.failed.append("(nothing)")
        print("no test ran: counting that as a failure")
    print(f"{results.passed} passed, {len(results.failed)} failed")
    return 0 if not results.failed else 1


if __name__ == "__main__":
    sys.exit(main())

"""CLI and setup errors: run directly on this host (no KVM needed), with the
normal and the sanitizer build of ember. Every bad input must give exit
status 2 (or 5 for an unusable host) and one clear message naming the file
or option — never a crash."""
import os
import re
import struct

from framework import TestSkipped, expect, host_test, no_kvm_reason, run_host

SETUP_ERROR = 2
HOST_UNSUITABLE = 5


def embers(ctx):
    return [e for e in (ctx.ember, ctx.ember_asan) if e and os.path.exists(e)]


def run_all(ctx, args, **kw):
    """Run every ember build with args; returns [(binary, rc, output)]."""
    return [(e, *run_host([e] + args, **kw)) for e in embers(ctx)]


def expect_setup_error(ctx, args, pattern, rc=SETUP_ERROR):
    import re
    for binary, got, out in run_all(ctx, args):
        expect(got == rc, f"{os.path.basename(binary)} {' '.join(args)}: exit {got}, "
                          f"expected {rc}; output: {out.strip()[:300]}")
        expect(re.search(pattern, out), f"{' '.join(args)}: expected /{pattern}/ in: "
                                        f"{out.strip()[:300]}")
        expect("Sanitizer" not in out and "runtime error" not in out,
               f"sanitizer report for {' '.join(args)}: {out[:500]}")


def kernel(ctx):
    return os.path.join(ctx.guest_dir, "vmlinuz")


def write(ctx, name, data):
    path = os.path.join(ctx.tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@host_test("cli: --help and --version exit 0")
def help_version(ctx):
    for binary, rc, out in run_all(ctx, ["--help"]):
        expect(rc == 0 and "Usage: ember run" in out and "--cpus" in out, f"--help: {rc} {out}")
    for binary, rc, out in run_all(ctx, ["--version"]):
        expect(rc == 0 and out.startswith("ember "), f"--version: {rc} {out}")


@host_test("cli: unknown command and option are usage errors")
def unknown(ctx):
    expect_setup_error(ctx, ["frobnicate"], r"unknown command 'frobnicate'")
    expect_setup_error(ctx, ["run", "--frob"], r"unknown option '--frob'")
    expect_setup_error(ctx, ["run", "--kernel"], r"option '--kernel' needs a value")
    expect_setup_error(ctx, [], r"no command given")


@host_test("cli: bad --cpus and --mem values")
def bad_values(ctx):
    for v in ("0", "abc", "256", "-1", "2x"):
        expect_setup_error(ctx, ["run", "--cpus", v], rf"--cpus: expected a number .*'{v}'")
    for v in ("12X", "1.5G", "", "G"):
        expect_setup_error(ctx, ["run", "--mem", v], r"--mem: expected a size")
    expect_setup_error(ctx, ["run", "--mem", "8M"], r"--mem: 8M is outside")
    expect_setup_error(ctx, ["run", "--mem", "100000K"], r"not a whole number of MiB")
    expect_setup_error(ctx, ["run", "--accel", "soft", "--cpus", "33", "--kernel", kernel(ctx)],
                       r"CPU engine runs at most 32 vCPUs; --cpus 33 needs hardware KVM")


@host_test("kernel: missing, directory, empty")
def missing_kernel(ctx):
    expect_setup_error(ctx, ["run", "--kernel", "/nonexistent/bzImage"],
                       r"kernel /nonexistent/bzImage: No such file")
    expect_setup_error(ctx, ["run", "--kernel", ctx.tmp], r"not a regular file")
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "empty", b"")], r"file is empty")


@host_test("kernel: garbage and non-kernel files are rejected")
def garbage_kernel(ctx):
    path = write(ctx, "garbage", os.urandom(4096))
    expect_setup_error(ctx, ["run", "--kernel", path], r"garbage: not a Linux kernel image")
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "tiny", b"MZ")],
                       r"too short for a bzImage")
    expect_setup_error(ctx, ["run", "--kernel", "/bin/sh"],
                       r"/bin/sh: not an x86-64 ELF executable")


@host_test("kernel: truncated bzImage")
def truncated_bzimage(ctx):
    with open(kernel(ctx), "rb") as f:
        data = f.read()
    for size in (2048, 600 * 1024, len(data) - 4096):
        path = write(ctx, f"trunc{size}", data[:size])
        expect_setup_error(ctx, ["run", "--kernel", path], r"truncated")


@host_test("kernel: boot protocol older than 2.06")
def old_protocol(ctx):
    with open(kernel(ctx), "rb") as f:
        data = bytearray(f.read())
    struct.pack_into("<H", data, 0x206, 0x0205)
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "old", data)],
                       r"boot protocol 2\.05 is older than 2\.06")


@host_test("kernel: malformed ELF headers")
def bad_elf(ctx):
    vmlinux = os.path.join(ctx.guest_dir, "vmlinux")
    with open(vmlinux, "rb") as f:
        head = f.read(1 << 20)
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "elf-trunc", head)], r"truncated")
    bad = bytearray(head[:64])
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "elf-hdr", bad)],
                       r"truncated or malformed ELF program headers")
    bad = bytearray(head)
    bad[4] = 1  # ELFCLASS32
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "elf32", bad)],
                       r"not a 64-bit little-endian ELF kernel")
    bad = bytearray(head)
    struct.pack_into("<Q", bad, 0x20, len(head) - 8)  # e_phoff past the end
    expect_setup_error(ctx, ["run", "--kernel", write(ctx, "elf-phoff", bad)],
                       r"program headers")


@host_test("kernel and initrd that do not fit in guest memory")
def too_big(ctx):
    expect_setup_error(ctx, ["run", "--kernel", kernel(ctx), "--mem", "32M"],
                       r"kernel needs guest memory up to \d+ MiB, the guest has 32 MiB")
    big = os.path.join(ctx.tmp, "big-initrd")
    with open(big, "wb") as f:
        f.truncate(300 << 20)  # sparse
    expect_setup_error(ctx, ["run", "--kernel", kernel(ctx), "--initrd", big, "--mem", "256M"],
                       r"big-initrd: initrd of 300 MiB does not fit")


@host_test("initrd: missing and empty")
def bad_initrd(ctx):
    expect_setup_error(ctx, ["run", "--kernel", kernel(ctx), "--initrd", "/nonexistent/initrd"],
                       r"initrd /nonexistent/initrd: No such file")
    expect_setup_error(ctx, ["run", "--kernel", kernel(ctx), "--initrd",
                             write(ctx, "empty-initrd", b"")], r"file is empty")


@host_test("command line longer than the kernel accepts")
def long_cmdline(ctx):
    expect_setup_error(ctx, ["run", "--kernel", kernel(ctx), "--cmdline", "x" * 3000],
                       r"command line is 3000 bytes, the kernel accepts at most 2047")


@host_test("host check: --accel kvm on PVM or without KVM is refused with advice")
def host_check(ctx):
    if ctx.hw_kvm:
        raise TestSkipped("this host has hardware KVM; the refusal path is covered "
                          "by the unit tests with fake /sys and /proc trees")
    for binary, rc, out in run_all(ctx, ["run", "--accel", "kvm", "--kernel", kernel(ctx)]):
        expect(rc == HOST_UNSUITABLE, f"expected exit {HOST_UNSUITABLE}, got {rc}: {out}")
        expect("--accel soft" in out and "VT-x or AMD-V" in out, f"no advice in: {out}")
        expect(re.search(no_kvm_reason(), out), f"the reason (/{no_kvm_reason()}/) not named: {out}")


@host_test("default guest is found beside the binary")
def default_guest_lookup(ctx):
    if ctx.hw_kvm:
        raise TestSkipped("would boot the guest; covered by the guest tests")
    # Without --kernel, ember must get past file checks to the host check.
    rc, out = run_host([ctx.ember, "run", "--accel", "kvm"])
    expect(rc == HOST_UNSUITABLE, f"expected the host check to stop it, got {rc}: {out}")
    env = dict(os.environ, EMBER_GUEST_DIR="/nonexistent")
    rc, out = run_host(["/bin/sh", "-c", f"cp {ctx.ember} {ctx.tmp}/ember && "
                        f"{ctx.tmp}/ember run"], env=env)
    expect(rc == SETUP_ERROR and "default guest is not built" in out,
           f"expected a missing-default-guest error, got {rc}: {out}")


@host_test("runwatch (the tests' and bench's watcher): a pattern split between two full reads "
           "of the output is still found")
def runwatch_split_pattern(ctx):
    import subprocess
    path = os.path.join(ctx.tmp, "out.txt")
    with open(path, "w") as f:  # the pattern straddles the first 4096-byte read
        f.write("x" * 4090 + "MAGIC-LINE" + "y" * 5000 + "\nLATE-LINE\n")
    r = subprocess.run([os.path.join(ctx.build, "tools", "runwatch"), "--stamp", "MAGIC-LINE",
                        "--stamp", "LATE-LINE", "--", "cat", path],
                       capture_output=True, text=True, timeout=30)
    stamps = [ln for ln in r.stderr.splitlines() if ln.startswith("runwatch: stamp")]
    expect(len(stamps) == 2 and "MAGIC-LINE" in stamps[0] and "LATE-LINE" in stamps[1],
           f"stamps: {stamps}")

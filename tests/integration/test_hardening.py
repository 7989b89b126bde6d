"""Defence in depth that needs no guest: the release binary is built hardened
(PIE, full RELRO with BIND_NOW, stack protector, _FORTIFY_SOURCE), the API
socket is its owner's alone unless asked otherwise, and an oversized state
file is refused before ember reads it."""
import os
import re
import socket
import stat
import subprocess
import time

from framework import expect, host_test, run_host


def readelf(args, binary):
    rc, out = run_host(["readelf", *args, binary])
    expect(rc == 0, f"readelf {' '.join(args)} failed: {out[:300]}")
    return out


@host_test("hardening: the release ember is PIE, full RELRO + BIND_NOW, with stack "
           "protector and _FORTIFY_SOURCE checks")
def hardened_binary(ctx):
    ember = ctx.ember
    header = readelf(["-h", "-W"], ember)
    expect(re.search(r"Type:\s+DYN", header), f"not a position-independent executable:\n{header}")
    dynamic = readelf(["-d", "-W"], ember)
    expect(re.search(r"\(FLAGS\)\s+.*BIND_NOW", dynamic) or re.search(r"\(BIND_NOW\)", dynamic),
           "no BIND_NOW in the dynamic section")
    expect(re.search(r"\(FLAGS_1\)\s+.*NOW.*PIE|\(FLAGS_1\)\s+.*PIE.*NOW", dynamic),
           "FLAGS_1 lacks NOW or PIE")
    segments = readelf(["-l", "-W"], ember)
    expect("GNU_RELRO" in segments, "no GNU_RELRO segment")
    symbols = readelf(["--dyn-syms", "-W"], ember)
    expect(re.search(r"\b__stack_chk_fail\b", symbols), "no __stack_chk_fail: no stack protector")
    fortified = sorted(set(re.findall(r"\b(__\w+_chk)\b", symbols)) - {"__stack_chk_fail"})
    expect(len(fortified) >= 3, f"few _FORTIFY_SOURCE checked calls: {fortified}")


def wait_socket(proc, path):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        expect(proc.poll() is None, f"ember exited {proc.returncode}")
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError("the API socket never accepted")


@host_test("hardening: the API socket is mode 0600 whatever the umask; --api-sock-mode "
           "sets another; a mode the owner cannot use is refused")
def api_socket_mode(ctx):
    for extra, want in (((), 0o600), (("--api-sock-mode", "0660"), 0o660)):
        path = os.path.join(ctx.tmp, f"mode-{want:o}.sock")
        # umask 0: the mode must come from ember, not from the umask.
        proc = subprocess.Popen([ctx.ember, "--api-sock", path, *extra],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0))
        try:
            wait_socket(proc, path)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            expect(mode == want, f"{extra}: the socket's mode is {mode:o}, expected {want:o}")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    rc, out = run_host([ctx.ember, "--api-sock", os.path.join(ctx.tmp, "x.sock"),
                        "--api-sock-mode", "0066"])
    expect(rc != 0 and "owner could not use the socket" in out, f"0066: rc {rc}: {out[:300]}")
    rc, out = run_host([ctx.ember, "--api-sock", os.path.join(ctx.tmp, "x.sock"),
                        "--api-sock-mode", "rw"])
    expect(rc != 0 and "expected an octal mode" in out, f"'rw': rc {rc}: {out[:300]}")


@host_test("hardening: a 60 MB state file is refused before it is read (issue 20: it "
           "drove ember to 2.1 GiB), with a clear message")
def state_file_too_large(ctx):
    state = os.path.join(ctx.tmp, "huge.state")
    mem = os.path.join(ctx.tmp, "huge.mem")
    with open(state, "wb") as f:
        f.write(b"EMBERSNP")
        f.truncate(60 << 20)
    with open(mem, "wb") as f:
        f.truncate(1 << 20)
    # At most 1 GiB of address space: a file parsed whole would not fit.
    rc, out = run_host(["/bin/sh", "-c", f'ulimit -v 1048576; exec "{ctx.ember}" restore '
                        f'--snapshot {state} --mem {mem}'])
    expect(rc == 2, f"exit {rc}, expected 2: {out[-400:]}")
    expect("too large for a state file" in out and "refused before reading it" in out,
           f"no clear message: {out[-400:]}")

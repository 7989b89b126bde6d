"""seccomp-bpf per thread (src/util/seccomp.c), on ember's CPU engine so the
tests run on this host: every thread of a running ember is filtered, a guest
doing disk, network, rng and console work and a snapshot and a restore all
run under the filters, --no-seccomp turns them off, and a forbidden system
call in each kind of thread stops ember with status 148 and a line naming the
thread and the call (the hidden --seccomp-selftest hook)."""
import base64
import json
import functools
import http.server
import os
import re
import subprocess
import threading
import time

from framework import expect, host_test, run_host

SECCOMP_EXIT = 148
KINDS = ("main", "vcpu", "console", "slirp", "timer", "fs")


def cmdline(script):
    encoded = base64.b64encode(script.encode()).decode()
    return f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={encoded}"


def wait_for(path, text, proc, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            out = f.read()
        if text in out:
            return out
        if proc.poll() is not None:
            raise AssertionError(f"ember exited {proc.returncode} before '{text}': {out[-800:]}")
        time.sleep(0.3)
    raise AssertionError(f"no '{text}' within {timeout}s")


def thread_status(pid):
    """{tid: (name, Seccomp, NoNewPrivs)} for every thread of pid."""
    result = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except FileNotFoundError:
            continue
        field = lambda k: re.search(rf"^{k}:\s*(\S+)", status, re.M).group(1)  # noqa: E731
        result[tid] = (field("Name"), field("Seccomp"), field("NoNewPrivs"))
    return result


def start_vm(ctx, name, args, script):
    log_path = os.path.join(ctx.tmp, f"{name}.txt")
    log = open(log_path, "w")
    proc = subprocess.Popen([ctx.ember, *args, "--cmdline", cmdline(script)]
                            if args[0] == "run" else [ctx.ember, *args],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    return proc, log, log_path


def stop_vm(proc, log):
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    log.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


WORK = """
dd if=/dev/urandom of=/dev/vda bs=64k count=8 2>/dev/null; sync
echo "disk $(dd if=/dev/vda bs=64k count=8 2>/dev/null | md5sum | cut -c1-8)"
echo "rng $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -A n -t x1 | tr -d ' ')"
echo "http $(wget -q -O - http://10.0.2.2:PORT/page.txt)"
echo work-done
while true; do echo tick; sleep 1; done
"""


@host_test("seccomp: every thread of a running ember is filtered (Seccomp: 2, NoNewPrivs: 1); "
           "disk, rng, user networking, the console, a snapshot and its restore all work under "
           "the filters; --no-seccomp leaves them off")
def seccomp_filters_everywhere(ctx):
    with open(os.path.join(ctx.tmp, "page.txt"), "w") as f:
        f.write("seccomp-page-42")
    handler = functools.partial(QuietHandler, directory=ctx.tmp)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    disk = os.path.join(ctx.tmp, "sc-disk.img")
    with open(disk, "wb") as f:
        f.truncate(4 << 20)
    sock = os.path.join(ctx.tmp, "sc-api.sock")
    state, mem = os.path.join(ctx.tmp, "sc.state"), os.path.join(ctx.tmp, "sc.mem")
    args = ["run", "--accel", "soft", "--rng", "--disk", f"path={disk}", "--net", "user",
            "--api-sock", sock]
    proc, log, log_path = start_vm(ctx, "sc-run", args, WORK.replace("PORT", str(port)))
    try:
        out = wait_for(log_path, "tick", proc)
        expect(re.search(r"^disk [0-9a-f]{8}", out, re.M), f"no disk line: {out[-600:]}")
        expect(re.search(r"^rng [0-9a-f]{32}", out, re.M), f"no rng line: {out[-600:]}")
        expect("http seccomp-page-42" in out, f"no HTTP page over slirp: {out[-600:]}")
        threads = thread_status(proc.pid)
        names = sorted(n for n, _, _ in threads.values())
        for want in ("vcpu0", "ember-console"):
            expect(want in names, f"no thread {want}: {names}")
        expect(len(threads) >= 4, f"few threads: {threads}")
        for tid, (n, sc, nnp) in threads.items():
            expect(sc == "2" and nnp == "1", f"thread {tid} ({n}): Seccomp {sc}, NoNewPrivs {nnp}")
        # The loop writes a snapshot (new files, rename) under its filter.
        rc, sout = run_host([ctx.ember, "snapshot", "--api-sock", sock, "--snapshot", state,
                             "--mem", mem], timeout=120)
        expect(rc == 0, f"ember snapshot: {rc} {sout}")
        time.sleep(2)
        expect(proc.poll() is None, f"ember died after the snapshot: {open(log_path).read()[-600:]}")
    finally:
        stop_vm(proc, log)
        httpd.shutdown()
    # The restored VM runs under the filters too.
    proc, log, log_path = start_vm(ctx, "sc-restore",
                                   ["restore", "--accel", "soft", "--snapshot", state,
                                    "--mem", mem], None)
    try:
        before = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(log_path, errors="replace") as f:
                n = f.read().count("tick")
            if n >= before + 3:
                break
            before = before or n
            expect(proc.poll() is None, f"restored ember exited {proc.returncode}: "
                   f"{open(log_path).read()[-600:]}")
            time.sleep(0.5)
        expect(n >= 3, f"the restored guest does not run: {open(log_path).read()[-600:]}")
        for tid, (n, sc, nnp) in thread_status(proc.pid).items():
            expect(sc == "2", f"restored: thread {tid} ({n}): Seccomp {sc}")
    finally:
        stop_vm(proc, log)
    # --no-seccomp: none.
    proc, log, log_path = start_vm(ctx, "sc-off", ["run", "--accel", "soft", "--no-seccomp"],
                                   "while true; do echo tick; sleep 1; done")
    try:
        wait_for(log_path, "tick", proc)
        for tid, (n, sc, _) in thread_status(proc.pid).items():
            expect(sc == "0", f"--no-seccomp: thread {tid} ({n}): Seccomp {sc}")
    finally:
        stop_vm(proc, log)


@host_test("seccomp: a forbidden system call in each kind of thread (main, vcpu, console, "
           "slirp, timer, fs) stops ember with status 148 and a line naming the thread and the "
           "call")
def seccomp_forbidden_call(ctx):
    for kind in KINDS:
        share = ["--share", f"{ctx.tmp},tag=t"] if kind == "fs" else []  # fs workers
        rc, out = run_host([ctx.ember, "run", "--accel", "soft", "--net", "user", *share,
                            "--seccomp-selftest", kind, "--cmdline",
                            cmdline("echo should-not-run")], timeout=120)
        line = (f"ember: seccomp: the {kind} thread made a forbidden system call: "
                f"personality (135); stopping with exit status {SECCOMP_EXIT}")
        expect(rc == SECCOMP_EXIT, f"{kind}: exit {rc}, expected {SECCOMP_EXIT}: {out[-400:]}")
        expect(line in out, f"{kind}: no line '{line}': {out[-400:]}")
        expect("should-not-run" not in out, f"{kind}: the guest ran its command")
    rc, out = run_host([ctx.ember, "run", "--accel", "soft", "--seccomp-selftest", "bogus"])
    expect(rc == 2 and "unknown thread kind 'bogus'" in out, f"bogus kind: {rc} {out[-300:]}")
    rc, out = run_host([ctx.ember, "--api-sock", os.path.join(ctx.tmp, "f.sock"),
                        "--seccomp-filter", "/dev/null"])
    expect(rc == 2 and "/dev/null is not a file" in out, f"--seccomp-filter: {rc} {out[-300:]}")


# ember's own lists (src/util/seccomp.c), for filter files written here.
COMMON_CALLS = ["read", "write", "readv", "writev", "close", "lseek", "fstat", "newfstatat",
                "poll", "ppoll", "futex", "mmap", "munmap", "mprotect", "madvise", "mremap",
                "brk", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
                "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "sched_yield",
                "getpid", "gettid", "tgkill", "getrandom", "set_robust_list", "rseq", "exit",
                "exit_group"]
VCPU_CALLS = ["ioctl", "epoll_ctl", "io_uring_enter", "sendmsg", "recvmsg", "sendto",
              "recvfrom", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
              "fsync", "fdatasync", "fallocate", "fcntl", "timerfd_settime", "timerfd_gettime",
              "eventfd2"]


def filter_file(ctx, name, filters):
    path = os.path.join(ctx.tmp, name)
    with open(path, "w") as f:
        f.write(filters if isinstance(filters, str) else json.dumps(filters, indent=1))
    return path


def allow_list(calls, default="trap"):
    return {"default_action": default, "filter_action": "allow",
            "filter": [{"syscall": c} for c in calls]}


@host_test("seccomp: --seccomp-filter FILE (seccompiler's JSON by ember's thread kinds): a vcpu "
           "filter from the file runs the guest; a console filter without write stops ember "
           "(148, naming the console thread); malformed files exit 2 naming the place")
def seccomp_filter_file(ctx):
    # The vCPU's list written out, with KVM_RUN as an argument rule for show.
    vcpu = allow_list(COMMON_CALLS + VCPU_CALLS)
    vcpu["filter"].append({"syscall": "ioctl", "args": [
        {"index": 1, "type": "dword", "op": "eq", "val": 0xAE80, "comment": "KVM_RUN"}]})
    path = filter_file(ctx, "vcpu.json", {"vcpu": vcpu})
    rc, out = run_host([ctx.ember, "run", "--accel", "soft", "--seccomp-filter", path,
                        "--cmdline", cmdline("echo custom-filter-ok")], timeout=120)
    expect(rc == 0 and "custom-filter-ok" in out, f"vcpu filter from a file: {rc} {out[-500:]}")
    # The file is what is installed: a console thread that may not write.
    no_write = [c for c in COMMON_CALLS if c not in ("write", "writev")]
    path = filter_file(ctx, "console.json", {"console": allow_list(no_write)})
    rc, out = run_host([ctx.ember, "run", "--accel", "soft", "--seccomp-filter", path,
                        "--cmdline", cmdline("echo should-not-be-seen")], timeout=120)
    expect(rc == SECCOMP_EXIT and re.search(r"ember: seccomp: the console thread made a forbidden "
                                            r"system call: (write|writev) ", out),
           f"console filter without write: {rc} {out[-500:]}")
    expect("should-not-be-seen" not in out, "the console wrote under a filter forbidding it")
    bad = [
        ("{", r"bad.json: "),
        ('{"vmm": ' + json.dumps(allow_list(["read"])) + "}",
         r"\"vmm\" is not one of ember's thread kinds .*Firecracker's vmm and api"),
        (json.dumps({"vcpu": allow_list(["read", "frobnicate"])}),
         r"\"vcpu\"\.filter\[1\]\.syscall: 'frobnicate' is not a system call"),
        (json.dumps({"main": {"default_action": "trap", "filter_action": "allow",
                              "filter": [{"syscall": "ioctl", "args": [
                                  {"index": 1, "type": "dword", "op": "like", "val": 1}]}]}}),
         r"\"main\"\.filter\[0\]\.args\[0\]\.op: 'like'"),
        (json.dumps({"vcpu": allow_list([], default="allow")}), r"filter_action is default_action"),
    ]
    for text, pattern in bad:
        path = filter_file(ctx, "bad.json", text)
        rc, out = run_host([ctx.ember, "run", "--accel", "soft", "--seccomp-filter", path,
                            "--cmdline", cmdline("echo should-not-run")])
        expect(rc == 2 and re.search(pattern, out) and f"--seccomp-filter {path}" in out,
               f"{text[:60]}: exit {rc}, wanted 2 and /{pattern}/: {out[-400:]}")
    rc, out = run_host([ctx.ember, "run", "--no-seccomp", "--seccomp-filter", path])
    expect(rc == 2 and "exclude each other" in out, f"with --no-seccomp: {rc} {out}")

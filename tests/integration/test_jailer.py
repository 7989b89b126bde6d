"""ember-jailer (src/jailer/), Firecracker's jailer for ember: its argument
errors, then ember jailed as Firecracker's launchers jail Firecracker — as a
throwaway user (12345) in a cgroup, with resource limits and a network
namespace of its own, a guest configured and started through the API socket
inside the jail, the process's identity, filters, root and namespaces
checked from outside, and a file outside the jail out of its reach; then
Kata's invocation (uid 0, --node, --daemonize, --new-pid-ns, a config file
inside the jail)."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from framework import DEFAULT_CMDLINE, TestSkipped, expect, host_test, run_host
from test_api import b64, http_request

JAIL_UID = 12345


def jailer(ctx):
    return os.path.join(ctx.build, "ember-jailer")


@host_test("jailer: argument errors (missing, unknown, repeated, a bad id, uid, cgroup, "
           "resource limit) exit 2 with the reason; --version and --help")
def jailer_arguments(ctx):
    good = ["--id", "a-1", "--exec-file", ctx.ember, "--uid", "1", "--gid", "1"]
    cases = [
        ([], "--id is required"),
        (good[:6], "--gid is required"),
        (good + ["--id", "b"], "--id given more than once"),
        (good + ["--bogus"], "unknown argument '--bogus'"),
        (["--id", "a_b"] + good[2:], "invalid character '_' at position 1"),
        (["--id", "x" * 65] + good[2:], "65 characters"),
        (good[:4] + ["--uid", "-1", "--gid", "1"], "--uid: expected a number"),
        (good + ["--cgroup", "cpu.shares"], "expected FILE=VALUE"),
        (good + ["--cgroup", "../x.y=1"], "does not name a cgroup file"),
        (good + ["--parent-cgroup", "a/../b"], "must be a relative path"),
        (good + ["--resource-limit", "nproc=3"], "unknown resource 'nproc'"),
        (good + ["--cgroup-version", "3"], "expected 1 or 2"),
        (good + ["stray"], "unexpected argument 'stray'"),
    ]
    for args, message in cases:
        rc, out = run_host([jailer(ctx), *args])
        expect(rc == 2 and message in out, f"{args}: exit {rc}, wanted 2 and {message!r}: {out}")
    rc, out = run_host([jailer(ctx), "--version"])
    expect(rc == 0 and re.match(r"^Jailer v\d+\.\d+\.\d+$", out.strip()), f"--version: {out}")
    rc, out = run_host([jailer(ctx), "--help"])
    expect(rc == 0 and "--chroot-base-dir" in out, f"--help: {out}")
    # The jail's checks come before anything is made: a missing program.
    rc, out = run_host([jailer(ctx), "--id", "a", "--exec-file", "/nonexistent/ember", "--uid",
                        "1", "--gid", "1", "--chroot-base-dir", ctx.tmp])
    expect(rc == 1 and "--exec-file: /nonexistent/ember" in out, f"missing exec file: {out}")
    expect(not os.listdir(ctx.tmp), f"a jail was made: {os.listdir(ctx.tmp)}")


def need_root():
    if os.geteuid() != 0:
        raise TestSkipped("SKIPPED LOUDLY: the jailer needs root (mknod, pivot_root, setns, "
                          "setuid); run the tests as root")


def cgroup_setting():
    """(version, setting, where its cgroup lives) for a pids limit the host
    can take: v1's pids hierarchy, else v2's unified one with pids."""
    with open("/proc/mounts") as f:
        mounts = [line.split() for line in f]
    for src, mnt, kind, opts, *_ in mounts:
        if kind == "cgroup" and "pids" in opts.split(","):
            return "1", mnt
    for src, mnt, kind, opts, *_ in mounts:
        if kind == "cgroup2":
            try:
                with open(os.path.join(mnt, "cgroup.controllers")) as f:
                    if "pids" in f.read().split():
                        return "2", mnt
            except OSError:
                pass
    return None, None


def wait_path(path, proc, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: exited {proc.returncode} first: "
                                 f"{proc.stdout.read().decode(errors='replace')[-800:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout}s")


def get_root(sock, timeout=10):
    """GET / once the socket listens (its file appears at bind, before listen)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_request(sock, "GET", "/")
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    return {k: v.split() for k, v in re.findall(r"^(\w+):[ \t]*(.*)$", text, re.M)}


def place(src, dst, uid=0):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)
    os.chown(dst, uid, uid)


def make_netns(path):
    """A network namespace kept by a bind mount at path (as 'ip netns add')."""
    open(path, "w").close()
    rc, out = run_host(["unshare", f"--net={path}", "true"])
    if rc != 0:
        raise TestSkipped(f"SKIPPED LOUDLY: cannot make a network namespace here: {out}")


GUEST = "echo jailed-guest-up; while true; do sleep 1; done"


@host_test("jailer: ember jailed as uid/gid 12345 (cgroup pids limit, no-file/fsize limits, "
           "a network namespace), a guest configured and started through the API socket "
           "inside the jail; Uid/Gid, Seccomp 2, NoNewPrivs 1, its root, mount and network "
           "namespaces, and no reach outside the jail checked from outside")
def jailer_runs_ember(ctx):
    need_root()
    base = os.path.join(ctx.tmp, "jails")
    os.makedirs(base)
    os.chmod(ctx.tmp, 0o755)
    vm_id = "jail-test-1"
    root = os.path.join(base, "ember", vm_id, "root")
    # Resources go in first, as firecracker-go-sdk and Kata place them.
    os.makedirs(root)
    place(os.path.join(ctx.guest_dir, "vmlinuz"), os.path.join(root, "vmlinuz"))
    place(os.path.join(ctx.guest_dir, "initramfs.cpio"), os.path.join(root, "initramfs.cpio"))
    with open(os.path.join(root, "disk.img"), "wb") as f:
        f.truncate(1 << 20)
    os.chown(os.path.join(root, "disk.img"), JAIL_UID, JAIL_UID)
    outside = os.path.join(ctx.tmp, "outside.img")
    with open(outside, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(outside, 0o666)
    netns = os.path.join(ctx.tmp, "netns")
    make_netns(netns)
    version, cg_root = cgroup_setting()
    cg_args = (["--cgroup-version", version, "--cgroup", "pids.max=200",
                "--parent-cgroup", "ember-jailer-test"] if version else [])
    args = [jailer(ctx), "--id", vm_id, "--exec-file", ctx.ember, "--uid", str(JAIL_UID),
            "--gid", str(JAIL_UID), "--chroot-base-dir", base, "--netns", netns,
            "--resource-limit", "no-file=512", "--resource-limit", f"fsize={64 << 20}",
            *cg_args, "--", "--api-sock", "/run/api.sock"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    cg_dir = None
    try:
        sock = os.path.join(root, "run", "api.sock")
        wait_path(sock, proc, "the API socket in the jail")
        pid = proc.pid  # no --daemonize, no --new-pid-ns: the jailer became ember
        with open(os.path.join(root, "ember.pid")) as f:
            expect(int(f.read()) == pid, "ember.pid is not ember's PID")
        st, body = get_root(sock)
        expect(st == 200 and body["id"] == vm_id, f"GET /: {st} {body}")
        requests = [
            ("PUT", "/boot-source", {"kernel_image_path": "vmlinuz",  # relative, as the SDK
                                     "initrd_path": "/initramfs.cpio",
                                     "boot_args": f"{DEFAULT_CMDLINE} ember_cmd={b64(GUEST)}"}),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
            ("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": "/disk.img",
                                        "is_root_device": False, "is_read_only": False}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]
        for method, path, body in requests:
            st, reply = http_request(sock, method, path, json.dumps(body), timeout=30)
            expect(st == 204, f"{method} {path}: {st} {reply}")
        out = b""
        deadline = time.monotonic() + 90
        os.set_blocking(proc.stdout.fileno(), False)
        while b"jailed-guest-up" not in out and time.monotonic() < deadline:
            expect(proc.poll() is None, f"ember exited {proc.returncode}: {out[-800:]!r}")
            out += proc.stdout.read() or b""
            time.sleep(0.2)
        expect(b"jailed-guest-up" in out, f"the guest never came up: {out[-800:]!r}")
        # Who and what it is, from outside.
        s = status_fields(pid)
        expect(s["Uid"] == [str(JAIL_UID)] * 4 and s["Gid"] == [str(JAIL_UID)] * 4,
               f"Uid {s['Uid']} Gid {s['Gid']}")
        expect(s["Groups"] == [], f"supplementary groups kept: {s['Groups']}")
        expect(s["Seccomp"] == ["2"] and s["NoNewPrivs"] == ["1"],
               f"Seccomp {s['Seccomp']} NoNewPrivs {s['NoNewPrivs']}")
        expect(sorted(os.listdir(f"/proc/{pid}/root")) == sorted(os.listdir(root)),
               f"its / is not the jail: {os.listdir(f'/proc/{pid}/root')}")
        expect(os.stat(f"/proc/{pid}/root/ember").st_ino ==
               os.stat(os.path.join(root, "ember")).st_ino, "its /ember is not the jail's copy")
        expect(os.stat(os.path.join(root, "ember")).st_ino != os.stat(ctx.ember).st_ino,
               "the program was not copied")
        # libslirp and GLib: not in ember's ELF needs (it loads them with
        # dlopen() for user networking and MMDS), yet in the jail
        jailed = [f for _, _, files in os.walk(root) for f in files]
        expect(any(f.startswith("libslirp.so.0") for f in jailed) and
               any(f.startswith("libglib-2.0.so") for f in jailed),
               f"the libraries ember loads for user networking are not in the jail: {jailed}")
        for ns in ("mnt", "net"):
            expect(os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"),
                   f"the {ns} namespace is the test's")
        expect(os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns).st_ino,
               "not in the --netns namespace")
        with open(f"/proc/{pid}/limits") as f:
            limits = f.read()
        expect(re.search(r"^Max open files\s+512\s+512", limits, re.M), f"no-file: {limits}")
        expect(re.search(rf"^Max file size\s+{64 << 20}\s+{64 << 20}", limits, re.M),
               f"fsize: {limits}")
        if version:
            cg_dir = os.path.join(cg_root, "ember-jailer-test", vm_id)
            with open(os.path.join(cg_dir, "pids.max")) as f:
                expect(f.read().strip() == "200", "pids.max not written")
            with open(os.path.join(cg_dir, "tasks" if version == "1" else "cgroup.procs")) as f:
                expect(str(pid) in f.read().split(), "ember is not in its cgroup")
        # A host file it could open were it not jailed (mode 0666) is out of
        # reach: a drive swap to it fails.
        st, reply = http_request(sock, "PATCH", "/drives/scratch",
                                 json.dumps({"drive_id": "scratch", "path_on_host": outside}))
        expect(st == 400 and "No such file" in (reply or {}).get("fault_message", ""),
               f"PATCH to a host path outside the jail: {st} {reply}")
        st, reply = http_request(sock, "GET", "/")
        expect(st == 200 and reply["state"] == "Running", f"after: {st} {reply}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if cg_dir and os.path.isdir(cg_dir):
            os.rmdir(cg_dir)
            os.rmdir(os.path.dirname(cg_dir))
        subprocess.run(["umount", netns], capture_output=True)


@host_test("jailer: Kata's invocation (uid 0, --node 0, --daemonize, --new-pid-ns, "
           "-- --config-file inside the jail): the jailer returns at once, ember runs as "
           "init of a PID namespace with the PID file naming it, serves "
           "/run/firecracker.socket and boots the configured VM")
def jailer_kata_style(ctx):
    need_root()
    base = os.path.join(ctx.tmp, "jails")
    vm_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"  # 64
    root = os.path.join(base, "ember", vm_id, "root")
    os.makedirs(os.path.join(root, "run"))
    place(os.path.join(ctx.guest_dir, "vmlinuz"), os.path.join(root, "vmlinux"))
    place(os.path.join(ctx.guest_dir, "initramfs.cpio"), os.path.join(root, "initrd"))
    with open(os.path.join(root, "fcConfig.json"), "w") as f:
        json.dump({"boot-source": {"kernel_image_path": "/vmlinux", "initrd_path": "/initrd",
                                   "boot_args": f"{DEFAULT_CMDLINE} ember_cmd={b64(GUEST)}"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}, f)
    rc, out = run_host([jailer(ctx), "--id", vm_id, "--node", "0", "--exec-file", ctx.ember,
                        "--uid", "0", "--gid", "0", "--chroot-base-dir", base, "--daemonize",
                        "--new-pid-ns", "--", "--config-file", "/fcConfig.json"])
    expect(rc == 0 and "--node is ignored" in out, f"the jailer: exit {rc}: {out}")
    pid_file = os.path.join(root, "ember.pid")
    wait_path(pid_file, None, "ember.pid")
    with open(pid_file) as f:
        pid = int(f.read())
    try:
        s = status_fields(pid)
        expect(len(s["NSpid"]) == 2 and s["NSpid"][1] == "1",
               f"not init of a new PID namespace: NSpid {s['NSpid']}")
        expect(os.getsid(pid) != os.getsid(0), "not in a session of its own")
        wait_path(os.path.join(root, "run", "firecracker.socket"), None,
                  "/run/firecracker.socket")
        # The jail's own path is too long for a socket address (64-character id).
        sock = f"/proc/{pid}/root/run/firecracker.socket"
        deadline = time.monotonic() + 30
        while True:
            st, body = get_root(sock)
            if body and body.get("state") == "Running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect(st == 200 and body["id"] == vm_id and body["state"] == "Running",
               f"GET /: {st} {body}")
        expect(os.readlink(f"/proc/{pid}/fd/1") == "/dev/null",
               f"stdout: {os.readlink(f'/proc/{pid}/fd/1')}")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)

"""Landlock (src/util/landlock.c, src/vmm/files.c): once the VM runs, ember
reaches only the directories of the files it was configured with. On the
engine, on this host: a drive swap and a snapshot inside those directories
work, the same outside them are refused with a message naming Landlock. With
an API socket the restriction is asked for with --landlock; without it (what
Firecracker's clients get) requests may name files anywhere."""
import ctypes
import json
import os
import subprocess
import time

from framework import DEFAULT_CMDLINE, TestSkipped, expect, host_test
from test_api import b64, http_request


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_landlock_create_ruleset = 444
    v = libc.syscall(SYS_landlock_create_ruleset, None, 0, 1)  # ..._VERSION
    return v if v > 0 else 0


def start(ctx, vm_dir, extra):
    disk = os.path.join(vm_dir, "d.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    sock = os.path.join(vm_dir, "api.sock")
    log = open(os.path.join(ctx.tmp, "ember.txt"), "w")
    proc = subprocess.Popen([ctx.ember, "run", "--accel", "soft", "--disk", f"path={disk}",
                             "--api-sock", sock, *extra, "--cmdline",
                             f"{DEFAULT_CMDLINE} ember_cmd={b64('echo up; sleep 600')}"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        expect(proc.poll() is None, f"ember exited {proc.returncode}: "
               f"{open(log.name).read()[-600:]}")
        if "up" in open(log.name).read().split():
            return proc, log, sock
        time.sleep(0.2)
    raise AssertionError(f"the guest never came up: {open(log.name).read()[-600:]}")


def stop(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def image(path):
    with open(path, "wb") as f:
        f.truncate(2 << 20)
    return path


@host_test("landlock: once the VM runs, a drive swap and a snapshot beside its files work, the "
           "same outside their directories are refused naming Landlock (--landlock with an API "
           "socket); without it an API may name files anywhere, as Firecracker's")
def landlock_confines_files(ctx):
    abi = landlock_abi()
    if not abi:
        raise TestSkipped("SKIPPED LOUDLY: this kernel has no Landlock (landlock_create_ruleset "
                          "failed); only the unit test of the ruleset construction ran")
    vm_dir, outside = os.path.join(ctx.tmp, "vm"), os.path.join(ctx.tmp, "outside")
    os.makedirs(vm_dir)
    os.makedirs(outside)
    far = image(os.path.join(outside, "far.img"))
    near = image(os.path.join(vm_dir, "near.img"))
    proc, log, sock = start(ctx, vm_dir, ["--landlock"])
    try:
        def patch(path):
            return http_request(sock, "PATCH", "/drives/disk0",
                                json.dumps({"drive_id": "disk0", "path_on_host": path}))
        st, body = patch(far)
        expect(st == 400 and "Permission denied" in body["fault_message"] and
               "Landlock" in body["fault_message"], f"swap to {far}: {st} {body}")
        st, body = patch(near)
        expect(st == 204, f"swap to {near} beside the disk: {st} {body}")
        st, body = http_request(sock, "PATCH", "/vm", '{"state": "Paused"}')
        expect(st == 204, f"pause: {st} {body}")

        def snap(d):
            return http_request(sock, "PUT", "/snapshot/create", json.dumps(
                {"snapshot_path": os.path.join(d, "s.state"),
                 "mem_file_path": os.path.join(d, "s.mem")}), timeout=60)
        st, body = snap(outside)
        expect(st == 400 and "Landlock" in body["fault_message"], f"snapshot outside: {st} {body}")
        expect(not os.path.exists(os.path.join(outside, "s.mem")), "a file was made outside")
        st, body = snap(vm_dir)
        expect(st == 204 and os.path.getsize(os.path.join(vm_dir, "s.state")) > 0,
               f"snapshot beside the disk: {st} {body}")
    finally:
        stop(proc, log)
    expect(not os.path.exists(sock), "the API socket file stayed (its directory is allowed)")
    # With an API socket and no --landlock (what Firecracker's clients get,
    # as from Firecracker): the same swap outside works.
    os.unlink(os.path.join(vm_dir, "s.state"))
    proc, log, sock = start(ctx, vm_dir, [])
    try:
        st, body = http_request(sock, "PATCH", "/drives/disk0",
                                json.dumps({"drive_id": "disk0", "path_on_host": far}))
        expect(st == 204, f"an API without --landlock: swap to {far}: {st} {body}")
    finally:
        stop(proc, log)

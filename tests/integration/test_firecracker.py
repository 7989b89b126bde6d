"""ember as a Firecracker drop-in: what Firecracker's documented requests and
its well-known clients (firecracker-go-sdk and firectl, Kata Containers,
firecracker-containerd, flintlock, the jailer) send and parse.

Host tests (no guest): every request body of Firecracker's docs/api_requests/
and getting-started (plus the logger, metrics and entropy docs) replayed
before boot, each accepted or refused with the reason where ember
deliberately lacks the feature; --version as Kata parses it; the jailer's
arguments with the default API socket; FIFOs created before anyone reads
them; the command-line flags Firecracker's launchers pass.

Guest tests: the same sequences through a running guest (runtime PATCHes,
Kata's placeholder drives swapped and seen by the guest, --boot-timer, smt,
PUT /serial, Firecracker's vm_config.json)."""
import json
import os
import re
import signal
import subprocess
import time

from framework import (DEFAULT_CMDLINE, expect, expect_ember_rc, expect_output, guest_test,
                       host_test, job)
from test_api import (API_HELPERS, SIGTERM_RC, Server, b64, check_firecracker_metrics, embers,
                      http_request, image, initrd, kernel, with_servers)

# Rate limiters are accepted once ember has them; until then refused by name.
RATE_LIMITS = False
RATE_LIMITED = (204, None) if RATE_LIMITS else (400, r"rate limiting is not supported by ember yet")

# Firecracker's docs, transcribed (paths made real). Each entry: the doc it
# comes from, then (method, path, body, status, pattern on fault_message).
# Bodies are the docs' JSON, byte for byte where it matters (patch-block.md's
# example lacks a comma: Firecracker's parser refuses it too).
PATCH_BLOCK_PUT = '''{
             "drive_id": "scratch",
             "path_on_host": "%(ro_drive)s",
             "is_root_device": false,
             "is_read_only": true
             "rate_limiter": {
                "bandwidth": {
                        "size": 100000,
                        "one_time_burst": 4096,
                        "refill_time": 150
                },
                "ops": {
                        "size": 10,
                        "refill_time": 250
                }
            }
         }'''
PATCH_NET_PUT = '''{
    "iface_id": "iface_1",
    "host_dev_name": "fctap1",
    "guest_mac": "06:00:c0:a8:34:02",
    "rx_rate_limiter": {
        "bandwidth": {
            "size": 1024,
            "one_time_burst": 1048576,
            "refill_time": 1000
        }
    },
    "tx_rate_limiter": {
        "bandwidth": {
            "size": 1024,
            "one_time_burst": 1048576,
            "refill_time": 1000
        }
    }
}'''
PATCH_NET_PATCH = '''{
    "iface_id": "iface_1",
    "rx_rate_limiter": {
        "bandwidth": {
            "size": 1048576,
            "refill_time": 1000
        },
        "ops": {
            "size": 2000,
            "refill_time": 1000
        }
    }
}'''
PATCH_NET_REMOVE = '''{
    "iface_id": "iface_1",
    "tx_rate_limiter": {
        "bandwidth": {
            "size": 0,
            "refill_time": 0
        },
        "ops": {
            "size": 0,
            "refill_time": 0
        }
    }
}'''
RUNTIME_ONLY = r"only allowed once the microVM is running"


def doc_requests(p):
    """{doc: [(method, path, body, status, pattern)]} with paths from dict p."""
    return {
        "actions.md": [
            ("PUT", "/actions", '{ "action_type": "InstanceStart" }', 400,
             r"without a boot source"),
            ("PUT", "/actions", '{ "action_type": "FlushMetrics" }', 400,
             r"no metrics path is set"),
            ("PUT", "/actions", '{ "action_type": "SendCtrlAltDel" }', 400,
             r"the VM is not running"),
        ],
        "block-caching.md": [
            ("PUT", "/drives/dummy", '''{
             "drive_id": "dummy",
             "path_on_host": "%(drive)s",
             "is_root_device": false,
             "is_read_only": false,
             "cache_type": "Writeback"
         }''' % p, 204, None),
        ],
        "block-io-engine.md": [
            ("PUT", "/drives/rootfs", '''{
             "drive_id": "rootfs",
             "path_on_host": "%(drive)s",
             "is_root_device": true,
             "is_read_only": false,
             "io_engine": "Sync"
         }''' % p, 204, None),
        ],
        "block-vhost-user.md": [
            ("PUT", "/drives/scratch", '''{
             "drive_id": "scratch",
             "socket": "%(socket)s",
             "is_root_device": false
         }''' % p, 400, r"vhost-user-blk is not supported by ember yet"),
            ("PATCH", "/drives/scratch", '{ "drive_id": "scratch" }', 400, RUNTIME_ONLY),
        ],
        "patch-block.md": [
            ("PUT", "/drives/scratch", PATCH_BLOCK_PUT % p, 400, r"malformed JSON body"),
            ("PUT", "/drives/scratch", PATCH_BLOCK_PUT.replace(
                '"is_read_only": true\n', '"is_read_only": true,\n') % p, *RATE_LIMITED),
            ("PATCH", "/drives/scratch", '''{
             "drive_id": "scratch",
             "path_on_host": "%(new_drive)s"
         }''' % p, 400, RUNTIME_ONLY),
        ],
        "patch-network-interface.md": [
            ("PUT", "/network-interfaces/iface_1", PATCH_NET_PUT, *RATE_LIMITED),
            ("PATCH", "/network-interfaces/iface_1", PATCH_NET_PATCH, 400, RUNTIME_ONLY),
            ("PATCH", "/network-interfaces/iface_1", PATCH_NET_REMOVE, 400, RUNTIME_ONLY),
        ],
        "getting-started.md": [
            ("PUT", "/logger", '''{
        "log_path": "%(logfile)s",
        "level": "Debug",
        "show_level": true,
        "show_log_origin": true
    }''' % p, 204, None),
            ("PUT", "/boot-source", '''{
        "kernel_image_path": "%(kernel)s",
        "boot_args": "console=ttyS0 reboot=k panic=1"
    }''' % p, 204, None),
            ("PUT", "/drives/rootfs", '''{
        "drive_id": "rootfs",
        "path_on_host": "%(drive)s",
        "is_root_device": true,
        "is_read_only": false
    }''' % p, 204, None),
            ("PUT", "/network-interfaces/net1", '''{
        "iface_id": "net1",
        "guest_mac": "06:00:AC:10:00:02",
        "host_dev_name": "tap0"
    }''', 204, None),
        ],
        "logger.md": [
            ("PUT", "/logger", '''{
             "log_path": "%(log_fifo)s",
             "level": "Warning",
             "show_level": false,
             "show_log_origin": false
    }''' % p, 204, None),
        ],
        "metrics.md": [
            ("PUT", "/metrics", '{"metrics_path": "%(metrics_fifo)s"}' % p, 204, None),
            ("PUT", "/metrics", '''{
             "metrics_path": "%(metrics_fifo)s",
             "emit_id": true,
             "properties": {
                 "customer_id": "1234",
                 "bundle_id": "fn-abc"
             }
    }''' % p, 204, None),
            ("PUT", "/actions", '{ "action_type": "FlushMetrics" }', 204, None),
        ],
        "entropy.md": [
            ("PUT", "/entropy", '''{
        "rate_limiter": {
            "bandwidth": {
                "size": 1000,
                "one_time_burst": 0,
                "refill_time": 100
            }
        }
    }''', *RATE_LIMITED),
        ],
    }


def doc_paths(ctx):
    p = {"drive": image(ctx, "doc-drive.img"), "ro_drive": image(ctx, "doc-ro.img", 0),
         "new_drive": image(ctx, "doc-new.img", 2 << 20), "kernel": kernel(ctx),
         "socket": os.path.join(ctx.tmp, "vhost.sock"),
         "logfile": os.path.join(ctx.tmp, "firecracker.log")}
    for name in ("log_fifo", "metrics_fifo"):
        p[name] = os.path.join(ctx.tmp, name.replace("_", "."))
        if not os.path.exists(p[name]):
            os.mkfifo(p[name])
    return p


# Features ember deliberately lacks (for now): the documented requests that
# must be refused with this reason. Everything else must be accepted.
@host_test("firecracker docs: every documented request body (api_requests/, getting-started, "
           "logger, metrics, entropy) accepted, or refused with the reason")
def fc_doc_requests(ctx):
    paths = doc_paths(ctx)
    # A reader keeps the FIFOs drained while the docs write to them.
    readers = [os.open(paths[n], os.O_RDONLY | os.O_NONBLOCK) for n in ("log_fifo",
                                                                        "metrics_fifo")]
    try:
        for doc, steps in doc_requests(paths).items():
            def check(srv, doc=doc, steps=steps):
                for method, path, body, status, pattern in steps:
                    st, resp = srv.req(method, path, body)
                    what = f"{doc}: {method} {path} {body[:60]!r}"
                    expect(st == status, f"{srv.name}: {what}: {st} {resp}, expected {status}")
                    if pattern:
                        expect(re.search(pattern, resp["fault_message"]),
                               f"{what}: {resp['fault_message']!r} does not say /{pattern}/")
                st, cfg = srv.req("GET", "/vm/config")
                expect(st == 200, f"{doc}: GET /vm/config: {st}")
                if doc == "block-caching.md":
                    expect(cfg["drives"][0]["cache_type"] == "Writeback", f"{doc}: {cfg}")
                if doc == "block-io-engine.md":
                    expect(cfg["drives"][0]["io_engine"] == "Sync", f"{doc}: {cfg}")
            with_servers(ctx, check)
    finally:
        for fd in readers:
            os.close(fd)


@host_test("firecracker: Firecracker's tests/framework/vm_config.json keys are all accepted "
           "(pmem [], memory-hotplug null, cpu-config null ...)")
def fc_vm_config_keys(ctx):
    cfg = vm_config_json(kernel(ctx), image(ctx, "rootfs.ext4"))
    cfg["boot-source"]["kernel_image_path"] = os.path.join(ctx.tmp, "missing-kernel")
    path = os.path.join(ctx.tmp, "vm_config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    for binary in embers(ctx):
        p = subprocess.run([binary, "--config-file", path, "--no-api"], capture_output=True,
                           text=True, timeout=30)
        # Every key parsed: the first problem is the (deliberately) missing kernel.
        expect(p.returncode == 2 and "missing-kernel: No such file" in p.stderr,
               f"{os.path.basename(binary)}: {p.returncode} {p.stderr[-400:]}")
    for key, value, pattern in (("memory-hotplug", {"total_size_mib": 1024},
                                 r"memory-hotplug: memory hot-plugging \(virtio-mem\) is not "
                                 r"supported by ember yet"),
                                ("cpu-config", {"cpuid_modifiers": []},
                                 r"cpu-config: custom CPU templates"),
                                ("frobnicate", {}, r"unknown field 'frobnicate'")):
        bad = dict(cfg, **{key: value})
        with open(path, "w") as f:
            json.dump(bad, f)
        p = subprocess.run([ctx.ember, "--config-file", path, "--no-api"], capture_output=True,
                           text=True, timeout=30)
        expect(p.returncode == 2 and re.search(pattern, p.stderr),
               f"{key}: {p.returncode} {p.stderr[-300:]}")


def vm_config_json(kernel_path, rootfs, initrd_path=None):
    """Firecracker's tests/framework/vm_config.json, its paths made real."""
    return {
        "boot-source": {"kernel_image_path": kernel_path,
                        "boot_args": "console=ttyS0 reboot=k panic=1",
                        "initrd_path": initrd_path},
        "drives": [{"drive_id": "rootfs", "partuuid": None, "is_root_device": True,
                    "cache_type": "Unsafe", "is_read_only": False, "path_on_host": rootfs,
                    "io_engine": "Sync", "rate_limiter": None, "socket": None}],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": False,
                           "track_dirty_pages": False, "huge_pages": "None"},
        "cpu-config": None, "balloon": None, "network-interfaces": [], "vsock": None,
        "logger": None, "metrics": None, "mmds-config": None, "entropy": None, "pmem": [],
        "memory-hotplug": None,
    }


def parse_version_as_kata(output):
    """Kata's firecracker.parseVersion: the second word of the first line,
    without its 'v'; then checkVersion: a semver at least 0.21.1."""
    fields = output.split("\n")[0].split(" ")
    expect(len(fields) > 1, f"getting FC version failed, the output is malformed: {output!r}")
    version = fields[1].strip().lstrip("v")
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?", version)
    expect(m, f"Malformed firecracker version: {version!r}")
    expect(tuple(int(x) for x in m.groups()) >= (0, 21, 1),
           f"version {version} is not supported (Kata needs 0.21.1 or later)")
    return version


@host_test("firecracker: --version as Kata parses it under the name 'firecracker'; 'ember "
           "--version' stays ember's; --snapshot-version, --describe-snapshot")
def fc_version(ctx):
    for binary in embers(ctx):
        link = os.path.join(ctx.tmp, "firecracker")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(binary, link)
        out = subprocess.run([link, "--version"], capture_output=True, text=True).stdout
        version = parse_version_as_kata(out)
        expect("ember" in out, f"the output does not say it is ember: {out!r}")
        own = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        expect(re.match(r"ember \d+\.\d+\.\d+\n", own), f"ember --version: {own!r}")
        expect(f"Firecracker API {version}" in own, f"ember --version: {own!r}")
        # Release tarballs name it firecracker-vX.Y.Z-ARCH.
        named = os.path.join(ctx.tmp, "firecracker-v1.16.1-x86_64")
        if not os.path.lexists(named):
            os.symlink(binary, named)
        out = subprocess.run([named, "--version"], capture_output=True, text=True).stdout
        expect(parse_version_as_kata(out) == version, f"{named}: {out!r}")
        p = subprocess.run([link, "--snapshot-version"], capture_output=True, text=True)
        expect(p.returncode == 0 and re.fullmatch(r"v\d+\.\d+\.\d+\n", p.stdout),
               f"--snapshot-version: {p.returncode} {p.stdout!r}")
        state = os.path.join(ctx.tmp, "vm.state")
        with open(state, "wb") as f:
            f.write(b"EMBERSNP" + (1).to_bytes(4, "little") + bytes(20))
        p = subprocess.run([link, "--describe-snapshot", state], capture_output=True, text=True)
        expect(p.returncode == 0 and p.stdout == "v1.0.0\n",
               f"--describe-snapshot: {p.returncode} {p.stdout!r} {p.stderr!r}")
        p = subprocess.run([link, "--describe-snapshot", kernel(ctx)], capture_output=True,
                           text=True)
        expect(p.returncode == 2 and "not an ember snapshot state file" in p.stderr,
               f"--describe-snapshot of a kernel: {p.returncode} {p.stderr!r}")
        os.unlink(link)


def monotonic_us():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


@host_test("firecracker: launched as the jailer launches it (--id, start times, no --api-sock: "
           "Firecracker's default socket), logger and metrics FIFOs created before any reader, "
           "--boot-timer, --no-seccomp, --mmds-size-limit")
def fc_jailer_launch(ctx):
    for binary in embers(ctx):
        link = os.path.join(ctx.tmp, "firecracker")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(binary, link)
        log_fifo = os.path.join(ctx.tmp, "logs.fifo")
        metrics_fifo = os.path.join(ctx.tmp, "metrics.fifo")
        for f in (log_fifo, metrics_fifo):
            if os.path.exists(f):
                os.unlink(f)
            os.mkfifo(f)
        # The jailer chroots and execs "firecracker --id ID --start-time-us ...
        # --start-time-cpu-us ... --parent-cpu-time-us ... [args]"; the socket
        # then is /run/firecracker.socket, here in a private /run.
        args = [link, "--id", "jailed-vm-1", "--start-time-us", str(monotonic_us()),
                "--start-time-cpu-us", "0", "--parent-cpu-time-us", "1234",
                "--no-seccomp", "--boot-timer", "--mmds-size-limit", "51200",
                "--log-path", log_fifo, "--level", "Info", "--show-level",
                "--metrics-path", metrics_fifo]
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c",
                                 'mount -t tmpfs tmpfs /run && exec "$@"', "sh", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            sock = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                candidate = f"/proc/{proc.pid}/root/run/firecracker.socket"
                if os.path.exists(candidate):
                    sock = candidate
                    break
                time.sleep(0.02)
            expect(sock, f"no /run/firecracker.socket (exit {proc.poll()})")
            st, body = http_request(sock, "GET", "/")
            expect(st == 200 and body["id"] == "jailed-vm-1", f"GET /: {st} {body}")
            st, body = http_request(sock, "PUT", "/actions", '{"action_type": "FlushMetrics"}')
            expect(st == 204, f"FlushMetrics: {st} {body}")
            # Only now do the readers come: what was written waited in the pipes.
            met = os.open(metrics_fifo, os.O_RDONLY | os.O_NONBLOCK)
            log = os.open(log_fifo, os.O_RDONLY | os.O_NONBLOCK)
            try:
                lines = os.read(met, 1 << 20).decode().splitlines()
                text = os.read(log, 1 << 16).decode()
            finally:
                os.close(met)
                os.close(log)
            expect(lines, "nothing in the metrics FIFO")
            m = json.loads(lines[-1])
            check_firecracker_metrics(m)
            api = m["api_server"]
            expect(0 < api["process_startup_time_us"] < 10_000_000 and
                   api["process_startup_time_cpu_us"] >= 1234,
                   f"start-up times from the jailer's arguments: {api}")
            expect(re.search(r"^ember: info: control API on /run/firecracker\.socket", text, re.M),
                   f"the log FIFO (level Info, show_level): {text!r}")
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=10)[0].decode("utf-8", "replace")
        expect(proc.returncode == SIGTERM_RC, f"exit {proc.returncode}: {out[-500:]}")
        expect("Sanitizer" not in out and "runtime error" not in out, f"sanitizer: {out[-2000:]}")
        os.unlink(link)


@host_test("firecracker: options of features ember lacks are refused with the reason "
           "(--metadata: MMDS, --seccomp-filter); an API socket must be usable")
def fc_refused_options(ctx):
    from test_cli import expect_setup_error
    meta = os.path.join(ctx.tmp, "metadata.json")
    with open(meta, "w") as f:
        f.write('{"latest": {}}')
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--metadata", meta],
                       r"--metadata: the metadata service \(MMDS\) is not supported by ember yet")
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--seccomp-filter",
                             meta], r"--seccomp-filter: ember installs no seccomp filters yet")
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--level", "Loud"],
                       r"level must be one of Error, Warning, Info, Debug, Trace, Off")

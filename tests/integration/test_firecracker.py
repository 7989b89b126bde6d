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

from framework import (DEFAULT_CMDLINE, ember_rc, expect, expect_ember_rc, expect_output, guest_test, on_engine,
                       host_test, job, test_vcpus, total_metrics)
from test_api import (API_HELPERS, SIGTERM_RC, Server, b64, check_firecracker_metrics, embers,
                      http_request, image, initrd, kernel, with_servers)

# Rate limiters: accepted (and applied) as Firecracker's.
RATE_LIMITS = True
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
                                ("cpu-config", {"cpuid_modifiers": [{"leaf": "1"}]},
                                 r"cpu-config: cpuid_modifiers\[0\]: CPUID modifier: "
                                 r"missing required field"),
                                ("cpu-config", "/nonexistent/tpl.json",
                                 r"cpu-config file /nonexistent/tpl.json: .*No such file"),
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


@host_test("firecracker: a Firecracker seccomp file (its vmm/api/vcpu threads) or any other "
           "JSON is refused by --seccomp-filter with the reason; an API socket must be usable")
def fc_refused_options(ctx):
    from test_cli import expect_setup_error
    meta = os.path.join(ctx.tmp, "metadata.json")
    with open(meta, "w") as f:
        f.write('{"latest": {}}')
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--seccomp-filter",
                             meta], r'--seccomp-filter .*: "latest" is not one of ember\'s thread kinds')
    with open(meta, "w") as f:
        f.write('{"vmm": {"default_action": "trap", "filter_action": "allow", "filter": []}}')
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--seccomp-filter",
                             meta], r"Firecracker's vmm and api threads are ember's main")
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "a.sock"), "--level", "Loud"],
                       r"level must be one of Error, Warning, Info, Debug, Trace, Off")


# --- guest tests ----------------------------------------------------------------

# TAP devices in L1 need its tun module (ember opens /dev/net/tun).
TUN = '[ -n "$EMBER_NESTED" ] && insmod /lib/modules/l1/tun.ko 2>/dev/null\n'


def put(name, method, path, body):
    """Shell: write 'body' (JSON, $VARS expanded) to a file and send it."""
    return (f"cat > {name}.json <<EOF\n{body}\nEOF\n"
            f"api -X {method} http://x{path} -d @{name}.json | sed 's/^/{name} /'\n")


GETTING_STARTED_GUEST = r'''
echo "eth0 $(cat /sys/class/net/eth0/address)"
echo "root $(cat /sys/block/vda/size) scratch $(cat /sys/block/vdb/size) ro $(cat /sys/block/vdb/ro)"
echo scratch-ready
i=0; while [ $i -lt 900 ] && [ "$(cat /sys/block/vdb/size)" = 0 ]; do i=$((i+1)); usleep 100000; done
echo "scratch-now $(cat /sys/block/vdb/size) $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 8)"
sleep 600
'''


@guest_test("firecracker docs through a running guest: getting-started's sequence (logger, "
            "boot-source, rootfs, a TAP NIC, InstanceStart), patch-block's placeholder drive "
            "swapped and seen by the guest, patch-network-interface, FlushMetrics, "
            "SendCtrlAltDel", batch="fc")
def fc_docs_guest():
    # Beyond the docs: our guest kernel needs its initramfs (its virtio drivers
    # are modules), and ember_cmd makes it report what it sees.
    boot_args = (f"console=ttyS0 reboot=k panic=1 ember_dhcp=0 "
                 f"ember_cmd={b64(GETTING_STARTED_GUEST)}")
    net_patch = PATCH_NET_PATCH.replace("iface_1", "net1")
    net_remove = PATCH_NET_REMOVE.replace("iface_1", "net1")
    script = API_HELPERS + TUN + (
        "dd if=/dev/zero of=rootfs.ext4 bs=1M count=16 2>/dev/null\n"
        "touch scratch.img  # patch-block.md: touch ${ro_drive_path}\n"
        "dd if=/dev/zero of=new.img bs=1M count=3 2>/dev/null\n"
        "printf NEWDRIVE | dd of=new.img conv=notrunc 2>/dev/null\n"
        "mkfifo metrics.fifo\n"
        '"$EMBER" --api-sock api.sock < /dev/null > out.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("logger", "PUT", "/logger", '''{
        "log_path": "$DATA/firecracker.log",
        "level": "Debug",
        "show_level": true,
        "show_log_origin": true
    }''') +
        put("boot", "PUT", "/boot-source", '''{
        "kernel_image_path": "$GUEST/vmlinux",
        "initrd_path": "$GUEST/initramfs.cpio",
        "boot_args": "%s"
    }''' % boot_args) +
        put("rootfs", "PUT", "/drives/rootfs", '''{
        "drive_id": "rootfs",
        "path_on_host": "$DATA/rootfs.ext4",
        "is_root_device": true,
        "is_read_only": false
    }''') +
        put("scratch", "PUT", "/drives/scratch", '''{
             "drive_id": "scratch",
             "path_on_host": "$DATA/scratch.img",
             "is_root_device": false,
             "is_read_only": true
         }''') +
        put("net1", "PUT", "/network-interfaces/net1", '''{
        "iface_id": "net1",
        "guest_mac": "06:00:AC:10:00:02",
        "host_dev_name": "tap0"
    }''') +
        put("metrics", "PUT", "/metrics", '{"metrics_path": "$DATA/metrics.fifo"}') +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        "wait_for scratch-ready out.txt\n" +
        put("patch-scratch", "PATCH", "/drives/scratch", '''{
             "drive_id": "scratch",
             "path_on_host": "$DATA/new.img"
         }''') +
        "wait_for scratch-now out.txt\n" +
        put("patch-net", "PATCH", "/network-interfaces/net1", net_patch) +
        put("patch-net-remove", "PATCH", "/network-interfaces/net1", net_remove) +
        put("flush", "PUT", "/actions", '{"action_type": "FlushMetrics"}') +
        "cat metrics.fifo > metrics.out & cat_pid=$!\n" +
        put("ctrl-alt-del", "PUT", "/actions", '{"action_type": "SendCtrlAltDel"}') +
        'wait $pid; echo "ember rc=$?"\n'
        "sleep 0.5; kill $cat_pid 2>/dev/null\n"
        "cat out.txt; echo '--- log'; cat firecracker.log; echo '--- metrics'; cat metrics.out\n")

    def check(j):
        expect_ember_rc(j, 0)
        for step in ("logger", "boot", "rootfs", "scratch", "net1", "metrics", "start",
                     "patch-scratch", "flush", "ctrl-alt-del"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        for step in ("patch-net", "patch-net-remove"):
            expect_output(j, rf"^{step}  \[204\]$" if RATE_LIMITS else
                          rf"^{step} .*rate limiting is not supported by ember yet.* \[400\]$",
                          f"{step}: as documented")
        expect_output(j, r"^eth0 06:00:ac:10:00:02$", "net1's MAC in the guest")
        expect_output(j, r"^root 32768 scratch 0 ro 1$", "the rootfs and the empty placeholder")
        expect_output(j, r"^scratch-now 6144 NEWDRIVE$", "the swapped drive's size and data")
        log = j.output.split("--- log\n", 1)[-1].split("--- metrics", 1)[0]
        expect(re.search(r"^ember: debug \[src/[a-z0-9_/]+\.c:\d+\]: ", log, re.M),
               f"the log at Debug with level and origin: {log[:500]!r}")
        metrics = [json.loads(line) for line in j.output.split("--- metrics\n", 1)[-1].splitlines()
                   if line.startswith("{")]
        expect(metrics, "no metrics lines from the FIFO")
        for m in metrics:
            check_firecracker_metrics(m)
        total = total_metrics(metrics)
        expect(total["block_scratch"]["update_count"] == 1 and
               total["patch_api_requests"]["drive_count"] == 1,
               f"the drive's PATCH in the metrics: {total.get('block_scratch')}")
    return job("fc-docs", script, timeout=240), check


KATA_GUEST = r'''
echo "disks $(ls /sys/block | grep -c ^vd)"
echo kata-ready
i=0; while [ $i -lt 900 ] && [ "$(cat /sys/block/vde/size)" = 0 ]; do i=$((i+1)); usleep 100000; done
echo "vde $(cat /sys/block/vde/size) $(dd if=/dev/vde bs=512 count=1 2>/dev/null | head -c 9)"
sleep 600
'''


@guest_test("Kata Containers' launch: FIFOs opened for reading first, a config file with 8 "
            "empty placeholder drives and a NIC with empty rate limiters, one placeholder "
            "swapped by PATCH /drives and seen by the guest, metrics decoded as Kata decodes "
            "them", batch="fc")
def fc_kata():
    # Kata's kernel parameters (fc.go) minus acpi=off: ember's guest kernel
    # finds its devices through ACPI.
    params = ("console=ttyS0 pci=off reboot=k panic=1 iommu=off net.ifnames=0 "
              f"random.trust_cpu=on ember_dhcp=0 ember_cmd={b64(KATA_GUEST)}")
    drives = ",\n".join(
        '{"drive_id": "drive_%d", "is_read_only": false, "is_root_device": false, '
        '"path_on_host": "$DATA/drive_%d"}' % (i, i) for i in range(8))
    config = '''{
	"boot-source": {"kernel_image_path": "$GUEST/vmlinuz", "initrd_path": "$GUEST/initramfs.cpio",
	                "boot_args": "%s"},
	"drives": [{"drive_id": "rootfs", "is_read_only": true, "is_root_device": false,
	            "path_on_host": "$DATA/rootfs"},
%s],
	"logger": {"level": "Error", "log_path": "$DATA/logs.fifo"},
	"machine-config": {"mem_size_mib": 256, "smt": false, "vcpu_count": ${EMBER_VCPUS:-2}},
	"metrics": {"metrics_path": "$DATA/metrics.fifo"},
	"network-interfaces": [{"guest_mac": "02:42:ac:11:00:02", "host_dev_name": "tap_kata",
	                        "iface_id": "eth0", "rx_rate_limiter": {}, "tx_rate_limiter": {}}]
}''' % (params, drives)
    script = API_HELPERS + TUN + (
        "dd if=/dev/zero of=rootfs bs=1M count=4 2>/dev/null\n"
        "for i in 0 1 2 3 4 5 6 7; do : > drive_$i; done  # Kata's createDiskPool\n"
        "dd if=/dev/zero of=container.img bs=1M count=5 2>/dev/null\n"
        "printf CONTAINER | dd of=container.img conv=notrunc 2>/dev/null\n"
        "mkfifo logs.fifo metrics.fifo\n"
        "cat logs.fifo > logs.out & cat metrics.fifo > metrics.out &\n"
        f"cat > fcConfig.json <<EOF\n{config}\nEOF\n"
        "ln -sf \"$EMBER\" firecracker\n"
        "./firecracker --version | head -1 | sed 's/^/version-line /'\n"
        "./firecracker --api-sock api.sock --config-file fcConfig.json < /dev/null > out.txt 2>&1 &"
        " pid=$!\n"
        "wait_socket\n"
        "wait_for kata-ready out.txt\n" +
        put("patch-drive", "PATCH", "/drives/drive_3",
            '{"drive_id": "drive_3", "path_on_host": "$DATA/container.img"}') +
        "wait_for '^vde ' out.txt\n" +
        put("flush", "PUT", "/actions", '{"action_type": "FlushMetrics"}') +
        "kill $pid; wait $pid; echo \"ember rc=$?\"\n"
        "wait  # the FIFOs' readers end when ember closes them\n"
        "cat out.txt; echo '--- metrics'; cat metrics.out\n")

    def check(j):
        crash = j.output[j.output.find("ember: fatal signal"):][:3000] \
            if "ember: fatal signal" in j.output else ""
        expect(ember_rc(j) == 143, f"fc-kata: ember rc={ember_rc(j)}, expected 143 (ended by "
                                   f"SIGTERM) {crash}")
        m = re.search(r"^version-line (.*)$", j.output, re.M)
        expect(m, "no --version output")
        parse_version_as_kata(m.group(1))
        expect_output(j, r"^patch-drive  \[204\]$", "the PATCH of the placeholder")
        expect_output(j, r"^disks 9$", "the rootfs and the 8 placeholders in the guest")
        expect_output(j, r"^vde 10240 CONTAINER$", "the swapped placeholder's size and data")
        metrics = [json.loads(line) for line in j.output.split("--- metrics\n", 1)[-1].splitlines()
                   if line.startswith("{")]
        expect(metrics, "no metrics lines")
        for m in metrics:  # Kata's json.Unmarshal into FirecrackerMetrics
            check_firecracker_metrics(m)
        total = total_metrics(metrics)
        expect(total["block_drive_3"]["update_count"] == 1,
               f"drive_3's swap: {total.get('block_drive_3')}")
    return job("fc-kata", script, timeout=240), check


BOOT_TIMER_GUEST = r'''
devmem 0xc0000000 8 123
echo "siblings $(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list)"
echo "cpu$(grep -m1 vendor_id /proc/cpuinfo | cut -d: -f2) topoext $(grep -m1 ^flags /proc/cpuinfo | grep -c -w topoext)"
echo "serial-out-line"
'''


@guest_test("firecracker: --boot-timer reports the guest's boot time when it writes the magic; "
            "smt: true gives two threads per core; PUT /serial sends the console to a file",
            batch="fc")
def fc_boot_timer_smt_serial():
    boot_args = f"{DEFAULT_CMDLINE} ember_cmd={b64(BOOT_TIMER_GUEST)}"
    script = API_HELPERS + (
        "ln -sf \"$EMBER\" firecracker\n"
        "./firecracker --api-sock api.sock --boot-timer < /dev/null > out.txt 2>&1 & pid=$!\n"
        "wait_socket\n" +
        put("boot", "PUT", "/boot-source", '''{"kernel_image_path": "$GUEST/vmlinuz",
         "initrd_path": "$GUEST/initramfs.cpio", "boot_args": "%s"}''' % boot_args) +
        put("machine", "PUT", "/machine-config",
            '{"vcpu_count": ${EMBER_VCPUS:-2}, "mem_size_mib": 256, "smt": true}') +
        put("serial", "PUT", "/serial", '{"serial_out_path": "$DATA/serial.out"}') +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        'wait $pid; echo "ember rc=$?"\n'
        "echo '--- stdout'; cat out.txt; echo '--- serial'; cat serial.out\n")

    def check(j):
        expect_ember_rc(j, 0)
        for step in ("boot", "machine", "serial", "start"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        stdout = j.output.split("--- stdout\n", 1)[-1].split("--- serial", 1)[0]
        serial = j.output.split("--- serial\n", 1)[-1]
        m = re.search(r"Guest-boot-time = +(\d+) us (\d+) ms, +(\d+) CPU us (\d+) CPU ms", stdout)
        expect(m and int(m.group(1)) > 0 and int(m.group(1)) // 1000 == int(m.group(2)),
               f"no boot time reported: {stdout[-600:]!r}")
        expect("serial-out-line" in serial and "ember-guest: init started" in serial,
               f"the guest's console in serial.out: {serial[-400:]!r}")
        expect("serial-out-line" not in stdout, "the console went to stdout too")
        siblings = re.search(r"^siblings (\S+)", serial, re.M)
        cpu = re.search(r"^cpu ?(\S+) topoext (\d)", serial, re.M)
        # The engine runs one vCPU: one thread. On KVM two threads per core,
        # also on a host whose KVM has no AMD topology leaf 0x8000001e (the
        # nested harness's TCG L1): ember makes the leaf up, with TOPOEXT.
        want = "0" if test_vcpus() == 1 else "0-1"
        expect(siblings and siblings.group(1) == want,
               f"cpu0's thread siblings: {siblings.group(1) if siblings else None} "
               f"(expected {want}; {cpu.group(0) if cpu else 'no cpu line'})")
        if not on_engine() and cpu and cpu.group(1) == "AuthenticAMD":
            expect(cpu.group(2) == "1", f"an AMD guest with smt and no topoext flag: {cpu.group(0)}")
    return job("fc-boot-timer", script, timeout=180), check


CONFIG_JSON_GUEST = r'''
echo "cpus $(grep -c ^processor /proc/cpuinfo) mem $(awk '/^MemTotal/ {print int($2/1024)}' /proc/meminfo)"
echo "root $(cat /sys/block/vda/size)"
'''


@guest_test("firecracker: tests/framework/vm_config.json as --config-file --no-api boots "
            "(2 vCPUs, 1024 MiB, an ELF vmlinux, a root drive)", batch="fc", backend="kvm")
def fc_vm_config_boot():
    cfg = vm_config_json("$GUEST/vmlinux", "$DATA/rootfs.ext4", "$GUEST/initramfs.cpio")
    cfg["boot-source"]["boot_args"] += f" ember_cmd={b64(CONFIG_JSON_GUEST)}"
    script = (
        "dd if=/dev/zero of=rootfs.ext4 bs=1M count=8 2>/dev/null\n"
        f"cat > vm_config.json <<EOF\n{json.dumps(cfg, indent=2)}\nEOF\n"
        '"$EMBER" --config-file vm_config.json --no-api < /dev/null; echo "ember rc=$?"\n')

    def check(j):
        expect_ember_rc(j, 0)
        m = re.search(r"^cpus (\d+) mem (\d+)$", j.output, re.M)
        expect(m and m.group(1) == "2" and 900 < int(m.group(2)) <= 1024,
               f"the guest's CPUs and memory: {m.group(0) if m else None}")
        expect_output(j, r"^root 16384$", "the root drive")
    return job("fc-vm-config", script, timeout=120), check


TICK_GUEST = r'''
i=0
while [ $i -lt 600 ]; do echo "tick $i $(cut -d' ' -f1 /proc/uptime)"; i=$((i+1)); usleep 200000; done
'''


@guest_test("firecracker: snapshot load's clock_realtime advances the guest's clock by the time "
            "the snapshot waited (without it, the clock continues); create's version; "
            "--describe-snapshot of the state file", batch="fc")
def fc_clock_realtime():
    boot_args = f"{DEFAULT_CMDLINE} ember_cmd={b64(TICK_GUEST)}"
    load = '''{"snapshot_path": "$DATA/vm.state",
     "mem_backend": {"backend_type": "File", "backend_path": "$DATA/vm.mem"},
     "track_dirty_pages": true, "resume_vm": true, "clock_realtime": %s}'''
    script = API_HELPERS + (
        '"$EMBER" --api-sock api.sock < /dev/null > out1.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("boot", "PUT", "/boot-source", '''{"kernel_image_path": "$GUEST/vmlinuz",
         "initrd_path": "$GUEST/initramfs.cpio", "boot_args": "%s"}''' % boot_args) +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        "wait_for '^tick 10 ' out1.txt\n" +
        put("pause", "PATCH", "/vm", '{"state": "Paused"}') +
        put("create", "PUT", "/snapshot/create", '''{"snapshot_type": "Full",
         "snapshot_path": "$DATA/vm.state", "mem_file_path": "$DATA/vm.mem",
         "version": "%s"}''' % "1.16.1") +
        "echo \"host-snap $(cut -d' ' -f1 /proc/uptime)\"\n" +
        "kill -9 $pid; wait $pid 2>/dev/null\n"
        "ln -sf \"$EMBER\" firecracker\n"
        "./firecracker --describe-snapshot vm.state | sed 's/^/describe /'\n"
        "sleep 6\n"
        "for mode in true false; do\n"
        "  rm -f api.sock\n"
        '  "$EMBER" --api-sock api.sock < /dev/null > out-$mode.txt 2>&1 & pid=$!\n'
        "  wait_socket\n"
        f"  cat > load.json <<EOF\n{load % '$mode'}\nEOF\n"
        "  echo \"host-load-$mode $(cut -d' ' -f1 /proc/uptime)\"\n"
        "  api -X PUT http://x/snapshot/load -d @load.json | sed \"s/^/load-$mode /\"\n"
        "  wait_for '^tick 20 ' out-$mode.txt\n"
        "  kill $pid; wait $pid\n"
        "done\n"
        "echo '--- before'; grep '^tick' out1.txt | tail -1\n"
        "echo '--- true'; grep '^tick' out-true.txt | head -1\n"
        "echo '--- false'; grep '^tick' out-false.txt | head -1\n")

    def check(j):
        for step in ("boot", "start", "pause", "create"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        expect_output(j, r"^load-true  \[204\]$", "the load with clock_realtime")
        expect_output(j, r"^load-false  \[204\]$", "the load without it")
        expect_output(j, r"^describe v1\.0\.0$", "--describe-snapshot")
        ticks = {}
        for part in ("before", "true", "false"):
            m = re.search(rf"^--- {part}\ntick (\d+) ([\d.]+)$", j.output, re.M)
            expect(m, f"no tick {part}")
            ticks[part] = float(m.group(2))
        # This host's clock (L1's uptime) at the snapshot and at each load.
        host = {k: float(v) for k, v in
                re.findall(r"^host-(snap|load-true|load-false) ([\d.]+)$", j.output, re.M)}
        expect(len(host) == 3, f"host times: {host}")
        waited_true = host["load-true"] - host["snap"]
        waited_false = host["load-false"] - host["snap"]
        jump_true = ticks["true"] - ticks["before"]
        jump_false = ticks["false"] - ticks["before"]
        # With clock_realtime the guest's clock moved by at least the time the
        # snapshot waited; without, it continued where it stopped (what it
        # moved is the guest's own run time after the load, far less).
        expect(jump_true >= waited_true - 0.5,
               f"clock_realtime: the guest's clock moved {jump_true:.2f} s, the snapshot "
               f"waited {waited_true:.2f} s")
        expect(jump_false < waited_false - 4.0,
               f"without clock_realtime the clock must continue where it stopped: it moved "
               f"{jump_false:.2f} s, the snapshot waited {waited_false:.2f} s")
    return job("fc-clock-realtime", script, timeout=240), check

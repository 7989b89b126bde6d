"""The control API (Firecracker's REST resources over a Unix socket).

Host tests (no KVM needed: everything before InstanceStart): a table of
malformed requests with the status and message each must get, the VM's
configuration untouched by them, misbehaving clients (stalled, vanished,
many at once, pipelined), the socket's life, config-file errors.

Guest tests (a real VM): the whole lifecycle driven with curl (configure,
start, pause with the guest's clock checked from inside, resume, swap a
disk, flush metrics, Ctrl-Alt-Del), and the same kind of VM from a config
file without an API."""
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time

from framework import (DEFAULT_CMDLINE, TestSkipped, no_kvm_reason, on_engine, test_vcpus, expect, expect_ember_rc, expect_output,
                       guest_test, host_test, job, run_host, total_metrics)

SIGTERM_RC = 128 + 15


# --- a client for raw HTTP over the Unix socket --------------------------------

def http_request(sock_path, method, path, body=None, timeout=5):
    """One request on a fresh connection; returns (status, parsed JSON or None)."""
    data = body.encode() if isinstance(body, str) else body
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
    if data is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    raw = head.encode() + b"\r\n" + (data or b"")
    return parse_response(exchange(sock_path, raw, timeout))


def exchange(sock_path, raw, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(raw)
    out = read_response(s)
    s.close()
    return out


def read_response(s):
    """Read one whole response (headers, then Content-Length bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)^content-length:\s*(\d+)", head, re.M)
    need = int(m.group(1)) if m else 0
    while len(rest) < need:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def parse_response(raw):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    if not m:
        raise AssertionError(f"not an HTTP response: {raw[:200]!r}")
    body = raw.partition(b"\r\n\r\n")[2]
    return int(m.group(1)), (json.loads(body) if body else None)


class Server:
    """An ember serving the API on a socket in ctx.tmp, stopped with SIGTERM."""
    count = 0

    def __init__(self, ctx, binary, extra=()):
        Server.count += 1
        self.path = os.path.join(ctx.tmp, f"api-{Server.count}.sock")
        self.name = os.path.basename(binary)
        self.proc = subprocess.Popen([binary, "--api-sock", self.path, *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: "
                                     f"{self.proc.stdout.read().decode()[:500]}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"{self.name}: the API socket never accepted")

    def req(self, method, path, body=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return http_request(self.path, method, path, body)

    def stop(self):
        """SIGTERM; returns (rc, output). The socket file must be gone."""
        alive = self.proc.poll() is None
        self.proc.terminate()
        try:
            out = self.proc.communicate(timeout=10)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = self.proc.communicate()[0].decode("utf-8", "replace")
        expect(alive, f"{self.name} had died before the end: {out[-800:]}")
        expect("Sanitizer" not in out and "runtime error" not in out,
               f"{self.name}: sanitizer report: {out[-2000:]}")
        expect(not os.path.exists(self.path), f"{self.name} left its socket file behind")
        return self.proc.returncode, out


def embers(ctx):
    return [e for e in (ctx.ember, ctx.ember_asan) if e and os.path.exists(e)]


def with_servers(ctx, fn, extra=()):
    for binary in embers(ctx):
        srv = Server(ctx, binary, extra)
        try:
            fn(srv)
        finally:
            rc, out = srv.stop()
        expect(rc == SIGTERM_RC, f"{srv.name}: exit {rc} after SIGTERM, expected {SIGTERM_RC}")


def kernel(ctx):
    return os.path.join(ctx.guest_dir, "vmlinuz")


def initrd(ctx):
    return os.path.join(ctx.guest_dir, "initramfs.cpio")


def image(ctx, name, size=1 << 20):
    path = os.path.join(ctx.tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


# --- host tests ---------------------------------------------------------------

@host_test("api: GET /, /version, /machine-config and /vm/config before start")
def api_gets(ctx):
    def check(srv):
        st, body = srv.req("GET", "/")
        expect(st == 200 and body == {"id": "ident_1", "state": "Not started",
                                      "vmm_version": body.get("vmm_version"),
                                      "app_name": "ember"}, f"GET /: {st} {body}")
        expect(re.match(r"^\d+\.\d+\.\d+$", body["vmm_version"]), f"vmm_version: {body}")
        st, body = srv.req("GET", "/version")
        expect(st == 200 and "firecracker_version" in body, f"GET /version: {st} {body}")
        st, body = srv.req("GET", "/machine-config")
        expect(st == 200 and body["vcpu_count"] == 1 and body["mem_size_mib"] == 128 and
               body["smt"] is False and body["track_dirty_pages"] is False,
               f"GET /machine-config: {st} {body}")
        st, body = srv.req("GET", "/vm/config")
        expect(st == 200 and body["boot-source"] is None and body["drives"] == [],
               f"GET /vm/config: {st} {body}")
    with_servers(ctx, check, ["--id", "ident_1"])


@host_test("api: pre-boot configuration is applied and reported back")
def api_configure(ctx):
    disk = image(ctx, "cfg-disk.img")
    root = image(ctx, "cfg-root.img")

    def check(srv):
        steps = [
            ("PUT", "/boot-source", {"kernel_image_path": kernel(ctx), "initrd_path": initrd(ctx),
                                     "boot_args": "console=ttyS0"}),
            ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}),
            ("PATCH", "/machine-config", {"track_dirty_pages": True}),
            ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": disk,
                                     "is_root_device": False, "is_read_only": True}),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": root,
                                       "is_root_device": True, "is_read_only": False,
                                       "cache_type": "Unsafe", "io_engine": "Sync",
                                       "rate_limiter": None}),
            ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap9",
                                                 "guest_mac": "06:00:ac:10:00:02"}),
            ("PUT", "/entropy", {}),
            ("PUT", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(ctx.tmp, "a.sock")}),
            ("PUT", "/vsock", {"vsock_id": "v0", "guest_cid": 7,
                               "uds_path": os.path.join(ctx.tmp, "v.sock")}),
            ("PUT", "/logger", {"log_path": os.path.join(ctx.tmp, "api.log"), "level": "Info",
                                "show_level": True, "show_log_origin": False}),
            ("PUT", "/metrics", {"metrics_path": os.path.join(ctx.tmp, "api-metrics.json")}),
        ]
        for method, path, body in steps:
            st, resp = srv.req(method, path, body)
            expect(st == 204 and resp is None, f"{method} {path}: {st} {resp}")
        st, cfg = srv.req("GET", "/vm/config")
        expect(st == 200, f"GET /vm/config: {st}")
        expect(cfg["boot-source"]["kernel_image_path"] == kernel(ctx), f"boot-source: {cfg}")
        expect(cfg["machine-config"]["vcpu_count"] == 2 and
               cfg["machine-config"]["mem_size_mib"] == 256 and
               cfg["machine-config"]["track_dirty_pages"] is True, f"machine-config: {cfg}")
        drives = {d["drive_id"]: d for d in cfg["drives"]}
        expect(drives.keys() == {"data", "rootfs"} and drives["data"]["is_read_only"] and
               drives["rootfs"]["is_root_device"], f"drives: {cfg['drives']}")
        expect(cfg["network-interfaces"][0]["guest_mac"] == "06:00:ac:10:00:02",
               f"network-interfaces: {cfg['network-interfaces']}")
        # An absent limiter reads back as null, as the drives' and NICs'.
        expect(cfg["entropy"] == {"rate_limiter": None} and cfg["metrics"] is not None,
               f"entropy/metrics: {cfg}")
        expect(cfg["vsock"] == {"vsock_id": "v0", "guest_cid": 7,
                                "uds_path": os.path.join(ctx.tmp, "v.sock")},
               f"vsock (the second PUT replaced the first): {cfg['vsock']}")
        # A second PUT of the same drive replaces it rather than adding one.
        st, _ = srv.req("PUT", "/drives/data", {"drive_id": "data", "path_on_host": disk,
                                                "is_root_device": False})
        st, cfg = srv.req("GET", "/vm/config")
        expect(len(cfg["drives"]) == 2 and not
               {d["drive_id"]: d for d in cfg["drives"]}["data"]["is_read_only"],
               f"PUT of an existing drive: {cfg['drives']}")
    with_servers(ctx, check)


@host_test("api: logger and metrics FIFOs that nobody reads yet open (as Firecracker opens "
           "them), their lines wait for the reader; the logger's module filter")
def api_logger_fifo(ctx):
    def check(srv):
        n = Server.count
        log_fifo = os.path.join(ctx.tmp, f"log-{n}.fifo")
        metrics_fifo = os.path.join(ctx.tmp, f"metrics-{n}.fifo")
        os.mkfifo(log_fifo)
        os.mkfifo(metrics_fifo)
        # Created before anyone reads them, as firecracker-go-sdk and Kata do.
        st, resp = srv.req("PUT", "/logger", {"log_path": log_fifo, "level": "Info",
                                              "show_level": True, "show_log_origin": True})
        expect(st == 204, f"PUT /logger on a FIFO without a reader: {st} {resp}")
        st, resp = srv.req("PUT", "/metrics", {"metrics_path": metrics_fifo})
        expect(st == 204, f"PUT /metrics on a FIFO without a reader: {st} {resp}")
        srv.req("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128})
        st, resp = srv.req("PUT", "/actions", {"action_type": "FlushMetrics"})
        expect(st == 204, f"FlushMetrics into the FIFO: {st} {resp}")
        # The readers come later: what was written waits in the pipes.
        log_r = os.open(log_fifo, os.O_RDONLY | os.O_NONBLOCK)
        met_r = os.open(metrics_fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            text = os.read(log_r, 65536).decode()
            expect(re.search(r"^ember: info \[src/api/api\.c:\d+\]: API PUT /machine-config: "
                             r"machine-config: vcpu_count must be", text, re.M),
                   f"the log FIFO got: {text!r}")
            lines = os.read(met_r, 1 << 20).decode().splitlines()
            expect(len(lines) == 1 and "put_api_requests" in json.loads(lines[0]),
                   f"the metrics FIFO got: {lines!r}")
            # module: only messages from src/MODULE ("api::resources" = src/api/resources.c).
            st, resp = srv.req("PUT", "/logger", {"log_path": log_fifo, "level": "Debug",
                                                  "module": "vmm"})
            expect(st == 204, f"PUT /logger with a module: {st} {resp}")
            srv.req("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128})
            srv.req("PUT", "/actions", {"action_type": "FlushMetrics"})
            time.sleep(0.1)
            try:
                text = os.read(log_r, 65536).decode()
            except BlockingIOError:
                text = ""
            expect("vcpu_count must be" not in text,
                   f"a message from src/api passed the 'vmm' module filter: {text!r}")
            st, resp = srv.req("PUT", "/logger", {"log_path": log_fifo, "level": "Info",
                                                  "module": "api::api"})
            srv.req("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128})
            time.sleep(0.1)
            text = os.read(log_r, 65536).decode()
            expect("vcpu_count must be" in text, f"module api::api let nothing through: {text!r}")
        finally:
            os.close(log_r)
            os.close(met_r)
    with_servers(ctx, check)


def malformed_table(ctx):
    disk = image(ctx, "bad-disk.img")
    big = '{"kernel_image_path": "' + "a" * 60000 + '"}'
    k = kernel(ctx)
    return [
        # (method, path, body, status, message pattern)
        ("GET", "/nothing", None, 400, r"no such resource: GET /nothing"),
        ("DELETE", "/vm", None, 400, r"DELETE is not a method of /vm"),
        ("POST", "/actions", '{"action_type": "InstanceStart"}', 400,
         r"POST is not a method of /actions"),
        ("PUT", "/boot-source", "", 400, r"needs a JSON body"),
        ("PUT", "/boot-source", "{", 400, r"malformed JSON body"),
        ("PUT", "/boot-source", '{"kernel_image_path": "%s"} x' % k, 400,
         r"malformed JSON body"),
        ("PUT", "/boot-source", "[]", 400, r"boot-source: expected a JSON object"),
        ("PUT", "/boot-source", '{"kernel_image_path": 1}', 400,
         r"field 'kernel_image_path' must be a string"),
        ("PUT", "/boot-source", '{"boot_args": "quiet"}', 400,
         r"missing required field 'kernel_image_path'"),
        ("PUT", "/boot-source", '{"kernel_image_path": "/nonexistent/k"}', 400,
         r"kernel image /nonexistent/k: No such file"),
        ("PUT", "/boot-source", '{"kernel_image_path": "%s", "kernel": 1}' % k, 400,
         r"unknown field 'kernel'"),
        ("PUT", "/boot-source", '{"kernel_image_path": "%s\\u0000x"}' % k, 400,
         r"contains a NUL character"),
        ("PUT", "/boot-source", big, 400, r"larger than the limit of 51200 bytes"),
        ("PUT", "/machine-config", '{"vcpu_count": 0, "mem_size_mib": 128}', 400,
         r"vcpu_count must be from 1 to"),
        ("PUT", "/machine-config", '{"vcpu_count": -1, "mem_size_mib": 128}', 400,
         r"'vcpu_count' must be a non-negative integer"),
        ("PUT", "/machine-config", '{"vcpu_count": 1.5, "mem_size_mib": 128}', 400,
         r"'vcpu_count' must be a non-negative integer"),
        ("PUT", "/machine-config", '{"vcpu_count": "2", "mem_size_mib": 128}', 400,
         r"'vcpu_count' must be a non-negative integer"),
        ("PUT", "/machine-config", '{"vcpu_count": 2}', 400,
         r"missing required field 'mem_size_mib'"),
        ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 8}', 400,
         r"mem_size_mib must be from 16"),
        ("PUT", "/machine-config", '{"vcpu_count": 3, "mem_size_mib": 128, "smt": true}', 400,
         r"with smt the vcpu_count must be 1 or even"),
        ("PATCH", "/machine-config", '{"huge_pages": "1G"}', 400,
         r"huge_pages must be \"None\" \(transparent huge pages asked for\), \"2M\""),
        ("PATCH", "/machine-config", '{"cpu_template": "T3"}', 400,
         r"cpu_template 'T3' is not one of \"None\", \"C3\", \"T2\""),
        ("PATCH", "/machine-config", '{"cpu_template": "V1N1"}', 400,
         r"cpu_template 'V1N1' is not one of"),
        ("PATCH", "/machine-config", '{"cpu_template": 2}', 400,
         r"'cpu_template' must be a string"),
        ("PUT", "/cpu-config", '[]', 400, r"cpu-config: expected a JSON object"),
        ("PUT", "/cpu-config", '{"vcpu_features": [{"index": 0, "bitmap": "0b1"}]}', 400,
         r"vcpu_features applies to aarch64 only"),
        ("PUT", "/cpu-config", '{"cpuid_modifiers": [{"leaf": "1", "subleaf": "0x0", '
         '"flags": 0, "modifiers": []}]}', 400,
         r"cpuid_modifiers\[0\]: leaf: '1' is not a number with a 0x"),
        ("PUT", "/cpu-config", '{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", '
         '"flags": 0, "modifiers": [{"register": "eax", "bitmap": "0b12"}]}]}', 400,
         r"modifiers\[0\]: bitmap '0b12': '2' is not 0, 1, x or _"),
        ("PUT", "/cpu-config", '{"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b%s"}]}'
         % ("1" * 65), 400, r"has more than 64 bits"),
        ("PUT", "/cpu-config", '{"kvm_capabilities": [56]}', 400,
         r"kvm_capabilities\[0\]: must be a string"),
        ("PUT", "/drives/rootfs", '{"drive_id": "other", "path_on_host": "%s", '
         '"is_root_device": false}' % disk, 400, r"'other' in the body does not match 'rootfs'"),
        ("PUT", "/drives/bad-id", '{}', 400, r"invalid id in /drives/bad-id"),
        ("PUT", "/drives/" + "d" * 65, '{}', 400, r"invalid id"),
        ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/nonexistent/d", '
         '"is_root_device": false}', 400, r"drive /nonexistent/d: No such file"),
        ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "%s", '
         '"is_root_device": true, "partuuid": "1234 init=/bin/sh"}' % disk, 400,
         r"partuuid '1234 init=/bin/sh' is not a partition UUID"),
        ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "is_root_device": false}', 400,
         r"missing required field 'path_on_host'"),
        ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "%s", '
         '"is_root_device": false, "rate_limiter": {"bandwidth": {"size": 1}}}' % disk, 400,
         r"drive: rate_limiter: bandwidth: missing required field 'refill_time'"),
        ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "%s", '
         '"is_root_device": "yes"}' % disk, 400, r"'is_root_device' must be a boolean"),
        ("PUT", "/network-interfaces/eth0", '{"iface_id": "eth0"}', 400,
         r"missing required field 'host_dev_name'"),
        ("PUT", "/network-interfaces/eth0", '{"iface_id": "eth0", "host_dev_name": "tap0", '
         '"guest_mac": "zz"}', 400, r"guest_mac 'zz' is not six hex pairs"),
        ("PUT", "/network-interfaces/eth0", '{"iface_id": "eth0", "host_dev_name": '
         '"a-name-far-too-long"}', 400, r"not a TAP device name"),
        ("PUT", "/vsock", '{"guest_cid": 2, "uds_path": "/tmp/v.sock"}', 400,
         r"vsock: guest_cid must be from 3 to 4294967294 \(0-2 are reserved\), got 2"),
        ("PUT", "/vsock", '{"guest_cid": 3}', 400, r"missing required field 'uds_path'"),
        ("PUT", "/vsock", '{"guest_cid": 3, "uds_path": "/nonexistent/v.sock"}', 400,
         r"uds_path /nonexistent/v.sock: the directory /nonexistent does not exist"),
        ("PUT", "/vsock", '{"guest_cid": 3, "uds_path": "/tmp/v.sock", "port": 1}', 400,
         r"unknown field 'port'"),
        ("PUT", "/vsock", '{"guest_cid": 3, "uds_path": ""}', 400,
         r"uds_path '' is empty or longer than 107 bytes"),
        ("PUT", "/entropy", '{"rate_limiter": {"ops": {"size": 1, "refill_time": 1, '
         '"burst": 2}}}', 400, r"entropy: rate_limiter: ops: unknown field 'burst'"),
        ("PUT", "/entropy", '{"rate_limiter": {"ops": {"size": 1, "refill_time": 1e20}}}', 400,
         r"entropy: rate_limiter: ops"),
        ("PUT", "/pmem/pm0", '{"id": "pm0"}', 400, r"pmem: missing required field 'path_on_host'"),
        ("PUT", "/pmem/pm0", '{"id": "pm1", "path_on_host": "%s"}' % disk, 400,
         r"pmem: id 'pm1' in the body does not match 'pm0' in the path"),
        ("PUT", "/pmem/pm0", '{"id": "pm0", "path_on_host": "/nonexistent/p"}', 400,
         r"pmem /nonexistent/p: No such file"),
        ("PUT", "/pmem/pm0", '{"id": "pm0", "path_on_host": "%s", "dax": true}' % disk, 400,
         r"unknown field 'dax'"),
        ("PUT", "/fs/share", '{"tag": "t"}', 400, r"fs: missing required field 'shared_dir'"),
        ("PUT", "/fs/share", '{"shared_dir": "/tmp"}', 400, r"fs: missing required field 'tag'"),
        ("PUT", "/fs/share", '{"shared_dir": "/nonexistent/d", "tag": "t"}', 400,
         r"fs: shared_dir '/nonexistent/d' does not exist"),
        ("PUT", "/fs/share", '{"shared_dir": "%s", "tag": "t"}' % disk, 400,
         r"is not a directory"),
        ("PUT", "/fs/share", '{"shared_dir": "/tmp", "tag": "%s"}' % ("t" * 37), 400,
         r"the tag must be 1 to 36 bytes"),
        ("PUT", "/fs/share", '{"shared_dir": "/tmp", "tag": "t", "cache": "maybe"}', 400,
         r"cache must be"),
        ("PUT", "/fs/share", '{"fs_id": "other", "shared_dir": "/tmp", "tag": "t"}', 400,
         r"'other' in the body does not match 'share'"),
        ("PUT", "/fs/share", '{"shared_dir": "/tmp", "tag": "t", "dax": true}', 400,
         r"unknown field 'dax'"),
        ("PUT", "/balloon", '{"amount_mib": 1}', 400, r"missing required field 'deflate_on_oom'"),
        ("PUT", "/balloon", '{"amount_mib": 1, "deflate_on_oom": true, "free_page_hinting": 1}',
         400, r"free_page_hinting"),
        ("PUT", "/balloon", '{"amount_mib": 100000, "deflate_on_oom": true}', 400,
         r"more than the guest's 128 MiB"),
        ("PUT", "/balloon", '{"amount_mib": 1, "deflate_on_oom": true, '
         '"stats_polling_interval_s": 70000}', 400, r"stats_polling_interval_s must be at most"),
        ("PATCH", "/balloon", '{"amount_mib": 1}', 400, r"the balloon device is not configured"),
        ("PATCH", "/balloon/statistics", '{"stats_polling_interval_s": 1}', 400,
         r"the balloon device is not configured"),
        ("PATCH", "/balloon/hinting/start", '{}', 400, r"only allowed once the microVM is running"),
        ("GET", "/balloon/hinting/status", None, 400, r"only allowed once the microVM is running"),
        ("PUT", "/actions", '{"action_type": "Boom"}', 400, r"action_type must be"),
        ("PUT", "/actions", '{}', 400, r"missing required field 'action_type'"),
        ("PUT", "/actions", '{"action_type": "FlushMetrics"}', 400, r"no metrics path is set"),
        ("PUT", "/actions", '{"action_type": "SendCtrlAltDel"}', 400, r"not running"),
        ("PATCH", "/vm", '{"state": "Paused"}', 400,
         r"PATCH /vm is only allowed once the microVM is running"),
        ("PATCH", "/drives/data", '{"drive_id": "data", "path_on_host": "%s"}' % disk, 400,
         r"only allowed once the microVM is running"),
        ("PUT", "/logger", '{"level": "Loud"}', 400, r"level must be one of"),
        ("PUT", "/logger", '{"module": 7}', 400, r"'module' must be a string"),
        ("PUT", "/metrics", '{"metrics_path": "/nonexistent/dir/m.json"}', 400,
         r"cannot open metrics file /nonexistent/dir/m.json: No such file"),
        ("PUT", "/metrics", '{}', 400, r"missing required field 'metrics_path'"),
    ]


RAW_TABLE = [
    # (bytes sent, status, message pattern)
    (b"GARBAGE\r\n\r\n", 400, r"malformed HTTP request"),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 400, r"longer than 1024 bytes"),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 400,
     r"headers are longer than 8192 bytes"),
    (b"PUT /boot-source HTTP/1.1\r\nContent-Length: 999999\r\n\r\n{", 400,
     r"body of 999999 bytes is larger than the limit"),
    (b"GET http://[bad HTTP/1.1\r\n\r\n", 400, r"."),
]


@host_test("api: a table of malformed requests, each with its status and message")
def api_malformed(ctx):
    table = malformed_table(ctx)

    def check(srv):
        st, _ = srv.req("PUT", "/boot-source", {"kernel_image_path": kernel(ctx)})
        expect(st == 204, f"the valid boot source was refused: {st}")
        before = srv.req("GET", "/vm/config")[1]
        for method, path, body, status, pattern in table:
            st, resp = srv.req(method, path, body)
            msg = (resp or {}).get("fault_message", "")
            expect(st == status and re.search(pattern, msg),
                   f"{srv.name}: {method} {path} {str(body)[:80]!r}: got {st} {msg!r}, "
                   f"expected {status} /{pattern}/")
            expect(set(resp) == {"fault_message"}, f"error body has other fields: {resp}")
        for raw, status, pattern in RAW_TABLE:
            st, resp = parse_response(exchange(srv.path, raw))
            msg = (resp or {}).get("fault_message", "")
            expect(st == status and re.search(pattern, msg),
                   f"{srv.name}: raw {raw[:40]!r}: got {st} {msg!r}, expected {status}")
        after = srv.req("GET", "/vm/config")[1]
        expect(before == after, f"bad requests changed the configuration:\n{before}\n{after}")
        st, info = srv.req("GET", "/")
        expect(st == 200 and info["state"] == "Not started", f"state after the table: {info}")
    with_servers(ctx, check)


@host_test("api: a VM that cannot start gets 400 and stays configurable")
def api_start_failure(ctx):
    garbage = os.path.join(ctx.tmp, "garbage-kernel")
    with open(garbage, "wb") as f:
        f.write(os.urandom(8192))

    def check(srv):
        st, resp = srv.req("PUT", "/actions", {"action_type": "InstanceStart"})
        expect(st == 400 and "without a boot source" in resp["fault_message"],
               f"start without a boot source: {st} {resp}")
        srv.req("PUT", "/boot-source", {"kernel_image_path": garbage})
        st, resp = srv.req("PUT", "/actions", {"action_type": "InstanceStart"})
        expect(st == 400 and re.search(r"cannot start the microVM: .*garbage-kernel: not a "
                                       r"Linux kernel image", resp["fault_message"]),
               f"start with a garbage kernel: {st} {resp}")
        st, info = srv.req("GET", "/")
        expect(info["state"] == "Not started", f"state after a failed start: {info}")
        # Still pre-boot: the boot source can be fixed.
        st, _ = srv.req("PUT", "/boot-source", {"kernel_image_path": kernel(ctx)})
        expect(st == 204, f"PUT /boot-source after a failed start: {st}")
        if not ctx.hw_kvm:
            srv.req("PUT", "/boot-source", {"kernel_image_path": kernel(ctx),
                                            "initrd_path": initrd(ctx)})
            srv.req("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128,
                                               "accel": "kvm"})
            st, resp = srv.req("PUT", "/actions", {"action_type": "InstanceStart"})
            expect(st == 400 and re.search(no_kvm_reason(), resp["fault_message"]),
                   f"--accel kvm started without hardware KVM: {st} {resp}")
    with_servers(ctx, check)


def half_open(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if data:
        s.sendall(data)
    return s


@host_test("api: stalled, vanished, pipelined and many concurrent clients")
def api_misbehaving_clients(ctx):
    def check(srv):
        stalled = [half_open(srv.path, b"PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n"
                                       b"\r\n{\"kernel") for _ in range(20)]
        idle = [half_open(srv.path, b"") for _ in range(10)]
        for _ in range(10):  # send half a request and vanish
            half_open(srv.path, b"PUT /machine-config HTTP/1.1\r\nContent-Le").close()
        st, info = srv.req("GET", "/")
        expect(st == 200 and info["state"] == "Not started",
               f"a good client behind 40 bad ones: {st}")
        # Pipelining: three requests in one write, answered in order.
        raw = (b"GET /version HTTP/1.1\r\n\r\n"
               b"PUT /machine-config HTTP/1.1\r\nContent-Length: 38\r\n\r\n"
               b'{"vcpu_count": 3, "mem_size_mib": 200}'
               b"GET /machine-config HTTP/1.1\r\nConnection: close\r\n\r\n")
        s = half_open(srv.path, raw)
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
        expect(statuses == [b"200", b"204", b"200"], f"pipelined answers: {statuses}")
        expect(b'"vcpu_count":3' in data, "the pipelined PUT was not applied before the GET")
        # Many at once: 48 threads, each with its own connection.
        results = []

        def one():
            try:
                results.append(srv.req("GET", "/")[0])
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))
        threads = [threading.Thread(target=one) for _ in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect(results.count(200) == 48, f"concurrent clients: {results}")
        # The stalled requests are dropped after the request timeout (10 s).
        time.sleep(11.5)
        dropped = 0
        for s in stalled:
            s.settimeout(2)
            try:
                dropped += s.recv(10) == b""
            except OSError:
                pass
            s.close()
        expect(dropped == 20, f"{dropped} of 20 stalled clients were dropped after the timeout")
        for s in idle:
            s.close()
        st, _ = srv.req("GET", "/")
        expect(st == 200, "the API stopped answering")
    with_servers(ctx, check)


@host_test("api: socket path errors; a stale socket is replaced, a live one is not")
def api_socket(ctx):
    binary = embers(ctx)[0]
    rc, out = run_host([binary, "--api-sock", "/nonexistent/dir/api.sock"])
    expect(rc == 2 and "bind failed" in out, f"socket in a missing directory: {rc} {out}")
    rc, out = run_host([binary, "--api-sock", "/" + "s" * 120])
    expect(rc == 2 and "longer than 107 bytes" in out, f"too long a path: {rc} {out}")
    regular = image(ctx, "not-a-socket")
    rc, out = run_host([binary, "--api-sock", regular])
    expect(rc == 2 and "exists and is not a socket" in out, f"a regular file: {rc} {out}")
    stale = os.path.join(ctx.tmp, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()  # the file stays, nobody listens
    srv = Server(ctx, binary, ())
    srv.path_backup = srv.path
    rc, out = run_host([binary, "--api-sock", srv.path])
    expect(rc == 2 and "another process is serving on it" in out, f"a live socket: {rc} {out}")
    srv.stop()
    live = subprocess.Popen([binary, "--api-sock", stale], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    time.sleep(0.5)
    st, _ = http_request(stale, "GET", "/")
    live.terminate()
    live.communicate(timeout=10)
    expect(st == 200, "the stale socket was not replaced")
    rc, out = run_host([binary, "--no-api"])
    expect(rc == 2 and "--no-api needs --config-file" in out, f"--no-api alone: {rc} {out}")
    rc, out = run_host([binary, "--id", "bad id!", "--api-sock", stale])
    expect(rc == 2 and "--id: expected" in out, f"a bad --id: {rc} {out}")


def write_config(ctx, name, cfg):
    path = os.path.join(ctx.tmp, name)
    with open(path, "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return path


@host_test("config file: errors name the file, the key and the problem (exit 2)")
def config_file_errors(ctx):
    disk = image(ctx, "cf-disk.img")
    boot = {"kernel_image_path": kernel(ctx)}
    cases = [
        ("{", r"malformed JSON body"),
        ({"boot-source": boot, "bogus": 1}, r"unknown field 'bogus'"),
        ({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}},
         r"missing required field 'boot-source'"),
        ({"boot-source": boot, "machine-config": {"vcpu_count": 0, "mem_size_mib": 128}},
         r"vcpu_count must be from 1"),
        ({"boot-source": boot, "drives": [{"drive_id": "a", "path_on_host": "/nonexistent/x",
                                           "is_root_device": False}]},
         r"drives\[0\]: drive /nonexistent/x: No such file"),
        ({"boot-source": boot, "drives": [
            {"drive_id": "a", "path_on_host": disk, "is_root_device": True},
            {"drive_id": "b", "path_on_host": disk, "is_root_device": True}]},
         r"drives\[1\]: drive: 'a' is already the root device"),
        ({"boot-source": boot, "vsock": {"guest_cid": 1, "uds_path": "/tmp/x"}},
         r"vsock: guest_cid must be from 3"),
        ({"boot-source": {"kernel_image_path": "/nonexistent/k"}},
         r"kernel image /nonexistent/k: No such file"),
    ]
    for binary in embers(ctx):
        for i, (cfg, pattern) in enumerate(cases):
            path = write_config(ctx, f"bad-config-{i}.json", cfg)
            rc, out = run_host([binary, "--config-file", path, "--no-api"])
            expect(rc == 2 and re.search(r"config file .*bad-config-%d\.json: " % i, out) and
                   re.search(pattern, out), f"{os.path.basename(binary)} case {i}: exit {rc}: "
                                            f"{out.strip()[:300]} (expected /{pattern}/)")
        rc, out = run_host([binary, "--config-file", "/nonexistent/c.json", "--no-api"])
        expect(rc == 2 and "config file /nonexistent/c.json: No such file" in out,
               f"missing config file: {rc} {out}")
    if not ctx.hw_kvm:
        path = write_config(ctx, "good.json", {"boot-source": boot, "machine-config": {
            "vcpu_count": 1, "mem_size_mib": 128, "accel": "kvm"}})
        rc, out = run_host([embers(ctx)[0], "--config-file", path, "--no-api"])
        expect(rc == 5 and re.search(no_kvm_reason(), out),
               f"a good config, --accel kvm, no hardware KVM: exit {rc}: {out}")


# --- guest tests --------------------------------------------------------------

API_HELPERS = r'''
BB=busybox
wait_for() { i=0; until grep -q "$1" "$2" 2>/dev/null; do
    i=$((i+1)); [ $i -gt 1200 ] && { echo "timed out waiting for $1"; return 1; }
    $BB usleep 100000; done; }
api() { curl -s -S --max-time 20 --unix-socket api.sock -w ' [%{http_code}]\n' "$@"; }
wait_socket() { i=0; until api http://x/ >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "no API socket"; return 1; }; $BB usleep 50000; done; }
'''

# Prints a tick with its uptime, the first bytes of vda (read past the page
# cache) and vda's size, every 0.3 s, for up to two minutes.
TICKER = r'''
echo "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
i=0
while [ $i -lt 400 ]; do
    u=$(cut -d' ' -f1 /proc/uptime)
    d=$(dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | head -c 6)
    echo "tick $i $u $d $(cat /sys/block/vda/size)"
    i=$((i+1)); usleep 300000
done
'''


# Kata Containers decodes each metrics group into a struct of uint64 fields.
def check_firecracker_metrics(m):
    """A metrics line as Firecracker writes it: utc_timestamp_ms, then groups of
    counters (objects of unsigned integers), per-device groups included."""
    expect(isinstance(m.get("utc_timestamp_ms"), int), f"utc_timestamp_ms: {m}")
    for key, value in m.items():
        if key in ("utc_timestamp_ms", "ember", "id", "properties"):
            continue
        expect(isinstance(value, dict) and
               all(isinstance(v, int) and v >= 0 for v in value.values()),
               f"metrics group {key} is not an object of unsigned integers: {value!r}")
    for key in ("vcpu", "put_api_requests", "get_api_requests", "patch_api_requests",
                "latencies_us", "logger"):
        expect(key in m, f"metrics line without {key}: {sorted(m)}")


def b64(text):
    return base64.b64encode(text.encode()).decode()


@guest_test("api lifecycle with curl: configure, start, pause (guest clock stops), resume, "
            "swap a disk, metrics, Ctrl-Alt-Del", batch="api")
def api_lifecycle():
    boot_args = f"{DEFAULT_CMDLINE} pci=off ember_cmd={b64(TICKER)}"
    script = API_HELPERS + (
        "dd if=/dev/zero of=disk1.img bs=1M count=4 2>/dev/null\n"
        "printf FIRST_ | dd of=disk1.img conv=notrunc 2>/dev/null\n"
        "dd if=/dev/zero of=disk2.img bs=1M count=8 2>/dev/null\n"
        "printf SECOND | dd of=disk2.img conv=notrunc 2>/dev/null\n"
        '"$EMBER" --api-sock api.sock --id life_1 < /dev/null > out.txt 2>&1 & pid=$!\n'
        "wait_socket\n"
        'echo "state-0 $(api http://x/)"\n'
        "api -X PUT http://x/boot-source -d \"{\\\"kernel_image_path\\\": \\\"$GUEST/vmlinuz\\\", "
        "\\\"initrd_path\\\": \\\"$GUEST/initramfs.cpio\\\", "
        f"\\\"boot_args\\\": \\\"{boot_args}\\\"}}\" | sed 's/^/put-boot /'\n"
        "api -X PUT http://x/machine-config -d \"{\\\"vcpu_count\\\": ${EMBER_VCPUS:-2}, "
        "\\\"mem_size_mib\\\": 256}\" | sed 's/^/put-machine /'\n"
        "api -X PUT http://x/drives/scratch -d \"{\\\"drive_id\\\": \\\"scratch\\\", "
        "\\\"path_on_host\\\": \\\"$DATA/disk1.img\\\", \\\"is_root_device\\\": false}\" "
        "| sed 's/^/put-drive /'\n"
        "api -X PUT http://x/metrics -d \"{\\\"metrics_path\\\": \\\"$DATA/metrics.json\\\"}\" "
        "| sed 's/^/put-metrics /'\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"InstanceStart\"}' "
        "| sed 's/^/start /'\n"
        'echo "state-1 $(api http://x/)"\n'
        "api -X PUT http://x/boot-source -d '{\"kernel_image_path\": \"/x\"}' "
        "| sed 's/^/late-boot-source /'\n"
        "wait_for '^tick 5 ' out.txt\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}' | sed 's/^/pause /'\n"
        'echo "state-2 $(api http://x/)"\n'
        "n1=$(grep -c '^tick' out.txt); sleep 4; n2=$(grep -c '^tick' out.txt)\n"
        'echo "ticks-while-paused $((n2 - n1))"\n'
        "t0=$(date +%s.%N)\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Resumed\"}' | sed 's/^/resume /'\n"
        'echo "state-3 $(api http://x/)"\n'
        "wait_for \"^tick $((n2 + 4)) \" out.txt\n"
        'echo "resumed-at-tick $n2 four-ticks-in $(awk "BEGIN {print $(date +%s.%N) - $t0}")"\n'
        "api -X PATCH http://x/drives/scratch -d \"{\\\"drive_id\\\": \\\"scratch\\\", "
        "\\\"path_on_host\\\": \\\"$DATA/disk2.img\\\"}\" | sed 's/^/patch-drive /'\n"
        "wait_for ' SECOND 16384' out.txt\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"FlushMetrics\"}' "
        "| sed 's/^/flush /'\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"SendCtrlAltDel\"}' "
        "| sed 's/^/ctrl-alt-del /'\n"
        'wait $pid; echo "ember rc=$?"\n'
        "cat out.txt\n"
        "echo '--- metrics'; cat metrics.json\n")

    def check(j):
        expect_ember_rc(j, 0)
        for step in ("put-boot", "put-machine", "put-drive", "put-metrics", "start", "pause",
                     "resume", "patch-drive", "flush", "ctrl-alt-del"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        states = dict(re.findall(r'^state-(\d) \{.*"state":"([A-Za-z ]+)".*\} \[200\]$',
                                 j.output, re.M))
        expect(states == {"0": "Not started", "1": "Running", "2": "Paused", "3": "Running"},
               f"GET / states: {states}")
        expect_output(j, r'"id":"life_1"', "the --id in GET /")
        expect_output(j, r"^late-boot-source .*only allowed before the microVM starts.* \[400\]$",
                      "400 for a pre-boot request after start")
        expect_output(j, r"^ticks-while-paused 0$", "no guest ticks while paused")
        ticks = [(int(n), float(u), d, int(s)) for n, u, d, s in
                 re.findall(r"^tick (\d+) ([\d.]+) (\w*) (\d+)$", j.output, re.M)]
        expect(len(ticks) >= 10, f"only {len(ticks)} ticks")
        gaps = [b[1] - a[1] for a, b in zip(ticks, ticks[1:])]
        expect(max(gaps) < 2.0, f"the guest's uptime jumped by {max(gaps):.2f} s across the "
                                f"4 s pause (it must stop while paused): {gaps}")
        # the guest's clock runs at the host's pace after the resume (it
        # stood still as long again on the engine, whose TSCs were set back)
        m = re.search(r"^resumed-at-tick (\d+) four-ticks-in ([\d.]+)$", j.output, re.M)
        uptime = {n: u for n, u, _, _ in ticks}
        last = int(m[1]) - 1 if m else -1  # the last tick before the pause
        expect(last in uptime and last + 5 in uptime, "the ticks around the resume")
        guest_s = uptime[last + 5] - uptime[last]
        expect(float(m[2]) < guest_s + 2.5,
               f"4 ticks after the resume took {float(m[2]):.2f} s of host time but "
               f"{guest_s:.2f} s of the guest's: its clock stood still after the resume")
        expect(ticks[0][2] == "FIRST_" and ticks[0][3] == 8192, f"first disk: {ticks[0]}")
        expect(ticks[-1][2] == "SECOND" and ticks[-1][3] == 16384,
               f"the swapped disk was not seen: {ticks[-1]}")
        expect_output(j, r"^ember-guest: Ctrl-Alt-Del, rebooting$", "the guest's reboot")
        metrics = [json.loads(line) for line in j.output.split("--- metrics\n", 1)[-1].splitlines()
                   if line.startswith("{")]
        expect(metrics, "no metrics lines")
        for line in metrics:
            check_firecracker_metrics(line)
        # Counters are deltas since the previous line (as Firecracker's), and
        # a periodic line may fall anywhere in a slow run: add them up.
        m = total_metrics(metrics)
        vcpu_total = sum(m["vcpu"][k] for k in ("exit_io_in", "exit_io_out", "exit_mmio_read",
                                                  "exit_mmio_write"))
        expect(vcpu_total > 0, f"vcpu exits (device accesses on the engine): {m['vcpu']}")
        first = metrics[0]
        if on_engine():  # the engine's own counters, per vCPU
            expect(len(first["ember"]["vcpus"]) == test_vcpus() and
                   all(v["instructions"] > 0 for v in first["ember"]["vcpus"]),
                   f"the engine's vCPU counters: {first['ember']['vcpus']}")
        else:
            expect(len(first["ember"]["vcpus"]) == 2, f"per-vCPU totals: {first['ember']['vcpus']}")
        expect(m["block_scratch"]["read_count"] > 0 and m["block_scratch"]["read_bytes"] > 0 and
               m["block"]["read_count"] == m["block_scratch"]["read_count"],
               f"block metrics: {m.get('block_scratch')} aggregate {m.get('block')}")
        expect(m["uart"]["write_count"] > 0 and metrics[-1]["ember"]["api_requests"] >= 8,
               f"uart/api metrics: {m['uart']} {metrics[-1]['ember']}")
        expect(m["put_api_requests"]["drive_count"] == 1 and
               m["put_api_requests"]["boot_source_count"] == 2 and
               m["put_api_requests"]["boot_source_fails"] == 1 and
               m["put_api_requests"]["actions_count"] == 3 and
               m["patch_api_requests"]["drive_count"] == 1 and
               m["get_api_requests"]["instance_info_count"] >= 4 and
               m["latencies_us"]["pause_vm"] > 0 and m["latencies_us"]["vmm_resume_vm"] > 0,
               f"API request counters: {m['put_api_requests']} {m['patch_api_requests']} "
               f"{m['get_api_requests']} {m['latencies_us']}")
        # The last line (at exit) does not repeat what earlier lines counted.
        last = metrics[-1]
        expect(len(metrics) >= 2 and last["put_api_requests"]["drive_count"] == 0 and
               last["put_api_requests"]["boot_source_count"] == 0 and
               last["put_api_requests"]["actions_count"] >= 1,
               f"the last line (at exit) repeats earlier counts: {last['put_api_requests']}")
    return job("api-lifecycle", script, timeout=240), check


CONFIG_GUEST = r'''
echo "cpus $(grep -c ^processor /proc/cpuinfo)"
echo "disk $(head -c 6 /dev/vda) $(cat /sys/block/vda/ro)"
echo "rng $(cat /sys/devices/virtual/misc/hw_random/rng_current)"
head -c 64 /dev/hwrng | wc -c | sed 's/^/hwrng-bytes /'
'''


@guest_test("config file: the VM boots at once without an API (drive, entropy, logger, metrics)",
            batch="api")
def config_file_boot():
    boot_args = f"{DEFAULT_CMDLINE} pci=off ember_cmd={b64(CONFIG_GUEST)}"
    config = (
        '{"boot-source": {"kernel_image_path": "$GUEST/vmlinuz", '
        '"initrd_path": "$GUEST/initramfs.cpio", "boot_args": "%s"},\n'
        ' "machine-config": {"vcpu_count": ${EMBER_VCPUS:-2}, "mem_size_mib": 256, "smt": false},\n'
        ' "drives": [{"drive_id": "data", "path_on_host": "$DATA/disk.img", '
        '"is_root_device": false, "is_read_only": true}],\n'
        ' "network-interfaces": [], "entropy": {}, "vsock": null, "balloon": null,\n'
        ' "logger": {"log_path": "$DATA/ember.log", "level": "Info", "show_level": true},\n'
        ' "metrics": {"metrics_path": "$DATA/metrics.json"}}\n' % boot_args)
    script = (
        "dd if=/dev/zero of=disk.img bs=1M count=2 2>/dev/null\n"
        "printf CONFIG | dd of=disk.img conv=notrunc 2>/dev/null\n"
        f"cat > vm.json <<EOF\n{config}EOF\n"
        '"$EMBER" --config-file vm.json --no-api < /dev/null; echo "ember rc=$?"\n'
        "echo '--- log'; cat ember.log; echo '--- metrics'; cat metrics.json\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, rf"^cpus {test_vcpus()}$", f"{test_vcpus()} vCPUs")
        expect_output(j, r"^disk CONFIG 1$", "the read-only drive")
        expect_output(j, r"^rng virtio_rng\.0$", "virtio-rng from 'entropy'")
        expect_output(j, r"^hwrng-bytes 64$", "bytes from /dev/hwrng")
        log = j.output.split("--- log\n", 1)[-1].split("--- metrics", 1)[0]
        expect(re.search(r"^ember: info: kernel: bzImage", log, re.M) and
               re.search(r"^ember: info: virtio devices: mmio \(the command line says "
                         r"pci=off\)", log, re.M),
               f"the log file (level Info, show_level) has: {log[:600]!r}")
        metrics = [json.loads(line) for line in j.output.split("--- metrics\n", 1)[-1].splitlines()
                   if line.startswith("{")]
        for m in metrics:
            check_firecracker_metrics(m)
        expect(metrics and metrics[-1]["block_data"]["read_count"] > 0 and
               metrics[-1]["entropy"]["entropy_bytes"] >= 64,
               f"the final metrics line: {metrics[-1] if metrics else None}")
    return job("config-file", script, timeout=120), check


@guest_test("ember run --api-sock: the API shows and controls a VM started from options",
            batch="api")
def run_with_api():
    guest = ("echo guest-up; i=0; while [ $i -lt 600 ] && "
             "[ \"$(cat /sys/block/vda/size)\" != 4096 ]; do i=$((i+1)); usleep 100000; done\n"
             "echo \"vda-size $(cat /sys/block/vda/size)\"; sleep 120")
    script = API_HELPERS + (
        "dd if=/dev/zero of=d.img bs=1M count=1 2>/dev/null\n"
        "dd if=/dev/zero of=d2.img bs=1M count=2 2>/dev/null\n"
        f"({ember_run_line(guest)}) > out.txt 2>&1 &\n"
        "wait_socket\n"
        'echo "state $(api http://x/)"\n'
        'echo "config $(api http://x/vm/config)"\n'
        "wait_for guest-up out.txt\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}' | sed 's/^/pause /'\n"
        'echo "paused $(api http://x/)"\n'
        "api -X PATCH http://x/vm -d '{\"state\": \"Resumed\"}' | sed 's/^/resume /'\n"
        "api -X PUT http://x/machine-config -d '{\"vcpu_count\": 1, \"mem_size_mib\": 64}' "
        "| sed 's/^/late-machine /'\n"
        "api -X PATCH http://x/drives/d_img -d '{\"drive_id\": \"d_img\", "
        "\"path_on_host\": \"d2.img\"}' | sed 's/^/patch-drive /'\n"
        "wait_for vda-size out.txt\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"SendCtrlAltDel\"}' "
        "| sed 's/^/ctrl-alt-del /'\n"
        "wait_for 'ember rc=' out.txt; cat out.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r'^state \{.*"state":"Running".*\} \[200\]$', "Running")
        expect_output(j, r'^config \{"boot-source":\{"kernel_image_path":"[^"]*/vmlinuz".*'
                         rf'"machine-config":\{{"vcpu_count":{test_vcpus()},"mem_size_mib":192.*'
                         r'"drives":\[\{"drive_id":"d_img","path_on_host":"d\.img"',
                      "GET /vm/config with the options' VM")
        expect_output(j, r'^paused \{.*"state":"Paused".*\} \[200\]$', "Paused")
        expect_output(j, r"^pause  \[204\]$", "204 for the pause")
        expect_output(j, r"^resume  \[204\]$", "204 for the resume")
        expect_output(j, r"^late-machine .*only allowed before the microVM starts.* \[400\]$",
                      "400 for a pre-boot request")
        expect_output(j, r"^patch-drive  \[204\]$", "204 for PATCH /drives")
        expect_output(j, r"^vda-size 4096$", "the guest seeing the swapped image's size")
        expect_output(j, r"^ember-guest: Ctrl-Alt-Del, rebooting$", "the guest's reboot")
    return job("run-api", script, timeout=120), check


def ember_run_line(guest):
    from framework import ember_run
    return ember_run("--api-sock api.sock --cpus ${EMBER_VCPUS:-2} --mem 192M "
                     "--disk path=d.img,id=d_img",
                     guest_cmd=guest)

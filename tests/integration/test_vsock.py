"""virtio-vsock with Firecracker's Unix-socket host side, in real guests:
16 MiB each way checked by checksum, 64 connections at once each way, a
peer closing mid-transfer on either side, host clients that never send
CONNECT or send garbage, a snapshot with a live connection restored (CLI
and API, with a new socket path) where the guest sees the reset and new
connections work, the config-file and API paths; and the setup errors.

The guest and the L1 host both run tests/tools/vsockperf: AF_VSOCK in the
guest, the Unix sockets (and Firecracker's CONNECT handshake) on the host."""
import base64
import json
import os
import re
import socket

from framework import (default_cmdline, expect, expect_ember_rc, expect_output, guest_test,
                       host_test, job, run_host)

import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "harness"))
from overlay import build_initrd_with  # noqa: E402

HELPERS = r'''
BB=busybox
wait_for() { i=0; until grep -q "$1" "$2" 2>/dev/null; do
    i=$((i+1)); [ $i -gt 1200 ] && { echo "timed out waiting for $1 in $2"; return 1; }
    $BB usleep 100000; done; }
wait_file() { i=0; until [ -e "$1" ]; do
    i=$((i+1)); [ $i -gt 600 ] && { echo "timed out waiting for $1"; return 1; }
    $BB usleep 100000; done; }
api() { curl -s -S --max-time 60 --unix-socket "$SOCK" -w ' [%{http_code}]\n' "$@"; }
wait_api() { i=0; until api http://x/ >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "no API socket"; return 1; }; $BB usleep 50000; done; }
T="timeout -s KILL 120"
# a VM that hangs dumps its state (SIGUSR2: vCPUs, devices, queues) before the kill
TD="timeout -k 10 -s USR2 120"
'''

VSOCK = "--vsock cid=3,uds=$DATA/v.sock"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def initrd_with_vsockperf(ctx):
    out = os.path.join(ctx.prep_dir, "initrd-vsockperf.cpio")
    if not os.path.exists(out):
        build_initrd_with({"/usr/bin/vsockperf": os.path.join(ctx.build, "tools", "vsockperf")},
                          os.path.join(ctx.guest_dir, "initramfs.cpio"), out)
    return out


def run_vm(guest, args=VSOCK, out="vm.txt", mem="256M"):
    """Shell: ember in the background with the vsockperf guest running 'guest'."""
    cmdline = f"{default_cmdline()} ember_cmd={b64(guest)}"
    return (f'$T "$EMBER" run --mem {mem} --initrd "$DATA/initrd.cpio" {args} '
            f"--cmdline '{cmdline}' < /dev/null > {out} 2>&1; echo \"ember rc=$?\" >> {out}")


def background(cmd):
    return f"({cmd}) &\n"


def sums(text, what):
    """{seed label: sum} from vsockperf lines."""
    return re.findall(rf"vsockperf: {what} (\d+) bytes in [\d.]+ s, ([\d.]+) MB/s, "
                      r"sum ([0-9a-f]{16})", text)


def section(output, name):
    m = re.search(rf"^=== {name}\n(.*?)(?=^=== |\Z)", output, re.M | re.S)
    return m.group(1) if m else ""


def files(ctx):
    return {"initrd.cpio": initrd_with_vsockperf(ctx)}


@guest_test("vsock: 16 MiB host -> guest and guest -> host, checksums match", batch="vsock", mmio=True, backend="both")
def stream_both_ways(ctx):
    guest = ("vsockperf recv vsock:0:5000\n"
             "vsockperf send vsock:2:5001 16 --seed 7\n")
    script = HELPERS + (
        "vsockperf recv unix:$DATA/v.sock_5001 > host-recv.txt 2>&1 &\n" +
        background(run_vm(guest)) +
        "wait_file $DATA/v.sock\n"
        "wait_for 'vsockperf: listening' vm.txt\n"
        "vsockperf send hybrid:$DATA/v.sock:5000 16 --seed 5 > host-send.txt 2>&1\n"
        "wait_for 'ember rc=' vm.txt\n"
        "echo '=== vm'; cat vm.txt; echo '=== host-send'; cat host-send.txt\n"
        "echo '=== host-recv'; cat host-recv.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        vm, hs, hr = section(j.output, "vm"), section(j.output, "host-send"), \
            section(j.output, "host-recv")
        got, sent = sums(vm, "received"), sums(hs, "sent")
        expect(got and sent and got[0][0] == "16777216" and got[0][2] == sent[0][2],
               f"host -> guest: guest {got}, host {sent}")
        got, sent = sums(hr, "received"), sums(vm, "sent")
        expect(got and sent and got[0][0] == "16777216" and got[0][2] == sent[0][2],
               f"guest -> host: host {got}, guest {sent}")
    return job("vsock-stream", script, timeout=240, files=files(ctx)), check


@guest_test("vsock: 64 connections at once each way, every byte echoed back intact",
            batch="vsock")
def many_connections(ctx):
    guest = ("vsockperf echo vsock:0:6000 64 &\n"
             "vsockperf multi vsock:2:6001 64 128\n"
             "wait\n")
    script = HELPERS + (
        "vsockperf echo unix:$DATA/v.sock_6001 64 > host-echo.txt 2>&1 &\n" +
        background(run_vm(guest)) +
        "wait_file $DATA/v.sock\n"
        "wait_for 'vsockperf: listening' vm.txt\n"
        "vsockperf multi hybrid:$DATA/v.sock:6000 64 128 > host-multi.txt 2>&1\n"
        "wait_for 'ember rc=' vm.txt\n"
        "echo '=== vm'; cat vm.txt; echo '=== host-multi'; cat host-multi.txt\n"
        "echo '=== host-echo'; cat host-echo.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        vm, hm, he = (section(j.output, n) for n in ("vm", "host-multi", "host-echo"))
        ok = r"vsockperf: 64 connections, 128 KiB each way on each, all data matched"
        expect(re.search(ok, vm), "guest -> host: 64 connections echoed intact")
        expect(re.search(ok, hm), "host -> guest: 64 connections echoed intact")
        expect(re.search(r"echoed 64 connections, 8388608 bytes", vm), "the guest's echo")
        expect(re.search(r"echoed 64 connections, 8388608 bytes", he), "the host's echo")
    return job("vsock-many", script, timeout=240, files=files(ctx)), check


@guest_test("vsock: a peer closing mid-transfer on either side ends the stream with an error; "
            "the device goes on", batch="vsock")
def close_mid_transfer(ctx):
    guest = ("vsockperf send vsock:2:7000 16\n"          # the host stops reading at 1 MiB
             "vsockperf recv vsock:0:7001 --close-after 1048576\n"
             "vsockperf send vsock:2:7002 2 --seed 3\n")  # and afterwards a whole stream
    script = HELPERS + (
        "vsockperf recv unix:$DATA/v.sock_7000 --close-after 1048576 > h1.txt 2>&1 &\n"
        "vsockperf recv unix:$DATA/v.sock_7002 > h3.txt 2>&1 &\n" +
        background(run_vm(guest)) +
        "wait_file $DATA/v.sock\n"
        "wait_for 'vsockperf: listening' vm.txt\n"
        "vsockperf send hybrid:$DATA/v.sock:7001 16 > h2.txt 2>&1\n"
        "wait_for 'ember rc=' vm.txt\n"
        "echo '=== vm'; cat vm.txt; echo '=== h1'; cat h1.txt; echo '=== h2'; cat h2.txt\n"
        "echo '=== h3'; cat h3.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        vm = section(j.output, "vm")
        m = re.search(r"vsockperf: send failed after (\d+) bytes: (Broken pipe|Connection reset "
                      r"by peer)", vm)
        expect(m and 1 << 20 <= int(m.group(1)) < 16 << 20,
               "the guest's sender saw the host close mid-transfer")
        expect_output(j, r"vsockperf: closing after 1048576 bytes", "the receivers closing")
        m = re.search(r"vsockperf: send failed after (\d+) bytes: (Broken pipe|Connection reset "
                      r"by peer)", section(j.output, "h2"))
        expect(m and 1 << 20 <= int(m.group(1)) < 16 << 20,
               "the host's sender saw the guest close mid-transfer")
        got, sent = sums(section(j.output, "h3"), "received"), sums(vm, "sent")
        expect(got and sent and got[0][0] == "2097152" and got[0][2] == sent[-1][2],
               f"a whole stream afterwards: host {got}, guest {sent}")
    return job("vsock-close", script, timeout=240, files=files(ctx)), check


@guest_test("vsock: a host client that never sends CONNECT is dropped after 5 s, garbage at "
            "once, and the device serves others meanwhile", batch="vsock")
def host_protocol(ctx):
    guest = "vsockperf recv vsock:0:7100\nsleep 9\n"  # ember lives on past the deadline
    script = HELPERS + (
        background(run_vm(guest)) +
        # ember's loop is running: the deadline counts from the accept
        "wait_for 'vsockperf: listening' vm.txt\n"
        "vsockperf idle $DATA/v.sock > idle.txt 2>&1 & idle=$!\n"
        "vsockperf idle $DATA/v.sock 'HELLO WORLD\n' > garbage.txt 2>&1\n"
        "vsockperf idle $DATA/v.sock 'CONNECT 99999999999\n' > big.txt 2>&1\n"
        "vsockperf send hybrid:$DATA/v.sock:7100 4 > send.txt 2>&1\n"
        "kill -0 $idle 2>/dev/null && echo 'idle client still waiting after the transfer'\n"
        "wait $idle\n"
        "wait_for 'ember rc=' vm.txt\n"
        "echo '=== vm'; cat vm.txt; echo '=== idle'; cat idle.txt; echo '=== garbage';\n"
        "cat garbage.txt; echo '=== big'; cat big.txt; echo '=== send'; cat send.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        m = re.search(r"idle: closed by the peer after ([\d.]+) s", section(j.output, "idle"))
        expect(m and 4.5 <= float(m.group(1)) <= 9, "the silent client dropped after ~5 s")
        for name in ("garbage", "big"):
            m = re.search(r"idle: closed by the peer after ([\d.]+) s", section(j.output, name))
            expect(m and float(m.group(1)) < 2, f"the {name} client dropped at once")
        expect_output(j, r"idle client still waiting after the transfer",
                      "a 4 MiB transfer done while the silent client waited")
        got, sent = sums(section(j.output, "vm"), "received"), sums(section(j.output, "send"),
                                                                    "sent")
        expect(got and sent and got[0][2] == sent[0][2], f"the transfer: {got} {sent}")
    return job("vsock-host-protocol", script, timeout=120, files=files(ctx)), check


SNAP_GUEST = ("vsockperf hold vsock:2:8000\n"
              "vsockperf send vsock:2:8001 1 --seed 9\n"
              "vsockperf recv vsock:0:8002\n")


def restored_half(path):
    """Shell: the host side a restored VM needs at socket 'path'."""
    # bounded: a restored guest that never connects must not hold the job
    return (f"$T vsockperf recv unix:{path}_8001 > h1-$$.txt 2>&1 & r=$!\n"
            f"wait_file {path}\n"
            f"vsockperf send hybrid:{path}:8002 1 --seed 4 > h2-$$.txt 2>&1\n"
            "wait $r; cat h1-$$.txt h2-$$.txt\n")


@guest_test("vsock: snapshot with a live connection, restore (CLI and API, new socket): the "
            "guest sees the reset, new connections work", batch="vsock", mmio=True)
def snapshot_reset(ctx):
    script = HELPERS + (
        "SOCK=$DATA/api.sock\n"
        "vsockperf recv unix:$DATA/v.sock_8000 > held.txt 2>&1 &\n"
        f"\"$EMBER\" run --mem 256M --initrd \"$DATA/initrd.cpio\" {VSOCK} --api-sock $SOCK "
        f"--cmdline '{default_cmdline()} ember_cmd={b64(SNAP_GUEST)}' < /dev/null > vm.txt 2>&1 & "
        "vm=$!\n"
        "wait_for 'vsockperf: held' vm.txt\n"
        "wait_api\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}' | sed 's/^/pause /'\n"
        "api -X PUT http://x/snapshot/create -d \"{\\\"snapshot_type\\\": \\\"Full\\\", "
        "\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_file_path\\\": \\\"$DATA/snap.mem\\\"}\" | sed 's/^/create /'\n"
        "kill -9 $vm; wait $vm 2>/dev/null\n"
        "echo '=== held'; cat held.txt\n"
        # A CLI restore with a new socket path.
        "($TD \"$EMBER\" restore -v --snapshot snap.state --mem snap.mem --vsock uds=$DATA/r1.sock "
        "< /dev/null > r1.txt 2>&1; echo \"ember rc=$?\" >> r1.txt) &\n"
        "echo '=== r1-host'\n" + restored_half("$DATA/r1.sock") +
        "wait_for 'ember rc=' r1.txt\n"
        "echo '=== r1'; cat r1.txt\n"
        # An API restore with vsock_override.
        "SOCK=$DATA/api2.sock\n"
        "($TD \"$EMBER\" -v --api-sock $SOCK < /dev/null > r2.txt 2>&1; "
        "echo \"ember rc=$?\" >> r2.txt) &\n"
        "wait_api\n"
        "echo '=== r2-api'\n"
        "api -X PUT http://x/snapshot/load -d \"{\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_backend\\\": {\\\"backend_type\\\": \\\"File\\\", "
        "\\\"backend_path\\\": \\\"$DATA/snap.mem\\\"}, \\\"resume_vm\\\": true, "
        "\\\"vsock_override\\\": {\\\"uds_path\\\": \\\"$DATA/r2.sock\\\"}}\" "
        "| sed 's/^/load /'\n"
        "api http://x/vm/config | sed 's/^/config /'\n"
        "echo '=== r2-host'\n" + restored_half("$DATA/r2.sock") +
        "wait_for 'ember rc=' r2.txt\n"
        "echo '=== r2'; cat r2.txt\n")

    def check(j):
        out = j.output
        expect(re.search(r"^pause  \[204\]$", out, re.M) and
               re.search(r"^create  \[204\]$", out, re.M), "pause and snapshot through the API")
        for name in ("r1", "r2"):
            vm, host = section(out, name), section(out, name + "-host")
            expect(re.search(r"vsockperf: hold: error: Connection reset by peer", vm),
                   f"{name}: the restored guest's connection was reset")
            expect(re.search(r"^ember rc=0$", vm, re.M), f"{name}: the restored VM ran to its end")
            got, sent = sums(host, "received"), sums(vm, "sent")
            expect(got and sent and got[0][2] == sent[0][2],
                   f"{name}: a new guest -> host connection: {got} {sent}")
            got, sent = sums(vm, "received"), sums(host, "sent")
            expect(got and sent and got[0][2] == sent[0][2],
                   f"{name}: a new host -> guest connection: {got} {sent}")
        expect(re.search(r"^load  \[204\]$", out, re.M), "the API load with vsock_override")
        expect(re.search(r'"vsock":\{"guest_cid":3,"uds_path":"[^"]*/r2\.sock"\}', out),
               "GET /vm/config shows the overridden socket")
    return job("vsock-snapshot", script, timeout=300, files=files(ctx)), check


@guest_test("vsock: a VM from a config file and one through the API (PUT /vsock, GET "
            "/vm/config, metrics)", batch="vsock")
def config_and_api(ctx):
    guest = "vsockperf send vsock:2:9000 2 --seed 11\nvsockperf recv vsock:0:9001\n"
    boot_args = f"{default_cmdline()} ember_cmd={b64(guest)}"
    config = (
        '{"boot-source": {"kernel_image_path": "$GUEST/vmlinuz", '
        '"initrd_path": "$DATA/initrd.cpio", "boot_args": "%s"},\n'
        ' "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},\n'
        ' "vsock": {"vsock_id": "vsock0", "guest_cid": 42, "uds_path": "$DATA/cf.sock"},\n'
        ' "metrics": {"metrics_path": "$DATA/metrics.json"}}\n' % boot_args)
    body = json.dumps({"kernel_image_path": "$GUEST/vmlinuz", "initrd_path": "$DATA/initrd.cpio",
                       "boot_args": boot_args}).replace('"', '\\"')
    script = HELPERS + (
        f"cat > vm.json <<EOF\n{config}EOF\n"
        "vsockperf recv unix:$DATA/cf.sock_9000 > cf-recv.txt 2>&1 &\n"
        "($T \"$EMBER\" --config-file vm.json --no-api < /dev/null > cf.txt 2>&1; "
        "echo \"ember rc=$?\" >> cf.txt) &\n"
        "wait_file $DATA/cf.sock\n"
        "wait_for 'vsockperf: listening' cf.txt\n"
        "vsockperf send hybrid:$DATA/cf.sock:9001 2 --seed 12 > cf-send.txt 2>&1\n"
        "wait_for 'ember rc=' cf.txt\n"
        "echo '=== cf'; cat cf.txt cf-recv.txt cf-send.txt\n"
        "echo '=== metrics'; tail -1 metrics.json\n"
        # The same through the API.
        "SOCK=$DATA/api.sock\n"
        "($T \"$EMBER\" --api-sock $SOCK < /dev/null > api.txt 2>&1; "
        "echo \"ember rc=$?\" >> api.txt) &\n"
        "wait_api\n"
        "echo '=== api'\n"
        f"api -X PUT http://x/boot-source -d \"{body}\" | sed 's/^/boot /'\n"
        "api -X PUT http://x/vsock -d '{\"guest_cid\": 3, \"uds_path\": \"/tmp/first.sock\"}' "
        "| sed 's/^/vsock1 /'\n"
        "api -X PUT http://x/vsock -d \"{\\\"vsock_id\\\": \\\"1\\\", \\\"guest_cid\\\": 5, "
        "\\\"uds_path\\\": \\\"$DATA/api-v.sock\\\"}\" | sed 's/^/vsock2 /'\n"
        "api http://x/vm/config | sed 's/^/config /'\n"
        "vsockperf recv unix:$DATA/api-v.sock_9000 > api-recv.txt 2>&1 &\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"InstanceStart\"}' "
        "| sed 's/^/start /'\n"
        "api -X PUT http://x/vsock -d '{\"guest_cid\": 3, \"uds_path\": \"/tmp/late.sock\"}' "
        "| sed 's/^/late /'\n"
        "wait_for 'vsockperf: listening' api.txt\n"
        "vsockperf send hybrid:$DATA/api-v.sock:9001 2 --seed 12 > api-send.txt 2>&1\n"
        "wait_for 'ember rc=' api.txt\n"
        "cat api.txt api-recv.txt api-send.txt\n")

    def check(j):
        cf, api = section(j.output, "cf"), section(j.output, "api")
        for name, text in (("config file", cf), ("API", api)):
            expect(re.search(r"^ember rc=0$", text, re.M), f"{name}: the VM ran to its end")
            sent = sorted(s for _, _, s in sums(text, "sent"))
            got = sorted(s for _, _, s in sums(text, "received"))
            expect(len(sent) == 2 and sent == got,
                   f"{name}: both transfers' checksums matched: sent {sent}, received {got}")
        metrics = json.loads(section(j.output, "metrics").strip().splitlines()[-1])
        v = metrics.get("vsock", {})
        # (the host's connect is retried until the guest listens: one connection or more)
        expect(v.get("tx_bytes_count") == 2 << 20 and v.get("rx_bytes_count") == 2 << 20 and
               v.get("conns_added", 0) >= 2 and v.get("conns_added") == v.get("conns_removed")
               and v.get("conns_killed") == 0, f"the vsock metrics: {v}")
        expect(re.search(r"^vsock1  \[204\]$", api, re.M) and
               re.search(r"^vsock2  \[204\]$", api, re.M), "PUT /vsock twice")
        expect(re.search(r'^config .*"vsock":\{"vsock_id":"1","guest_cid":5,"uds_path":'
                         r'"[^"]*/api-v\.sock"\}', api, re.M), "GET /vm/config shows the vsock")
        expect(re.search(r"^late .*\[400\]$", api, re.M), "PUT /vsock after the start refused")
    return job("vsock-config", script, timeout=180, files=files(ctx)), check


@host_test("vsock setup errors: bad --vsock options, socket paths that cannot be bound (exit 2)")
def vsock_setup_errors(ctx):
    from test_cli import expect_setup_error, kernel
    k = ["run", "--kernel", kernel(ctx)]
    expect_setup_error(ctx, k + ["--vsock", "cid=2,uds=/tmp/x"], r"cid must be a number from 3")
    expect_setup_error(ctx, k + ["--vsock", "cid=4294967295,uds=/tmp/x"],
                       r"cid must be a number from 3 to 4294967294")
    expect_setup_error(ctx, k + ["--vsock", "cid=3"], r"cid=N and uds=PATH are required")
    expect_setup_error(ctx, k + ["--vsock", "cid=3,uds=/tmp/x,port=5"],
                       r"unknown setting 'port=5'")
    expect_setup_error(ctx, k + ["--vsock", "cid=3,uds=/tmp/" + "x" * 120],
                       r"longer than 107 bytes")
    expect_setup_error(ctx, k + ["--vsock", "cid=3,uds=/tmp/a", "--vsock", "cid=4,uds=/tmp/b"],
                       r"given twice")
    expect_setup_error(ctx, k + ["--vsock", "cid=3,uds=/nonexistent/dir/v.sock"],
                       r"vsock socket /nonexistent/dir/v.sock: bind failed: No such file")
    regular = os.path.join(ctx.tmp, "file")
    open(regular, "w").close()
    expect_setup_error(ctx, k + ["--vsock", f"cid=3,uds={regular}"],
                       r"the path exists and is not a socket")
    live = socket.socket(socket.AF_UNIX)
    path = os.path.join(ctx.tmp, "live.sock")
    live.bind(path)
    live.listen(1)
    try:
        expect_setup_error(ctx, k + ["--vsock", f"cid=3,uds={path}"],
                           r"another process is serving on it")
    finally:
        live.close()
    rc, out = run_host([ctx.ember, "restore", "--snapshot", "s", "--mem", "m", "--vsock",
                        "cid=3"])
    expect(rc == 2 and "expected uds=PATH" in out, f"restore --vsock cid=3: {rc} {out}")

"""virtio-net in a real guest: user-mode networking (DHCP, a page from the
host's loopback, a port forward into the guest), TAP in a network namespace
(DHCP, ping both ways, TCP both ways with matching checksums), a TAP ember
creates itself, two NICs at once, and the setup errors."""
import os
import re
import socket
import sys

from framework import (ember_run, expect, expect_ember_rc, expect_no_output, expect_output,
                       guest_test, host_test, job, run_host)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "harness"))
from overlay import build_initrd_with  # noqa: E402

# Shell helpers for the jobs: busybox applets by name (the same in L1 and on a
# host with hardware KVM), and waiting for a line in a file.
HELPERS = r'''
BB=busybox
wait_for() { i=0; until grep -q "$1" "$2" 2>/dev/null; do
    i=$((i+1)); [ $i -gt 900 ] && { echo "timed out waiting for $1"; return 1; }
    $BB usleep 100000; done; }
[ -n "$EMBER_NESTED" ] && insmod /lib/modules/l1/tun.ko 2>/dev/null
'''

TAP_NETNS_SETUP = r'''
$BB tunctl -t tap0 >/dev/null
$BB ip link set tap0 up
$BB ip addr add 192.168.77.1/24 dev tap0
printf 'interface tap0\nstart 192.168.77.10\nend 192.168.77.20\n' > udhcpd.conf
printf 'option subnet 255.255.255.0\noption router 192.168.77.1\n' >> udhcpd.conf
printf 'lease_file %s/leases\n' "$DATA" >> udhcpd.conf
: > leases
$BB udhcpd -f udhcpd.conf >/dev/null 2>&1 &
'''


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def background(cmd, out="out.txt"):
    """Run a whole command list in the background with its output in a file."""
    return f"(\n{cmd}\n) > {out} 2>&1 &\n"


def in_netns(body):
    """Run 'body' in a fresh network namespace (its own TAPs and addresses)."""
    return ("cat > netns.sh <<'NETNS_SCRIPT_END'\n" + HELPERS + body +
            "\nNETNS_SCRIPT_END\nbusybox unshare -n sh netns.sh")


@guest_test("user networking: DHCP, a page from the host's loopback, a port forward",
            batch="net", mmio=True)
def user_mode():
    # Free ports of this host: on the engine the test runs here directly,
    # next to whatever else uses ports.
    port, fwd = free_port(), free_port()
    guest = (
        "wget -q -O /tmp/page http://10.0.2.2:%d/page.bin && md5sum /tmp/page | cut -c1-32\n"
        "echo 'hello through hostfwd' > /tmp/msg\n"
        "echo listening-now\n"
        "busybox nc -l -p 5000 < /tmp/msg\n"
        "echo served" % port)
    script = HELPERS + (
        "dd if=/dev/urandom of=page.bin bs=64k count=16 2>/dev/null\n"
        "md5sum page.bin | cut -c1-32 | sed 's/^/host-sum /'\n"
        # -f: in the foreground, so that it ends with the job (a daemon
        # escapes the job's process group and outlives it)
        f"$BB httpd -f -p 127.0.0.1:{port} -h \"$DATA\" & httpd=$!\n" +
        background(ember_run(f"--net user,hostfwd=tcp::{fwd}-:5000", guest_cmd=guest)) +
        "wait_for listening-now out.txt\n"
        f"for i in 1 2 3 4 5; do sleep 5 | $BB nc 127.0.0.1 {fwd} > fwd.txt && [ -s fwd.txt ] && break; "
        "$BB usleep 300000; done\n"
        "wait_for 'ember rc=' out.txt; kill $httpd\n"
        "cat out.txt; echo \"forwarded: $(cat fwd.txt)\"")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^ember-guest: eth0 10\.0\.2\.15/24$", "a DHCP lease")
        host = re.search(r"^host-sum ([0-9a-f]{32})$", j.output, re.M)
        sums = re.findall(r"^([0-9a-f]{32})$", j.output, re.M)
        expect(host and host.group(1) in sums, "the 1 MiB page arrived changed or not at all")
        expect_output(j, r"^forwarded: hello through hostfwd$", "the port forward")
    return job("user-net", script, timeout=120), check


def initrd_with_tcpperf(ctx):
    out = os.path.join(ctx.prep_dir, "initrd-tcpperf.cpio")
    if not os.path.exists(out):
        build_initrd_with({"/usr/bin/tcpperf": os.path.join(ctx.build, "tools", "tcpperf")},
                          os.path.join(ctx.guest_dir, "initramfs.cpio"), out)
    return out


@guest_test("TAP in a network namespace: DHCP, ping both ways, TCP both ways", batch="net", mmio=True, backend="both")
def tap_netns(ctx):
    guest = (
        "ping -c 2 -W 2 192.168.77.1 | grep -c 'bytes from'\n"
        "dd if=/dev/urandom of=/tmp/up bs=64k count=32 2>/dev/null\n"
        "md5sum /tmp/up | cut -c1-32 | sed 's/^/guest-sent /'\n"
        "tcpperf send 192.168.77.1 9000 /tmp/up\n"
        "tcpperf recv 9001 /tmp/down\n"
        "md5sum /tmp/down | cut -c1-32 | sed 's/^/guest-got /'")
    body = TAP_NETNS_SETUP + (
        "tcpperf recv 9000 up.bin > recv.txt & receiver=$!\n" +
        background(ember_run('--net tap=tap0 --initrd "$DATA/initrd.cpio"', guest_cmd=guest)) +
        "wait $receiver; cat recv.txt\n"
        "md5sum up.bin | cut -c1-32 | sed 's/^/host-got /'\n"
        "wait_for 'listening on 9001' out.txt\n"
        "ip=$(sed -n 's/^ember-guest: eth0 \\([0-9.]*\\).*/\\1/p' out.txt)\n"
        "$BB ping -c 2 -W 2 $ip | grep -c 'bytes from' | sed 's/^/host-pings /'\n"
        "dd if=/dev/urandom of=down.bin bs=64k count=32 2>/dev/null\n"
        "md5sum down.bin | cut -c1-32 | sed 's/^/host-sent /'\n"
        "tcpperf send $ip 9001 down.bin\n"
        "wait_for 'ember rc=' out.txt; cat out.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^ember-guest: eth0 192\.168\.77\.1\d/24$", "a lease from udhcpd")
        expect_output(j, r"^2$", "the guest's two pings answered")
        expect_output(j, r"^host-pings 2$", "the host's two pings answered")
        expect_output(j, r"received 2097152 bytes", "2 MiB received each way")
        sums = dict(re.findall(r"^(guest-sent|host-got|host-sent|guest-got) ([0-9a-f]{32})$",
                               j.output, re.M))
        expect(len(sums) == 4, f"missing checksums: {sums}")
        expect(sums["guest-sent"] == sums["host-got"], "guest -> host transfer corrupted")
        expect(sums["host-sent"] == sums["guest-got"], "host -> guest transfer corrupted")
    return (job("tap-netns", in_netns(body), timeout=150,
                files={"initrd.cpio": initrd_with_tcpperf(ctx)}), check)


@guest_test("TAP created by ember (CAP_NET_ADMIN), and two NICs at once", batch="net")
def tap_created_and_two_nics():
    guest = (
        "ifconfig eth1 192.168.88.2 netmask 255.255.255.0 up\n"
        "echo eth1-up\n"
        "ping -c 1 -W 3 10.0.2.2 | grep -c 'bytes from' | sed 's/^/user-ping /'\n"
        "ping -c 2 -W 3 192.168.88.1 | grep -c 'bytes from' | sed 's/^/tap-ping /'\n"
        "ls /sys/class/net | tr '\\n' ' '; echo")
    body = (
        # /sys shows L1's first namespace; ask ip about this one.
        "$BB ip link show made0 >/dev/null 2>&1 && echo 'made0 already exists'\n" +
        background(ember_run("--net user --net tap=made0,mac=02:00:00:00:00:42",
                             guest_cmd=guest)) +
        "i=0; until $BB ip link show made0 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 300 ] && break; "
        "$BB usleep 100000; done\n"
        "$BB ip link set made0 up; $BB ip addr add 192.168.88.1/24 dev made0\n"
        "wait_for 'ember rc=' out.txt; cat out.txt\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_no_output(j, r"already exists")
        expect_output(j, r"^ember-guest: eth0 10\.0\.2\.15/24$", "eth0 on user networking")
        expect_output(j, r"^user-ping 1$", "the user-mode gateway answering")
        expect_output(j, r"^tap-ping 2$", "the host end of the created TAP answering")
        expect_output(j, r"\beth0 eth1\b", "two NICs in the guest")
    return job("tap-created", in_netns(body), timeout=150), check


@host_test("network setup errors: unknown backend, bad options, busy port, no permission")
def net_setup_errors(ctx):
    from test_cli import expect_setup_error, kernel
    k = ["run", "--kernel", kernel(ctx)]
    expect_setup_error(ctx, k + ["--net", "bridge=br0"], r"unknown backend or setting 'bridge")
    expect_setup_error(ctx, k + ["--net", "mac=02:00:00:00:00:01"],
                       r"tap=NAME or user is required")
    expect_setup_error(ctx, k + ["--net", "user,mac=01:00:00:00:00:01"], r"multicast")
    expect_setup_error(ctx, k + ["--net", "user,mac=zz"], r"six hex pairs")
    expect_setup_error(ctx, k + ["--net", "tap=t0,hostfwd=tcp::1-:2"], r"user networking only")
    expect_setup_error(ctx, k + ["--net", "user,hostfwd=tcp:80"], r"expected tcp::HOSTPORT")
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        expect_setup_error(ctx, k + ["--net", f"user,hostfwd=tcp::{port}-:22"],
                           rf"cannot listen on host port {port}")
    finally:
        busy.close()
    # Without privileges, a TAP that does not exist cannot be created.
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    rc, out = run_host(nobody + [ctx.ember] + k + ["--net", "tap=ember-none0"])
    expect(rc == 2 and re.search(r"tap ember-none0: (no permission|cannot open /dev/net/tun)",
                                 out), f"unprivileged TAP: {rc} {out}")

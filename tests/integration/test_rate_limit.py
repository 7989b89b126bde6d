"""Rate limiters through a running guest: a drive's bandwidth bucket set with
PUT /drives, a guest's O_DIRECT dd held to it, changed by PATCH /drives in the
middle of the run, and the throttling counted in the metrics."""
import json
import os
import re

from framework import expect, expect_output, guest_test, job
from test_api import API_HELPERS, b64, check_firecracker_metrics
from test_firecracker import put
from test_net import build_initrd_with

# Slow rates: the nested test guest (TCG underneath) reads O_DIRECT at only
# ~100-200 KB/s with stalls of a second or more, and the limit must be what
# holds it back. Buckets of two seconds' tokens absorb the stalls.
CHUNK = 16384                    # bytes per timed dd in the guest (4 requests)
SIZE1, REFILL1 = 32768, 2000     # 16 KiB/s
SIZE2, REFILL2 = 16384, 2000     # after the PATCH: 8 KiB/s
RATE1, RATE2 = SIZE1 * 1000 // REFILL1, SIZE2 * 1000 // REFILL2  # B/s
CHUNKS = 22
PATCH_AFTER = 8                  # the host patches once the guest printed this chunk

RATE_GUEST = r'''
echo "chunk 0 $(cut -d' ' -f1 /proc/uptime)"
i=1
while [ $i -le %d ]; do
    dd if=/dev/vda of=/dev/null bs=4096 count=4 iflag=direct 2>/dev/null
    echo "chunk $i $(cut -d' ' -f1 /proc/uptime)"
    i=$((i+1))
done
echo rl-done
sleep 600
''' % CHUNKS


def bucket(size, refill):
    return '{"bandwidth": {"size": %d, "refill_time": %d}}' % (size, refill)


@guest_test("rate limiter: a guest's O_DIRECT dd held to a drive's bandwidth bucket within "
            "10%, changed by PATCH /drives mid-run, throttling in the metrics", batch="fc")
def rate_limited_dd():
    boot_args = f"console=ttyS0 reboot=k panic=1 ember_dhcp=0 ember_cmd={b64(RATE_GUEST)}"
    script = API_HELPERS + (
        "dd if=/dev/zero of=data.img bs=1M count=2 2>/dev/null\n"
        '"$EMBER" --api-sock api.sock < /dev/null > out.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("boot", "PUT", "/boot-source", '''{
        "kernel_image_path": "$GUEST/vmlinux",
        "initrd_path": "$GUEST/initramfs.cpio",
        "boot_args": "%s"
    }''' % boot_args) +
        put("data", "PUT", "/drives/data", '''{
        "drive_id": "data", "path_on_host": "$DATA/data.img",
        "is_root_device": false, "rate_limiter": %s
    }''' % bucket(SIZE1, REFILL1)) +
        put("metrics", "PUT", "/metrics", '{"metrics_path": "$DATA/m.out"}') +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        f"wait_for 'chunk {PATCH_AFTER} ' out.txt\n" +
        put("patch", "PATCH", "/drives/data",
            '{"drive_id": "data", "rate_limiter": %s}' % bucket(SIZE2, REFILL2)) +
        "wait_for rl-done out.txt\n" +
        "api http://x/vm/config | sed 's/^/config /'\n" +
        put("flush", "PUT", "/actions", '{"action_type": "FlushMetrics"}') +
        "kill $pid; wait $pid; echo \"ember rc=$?\"\n"
        "cat out.txt; echo '--- metrics'; cat m.out\n")

    def check(j):
        for step in ("boot", "data", "metrics", "start", "patch", "flush"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        t = {int(m.group(1)): float(m.group(2))
             for m in re.finditer(r"^chunk (\d+) ([\d.]+)", j.output, re.M)}
        expect(len(t) == CHUNKS + 1, f"{CHUNKS + 1} chunk lines, got {sorted(t)}")
        # Before the PATCH (the first two chunks had the full bucket for free).
        before = 5 * CHUNK / (t[7] - t[2])
        # Well after it: it lands during chunk PATCH_AFTER + 1 or + 2, and the
        # new bucket starts full (one free chunk).
        first = PATCH_AFTER + 5
        after = (CHUNKS - first) * CHUNK / (t[CHUNKS] - t[first])
        print(f"measured {before:.0f} B/s (limit {RATE1}), then {after:.0f} B/s (limit {RATE2})")
        expect(abs(before - RATE1) <= RATE1 / 10, f"{before:.0f} B/s, limit {RATE1} B/s")
        expect(abs(after - RATE2) <= RATE2 / 10, f"after the PATCH {after:.0f} B/s, limit {RATE2}")
        expect_output(j, r'^config .*"rate_limiter": ?\{ ?"bandwidth": ?\{ ?"size": ?%d, ?"refill_time": ?%d' % (SIZE2, REFILL2) + r'',
                      "GET /vm/config shows the patched bucket")
        metrics = [json.loads(line) for line in j.output.split("--- metrics\n", 1)[-1].splitlines()
                   if line.startswith("{")]
        expect(metrics, "no metrics lines")
        for m in metrics:
            check_firecracker_metrics(m)
        # Counters are per line (reset at each write): add them up.
        counts = {k: sum(m.get("block_data", {}).get(k, 0) for m in metrics)
                  for k in ("rate_limiter_throttled_events", "rate_limiter_event_count")}
        expect(all(counts.values()), f"throttling counted in block_data: {counts}")
    return job("rate-dd", script, timeout=420), check


# --- what a snapshot keeps: the limiters, pmem and the CPU template ----------
SNAP_CHUNK = 65536                # bytes per timed dd (16 O_DIRECT requests of 4 KiB)
SNAP_SIZE, SNAP_REFILL = 131072, 1000  # 128 KiB/s
SNAP_RATE = SNAP_SIZE * 1000 // SNAP_REFILL
SNAP_AT, SNAP_CHUNKS = 12, 30     # snapshot once chunk 12 is printed; 30 in all
POPCNT = 1 << 23                  # leaf 1 ECX: what the custom template hides

SNAP_GUEST = r'''
cpuid 1 | sed 's/^/before /'
printf BEFORE-SNAPSHOT | dd of=/dev/pmem0 bs=1 seek=4096 conv=fsync 2>/dev/null
echo "chunk 0 $(cut -d' ' -f1 /proc/uptime)"
i=1
while [ $i -le %d ]; do
    dd if=/dev/vda of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null
    echo "chunk $i $(cut -d' ' -f1 /proc/uptime)"
    i=$((i+1))
done
cpuid 1 | sed 's/^/after /'
echo "pmem-read $(dd if=/dev/pmem0 bs=1 skip=4096 count=15 2>/dev/null)"
printf AFTER-RESTORE | dd of=/dev/pmem0 bs=1 seek=8192 conv=fsync 2>/dev/null
echo snap-done
''' % SNAP_CHUNKS

CUSTOM_TEMPLATE = ('{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, '
                   '"modifiers": [{"register": "ecx", "bitmap": "0b0xxx_xxxx_xxxx_xxxx_xxxx_xxxx"}]}]}')


def chunk_times(text):
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r"^chunk (\d+) ([\d.]+)", text, re.M)}


@guest_test("snapshot keeps what the API configured: a drive's rate limiter still holds the "
            "restored guest to its rate within 10%, the pmem file and its contents, the custom "
            "CPU template's CPUID, KSM", batch="rl-snap")
def snapshot_keeps_limits(ctx):
    initrd = os.path.join(ctx.prep_dir, "initrd-cpuid.cpio")
    if not os.path.exists(initrd):
        build_initrd_with({"/usr/bin/cpuid": os.path.join(ctx.build, "tools", "cpuid")},
                          os.path.join(ctx.guest_dir, "initramfs.cpio"), initrd)
    boot_args = f"console=ttyS0 reboot=k panic=1 ember_dhcp=0 ember_cmd={b64(SNAP_GUEST)}"
    script = API_HELPERS + (
        "dd if=/dev/zero of=data.img bs=1M count=4 2>/dev/null\n"
        "printf PMEM-FILE > pm.img; truncate -s 2M pm.img\n"
        '"$EMBER" --api-sock api.sock < /dev/null > vm.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("boot", "PUT", "/boot-source", '''{
        "kernel_image_path": "$GUEST/vmlinux", "initrd_path": "$DATA/initrd.cpio",
        "boot_args": "%s"}''' % boot_args) +
        put("cpu", "PUT", "/cpu-config", CUSTOM_TEMPLATE) +
        put("machine", "PUT", "/machine-config",
            '{"vcpu_count": 1, "mem_size_mib": 256, "ksm": true}') +
        put("data", "PUT", "/drives/data", '''{
        "drive_id": "data", "path_on_host": "$DATA/data.img", "is_root_device": false,
        "rate_limiter": %s}''' % bucket(SNAP_SIZE, SNAP_REFILL)) +
        put("pmem", "PUT", "/pmem/pm", '{"id": "pm", "path_on_host": "$DATA/pm.img"}') +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        f"wait_for '^chunk {SNAP_AT} ' vm.txt\n"
        # KSM: guest RAM is offered (VmFlags 'mg'), and after the restore too
        'echo "booted-mergeable $(grep -c \'^VmFlags:.* mg\' /proc/$pid/smaps)"\n' +
        put("pause", "PATCH", "/vm", '{"state": "Paused"}') +
        put("create", "PUT", "/snapshot/create", '''{"snapshot_type": "Full",
        "snapshot_path": "$DATA/s.state", "mem_file_path": "$DATA/s.mem"}''') +
        "kill -9 $pid; wait $pid 2>/dev/null\n"
        'echo "=== before"; cat vm.txt\n'
        '(timeout -s KILL 120 "$EMBER" restore --snapshot s.state --mem s.mem < /dev/null '
        '> r.txt 2>&1; echo "rc $?" >> r.txt) & rpid=$!\n'
        "wait_for '^chunk 20 ' r.txt\n"
        "for p in $(pgrep -f -- '--snapshot s.state'); do "
        "grep -q 's\\.mem$' /proc/$p/maps 2>/dev/null && rp=$p; done\n"
        "awk '/^[0-9a-f]+-[0-9a-f]+ /{path=$6} /^VmFlags:/ && / mg/ {print \"mergeable\", path}' "
        "/proc/$rp/smaps | sed 's/^/restored-/'\n"
        "wait $rpid\n"
        'echo "=== after"; cat r.txt\n'
        'echo "host-pmem $(dd if=pm.img bs=1 skip=8192 count=13 2>/dev/null)"\n'
        "truncate -s 5M pm.img\n"
        'timeout -s KILL 60 "$EMBER" restore --snapshot s.state --mem s.mem < /dev/null '
        '> g.txt 2>&1; echo "grown rc $? $(tail -1 g.txt)"\n')

    def check(j):
        for step in ("boot", "cpu", "machine", "data", "pmem", "start", "pause", "create"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        before_text = j.output.split("=== before", 1)[-1].split("=== after", 1)[0]
        after_text = j.output.split("=== after", 1)[-1]
        expect(re.search(r"^rc 0$", after_text, re.M), "the restored VM did not exit 0")
        expect("ember-guest: init started" not in after_text, "the restored guest booted again")
        cpuid = {w: re.search(rf"^{w} cpuid 0x1\.0 .*ecx=([0-9a-f]{{8}})", j.output, re.M)
                 for w in ("before", "after")}
        expect(all(cpuid.values()), f"cpuid lines: {cpuid}")
        for when, m in cpuid.items():
            expect(not int(m.group(1), 16) & POPCNT,
                   f"{when} the snapshot the guest's CPUID shows popcnt (ecx {m.group(1)}): "
                   "the template is lost")
        t0, t1 = chunk_times(before_text), chunk_times(after_text)
        expect(SNAP_AT in t0 and SNAP_CHUNKS in t1, f"chunks before {sorted(t0)}, after {sorted(t1)}")
        before = (SNAP_AT - 3) * SNAP_CHUNK / (t0[SNAP_AT] - t0[3])
        first = min(t1) + 3  # the restored bucket starts full: two chunks for free
        after = (SNAP_CHUNKS - first) * SNAP_CHUNK / (t1[SNAP_CHUNKS] - t1[first])
        print(f"measured {before:.0f} B/s before the snapshot, {after:.0f} B/s after the "
              f"restore (limit {SNAP_RATE})")
        expect(abs(before - SNAP_RATE) <= SNAP_RATE / 10, f"{before:.0f} B/s, limit {SNAP_RATE}")
        expect(abs(after - SNAP_RATE) <= SNAP_RATE / 10,
               f"restored: {after:.0f} B/s, limit {SNAP_RATE} (the limiter was not kept?)")
        expect_output(j, r"^booted-mergeable [1-9]", "guest RAM offered to KSM (ksm: true)")
        expect_output(j, r"^restored-mergeable \S*/s\.mem$",
                      "the restored guest's memory-file mapping offered to KSM")
        expect_output(j, r"^pmem-read BEFORE-SNAPSHOT$", "the restored guest reads its pmem write")
        expect_output(j, r"^host-pmem AFTER-RESTORE$", "the restored guest's pmem write in the file")
        expect_output(j, r"^grown rc 2 .*pmem pm: the guest had a 2097152-byte region",
                      "a pmem file resized since the snapshot is refused")
    return job("rl-snap", script, timeout=300, files={"initrd.cpio": initrd}), check


# --- the entropy device, a NIC's TCP stream and the serial port ---------------
RNG_SIZE, RNG_BYTES = 4096, 20480          # 4 KiB/s; the guest reads 20 KiB
TX1_SIZE, TX1_MIB = 262144, 2              # 256 KiB/s, a 2 MiB stream
TX2_SIZE, TX2_MIB = 131072, 1              # after PATCH: 128 KiB/s, 1 MiB
# A bandwidth bucket pays for whole frames, headers included; with TSO over
# TAP the guest sends segments of up to 64 KiB, one header each (3 MiB cost
# 3155364 bytes of tokens when this was written).
FRAME_COST = 1.003

NET_GUEST = r'''
t0=$(cut -d' ' -f1 /proc/uptime)
n=$(head -c %d /dev/hwrng | wc -c)
echo "rng $n $t0 $(cut -d' ' -f1 /proc/uptime)"
tcpperf send 192.168.77.1 %%d -%d
echo tcp1-done
sleep 2
tcpperf send 192.168.77.1 %%d -%d
echo tcp2-done
sleep 600
''' % (RNG_BYTES, TX1_MIB, TX2_MIB)

SERIAL_SIZE = 2048                         # bytes per second on ttyS0
SERIAL_GUEST = r'''
sleep 3
i=0; while [ $i -lt 100 ]; do
    echo "flood $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    i=$((i+1))
done
sleep 3
echo serial-end
sleep 600
'''


def expected_secs(mib, size):
    """A stream of 'mib' MiB through a bucket of 'size' bytes a second that
    starts full: what is left after the first bucketful, at the rate."""
    return (mib * 1048576 * FRAME_COST - size) / size


@guest_test("rate limiters on the entropy device (a guest's read), a NIC's transmit "
            "(a TCP stream over TAP, PATCHed mid-run) within 10%, and the serial "
            "port (output beyond it dropped and counted)", batch="rl-devices")
def device_rate_limits(ctx):
    from test_net import TAP_NETNS_SETUP, in_netns, initrd_with_tcpperf
    p1, p2 = 9101, 9102  # in the job's own network namespace
    boot_args = ("console=ttyS0 reboot=k panic=1 quiet rng_core.default_quality=0 "
                 f"ember_cmd={b64(NET_GUEST % (p1, p2))}")
    serial_args = f"console=ttyS0 reboot=k panic=1 quiet ember_dhcp=0 ember_cmd={b64(SERIAL_GUEST)}"
    boot = '''{"kernel_image_path": "$GUEST/vmlinux", "initrd_path": "$DATA/initrd.cpio",
        "boot_args": "%s"}'''
    script = in_netns(TAP_NETNS_SETUP + API_HELPERS + (
        f"timeout -s KILL 150 tcpperf recv {p1} > recv1.txt 2>&1 & r1=$!\n"
        f"timeout -s KILL 150 tcpperf recv {p2} > recv2.txt 2>&1 & r2=$!\n"
        '"$EMBER" --api-sock api.sock < /dev/null > vm.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("boot", "PUT", "/boot-source", boot % boot_args) +
        put("entropy", "PUT", "/entropy",
            '{"rate_limiter": {"bandwidth": {"size": %d, "refill_time": 1000}}}' % RNG_SIZE) +
        put("nic", "PUT", "/network-interfaces/eth0", '''{"iface_id": "eth0",
        "host_dev_name": "tap0", "tx_rate_limiter": %s}''' % bucket(TX1_SIZE, 1000)) +
        put("metrics", "PUT", "/metrics", '{"metrics_path": "$DATA/m.out"}') +
        put("start", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        "wait_for tcp1-done vm.txt\n" +
        put("patch", "PATCH", "/network-interfaces/eth0",
            '{"iface_id": "eth0", "tx_rate_limiter": %s}' % bucket(TX2_SIZE, 1000)) +
        "wait_for tcp2-done vm.txt\n" +
        put("flush", "PUT", "/actions", '{"action_type": "FlushMetrics"}') +
        "kill $pid; wait $pid; wait $r1 $r2\n"
        'echo "=== vm"; cat vm.txt; cat recv1.txt recv2.txt | sed "s/^/host /"\n'
        'echo "=== metrics"; grep -o \'"entropy":{[^}]*}\\|"net_eth0":{[^}]*}\' m.out\n'
        "rm -f api.sock\n"
        '"$EMBER" --api-sock api.sock < /dev/null > vm2.txt 2>&1 & pid=$!\n'
        "wait_socket\n" +
        put("boot2", "PUT", "/boot-source", boot % serial_args) +
        put("serial", "PUT", "/serial", '''{"serial_out_path": "$DATA/serial.txt",
        "rate_limiter": {"size": %d, "refill_time": 1000}}''' % SERIAL_SIZE) +
        put("metrics2", "PUT", "/metrics", '{"metrics_path": "$DATA/m2.out"}') +
        put("start2", "PUT", "/actions", '{"action_type": "InstanceStart"}') +
        "wait_for serial-end serial.txt\n" +
        put("flush2", "PUT", "/actions", '{"action_type": "FlushMetrics"}') +
        "kill $pid; wait $pid\n"
        'echo "=== serial"; echo "flood-lines $(grep -c "^flood" serial.txt)"; '
        'echo "serial-bytes $(wc -c < serial.txt)"; grep -o "serial-end" serial.txt\n'
        'echo "=== metrics2"; grep -o \'"uart":{[^}]*}\' m2.out\n'))

    def metrics_total(name, group, key):
        text = j_out[0].split(f"=== {name}\n", 1)[-1].split("=== ", 1)[0]
        lines = [json.loads("{" + ln + "}") for ln in text.splitlines()
                 if ln.startswith(f'"{group}":')]
        return sum(m[group].get(key, 0) for m in lines)

    j_out = [""]

    def check(j):
        j_out[0] = j.output
        for step in ("boot", "entropy", "nic", "metrics", "start", "patch", "flush",
                     "boot2", "serial", "metrics2", "start2", "flush2"):
            expect_output(j, rf"^{step}  \[204\]$", f"204 for {step}")
        rng = re.search(r"^rng (\d+) ([\d.]+) ([\d.]+)$", j.output, re.M)
        expect(rng and int(rng.group(1)) == RNG_BYTES, f"the guest's hwrng read: {rng}")
        rng_secs = float(rng.group(3)) - float(rng.group(2))
        rng_want = (RNG_BYTES - RNG_SIZE) / RNG_SIZE
        recv = [float(s) for s in re.findall(r"^host tcpperf: received \d+ bytes in ([\d.]+) s",
                                             j.output, re.M)]
        expect(len(recv) == 2, f"two streams received: {recv}")
        want = [expected_secs(TX1_MIB, TX1_SIZE), expected_secs(TX2_MIB, TX2_SIZE)]
        print(f"entropy {rng_secs:.2f} s (expected {rng_want:.2f}); TCP {recv[0]:.2f} s "
              f"(expected {want[0]:.2f}), after the PATCH {recv[1]:.2f} s (expected {want[1]:.2f})")
        expect(abs(rng_secs - rng_want) <= rng_want / 10,
               f"entropy: {RNG_BYTES} bytes in {rng_secs:.2f} s, the limit says {rng_want:.2f}")
        for got, exp, what in zip(recv, want, ("TCP", "TCP after the PATCH")):
            expect(abs(got - exp) <= exp / 10, f"{what}: {got:.2f} s, the limit says {exp:.2f}")
        expect(metrics_total("metrics", "entropy", "entropy_rate_limiter_throttled") > 0,
               "entropy throttling not counted")
        expect(metrics_total("metrics", "net_eth0", "tx_rate_limiter_throttled") > 0,
               "TCP throttling not counted")
        flood = int(re.search(r"^flood-lines (\d+)$", j.output, re.M).group(1))
        dropped = metrics_total("metrics2", "uart", "rate_limiter_dropped_bytes")
        print(f"serial: {flood} of 100 flood lines arrived, {dropped} bytes dropped")
        # (dropped bytes include newlines: it may share a line with a cut one)
        expect_output(j, r"^serial-end$", "the line after the bucket refilled arrived")
        expect(flood < 50, f"{flood} of 100 flood lines (100 bytes each) passed a "
                           f"{SERIAL_SIZE}-byte bucket")
        expect(dropped >= 100 * 100 - 2 * SERIAL_SIZE, f"only {dropped} bytes counted as dropped")
    return job("rl-devices", script, timeout=240,
               files={"initrd.cpio": initrd_with_tcpperf(ctx)}), check

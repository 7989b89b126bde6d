"""Rate limiters through a running guest: a drive's bandwidth bucket set with
PUT /drives, a guest's O_DIRECT dd held to it, changed by PATCH /drives in the
middle of the run, and the throttling counted in the metrics."""
import json
import re

from framework import expect, expect_output, guest_test, job
from test_api import API_HELPERS, b64, check_firecracker_metrics
from test_firecracker import put

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

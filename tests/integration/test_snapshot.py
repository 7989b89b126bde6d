"""Snapshots in real guests: a guest counting and appending to a file on
ext4 is snapshotted mid-work through the API, ember is killed, and the VM
restored (CLI and API) continues the count and leaves a consistent file;
two clones run at once from one snapshot; corrupt or mismatched snapshots
are refused before anything starts; a Diff snapshot merged onto its base
restores too."""
import base64
import os
import re
import subprocess

from framework import DEFAULT_CMDLINE, default_cmdline, expect, expect_output, guest_test, job, test_vcpus

# The guest counts to TARGET, appending each number to /mnt/log (synced),
# printing "count N UPTIME"; at the end it prints the log's checksum.
TARGET = 40
COUNTER = r'''
echo 10 > /proc/sys/kernel/hung_task_timeout_secs  # a stuck restore shows its trace
mount /dev/vda /mnt || exit 1
i=$(wc -l < /mnt/log 2>/dev/null || echo 0)
while [ $i -lt %d ]; do
    i=$((i+1)); echo $i >> /mnt/log; sync
    echo "count $i $(cut -d' ' -f1 /proc/uptime)"
    usleep 150000
done
echo "final $(md5sum < /mnt/log | cut -c1-32) $(wc -l < /mnt/log)"
umount /mnt
''' % TARGET

HELPERS = r'''
BB=busybox
# A restored guest that hangs must show up as a failure, not as a stalled job.
T="timeout -s KILL 90"

wait_for() { i=0; until grep -q "$1" "$2" 2>/dev/null; do
    i=$((i+1)); [ $i -gt 1200 ] && { echo "timed out waiting for $1 in $2; its end:";
        tail -15 "$2" | sed 's/^/  > /'; return 1; }
    $BB usleep 100000; done; }
api() { curl -s -S --max-time 60 --unix-socket "$SOCK" -w ' [%{http_code}]\n' "$@"; }
wait_socket() { i=0; until api http://x/ >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "no API socket"; return 1; }; $BB usleep 50000; done; }
'''


def b64(text):
    return base64.b64encode(text.encode()).decode()


def ext4_image(ctx, name="fs.img"):
    path = os.path.join(ctx.prep_dir, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.truncate(16 << 20)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", path], check=True)
    return path


def boot_vm(sock, extra_machine=""):
    """Shell: start ember with an API and boot the counter guest."""
    boot_args = f"{default_cmdline()} ember_cmd={b64(COUNTER)}"
    return (
        f'SOCK={sock}\n'
        '"$EMBER" --api-sock $SOCK < /dev/null > vm.txt 2>&1 & vm=$!\n'
        "wait_socket\n"
        "api -X PUT http://x/boot-source -d \"{\\\"kernel_image_path\\\": \\\"$GUEST/vmlinuz\\\", "
        "\\\"initrd_path\\\": \\\"$GUEST/initramfs.cpio\\\", "
        f"\\\"boot_args\\\": \\\"{boot_args}\\\"}}\" > /dev/null\n"
        "api -X PUT http://x/machine-config -d \"{\\\"vcpu_count\\\": ${EMBER_VCPUS:-2}, "
        f"\\\"mem_size_mib\\\": 256{extra_machine.replace(chr(34), chr(92) + chr(34))}}}\" "
        "| sed 's/^/machine /'\n"
        "api -X PUT http://x/drives/data -d \"{\\\"drive_id\\\": \\\"data\\\", "
        "\\\"path_on_host\\\": \\\"$DATA/disk.img\\\", \\\"is_root_device\\\": false}\" "
        "| sed 's/^/drive /'\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"InstanceStart\"}' "
        "| sed 's/^/start /'\n")


def check_log(out, label, target=TARGET):
    """The restored run continued the count and the file holds 1..target."""
    import hashlib
    final = re.search(r"^final ([0-9a-f]{32}) (\d+)$", out, re.M)
    expect(final, f"{label}: the guest never finished counting")
    want = hashlib.md5("".join(f"{i}\n" for i in range(1, target + 1)).encode()).hexdigest()
    expect(final.group(1) == want and int(final.group(2)) == target,
           f"{label}: the log on the disk is not 1..{target} (lines: {final.group(2)})")


def expect_resumed(text, label, last):
    """A restored VM's section: ember exited 0, the guest continued (no new
    boot) from the count 'last' it had reached, to TARGET without a gap.
    Returns its counts."""
    expect(re.search(r"^rc 0$", text, re.M), f"{label}: ember did not exit 0:\n"
                                              f"{not_counts(text)}")
    expect("ember-guest: init started" not in text,
           f"{label}: the guest booted again instead of continuing")
    got = counts(text, resumed=True)
    expect(got and last <= got[0][0] <= last + 1,
           f"{label}: counting resumed at {got[0][0] if got else None}, the "
           f"snapshot was taken after {last}")
    expect([n for n, _ in got] == list(range(got[0][0], TARGET + 1)),
           f"{label}: the count skipped or repeated")
    return got


def counts(out, resumed=False):
    """The 'count N UPTIME' lines. 'resumed': 'out' is a restored VM's, whose
    first line may be the end of one the guest had begun before the snapshot
    (the start went to the first VMM's output)."""
    got = [(int(n), float(u)) for n, u in re.findall(r"^count (\d+) ([\d.]+)$", out, re.M)]
    for line in out.splitlines() if resumed else []:
        if line.startswith("count "):
            break
        m = re.fullmatch(r"(?:ount|unt|nt|t)? ?(\d+) ([\d.]+)", line)
        if m:
            return [(int(m.group(1)), float(m.group(2)))] + got
    return got


def not_counts(text):
    """Output without the count lines but the last, for failure messages."""
    lines = text.splitlines()
    last = [ln for ln in lines if ln.startswith("count ")][-1:]
    return "\n".join([ln for ln in lines if not ln.startswith("count ")][-60:] + last)


def section(output, name):
    m = re.search(rf"^=== {name}\n(.*?)(?=^=== |\Z)", output, re.M | re.S)
    return m.group(1) if m else ""


@guest_test("snapshot mid-work, kill -9, restore: the count and the file go on; two clones "
            "at once; corrupt snapshots refused", batch="snapshot", mmio=True, backend="both")
def snapshot_restore(ctx):
    script = HELPERS + boot_vm("$DATA/api.sock") + (
        "wait_for '^count 15 ' vm.txt\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}' | sed 's/^/pause /'\n"
        "api -X PUT http://x/snapshot/create -d \"{\\\"snapshot_type\\\": \\\"Full\\\", "
        "\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_file_path\\\": \\\"$DATA/snap.mem\\\"}\" | sed 's/^/create /'\n"
        "kill -9 $vm; wait $vm 2>/dev/null\n"
        "last=$(grep '^count' vm.txt | tail -1)\n"
        'echo "=== before"; echo "$last"\n'
        'ls -ls snap.state snap.mem | awk \'{print "file", $10, $6, $1 * 1024}\'\n'
        "cp disk.img disk1.img; cp disk.img disk2.img; cp disk.img disk3.img\n"
        # The CLI restore, running on.
        '$T "$EMBER" restore --snapshot snap.state --mem snap.mem --disk data=$DATA/disk1.img '
        '< /dev/null > r1.txt 2>&1; echo "rc $?" >> r1.txt\n'
        'echo "=== restore"; cat r1.txt\n'
        # Two clones at once, from the same files, each with its own disk.
        '$T "$EMBER" restore --snapshot snap.state --mem snap.mem --disk vda=$DATA/disk2.img '
        '< /dev/null > c2.txt 2>&1 & c2=$!\n'
        '$T "$EMBER" restore --snapshot snap.state --mem snap.mem --disk data=$DATA/disk3.img '
        '< /dev/null > c3.txt 2>&1 & c3=$!\n'
        'wait $c2; echo "rc $?" >> c2.txt; wait $c3; echo "rc $?" >> c3.txt\n'
        'echo "=== clone2"; cat c2.txt; echo "=== clone3"; cat c3.txt\n'
        # Corrupt and mismatched snapshots.
        'try() { $T "$EMBER" restore --snapshot "$1" --mem "$2" --disk data=$DATA/disk.img '
        '< /dev/null > t.txt 2>&1; echo "rc $? $(grep -c ember-guest t.txt) $(tail -1 t.txt)"; }\n'
        'echo "=== corrupt"\n'
        'size=$(wc -c < snap.state)\n'
        'head -c $((size / 2)) snap.state > half.state; try half.state snap.mem\n'
        'cp snap.state flip.state; printf "\\377" | dd of=flip.state bs=1 seek=$((size / 2)) '
        'conv=notrunc 2>/dev/null; try flip.state snap.mem\n'
        'cp snap.state ver.state; printf "\\002" | dd of=ver.state bs=1 seek=8 conv=notrunc '
        '2>/dev/null; try ver.state snap.mem\n'
        'cp snap.state tail.state; echo junk >> tail.state; try tail.state snap.mem\n'
        'head -c 1048576 snap.mem > short.mem; try snap.state short.mem\n'
        'try snap.state /nonexistent.mem\n'
        'try disk.img snap.mem\n'
        # Through the API: a machine configuration that does not match, then a load
        # that resumes, and boot resources before a load.
        'SOCK=$DATA/api2.sock\n'
        '$T "$EMBER" --api-sock $SOCK < /dev/null > a2.txt 2>&1 & a2=$!\n'
        "wait_socket\n"
        "api -X PUT http://x/machine-config -d \"{\\\"vcpu_count\\\": $((3 - ${EMBER_VCPUS:-2})), "
        "\\\"mem_size_mib\\\": 256}\" >/dev/null\n"
        "api -X PUT http://x/snapshot/load -d \"{\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_backend\\\": {\\\"backend_type\\\": \\\"File\\\", "
        "\\\"backend_path\\\": \\\"$DATA/snap.mem\\\"}}\" | sed 's/^/api-mismatch /'\n"
        "api -X PUT http://x/machine-config -d \"{\\\"vcpu_count\\\": ${EMBER_VCPUS:-2}, "
        "\\\"mem_size_mib\\\": 256}\" >/dev/null\n"
        "cp disk.img disk4.img\n"
        "api -X PUT http://x/snapshot/load -d \"{\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_backend\\\": {\\\"backend_type\\\": \\\"File\\\", "
        "\\\"backend_path\\\": \\\"$DATA/snap.mem\\\"}, \\\"resume_vm\\\": false, "
        "\\\"drive_overrides\\\": [{\\\"drive_id\\\": \\\"data\\\", "
        "\\\"path_on_host\\\": \\\"$DATA/disk4.img\\\"}]}\" | sed 's/^/api-load /'\n"
        'echo "api-state $(api http://x/)"\n'
        "api -X PATCH http://x/vm -d '{\"state\": \"Resumed\"}' | sed 's/^/api-resume /'\n"
        'wait $a2; echo "rc $?" >> a2.txt\n'
        'echo "=== api"; cat a2.txt\n')

    def check(j):
        out = j.output
        expect_output(j, r"^machine  \[204\]$", "204 for machine-config")
        expect_output(j, r"^pause  \[204\]$", "204 for the pause")
        expect_output(j, r"^create  \[204\]$", "204 for snapshot/create")
        before = counts(section(out, "before"))
        expect(before, "no count before the snapshot")
        last = before[-1][0]
        files = dict(re.findall(r"^file (\S+) (\d+) \d+$", out, re.M))
        expect(int(files.get("snap.mem", 0)) == 256 << 20, f"memory file size: {files}")
        for label in ("restore", "clone2", "clone3", "api"):
            text = section(out, label)
            got = expect_resumed(text, label, last)
            expect(got[0][1] >= before[-1][1],
                   f"{label}: the guest's uptime went backwards ({before[-1][1]} -> "
                   f"{got[0][1]})")
            check_log(text, label)
        corrupt = re.findall(r"^rc (\d+) (\d+) (.*)$", section(out, "corrupt"), re.M)
        wanted = [r"truncated", r"checksum mismatch", r"format version 2; this ember reads "
                  r"version 1", r"unexpected data after the snapshot",
                  r"short\.mem: 1048576 bytes, the snapshot's guest has 268435456",
                  r"/nonexistent\.mem: No such file", r"not an ember snapshot state file"]
        expect(len(corrupt) == len(wanted), f"corruption cases: {corrupt}")
        for (rc, booted, msg), pattern in zip(corrupt, wanted):
            expect(rc == "2" and booted == "0" and re.search(pattern, msg),
                   f"corrupt snapshot: exit {rc}, guest lines {booted}, message {msg!r}; "
                   f"expected exit 2 and /{pattern}/")
        v = test_vcpus()
        expect_output(j, rf"^api-mismatch .*snapshot is of a machine with {v} vCPUs, not {3 - v}.*"
                         r" \[400\]$", "400 for a vCPU count that does not match")
        expect_output(j, r"^api-load  \[204\]$", "204 for snapshot/load")
        expect_output(j, r'^api-state \{.*"state":"Paused".*\}', "Paused after a load "
                                                                 "without resume_vm")
        expect_output(j, r"^api-resume  \[204\]$", "204 for the resume")
    files = {"disk.img": ext4_image(ctx)}
    return job("snapshot", script, timeout=200, files=files), check


@guest_test("ember snapshot (CLI), then a Diff: only dirtied pages written, merged onto its "
            "Full base, restored and the count goes on", batch="snapshot", backend="both")
def snapshot_diff(ctx):
    script = HELPERS + boot_vm("$DATA/api.sock", ', "track_dirty_pages": true') + (
        "wait_for '^count 8 ' vm.txt\n"
        # The CLI client: pauses the running VM, snapshots, resumes it.
        '"$EMBER" snapshot --api-sock $SOCK --snapshot $DATA/base.state --mem $DATA/base.mem; '
        'echo "create-full rc $?"\n'
        'echo "after-full $(api http://x/)"\n'
        "wait_for '^count 20 ' vm.txt\n"
        '"$EMBER" snapshot --api-sock $SOCK --snapshot $DATA/diff.state --mem $DATA/diff.mem '
        '--diff --keep-paused; echo "create-diff rc $?"\n'
        'echo "after-diff $(api http://x/)"\n'
        "kill -9 $vm; wait $vm 2>/dev/null\n"
        'echo "=== before"; grep "^count" vm.txt | tail -1\n'
        'ls -ls base.mem diff.mem | awk \'{print "file", $10, $6, $1 * 1024}\'\n'
        # A Diff alone is not a memory image: merging onto a Full base makes one.
        'try() { $T "$EMBER" "$@" < /dev/null > t.txt 2>&1; echo "rc $? $(tail -1 t.txt)"; }\n'
        'echo "=== misuse"\n'
        'cp base.mem merged.mem\n'
        'try merge-memory --snapshot base.state --mem base.mem --base merged.mem\n'
        'try merge-memory --snapshot diff.state --mem diff.mem --base short.mem\n'
        'echo "=== merge"\n'
        'try merge-memory --snapshot diff.state --mem diff.mem --base merged.mem\n'
        'cp disk.img disk1.img\n'
        '$T "$EMBER" restore --snapshot diff.state --mem merged.mem --disk data=$DATA/disk1.img '
        '< /dev/null > r1.txt 2>&1; echo "rc $?" >> r1.txt\n'
        'echo "=== restore"; cat r1.txt\n')

    def check(j):
        out = j.output
        expect_output(j, r"^machine  \[204\]$", "204 for machine-config with track_dirty_pages")
        expect_output(j, r"^create-full rc 0$", "ember snapshot (Full) succeeded")
        expect_output(j, r'^after-full \{.*"state":"Running".*\}', "Running again after "
                                                                   "ember snapshot")
        expect_output(j, r"^create-diff rc 0$", "ember snapshot --diff succeeded")
        expect_output(j, r'^after-diff \{.*"state":"Paused".*\}', "still Paused after "
                                                                  "--keep-paused")
        before = counts(section(out, "before"))
        expect(before, "no count before the Diff snapshot")
        files = {name: (int(size), int(used)) for name, size, used in
                 re.findall(r"^file (\S+) (\d+) (\d+)$", out, re.M)}
        expect(files.get("diff.mem", (0, 0))[0] == 256 << 20, f"diff memory file: {files}")
        # The guest ran ~12 counts between the snapshots: far less than its memory.
        expect(files["diff.mem"][1] < files["base.mem"][1],
               f"the Diff wrote as much as the Full: {files}")
        misuse = re.findall(r"^rc (\d+) (.*)$", section(out, "misuse"), re.M)
        expect(len(misuse) == 2 and all(rc == "2" for rc, _ in misuse) and
               "is a Full snapshot, not a Diff" in misuse[0][1] and
               "short.mem" in misuse[1][1], f"merge misuse not refused clearly: {misuse}")
        expect(re.search(r"^rc 0 ", section(out, "merge"), re.M), "merge-memory failed: "
               + section(out, "merge"))
        text = section(out, "restore")
        expect(re.search(r"^rc 0$", text, re.M), f"restore: ember did not exit 0:\n"
                                                  f"{not_counts(text)}")
        got = counts(text, resumed=True)
        last = before[-1][0]
        expect(got and last <= got[0][0] <= last + 1,
               f"counting resumed at {got[0][0] if got else None}, the Diff was taken after "
               f"{last}")
        expect([n for n, _ in got] == list(range(got[0][0], TARGET + 1)),
               "the count skipped or repeated")
        check_log(text, "diff restore")
    files = {"disk.img": ext4_image(ctx)}
    return job("snapshot-diff", script, timeout=200, files=files), check

"""The Uffd snapshot-memory backend with the example page-fault handler
(tests/tools/uffd_handler): the counter guest of test_snapshot.py is
snapshotted mid-work and restored through the handler, from the CLI
(--mem-uffd) and the API (mem_backend Uffd), and as two clones at once from
one handler; each continues the count exactly as the File backend does,
and the balloon inflated after the API's restore reaches the handler as
UFFD_EVENT_REMOVE.
Then the handler's failures: one that exits mid-run, one that serves a wrong
page size (so every fault stays unserved), one that writes garbage on its
socket, one that closes its socket and serves on (not a failure), and no
handler at all; the watcher thread's own seccomp filter."""
import os
import re

from framework import expect, guest_test, job
from test_snapshot import (HELPERS, TARGET, boot_vm, check_log, counts, expect_resumed, ext4_image,
                           not_counts, section)

RESTORE = ('$T "$EMBER" restore --snapshot snap.state --mem-uffd $DATA/{sock} '
           '--disk data=$DATA/{disk} < /dev/null > {out} 2>&1')


def handler(sock, log, extra=""):
    """Shell: start the example handler on $DATA/sock; $h is its pid."""
    return (f'"$DATA/uffd_handler" $DATA/{sock} snap.mem {extra} > {log} 2>&1 & h=$!\n'
            f'i=0; until [ -S $DATA/{sock} ] || [ $i -gt 250 ]; do i=$((i+1)); '
            f'$BB usleep 20000; done\n')


@guest_test("Uffd backend: restore through the example handler (CLI and API) goes on "
            "like File; two clones from one handler; balloon pages removed; a handler that exits, serves a "
            "wrong page size or writes garbage; no handler", batch="snapshot")
def uffd_restore(ctx):
    # A balloon in the snapshot: inflated after the API's restore, its pages
    # reach the handler as UFFD_EVENT_REMOVE.
    boot = boot_vm("$DATA/api.sock").replace(
        "api -X PUT http://x/actions",
        "api -X PUT http://x/balloon -d '{\"amount_mib\": 0, \"deflate_on_oom\": false}' "
        "| sed 's/^/balloon /'\napi -X PUT http://x/actions")
    script = HELPERS + 'chmod +x "$DATA/uffd_handler"\n' + boot + (
        "wait_for '^count 15 ' vm.txt\n"
        "api -X PATCH http://x/vm -d '{\"state\": \"Paused\"}' | sed 's/^/pause /'\n"
        "api -X PUT http://x/snapshot/create -d \"{\\\"snapshot_type\\\": \\\"Full\\\", "
        "\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_file_path\\\": \\\"$DATA/snap.mem\\\"}\" | sed 's/^/create /'\n"
        "kill -9 $vm; wait $vm 2>/dev/null\n"
        'echo "=== before"; grep "^count" vm.txt | tail -1\n'
        "for i in 1 2 3 4 5; do cp disk.img disk$i.img; done\n"
        # One handler serves the CLI restore, then two clones at once.
        + handler("h.sock", "h.txt") +
        RESTORE.format(sock="h.sock", disk="disk1.img", out="r1.txt") +
        '; echo "rc $?" >> r1.txt\n'
        + RESTORE.format(sock="h.sock", disk="disk2.img", out="c2.txt") + ' & c2=$!\n'
        + RESTORE.format(sock="h.sock", disk="disk3.img", out="c3.txt") + ' & c3=$!\n'
        'wait $c2; echo "rc $?" >> c2.txt; wait $c3; echo "rc $?" >> c3.txt\n'
        # Through the API, the same handler still serving.
        'SOCK=$DATA/api2.sock\n'
        '$T "$EMBER" --api-sock $SOCK < /dev/null > a.txt 2>&1 & a=$!\n'
        "wait_socket\n"
        "api -X PUT http://x/snapshot/load -d \"{\\\"snapshot_path\\\": \\\"$DATA/snap.state\\\", "
        "\\\"mem_backend\\\": {\\\"backend_type\\\": \\\"Uffd\\\", "
        "\\\"backend_path\\\": \\\"$DATA/h.sock\\\"}, \\\"resume_vm\\\": true, "
        "\\\"drive_overrides\\\": [{\\\"drive_id\\\": \\\"data\\\", "
        "\\\"path_on_host\\\": \\\"$DATA/disk4.img\\\"}]}\" | sed 's/^/api-load /'\n"
        "api -X PATCH http://x/balloon -d '{\"amount_mib\": 32}' | sed 's/^/api-balloon /'\n"
        'wait $a; echo "rc $?" >> a.txt\n'
        'kill $h; wait $h 2>/dev/null\n'
        'for f in r1 c2 c3 a; do echo "=== $f"; cat $f.txt; done\n'
        'echo "=== handler"; cat h.txt\n'
        # A handler that exits after 300 pages: ember stops with a message.
        + handler("x.sock", "x.txt", "--exit-after 300")
        + RESTORE.format(sock="x.sock", disk="disk5.img", out="x-vm.txt") +
        '; echo "rc $?" >> x-vm.txt; wait $h\n'
        'echo "=== exits"; cat x.txt x-vm.txt\n'
        # Every copy fails (1 KiB pages): faults stay waiting, ember stops.
        + handler("p.sock", "p.txt", "--page-size 1024")
        + RESTORE.format(sock="p.sock", disk="disk5.img", out="p-vm.txt") +
        '; echo "rc $?" >> p-vm.txt; kill $h; wait $h 2>/dev/null\n'
        'echo "=== pagesize"; head -3 p.txt; cat p-vm.txt\n'
        # Garbage on the socket is ignored: the guest goes on.
        + handler("g.sock", "g.txt", "--garbage")
        + 'cp disk.img disk5.img\n'
        + RESTORE.format(sock="g.sock", disk="disk5.img", out="g-vm.txt") +
        '; echo "rc $?" >> g-vm.txt; kill $h; wait $h 2>/dev/null\n'
        'echo "=== garbage"; cat g-vm.txt\n'
        # A handler that closes the connection and serves on: not gone.
        + handler("k.sock", "k.txt", "--close-socket") + 'cp disk.img disk5.img\n'
        + RESTORE.format(sock="k.sock", disk="disk5.img", out="k-vm.txt").replace(
            "restore", "restore -v") +
        '; echo "rc $?" >> k-vm.txt; kill $h; wait $h 2>/dev/null\n'
        'echo "=== closed"; grep -v "^\\[" k-vm.txt\n'
        + handler("s.sock", "s.txt")
        # The watcher thread has a seccomp filter of its own.
        + RESTORE.format(sock="s.sock", disk="disk5.img", out="s-vm.txt").replace(
            "restore", "restore --seccomp-selftest uffd") +
        '; echo "rc $?" >> s-vm.txt; kill $h; wait $h 2>/dev/null\n'
        'echo "=== seccomp"; cat s-vm.txt\n'
        # Nobody listening.
        + RESTORE.format(sock="none.sock", disk="disk5.img", out="n-vm.txt") +
        '; echo "rc $?" >> n-vm.txt\n'
        'echo "=== none"; cat n-vm.txt\n')

    def check(j):
        out = j.output
        expect(re.search(r"^create  \[204\]$", out, re.M), "snapshot/create failed:\n"
               + out[-3000:])
        before = counts(section(out, "before"))
        expect(before, "no count before the snapshot")
        last = before[-1][0]
        for label in ("r1", "c2", "c3", "a"):
            text = section(out, label)
            expect_resumed(text, label, last)
            check_log(text, label)
        expect(re.search(r"^api-load  \[204\]$", out, re.M), "204 for the Uffd snapshot/load")
        expect(re.search(r"^balloon  \[204\]$", out, re.M) and
               re.search(r"^api-balloon  \[204\]$", out, re.M), "204 for the balloon's PUT "
               "before the snapshot and PATCH after the Uffd load")
        hs = section(out, "handler")
        # Firecracker's message, one per VM: four VMs came to the one handler.
        msgs = re.findall(r"^uffd_handler: vm (\d): 1 regions, 4096-byte pages: "
                          r'\[\{"base_host_virt_addr":\d+,"size":268435456,"offset":0,'
                          r'"page_size":4096,"page_size_kib":4096\}\]$', hs, re.M)
        expect(msgs == ["1", "2", "3", "4"], f"handshakes seen by the handler:\n{hs}")
        firsts = [int(n) for n in re.findall(
            r"^uffd_handler: vm \d: (\d+) pages in the first second$", hs, re.M)]
        expect(len(firsts) == 4 and all(n > 0 for n in firsts),
               f"pages served in each VM's first second: {firsts}\n{hs}")
        removed = dict(re.findall(r"^uffd_handler: vm (\d): gone after \d+ pages; (\d+) pages "
                                  r"removed$", hs, re.M))
        expect(len(removed) == 4 and int(removed.get("4", 0)) > 0 and
               all(removed.get(k) == "0" for k in "123"),
               f"the balloon's pages should reach the handler as UFFD_EVENT_REMOVE for the "
               f"API's VM (vm 4) only: {removed}\n{hs}")
        ex = section(out, "exits")
        expect(re.search(r"^rc 1$", ex, re.M) and re.search(
            r"uffd: the page-fault handler at \S+x\.sock \(pid \d+\) exited; guest memory it "
            r"has not served can never be filled: ember stops", ex),
            f"a handler that exits: expected exit 1 and the message:\n{ex[-2000:]}")
        ps = section(out, "pagesize")
        expect(re.search(r"^rc 1$", ps, re.M) and re.search(
            r"has left page faults waiting, serving no page, for 10 s", ps),
            f"a handler serving a wrong page size: expected exit 1 and the stall "
            f"message:\n{ps[-2000:]}")
        ga = section(out, "garbage")
        expect(re.search(r"^rc 0$", ga, re.M) and counts(ga) and counts(ga)[-1][0] == TARGET,
               f"garbage from the handler: the guest should have gone on:\n{not_counts(ga)}")
        expect("the protocol has no messages from the handler: ignored" in ga,
               "garbage from the handler: no warning")
        cl = section(out, "closed")
        expect(re.search(r"^rc 0$", cl, re.M) and counts(cl) and counts(cl)[-1][0] == TARGET
               and "the page-fault handler closed its socket; its process (pid" in cl,
               f"a handler that closes its socket and serves on: the guest should have gone "
               f"on, with an info line:\n{not_counts(cl)}")
        sc = section(out, "seccomp")
        expect(re.search(r"^rc 148$", sc, re.M) and "ember: seccomp: the uffd thread made a "
               "forbidden system call: personality (135)" in sc,
               f"--seccomp-selftest uffd: expected exit 148 and the line:\n{sc[-1500:]}")
        no = section(out, "none")
        expect(re.search(r"^rc 2$", no, re.M) and "cannot connect to the page-fault "
               "handler's socket" in no, f"no handler: expected exit 2 and a message:\n{no}")

    files = {"disk.img": ext4_image(ctx),
             "uffd_handler": os.path.join(ctx.build, "tools", "uffd_handler")}
    return job("uffd", script, timeout=300, files=files), check

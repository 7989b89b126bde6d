"""virtio-fs beyond the basics: a guest that knows thousands of files (no
FORGET) keeps ember's descriptors bounded (node descriptors closed least
recently used first and reopened by name); a VM with a share survives a
snapshot, kill -9 and restore: its open file and the files it knew work on;
and tests/tools/fsexercise checks POSIX semantics from the guest on a
read-write share and a read-only one."""
import os
import re

from framework import (expect, expect_output, expect_no_output, guest_test, guest_cmdline,
                       initrd_with_tool, job)
from test_balloon import API_HELPERS

MANY = 3000
GUEST_MANY = r'''
mkdir -p /mnt/s && mount -t virtiofs many /mnt/s && echo mounted
cd /mnt/s && mkdir d
i=0; while [ $i -lt %d ]; do echo $i > d/f$i; i=$((i+1)); done
echo "created $(ls d | wc -l)"
i=0; bad=0; while [ $i -lt %d ]; do read v < d/f$i; [ "$v" = $i ] || bad=$((bad+1)); i=$((i+1)); done
echo "read back bad=$bad"
echo many-done
sleep 600
''' % (MANY, MANY)


@guest_test("virtio-fs: a guest knowing 3000 files (no FORGET) under ulimit -n 1024 reads "
            "them all back; ember's descriptors stay bounded (LRU-closed node descriptors)",
            batch="virtiofs")
def virtiofs_many_files():
    script = API_HELPERS + (
        "mkdir -p share\n"
        # A hard limit of 1024: the share gets 384 node descriptors.
        f"(ulimit -n 1024; ulimit -Hn 1024; exec \"$EMBER\" run --share share,tag=many "
        f"--cmdline '{guest_cmdline(GUEST_MANY)}' < /dev/null > vm.txt 2>&1) & pid=$!\n"
        "wait_for '^many-done' vm.txt\n"
        'echo "ember-fds $(ls /proc/$pid/fd | wc -l)"\n'
        'echo "host-files $(ls share/d | wc -l)"\n'
        "kill $pid; wait $pid\n"
        "grep -E '^(mounted|created|read back|many-done)|EMFILE|ENFILE|Too many|error' vm.txt\n")

    def check(j):
        expect_output(j, r"^mounted$", "the share mounted")
        expect_output(j, rf"^created {MANY}$", f"{MANY} files created")
        expect_output(j, r"^read back bad=0$", "every file read back with its content")
        expect_output(j, rf"^host-files {MANY}$", "the files on the host")
        m = re.search(r"^ember-fds (\d+)$", j.output, re.M)
        expect(m, "ember's descriptors not counted")
        expect(int(m.group(1)) < 512, f"ember holds {m.group(1)} descriptors for a guest "
                                      f"knowing {MANY} files (384 node descriptors allowed)")
        expect_no_output(j, r"Too many open files|EMFILE|ENFILE", "descriptors ran out")
    return job("manyfiles", script, timeout=400), check


SNAP_GUEST = r'''
mkdir -p /mnt/s && mount -t virtiofs work /mnt/s && echo mounted
cd /mnt/s
mkdir -p sub && echo early > sub/early
exec 3>>/mnt/s/log
i=0; while [ $i -lt 40 ]; do
    i=$((i+1)); echo $i >&3; echo $i > sub/f$i; read v < sub/f$i
    echo "count $i $v"; usleep 150000
done
exec 3>&-
read e < sub/early
echo "after files=$(ls sub | wc -l) log=$(wc -l < log) early=$e"
mv sub/f1 sub/renamed && echo more >> sub/renamed && echo "renamed $(cat sub/renamed | wc -l)"
cd / && umount /mnt/s && echo unmounted
'''


@guest_test("virtio-fs snapshot: a guest writing to a share (a file held open, files made and "
            "read back) is snapshotted, killed and restored; it goes on reading and writing",
            batch="virtiofs", mmio=True)
def virtiofs_snapshot():
    script = API_HELPERS + (
        "mkdir -p share\n"
        f"\"$EMBER\" run --share share,tag=work --api-sock api.sock "
        f"--cmdline '{guest_cmdline(SNAP_GUEST)}' < /dev/null > vm.txt 2>&1 & pid=$!\n"
        "wait_for '^count 12 ' vm.txt\n"
        '"$EMBER" snapshot --api-sock api.sock --snapshot s.state --mem s.mem 2>&1 '
        "| sed 's/^/snap /'\n"
        "kill -9 $pid; wait $pid 2>/dev/null\n"
        'echo "last $(grep "^count" vm.txt | tail -1)"\n'
        'mkdir -p elsewhere && cd elsewhere\n'
        'timeout -s KILL 200 "$EMBER" restore --snapshot ../s.state --mem ../s.mem < /dev/null '
        '> ../r.txt 2>&1; echo "restore rc=$?"\n'
        "cd ..\n"
        "sed 's/^/R: /' r.txt | grep -v '^R: count' | tail -20\n"
        'grep "^count" r.txt | head -1 | sed "s/^/first-restored /"\n'
        'echo "host-log $(tr "\\n" " " < share/log)"\n'
        'echo "host-files $(ls share/sub | wc -l)"\n'
        # The directory swapped for a copy: refused.
        "mv share share.orig && cp -a share.orig share\n"
        'timeout -s KILL 60 "$EMBER" restore --snapshot s.state --mem s.mem < /dev/null '
        '> r2.txt 2>&1; echo "copy rc=$?"; tail -2 r2.txt | sed "s/^/copy /"\n')

    def check(j):
        expect_output(j, r"^restore rc=0$", "the restored VM ran to its end")
        last = re.search(r"^last count (\d+) ", j.output, re.M)
        first = re.search(r"^first-restored count (\d+) (\d+)$", j.output, re.M)
        expect(last and first, "no counts before and after the restore")
        expect(int(last.group(1)) <= int(first.group(1)) <= int(last.group(1)) + 1,
               f"the restored guest started at {first.group(1)}, the snapshot was after "
               f"{last.group(1)}")
        expect(first.group(1) == first.group(2), "a file written after the restore read back")
        expect_output(j, r"^R: after files=41 log=40 early=early$",
                      "the guest's files, open log and early file after the restore")
        expect_output(j, r"^R: renamed 2$", "a rename and an append after the restore")
        expect_output(j, r"^R: unmounted$", "the share unmounted")
        want = " ".join(str(i) for i in range(1, 41))
        expect_output(j, rf"^host-log {want} $", "the open file's appends, each once")
        expect_output(j, r"^host-files 41$", "the files on the host")
        expect_output(j, r"^copy .*not the one snapshotted", "a copy of the directory refused")
        expect_no_output(j, r"^copy rc=0$", "a restore on a copy ran")
    return job("fssnap", script, timeout=400), check


FSX_CHECKS = ["create-write-read", "rename", "links", "unlinked-open-file", "append", "truncate",
              "fallocate", "seek-data-hole", "xattrs", "mkdir-rmdir", "readdir-many",
              "permissions-times", "mmap-fsync-copy", "big-file"]
FSX_GUEST = r'''
mkdir -p /mnt/rw /mnt/ro
mount -t virtiofs rw /mnt/rw && mount -t virtiofs ro /mnt/ro && echo mounted
fsexercise -n 10000 -b 256 /mnt/rw; echo "rw rc=$?"
fsexercise --ro /mnt/ro; echo "ro rc=$?"
mkdir -p /mnt/direct && mount -t virtiofs direct /mnt/direct && cd /mnt/direct &&
echo "direct-1m $(dd if=data bs=1M 2>/dev/null | md5sum | cut -c1-32)" &&
echo "direct-odd $(dd if=data bs=1000000 2>/dev/null | md5sum | cut -c1-32)" &&
dd if=data of=copy bs=1M 2>/dev/null && echo "direct-copied" && cd /
'''


@guest_test("virtio-fs: fsexercise in the guest (create/rename/links/unlinked open file/"
            "O_APPEND/truncate/fallocate/SEEK_DATA+HOLE/xattrs/ENOTEMPTY/10k entries/"
            "permissions/mmap/fsync/copy_file_range/256 MiB checksum) on a read-write share; "
            "EROFS for every change on a read-only one; a cache=never share's 50 MB file read "
            "in 1 MiB and 1000000-byte blocks and copied, md5 checked", batch="virtiofs", mmio=True)
def virtiofs_fsexercise(ctx):
    script = (
        "mkdir -p rw ro/sub direct && echo kept > ro/keep.txt\n"
        # cache=never: the guest's 1 MiB read()s are 1 MiB READs, which two
        # workers copy half each; a 1000000-byte read() starts mid-page
        "head -c 50000000 /dev/urandom > direct/data\n"
        'echo "host-data $(md5sum < direct/data | cut -c1-32)"\n'
        f'"$EMBER" run --initrd "$DATA/initrd.cpio" --share rw,tag=rw --share ro,tag=ro,ro '
        "--share direct,tag=direct,cache=never "
        f"--cmdline '{guest_cmdline(FSX_GUEST)}' < /dev/null > vm.txt 2>&1; "
        'echo "ember rc=$?"\n'
        "grep -E '^(ok|FAIL|fsexercise|big-file|mounted|rw rc|ro rc|direct)' vm.txt\n"
        'echo "host-copy $(md5sum < direct/copy | cut -c1-32)"\n'
        'echo "host-rw-left $(ls -A rw | wc -l)"\n'
        'echo "host-ro $(ls -A ro | tr "\\n" " ")$(cat ro/keep.txt)"\n')

    def check(j):
        expect_output(j, r"^mounted$", "both shares mounted")
        for name in FSX_CHECKS + ["ro-reads", "ro-writes-erofs"]:
            expect_output(j, rf"^ok {re.escape(name)}$", f"fsexercise's check {name}")
        expect_no_output(j, r"^FAIL ", "a failed fsexercise check")
        expect_output(j, r"^rw rc=0$", "fsexercise on the read-write share")
        expect_output(j, r"^ro rc=0$", "fsexercise on the read-only share")
        expect_output(j, r"^big-file 256 MiB checksum [0-9a-f]{16}$", "the 256 MiB file")
        expect_output(j, r"^host-rw-left 0$", "fsexercise cleaned up after itself")
        expect_output(j, r"^host-ro keep.txt sub kept$", "the read-only share unchanged")
        data = re.search(r"^host-data ([0-9a-f]{32})$", j.output, re.M)
        expect(data, "the host's 50 MB file made")
        if data:
            for line, what in [("direct-1m", "read in 1 MiB blocks with cache=never"),
                               ("direct-odd", "read in 1000000-byte blocks with cache=never"),
                               ("host-copy", "copied in 1 MiB blocks with cache=never")]:
                expect_output(j, rf"^{line} {data.group(1)}$", f"the file {what}, same md5")
    return job("fsexercise", script, timeout=600,
               files={"initrd.cpio": initrd_with_tool(ctx, "fsexercise")}), check

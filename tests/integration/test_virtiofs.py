"""virtio-fs: a host directory shared with the guest (--share), mounted with
'mount -t virtiofs TAG'; what the guest creates, renames, links and writes is
checked from the host, and its escape attempts (host symlinks pointing out
of the share, '..' chains, /proc/self/fd paths, hard links to outside files,
renames across the boundary) leave everything outside the share as it was.
A second, read-only share refuses every change."""
import os
import shlex
import subprocess

from framework import (TestSkipped, default_cmdline, expect, expect_ember_rc, expect_no_output,
                       host_test, expect_output, guest_test, job)
from test_api import b64

# Too long for the kernel's command line: the guest runs it from the
# read-only share, which it mounts first.
BOOT = "mkdir -p /mnt/ro && mount -t virtiofs keep /mnt/ro && echo 'mounted keep' && " \
       "sh /mnt/ro/test.sh"
GUEST = r'''
mkdir -p /mnt/s
mount -t virtiofs work /mnt/s && echo "mounted work"
cd /mnt/s
echo "host-file $(cat host.txt)"
echo guest-wrote > new.txt && mv new.txt renamed.txt && ln renamed.txt hard.txt
ln -s renamed.txt soft.txt
echo "soft $(cat soft.txt)"
mkdir dir && i=0 && while [ $i -lt 300 ]; do echo $i > dir/f$i; i=$((i+1)); done
echo "entries $(ls dir | wc -l)"
rm dir/f0 dir/f1 && echo "after-rm $(ls dir | wc -l)"
dd if=/dev/urandom of=big bs=1M count=6 2>/dev/null && md5sum big > big.md5 && sync
echo "big-guest $(md5sum big | cut -d' ' -f1)"
printf 0123456789 > trunc && truncate -s 4 trunc && echo "trunc $(cat trunc)"
echo "statfs $(stat -f -c %T /mnt/s)"
# Escapes: every one must fail or stay inside the guest's own namespace.
echo "esc-abs $(cat escape-abs 2>&1 | head -c 40)"
echo "esc-rel $(cat escape-rel 2>&1 | head -c 40)"
echo "esc-dir $(ls escape-dir/ 2>&1 | head -c 60)"
echo PWNED > escape-rel 2>/dev/null; echo PWNED > escape-abs 2>/dev/null
echo "dotdot $(cat /mnt/s/dir/../../s/../../../outside/secret 2>&1 | head -c 40)"
exec 5</mnt/s/host.txt
echo "procfd $(cat /proc/self/fd/5/../../outside/secret 2>&1 | head -c 40)"
ln /proc/self/fd/5 /mnt/s/fdlink 2>/dev/null && echo "fdlink made"
exec 5<&-
ln /etc/passwd /mnt/s/outside-hardlink 2>/dev/null && echo "outside hard link made"
mv /mnt/s/dir/f2 /tmp/ && mv /tmp/f2 /mnt/s/moved-back && echo "moved out and back"
ln -s /etc/passwd guestlink && echo "guestlink $(readlink guestlink)"
# The read-only share.
echo "ro-read $(cat /mnt/ro/keep.txt)"
touch /mnt/ro/new 2>&1 | head -1 | sed 's/^/ro-touch /'
echo x >> /mnt/ro/keep.txt 2>/dev/null || echo "ro-append refused"
rm /mnt/ro/keep.txt 2>/dev/null || echo "ro-rm refused"
cd / && umount /mnt/s && echo "unmounted"
'''


@guest_test("virtio-fs: the guest mounts a shared directory, creates, renames, links, "
            "truncates and writes files seen from the host; escapes through host symlinks, "
            "'..', /proc/self/fd and hard links reach nothing outside; a read-only share "
            "refuses every change", batch="virtiofs", mmio=True)
def virtiofs_share():
    cmdline = f"{default_cmdline()} ember_cmd={b64(BOOT)}"
    script = (
        "mkdir -p share keep outside\n"
        f"cat > keep/test.sh <<'EOF'\n{GUEST}EOF\n"
        "printf SECRET > outside/secret; touch -d '2020-01-01 00:00:00' outside/secret\n"
        "printf from-host > share/host.txt; printf kept > keep/keep.txt\n"
        'ln -s "$PWD/outside/secret" share/escape-abs\n'
        "ln -s ../outside/secret share/escape-rel\n"
        "ln -s ../outside share/escape-dir\n"
        "before=$(ls -la outside; stat -c '%Y %s' outside/secret; ls -a)\n"
        f'"$EMBER" run --share share,tag=work --share keep,tag=keep,ro '
        f"--cmdline '{cmdline}' < /dev/null; echo \"ember rc=$?\"\n"
        "after=$(ls -la outside; stat -c '%Y %s' outside/secret; ls -a)\n"
        '[ "$before" = "$after" ] && echo "outside unchanged"\n'
        'echo "host-secret $(cat outside/secret)"\n'
        'echo "host-renamed $(cat share/renamed.txt) links=$(stat -c %h share/hard.txt)"\n'
        'echo "host-soft $(readlink share/soft.txt)"\n'
        'echo "host-entries $(ls share/dir | wc -l)"\n'
        '(cd share && md5sum -c big.md5 >/dev/null 2>&1) && echo "host-big checksum ok"\n'
        'echo "host-trunc $(cat share/trunc) $(stat -c %s share/trunc)"\n'
        'echo "host-keep $(cat keep/keep.txt) $(ls keep | wc -l)"\n'
        'echo "host-guestlink $(readlink share/guestlink)"\n'
        '[ -e share/fdlink ] && echo "host: fdlink exists"\n'
        '[ -e share/outside-hardlink ] && echo "host: outside hard link exists"\n'
        'echo "host-escape-rel $(readlink share/escape-rel)"\n')

    def check(j):
        expect_ember_rc(j, 0)
        for line, what in [
            (r"^mounted work$", "the share mounted"),
            (r"^mounted keep$", "the read-only share mounted"),
            (r"^host-file from-host$", "the host's file read in the guest"),
            (r"^soft guest-wrote$", "a symlink made and followed in the guest"),
            (r"^entries 300$", "300 files in one directory"),
            (r"^after-rm 298$", "unlink"),
            (r"^trunc 0123$", "truncate"),
            (r"^statfs ", "statfs"),
            (r"^moved out and back$", "a rename across the boundary (a copy)"),
            (r"^ro-read kept$", "the read-only share read"),
            (r"^ro-touch .*Read-only file system", "EROFS on create"),
            (r"^ro-append refused$", "EROFS on write"),
            (r"^ro-rm refused$", "EROFS on unlink"),
            (r"^unmounted$", "unmounted cleanly"),
            (r"^outside unchanged$", "nothing outside the share changed"),
            (r"^host-secret SECRET$", "the outside file untouched"),
            (r"^host-renamed guest-wrote links=2$", "create, rename and hard link on the host"),
            (r"^host-soft renamed.txt$", "the guest's symlink on the host"),
            (r"^host-entries 297$", "the directory on the host"),
            (r"^host-big checksum ok$", "6 MiB written by the guest, checksum on the host"),
            (r"^host-trunc 0123 4$", "truncated on the host"),
            (r"^host-keep kept 2$", "the read-only share unchanged"),
            (r"^host-guestlink /etc/passwd$", "a guest's symlink stored, not followed"),
            (r"^host-escape-rel \.\./outside/secret$", "the host's symlink still a symlink"),
        ]:
            expect_output(j, line, what)
        expect("SECRET" not in "\n".join(
            l for l in j.output.splitlines() if not l.startswith("host-secret")),
            "the guest read the file outside the share")
        for bad in [r"^fdlink made$", r"^outside hard link made$", r"^host: fdlink exists$",
                    r"^host: outside hard link exists$", r"seccomp"]:
            expect_no_output(j, bad)
    return job("virtiofs", script, timeout=240), check


@host_test("virtio-fs: bad --share options, a missing or non-directory share are refused")
def virtiofs_cli_errors(ctx):
    cases = [
        ("--share /tmp", "the tag must be 1 to 36 bytes"),
        ("--share /tmp,tag=", "the tag must be 1 to 36 bytes"),
        (f"--share /tmp,tag={'t' * 37}", "the tag must be 1 to 36 bytes"),
        ("--share /tmp,tag=a --share /tmp,tag=a", "tag 'a' is already used"),
        ("--share /tmp,tag=a,ro=yes", "'ro' takes no value"),
        ("--share /tmp,tag=a,cache=maybe", "cache must be auto, always or never"),
        ("--share /tmp,tag=a,color=red", "unknown setting 'color=red'"),
        ("--share ,tag=a", "a shared directory needs a path"),
        ("--share /nonexistent/dir,tag=a", "shared directory /nonexistent/dir: No such file"),
        (f"--share {ctx.guest_dir}/vmlinuz,tag=a", "Not a directory"),
    ]
    for args, message in cases:
        r = subprocess.run(f"{ctx.ember} run --accel soft --kernel {ctx.guest_dir}/vmlinuz "
                           f"--initrd {ctx.guest_dir}/initramfs.cpio {args} < /dev/null",
                           shell=True, capture_output=True, text=True, timeout=60)
        expect(r.returncode == 2 and message in r.stderr,
               f"'{args}': exit {r.returncode}, expected 2 with '{message}': {r.stderr[-300:]}")


@guest_test("ember run --rootfs: a busybox tree as the guest's root, a command's output and exit "
            "status; with ,ro the guest's changes stay in its RAM overlay", batch="virtiofs")
def rootfs_busybox():
    script = (
        # The default guest's busybox is static: it runs chrooted in the tree.
        "mkdir -p tree/etc tree/proc tree/sys tree/dev tree/tmp\n"
        '(cd tree && cpio -id bin/busybox < "$GUEST/initramfs.cpio" 2>/dev/null)\n'
        "for a in sh cat echo ls; do ln -s busybox tree/bin/$a; done\n"
        "echo tree-file > tree/etc/marker\n"
        f'"$EMBER" run --cmdline \'{default_cmdline()}\' --rootfs tree -- '
        "sh -c 'echo \"in-root $(cat /etc/marker)\"; echo made > /etc/new; "
        "echo windows $(cat /sys/class/bdi/0:*/read_ahead_kb); exit 7' "
        '< /dev/null; echo "ember rc=$?"\n'
        'echo "host-new $(cat tree/etc/new)"\n'
        f'"$EMBER" run --cmdline \'{default_cmdline()}\' --rootfs tree,ro -- '
        "sh -c 'echo ro > /etc/ro-new && echo \"overlay $(cat /etc/ro-new) $(cat /etc/new)\"; "
        "exit 3' < /dev/null; echo \"ember rc2=$?\"\n"
        '[ -e tree/etc/ro-new ] || echo "host tree untouched"\n'
        'ls -d /tmp/ember-rootfs-* 2>/dev/null | sed "s/^/left behind /"\n')

    def check(j):
        expect_ember_rc(j, 7)
        expect_output(j, r"^in-root tree-file$", "the command ran in the tree")
        expect_output(j, r"^host-new made$", "the guest's write in the host tree")
        # the root share reads ahead 1 MiB; the private ember-ctl share keeps 128 KiB
        expect_output(j, r"^windows (128 1024|1024 128)$", "the root share's readahead window")
        expect_output(j, r"^overlay ro made$", "the read-only root with a RAM overlay")
        expect_output(j, r"^ember rc2=3$", "the second command's exit status")
        expect_output(j, r"^host tree untouched$", "nothing written through the overlay")
        expect_no_output(j, r"^left behind", "the private share removed")
    return job("rootfs", script, timeout=240), check


@guest_test("ember run --rootfs on a Debian tree (libc6, dash, bash, coreutils unpacked from "
            "Debian's packages): a dynamically linked bash runs from the share, its write "
            "reaches the host, and its exit status is ember's", batch="virtiofs")
def rootfs_debian(ctx):
    tar = os.path.join(ctx.build, "guest", "debian-tree.tar")
    if not os.path.exists(tar):
        raise TestSkipped(f"{tar} is missing: 'make guest' builds it (guest/debian-tree.sh)")
    command = ('echo "bash $BASH_VERSION"; echo "uid $(id -u) $(ls -d /usr/lib/x86_64-linux-gnu '
               '/lib/x86_64-linux-gnu 2>/dev/null | head -1)"; '
               'echo "sh-is $(readlink /bin/sh)"; echo debian > /root/made-in-guest; '
               '/bin/sh -c "exit 42"')
    script = (
        "mkdir tree && tar -xf \"$DATA/debian-tree.tar\" -C tree\n"
        f'"$EMBER" run --cmdline \'{default_cmdline()}\' --rootfs tree -- /bin/bash -c '
        f"{shlex.quote(command)} < /dev/null; echo \"ember rc=$?\"\n"
        'echo "host-made $(cat tree/root/made-in-guest)"\n')

    def check(j):
        expect_ember_rc(j, 42)
        expect_output(j, r"^bash 5\.\d+", "Debian's bash ran (dynamically linked, from the share)")
        expect_output(j, r"^uid 0 /(usr/)?lib/x86_64-linux-gnu$", "coreutils' id and ls")
        expect_output(j, r"^sh-is dash$", "/bin/sh is dash")
        expect_output(j, r"^host-made debian$", "the guest's write in the host's tree")
    return job("rootfs-debian", script, timeout=240,
               files={"debian-tree.tar": tar}), check

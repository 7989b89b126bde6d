"""A 32-bit (i386) program in the 64-bit guest: tests/tools/hello32, which
writes a line from a subroutine (CALL/RET, PUSH/POP), computes its exit
status 42 with x87, SSE2 and an LEA with 16-bit addressing, and exits
through INT 0x80. Under KVM it runs as on hardware, also when asked to jump
to a code segment with a base in its LDT and back first. ember's engine runs
32-bit code only in part (README, "CPU engine"): the plain run must work
there too, and the run through the based code segment, which the engine does
not run, must cost the process a SIGILL (#UD) and not the VM. tests/tools/legacy32 runs what only 32-bit code has (BCD arithmetic over
every AL, PUSHA/POPA, ENTER with nesting, segment pushes and pops, a based
LDT data segment in DS, ES and SS, INTO);
its hash of the BCD results must be what the manual's definitions give
(computed here), and its own checks must pass. Then tests/tools/hello32c, a
C program linked statically against i386 glibc (TLS through GS, the vDSO's
SYSCALL entry, stdio, x87 and 64-bit arithmetic), prints its line and
exits 7 on both, and so does hello32d, the same program linked dynamically
(i386 ld.so and libc.so.6 from Debian's libc6-i386 in the initramfs)."""
import os

from framework import (build_initrd_with, expect, expect_ember_rc, guest_cmdline, guest_test,
                       job, on_engine)

CF, PF, AF, ZF, SF = 0x1, 0x4, 0x10, 0x40, 0x80


def _szp(v):
    f = 0 if bin(v).count("1") & 1 else PF
    return f | (ZF if v == 0 else 0) | (SF if v & 0x80 else 0)


def bcd_op(op, base, al, ah, cf, af):
    """AX, the flags and the mask of the flags defined after one decimal
    instruction, from the Intel SDM's pseudo-code (AAA/AAS add or subtract
    106h to AX, as the current manuals have it and CPUs do)."""
    if op in ("daa", "das"):
        sign = 1 if op == "daa" else -1
        old_al, ncf, naf = al, 0, 0
        if (al & 0xf) > 9 or af:
            r = al + sign * 6
            ncf = cf or r < 0 or r > 0xff
            al, naf = r & 0xff, 1
        if old_al > 0x99 or cf:
            al, ncf = (al + sign * 0x60) & 0xff, 1
        elif op == "daa":
            ncf = 0
        return ah << 8 | al, (CF if ncf else 0) | (AF if naf else 0) | _szp(al), 0xd5
    if op in ("aaa", "aas"):
        ax = ah << 8 | al
        f = 0
        if (al & 0xf) > 9 or af:
            ax = (ax + 0x106 if op == "aaa" else ax - 0x106) & 0xffff
            f = CF | AF
        return ax & 0xff0f, f, 0x11
    if op == "aam":
        high, low = divmod(al, base)
        return high << 8 | low, _szp(low), 0xc4
    low = (al + ah * base) & 0xff  # AAD
    return low, _szp(low), 0xc4


def initrd_32bit(ctx):
    """The default initramfs with the i386 programs, and the dynamic loader
    and C library hello32d needs (this host's libc6-i386, gcc-multilib's)."""
    out = os.path.join(ctx.prep_dir, "initrd-compat32.cpio")
    if not os.path.exists(out):
        files = {f"/usr/bin/{n}": os.path.join(ctx.build, "tools", n)
                 for n in ("hello32", "hello32c", "hello32d", "legacy32")}
        files["/lib32/ld-linux.so.2"] = "/lib32/ld-linux.so.2"
        files["/lib32/libc.so.6"] = "/lib32/libc.so.6"
        build_initrd_with(files, os.path.join(ctx.guest_dir, "initramfs.cpio"), out,
                          links={"/lib/ld-linux.so.2": "/lib32/ld-linux.so.2"})
    return out


def legacy32_hash():
    """The hash tests/tools/legacy32.S prints, in its loop order."""
    ops = [("daa", 0), ("das", 0), ("aaa", 0), ("aas", 0)]
    ops += [("aam", b) for b in (10, 16, 7, 255)] + [("aad", b) for b in (10, 16, 7, 255)]
    h = 0x811c9dc5
    for op, base in ops:
        for flags_in in range(4):
            for al in range(256):
                ax, flags, mask = bcd_op(op, base, al, al ^ 0x5a, flags_in & 1, flags_in >> 1)
                h = ((h ^ (ax | (flags & mask) << 16)) * 16777619) & 0xffffffff
    return h


@guest_test("32-bit program: i386 binaries run under the 64-bit guest kernel (INT 0x80 "
            "system calls, the 32-bit stack, x87 and SSE2; BCD, PUSHA/POPA, ENTER, segment "
            "pushes as the manual defines them; i386 glibc, static and dynamic); on the engine "
            "an instruction it does not run in 32-bit code kills only that process (SIGILL)",
            backend="both", kernel="debian")
def compat32_program(ctx):
    guest = ("hello32; echo \"plain rc=$?\"; hello32 based; echo \"based rc=$?\"; "
             "echo still-running; legacy32; echo \"legacy rc=$?\"; "
             "hello32c abc; echo \"glibc rc=$?\"; hello32d abc; echo \"dynamic rc=$?\"")
    script = (f'"$EMBER" run --initrd "$DATA/initrd.cpio" --cmdline \'{guest_cmdline(guest)}\' '
              '< /dev/null > vm.txt 2> err.txt; echo "ember rc=$?"; cat vm.txt err.txt')
    # (ember's own messages apart: its warning could land mid-line in the guest's output)

    def check(j):
        out = j.output
        expect(out.count("hello from 32-bit code") == 2,
               f"the 32-bit program writes its line in both runs:\n{out}")
        expect("plain rc=42" in out, f"the 32-bit program exits 42 (x87, SSE2 and a 16-bit "
               f"address computed right):\n{out}")
        if on_engine():
            expect("based rc=132" in out,
                   f"on the engine a jump to a based code segment is SIGILL (128 + 4):\n{out}")
            expect("#UD raised" in out, f"ember says what it did not run:\n{out}")
        else:
            expect("based rc=42" in out, f"under KVM a based code segment runs as on "
                   f"hardware:\n{out}")
        want = f"legacy32 bcd {legacy32_hash():08x}"
        expect(want in out, f"DAA DAS AAA AAS AAM AAD as the manual defines them ({want}):\n{out}")
        expect("legacy rc=0" in out,
               f"PUSHA/POPA, ENTER/LEAVE, segment pushes and pops, a based data "
               f"segment, INTO pass:\n{out}")
        expect("still-running" in out, f"the guest goes on after the program:\n{out}")
        expect(out.count("i386 glibc: abc 8 3.00 1099511627776") == 2,
               f"the i386 glibc programs, static and dynamic, print what they computed:\n{out}")
        expect("glibc rc=7" in out, f"the static i386 glibc program exits 7:\n{out}")
        expect("dynamic rc=7" in out, f"the dynamic i386 glibc program exits 7:\n{out}")
        expect_ember_rc(j, 0)
    return job("compat32", script, timeout=300,
               files={"initrd.cpio": initrd_32bit(ctx)}), check


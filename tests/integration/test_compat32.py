"""A 32-bit (i386) program in the 64-bit guest: tests/tools/hello32, which
writes a line from a subroutine (CALL/RET, PUSH/POP), computes its exit
status 42 with x87 and SSE2 and exits through INT 0x80. Under KVM it runs as
on hardware, also when asked to execute AAA first. ember's engine runs
32-bit code only in part (README, "CPU engine"): the plain run must work
there too, and the run with AAA, an instruction the engine does not run in
32-bit code, must cost the process a SIGILL (#UD) and not the VM. Then tests/tools/hello32c, a C program linked
statically against i386 glibc (TLS through GS, the vDSO's SYSCALL entry,
stdio, x87 and 64-bit arithmetic), prints its line and exits 7 on both."""
from framework import (expect, expect_ember_rc, guest_cmdline, guest_test, initrd_with_tool,
                       job, on_engine)


@guest_test("32-bit program: i386 binaries run under the 64-bit guest kernel (INT 0x80 "
            "system calls, the 32-bit stack, x87 and SSE2; a static i386 glibc program); on "
            "the engine an instruction it does not run in 32-bit code kills only that process "
            "(SIGILL)", backend="both", kernel="debian")
def compat32_program(ctx):
    guest = ("hello32; echo \"plain rc=$?\"; hello32 bcd; echo \"bcd rc=$?\"; "
             "echo still-running; hello32c abc; echo \"glibc rc=$?\"")
    script = (f'"$EMBER" run --initrd "$DATA/initrd.cpio" --cmdline \'{guest_cmdline(guest)}\' '
              '< /dev/null > vm.txt 2>&1; echo "ember rc=$?"; cat vm.txt')

    def check(j):
        out = j.output
        expect(out.count("hello from 32-bit code") == 2,
               f"the 32-bit program writes its line in both runs:\n{out}")
        expect("plain rc=42" in out, f"the 32-bit program exits 42:\n{out}")
        if on_engine():
            expect("bcd rc=132" in out,
                   f"on the engine AAA in 32-bit code is SIGILL (128 + 4):\n{out}")
            expect("#UD raised" in out, f"ember says what it did not run:\n{out}")
        else:
            expect("bcd rc=42" in out, f"under KVM the AAA runs as on hardware:\n{out}")
        expect("still-running" in out, f"the guest goes on after the program:\n{out}")
        expect("i386 glibc: abc 8 3.00 1099511627776" in out,
               f"the i386 glibc program prints what it computed:\n{out}")
        expect("glibc rc=7" in out, f"the i386 glibc program exits 7:\n{out}")
        expect_ember_rc(j, 0)
    return job("compat32", script, timeout=300,
               files={"initrd.cpio": initrd_with_tool(ctx, "hello32", "hello32c")}), check


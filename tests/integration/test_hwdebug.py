"""The guest's own hardware breakpoints: tests/tools/hwwatch in the guest does
what gdb's 'watch' and 'hbreak' do — a traced child gets a 4-byte write
watchpoint (DR0) and an instruction breakpoint (DR1) through PTRACE_POKEUSER
— and checks the child stops with SIGTRAP at each, DR6 naming which, then runs
to its end. Under KVM the CPU (or the nested harness's) does it; on ember's
engine, guestdbg.c."""
from framework import (expect, expect_ember_rc, guest_cmdline, guest_test, initrd_with_tool,
                       job)


@guest_test("debug registers: a write watchpoint and an instruction breakpoint set through "
            "ptrace in the guest (as gdb does) stop the traced child with SIGTRAP, DR6 naming "
            "each, and the child runs on to its end", backend="both")
def guest_hw_breakpoints(ctx):
    guest = 'hwwatch; echo "hwwatch rc=$?"'
    script = (f'"$EMBER" run --initrd "$DATA/initrd.cpio" --cmdline \'{guest_cmdline(guest)}\' '
              '< /dev/null > vm.txt 2>&1; echo "ember rc=$?"; cat vm.txt')

    def check(j):
        out = j.output
        expect("hwwatch: stop, dr6 0xffff0ff1" in out or "hwwatch: stop, dr6 0x1\n" in out,
               f"the write watchpoint (DR0) stopped the child:\n{out}")
        expect("hwwatch: stop, dr6 0xffff0ff2" in out or "hwwatch: stop, dr6 0x2\n" in out,
               f"the instruction breakpoint (DR1) stopped the child:\n{out}")
        expect("hwwatch: write watchpoint and instruction breakpoint hit, child exit 0" in out,
               f"the child ran to its end with its values:\n{out}")
        expect("hwwatch rc=0" in out, f"hwwatch passed:\n{out}")
        expect_ember_rc(j, 0)
    return job("hwdebug", script, timeout=200,
               files={"initrd.cpio": initrd_with_tool(ctx, "hwwatch")}), check

#!/usr/bin/env python3
"""'make run': boot ember's default guest with its console on this terminal.
ember runs directly on every host: with hardware KVM where the host has it,
on its own CPU engine otherwise. With --nested (make run-nested) it runs
inside the nested harness's L1 host instead, whose KVM is real, and L1's
serial console becomes this terminal (Ctrl-A x quits ember, after which L1
powers off). Extra arguments go to 'ember run'."""
import argparse
import os
import shlex
import sys

from nested import NestedHost, host_has_hw_kvm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--nested", action="store_true",
                    help="run ember with KVM inside an L1 host under QEMU TCG")
    ap.add_argument("ember_args", nargs="*")
    args = ap.parse_args()
    ember = os.path.join(args.build, "ember")
    if not args.nested:
        hw, why = host_has_hw_kvm()
        if not hw:
            print(f"make run: {why}: the guest runs on ember's own CPU engine "
                  "('make run-nested' runs it with KVM inside an L1 host). Ctrl-A x quits.",
                  file=sys.stderr, flush=True)
        os.execv(ember, [ember, "run"] + args.ember_args)
    print("make run-nested: ember runs inside an L1 host under QEMU TCG that has real KVM "
          "(kvm-amd). L1 boots in a few seconds; Ctrl-A x quits ember.",
          file=sys.stderr, flush=True)
    host = NestedHost(args.build)
    try:
        script = " ".join(['"$EMBER"', "run"] + [shlex.quote(a) for a in args.ember_args])
        rc = host.run_interactive(script + '; echo "ember exited with status $?"')
    finally:
        host.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())

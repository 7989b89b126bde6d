#!/usr/bin/env python3
"""'make run': boot ember's default guest with its console on this terminal.
With hardware KVM ember runs directly; otherwise inside the nested harness's
L1 host, whose serial console becomes this terminal (Ctrl-A x quits ember,
after which L1 powers off). Extra arguments go to 'ember run'."""
import argparse
import os
import shlex
import subprocess
import sys

from nested import NestedHost, host_has_hw_kvm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("ember_args", nargs="*")
    args = ap.parse_args()
    ember = os.path.join(args.build, "ember")
    hw, why = host_has_hw_kvm()
    if hw:
        os.execv(ember, [ember, "run"] + args.ember_args)
    print(f"make run: {why}, so ember runs inside an L1 host under QEMU TCG that has "
          "real KVM (kvm-amd). L1 boots in a few seconds; Ctrl-A x quits ember.",
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

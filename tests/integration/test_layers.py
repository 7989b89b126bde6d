"""The layering rule (src/LAYERS) holds in this tree, and tests/check-layers
really catches each kind of violation: planted in a copy of the tree, an
upward include, a cycle of files, and a unit test reaching above its layer
must each fail the check with the file and line named."""
import os
import shutil
import subprocess

from framework import expect, host_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check_layers(root):
    p = subprocess.run([os.path.join(root, "tests", "check-layers")], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


@host_test("layers: every include in src/ and tests/unit/ follows src/LAYERS")
def test_tree_follows_layers():
    rc, out = check_layers(ROOT)
    expect(rc == 0, f"check-layers failed:\n{out}")


def copy_tree(ctx):
    root = os.path.join(ctx.tmp, "tree")
    for part in ("src", os.path.join("tests", "unit")):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(root, part))
    shutil.copy(os.path.join(ROOT, "tests", "check-layers"), os.path.join(root, "tests"))
    return root


def plant(root, path, text):
    with open(os.path.join(root, path), "a") as f:
        f.write(text)


@host_test("layers: an upward include, a file cycle, a reaching unit test, a missing or "
           "another folder's private header are caught")
def test_violations_are_caught(ctx):
    cases = [
        ("src/devices/pvpanic.h", '#include "vmm/vm.h"\n',
         "src/devices/pvpanic.h:", "from layer 'vmm', above this file's layer 'devices'"),
        ("src/util/buf.h", '#include "util/log.h"\n',
         "", "files include each other in a cycle: src/util/buf, src/util/log"),
        ("tests/unit/mem/test_guest_mem.c", '#include "vq_fake.h"\n',
         "tests/unit/mem/test_guest_mem.c:", "needs layer 'virtio'"),
        ("src/config/config.h", '#include "nowhere/missing.h"\n',
         "src/config/config.h:", "does not exist"),
        ("src/vmm/vm.c", '#include "accel/soft_internal.h"\n',
         "src/vmm/vm.c:", "the private header of another folder"),
    ]
    for path, text, where, message in cases:
        root = copy_tree(ctx)
        plant(root, path, text)
        if "cycle" in message:
            plant(root, "src/util/log.h", '#include "util/buf.h"\n')
        rc, out = check_layers(root)
        expect(rc == 1, f"{path}: check-layers exited {rc} on a planted violation:\n{out}")
        expect(message in out and where in out,
               f"{path}: expected '{where}' and '{message}' in:\n{out}")
        shutil.rmtree(root)

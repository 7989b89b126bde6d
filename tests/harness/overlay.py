"""Extra files for the guest: a cpio archive of host programs (with the shared
libraries ldd lists) that is appended to the default initramfs. The kernel
unpacks concatenated archives in turn, so the guest sees both."""
import os
import shutil
import tempfile

from nested import _libs_of, _place, _write_cpio


def build_initrd_with(programs, base_initrd, out_path, links=None):
    """programs: {path in guest: host path}; links: {link in guest: target}."""
    root = tempfile.mkdtemp(prefix="ember-overlay-")
    try:
        for dst, src in programs.items():
            for path, host in [(dst, src)] + [(lib, lib) for lib in _libs_of(src)]:
                target = _place(root, path)
                shutil.copyfile(os.path.realpath(host), target)
                shutil.copymode(os.path.realpath(host), target)
        for link, target in (links or {}).items():
            os.symlink(target, _place(root, link))
        overlay = out_path + ".overlay"
        _write_cpio(root, overlay)
        with open(out_path, "wb") as out:
            for part in (base_initrd, overlay):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
        os.unlink(overlay)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out_path

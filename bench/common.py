"""What the benchmark's suites share: the guest's command line, the VMMs'
command lines, and a figure's samples."""
import base64
import os

INIT_LINE = "ember-guest: init started"
KERNEL, INITRD = '"$GUEST/vmlinuz"', '"$GUEST/initramfs.cpio"'
VMLINUX = '"$GUEST/vmlinux"'  # the same kernel as an ELF: the PVH entry


# --guest-append: words added to every guest's command line, for every VMM.
GUEST_APPEND = ""


def cmdline(guest_cmd):
    b64 = base64.b64encode(guest_cmd.encode()).decode()
    extra = f" {GUEST_APPEND}" if GUEST_APPEND else ""
    return f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={b64}{extra}"


def qemu_cmd(machine, mem, cpus, cl, initrd=INITRD, extra="", kernel=KERNEL):
    return (f"qemu-system-x86_64 -M {machine} -accel kvm -cpu host -m {mem} -smp {cpus} "
            "-nodefaults -no-user-config -display none -serial stdio -no-reboot "
            "-L /usr/share/qemu -L /usr/share/seabios "
            f"-kernel {kernel} -initrd {initrd} {extra} -append '{cl}'")


def guest_kernel_words():
    d = os.environ.get("EMBER_TEST_GUEST_DIR", "")
    return ("the project's minimal guest kernel (build/guest-min)" if d.endswith("guest-min")
            else "Debian's cloud kernel")


class Figure:
    """One row of the report: samples per VMM."""

    def __init__(self, title, unit, higher_is_better=False, scale=1.0):
        self.title, self.unit = title, unit
        self.higher_is_better, self.scale = higher_is_better, scale
        self.samples = {}
        self.na = {}  # vmm -> why this figure does not exist for it

    def add(self, vmm, value):
        self.samples.setdefault(vmm, []).append(value * self.scale)

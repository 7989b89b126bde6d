"""virtio-pmem: host files mapped into guest physical memory above the RAM,
configured as Firecracker's "pmem" (config file and PUT /pmem/{id}); the guest
reads them through /dev/pmem0 and /dev/pmem1 (the default guest loads
virtio_pmem and nd_pmem), its writes reach a writable file after a flush and
never a read-only one."""
from framework import default_cmdline, expect, expect_ember_rc, expect_output, guest_test, job
from test_api import b64

PMEM_GUEST = r'''
ls /dev/pmem0 /dev/pmem1
echo "pmem0 $(head -c 12 /dev/pmem0) $(cat /sys/block/pmem0/size)"
echo "pmem1 $(head -c 12 /dev/pmem1) $(cat /sys/block/pmem1/size)"
printf WRITTEN-BY-GUEST | dd of=/dev/pmem0 bs=1 seek=4096 conv=fsync 2>/dev/null
printf WRITTEN-BY-GUEST | dd of=/dev/pmem1 bs=1 seek=4096 conv=fsync 2>/dev/null
echo "pmem1-now $(dd if=/dev/pmem1 bs=1 skip=4096 count=16 2>/dev/null)"
sync
'''


@guest_test("virtio-pmem: two files from the config file's \"pmem\" above the guest's RAM, read "
            "through /dev/pmem0 and /dev/pmem1; a flushed write reaches the writable file, "
            "never the read-only one", batch="virtio2", mmio=True)
def pmem_files():
    cmdline = f"{default_cmdline()} ember_cmd={b64(PMEM_GUEST)}"
    script = (
        "printf PMEM-ZERO-ok > rw.img; truncate -s 3M rw.img\n"
        "printf PMEM-ONE--ok > ro.img; truncate -s 2M ro.img\n"
        "cat > vm.json <<EOF\n"
        '{"boot-source": {"kernel_image_path": "$GUEST/vmlinux",\n'
        '                 "initrd_path": "$GUEST/initramfs.cpio", "boot_args": "%s"},\n'
        ' "pmem": [{"id": "rw", "path_on_host": "$DATA/rw.img", "root_device": false},\n'
        '          {"id": "ro", "path_on_host": "$DATA/ro.img", "read_only": true}]}\n'
        "EOF\n"
        '"$EMBER" --no-api --config-file vm.json --metrics-path m.out; echo "ember rc=$?"\n'
        'echo "host-rw $(dd if=rw.img bs=1 skip=4096 count=16 2>/dev/null)"\n'
        'echo "host-ro $(dd if=ro.img bs=1 skip=4096 count=16 2>/dev/null | tr -d \'\\0\')."\n'
        "grep -o '\"pmem_rw\":{[^}]*}' m.out | tail -1\n") % cmdline

    def check(j):
        expect_ember_rc(j, 0)
        # 3 MiB rounds up to a 4 MiB region (8192 sectors), 2 MiB stays.
        expect_output(j, r"^pmem0 PMEM-ZERO-ok 8192$", "the writable file through /dev/pmem0")
        expect_output(j, r"^pmem1 PMEM-ONE--ok 4096$", "the read-only file through /dev/pmem1")
        expect_output(j, r"^pmem1-now WRITTEN-BY-GUEST$", "the guest sees its own write")
        expect_output(j, r"^host-rw WRITTEN-BY-GUEST$", "the guest's write in the file")
        expect_output(j, r"^host-ro \.$", "the read-only file unchanged")
        expect_output(j, r'"pmem_rw":\{"flush_count":[1-9]', "flushes counted")
        expect("pmem: virtio-pmem is not supported" not in j.output, "pmem refused")
    return job("pmem", script, timeout=180), check

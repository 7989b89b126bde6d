#include "vmm/pc.h"

#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "devices/i8042.h"
#include "devices/pci_host.h"
#include "devices/post.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/serial_8250.h"
#include "util/util.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/fs.h"
#include "virtio/net.h"
#include "virtio/pmem.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

/* In this order: the DSDT lists devices as they are set up, and virtio
 * devices take PCI slots as they come (disks first, so they become vda,
 * vdb, ... in the configuration's order). Each setup function reads the
 * configuration and adds none, one or several devices. */
static const struct pc_device {
    const char *name;
    int (*setup)(struct board *b);
} pc_devices[] = {
    {"post", post_board_setup},
    {"pci", pci_host_board_setup},
    {"serial", serial_board_setup},
    {"i8042", i8042_board_setup},
    {"rtc", rtc_cmos_board_setup},
    {"pvpanic", pvpanic_board_setup},
    {"acpi-pm", acpi_pm_board_setup},
    {"boot-timer", boot_timer_board_setup},
    {"virtio-blk", virtio_blk_board_setup},
    {"virtio-net", virtio_net_board_setup},
    {"virtio-rng", virtio_rng_board_setup},
    {"virtio-console", virtio_console_board_setup},
    {"virtio-vsock", virtio_vsock_board_setup},
    {"virtio-balloon", virtio_balloon_board_setup},
    {"virtio-pmem", virtio_pmem_board_setup},
    {"virtio-fs", virtio_fs_board_setup},
};

int pc_board_setup(struct board *b)
{
    for (size_t i = 0; i < ARRAY_SIZE(pc_devices); i++) {
        int ret = pc_devices[i].setup(b);
        if (ret)
            return err_prefix(ret, "setting up %s", pc_devices[i].name);
    }
    return 0;
}

/* The PC board ember emulates: which devices exist, where they sit, and the
 * order they are set up in. Devices are bus-agnostic models; this file
 * places them on the buses and connects their host-side callbacks. */
#include "vmm/vm.h"

#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/layout.h"
#include "util/util.h"

static void board_on_reset(void *ctx)
{
    vm_request_stop(ctx, VM_STOP_REBOOT, "the guest rebooted");
}

static void board_on_panic(void *ctx, uint8_t events)
{
    if (events & PVPANIC_PANICKED)
        vm_request_stop(ctx, VM_STOP_PANIC, "the guest panicked");
}

static void board_on_sleep(void *ctx, unsigned slp_typ)
{
    if (slp_typ == ACPI_S5_SLP_TYP)
        vm_request_stop(ctx, VM_STOP_POWER_OFF, "the guest powered off");
}

static const struct i8042_host_ops board_i8042_ops = {.reset = board_on_reset};
static const struct pvpanic_host_ops board_pvpanic_ops = {.event = board_on_panic};
static const struct acpi_pm_host_ops board_pm_ops = {.sleep = board_on_sleep};

/* Port 0x80 (POST codes and I/O delays): accepted and ignored. */
static void post_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    (void)dev;
    (void)offset;
    memset(data, 0, len);
}

static void post_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    (void)dev;
    (void)offset;
    (void)data;
    (void)len;
}

static const struct bus_ops post_bus_ops = {.read = post_read, .write = post_write};

static struct irq_line isa_irq(struct vm *vm, uint32_t irq)
{
    return (struct irq_line){&vm->irq_sink, irq};
}

static int setup_post(struct vm *vm)
{
    return bus_register(&vm->pio, PORT_POST, 1, &post_bus_ops, NULL, "post");
}

static int setup_pci(struct vm *vm)
{
    pci_bus_init(&vm->pci);
    pci_host_bridge_init(&vm->host_bridge);
    int ret = pci_bus_add(&vm->pci, &vm->host_bridge, 0);
    if (!ret)
        ret = bus_register(&vm->pio, PORT_PCI_CONFIG_ADDRESS, 8, &pci_conf1_bus_ops,
                           &vm->pci, "pci-conf1");
    return ret;
}

static int setup_serial(struct vm *vm)
{
    serial_init(&vm->serial, isa_irq(vm, IRQ_COM1), &console_serial_ops, vm->console);
    return bus_register(&vm->pio, PORT_COM1, SERIAL_REG_COUNT, &serial_bus_ops,
                        &vm->serial, "com1");
}

static int setup_i8042(struct vm *vm)
{
    i8042_init(&vm->i8042, isa_irq(vm, IRQ_KEYBOARD), isa_irq(vm, IRQ_MOUSE),
               &board_i8042_ops, vm);
    int ret = bus_register(&vm->pio, PORT_I8042_DATA, 1, &i8042_data_bus_ops, &vm->i8042,
                           "i8042-data");
    if (!ret)
        ret = bus_register(&vm->pio, PORT_I8042_CMD, 1, &i8042_cmd_bus_ops, &vm->i8042,
                           "i8042-cmd");
    return ret;
}

static int setup_rtc(struct vm *vm)
{
    rtc_cmos_init(&vm->rtc, NULL);
    return bus_register(&vm->pio, PORT_RTC, 2, &rtc_cmos_bus_ops, &vm->rtc, "rtc");
}

static int setup_pvpanic(struct vm *vm)
{
    pvpanic_init(&vm->pvpanic, &board_pvpanic_ops, vm);
    return bus_register(&vm->pio, PORT_PVPANIC, 1, &pvpanic_bus_ops, &vm->pvpanic,
                        "pvpanic");
}

static int setup_acpi_pm(struct vm *vm)
{
    acpi_pm_init(&vm->pm, &board_pm_ops, vm, NULL);
    return bus_register(&vm->pio, PORT_ACPI_PM1_EVT, ACPI_PM_REGION_SIZE, &acpi_pm_bus_ops,
                        &vm->pm, "acpi-pm");
}

/* Each virtio device takes the next free PCI slot, in the order of the table
 * below (disks first, so they become vda, vdb, ... in --disk order). */
static int board_add_virtio(struct vm *vm, struct virtio_dev *vdev)
{
    int slot = pci_bus_free_slot(&vm->pci);
    if (slot < 0)
        return err_set(-ENOSPC, "no free PCI slot for virtio-%s", vdev->ops->name);
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp)
        return err_set(-ENOMEM, "out of memory");
    vm->virtio[vm->nr_virtio++] = vp;
    struct irq_line intx = {&vm->irq_sink, PCI_INTX_GSI((unsigned)slot, 0)};
    return virtio_pci_init(vp, vdev, &vm->pci, (unsigned)slot,
                           PCI_SLOT_BAR_BASE((unsigned)slot), intx, &vm->pci_platform);
}

static int setup_disks(struct vm *vm)
{
    struct vm_boot_files *files = (struct vm_boot_files *)vm->files;
    for (unsigned i = 0; i < vm->cfg->nr_disks; i++) {
        const struct disk_config *d = &vm->cfg->disks[i];
        struct virtio_blk *blk = calloc(1, sizeof(*blk));
        if (!blk)
            return err_set(-ENOMEM, "out of memory");
        const char *id = d->id;
        if (!id) {
            const char *slash = strrchr(d->path, '/');
            id = slash ? slash + 1 : d->path;
        }
        vm->disks[vm->nr_disks++] = blk;
        files->disk_taken[i] = true; /* the device closes it from now on */
        int ret = virtio_blk_init(blk, &vm->mem, &files->disks[i], id, vm->loop);
        if (!ret)
            ret = board_add_virtio(vm, &blk->vdev);
        if (ret)
            return err_prefix(ret, "disk %s", d->path);
    }
    return 0;
}

static int setup_nics(struct vm *vm)
{
    struct vm_boot_files *files = (struct vm_boot_files *)vm->files;
    for (unsigned i = 0; i < vm->cfg->nr_nics; i++) {
        struct virtio_net *vn = calloc(1, sizeof(*vn));
        if (!vn)
            return err_set(-ENOMEM, "out of memory");
        vm->nics[vm->nr_nics++] = vn;
        struct net_backend *be = files->nets[i];
        files->nets[i] = NULL; /* the device owns it from now on */
        int ret = virtio_net_init(vn, &vm->mem, be, vm->cfg->nics[i].mac, vm->loop);
        if (!ret)
            ret = board_add_virtio(vm, &vn->vdev);
        if (ret)
            return err_prefix(ret, "network interface %u", i);
    }
    return 0;
}

static int setup_virtio_console(struct vm *vm)
{
    if (vm->cfg->console != CONSOLE_VIRTIO)
        return 0;
    vm->vconsole = calloc(1, sizeof(*vm->vconsole));
    if (!vm->vconsole)
        return err_set(-ENOMEM, "out of memory");
    virtio_console_init(vm->vconsole, &vm->mem, &console_virtio_ops, vm->console);
    return board_add_virtio(vm, &vm->vconsole->vdev);
}

static int setup_rng(struct vm *vm)
{
    if (!vm->cfg->rng)
        return 0;
    vm->rng = calloc(1, sizeof(*vm->rng));
    if (!vm->rng)
        return err_set(-ENOMEM, "out of memory");
    virtio_rng_init(vm->rng, &vm->mem);
    return board_add_virtio(vm, &vm->rng->vdev);
}

static const struct board_device {
    const char *name;
    int (*setup)(struct vm *vm);
} board_devices[] = {
    {"post", setup_post},
    {"pci", setup_pci},
    {"serial", setup_serial},
    {"i8042", setup_i8042},
    {"rtc", setup_rtc},
    {"pvpanic", setup_pvpanic},
    {"acpi-pm", setup_acpi_pm},
    {"virtio-blk", setup_disks},
    {"virtio-net", setup_nics},
    {"virtio-rng", setup_rng},
    {"virtio-console", setup_virtio_console},
};

int board_setup(struct vm *vm)
{
    for (size_t i = 0; i < ARRAY_SIZE(board_devices); i++) {
        int ret = board_devices[i].setup(vm);
        if (ret)
            return err_prefix(ret, "setting up %s", board_devices[i].name);
    }
    return 0;
}

void board_teardown(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        virtio_pci_destroy(vm->virtio[i]);
        free(vm->virtio[i]);
    }
    vm->nr_virtio = 0;
    if (vm->rng) {
        virtio_dev_destroy(&vm->rng->vdev);
        free(vm->rng);
        vm->rng = NULL;
    }
    for (unsigned i = 0; i < vm->nr_disks; i++) {
        virtio_blk_destroy(vm->disks[i]);
        free(vm->disks[i]);
    }
    vm->nr_disks = 0;
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        virtio_net_destroy(vm->nics[i]);
        free(vm->nics[i]);
    }
    vm->nr_nics = 0;
    if (vm->vconsole) {
        virtio_dev_destroy(&vm->vconsole->vdev);
        free(vm->vconsole);
        vm->vconsole = NULL;
    }
    serial_destroy(&vm->serial);
    i8042_destroy(&vm->i8042);
    rtc_cmos_destroy(&vm->rtc);
    acpi_pm_destroy(&vm->pm);
    pci_bus_destroy(&vm->pci);
}

#include "devices/pci_host.h"

#include <stdlib.h>

#include "arch/x86_64/layout.h"
#include "bus/pci/pci.h"
#include "devices/board.h"

static void host_bridge_save(void *dev, struct rec r)
{
    pci_device_save(dev, r);
}

static int host_bridge_load(void *dev, struct rec r)
{
    return pci_device_load(dev, r);
}

static const struct device_ops host_bridge_ops = {
    .destroy = free,
    .save = host_bridge_save,
    .load = host_bridge_load,
};

int pci_host_board_setup(struct board *b)
{
    struct pci_device *bridge = calloc(1, sizeof(*bridge));
    if (!bridge)
        return err_set(-ENOMEM, "out of memory");
    pci_host_bridge_init(bridge);
    if (!board_add(b, &host_bridge_ops, bridge, "host_bridge"))
        return -ENOSPC;
    int ret = pci_bus_add(b->pci, bridge, 0);
    if (!ret)
        ret = bus_register(b->pio, PORT_PCI_CONFIG_ADDRESS, 8, &pci_conf1_bus_ops, b->pci,
                           "pci-conf1");
    /* CONFIG_ADDRESS only matters to the next CONFIG_DATA access: each
     * configuration access then costs one trip to ember instead of two.
     * (Byte writes there, such as a reset through 0xcf9, do nothing.) */
    board_post_writes(b, PORT_PCI_CONFIG_ADDRESS, 4);
    return ret;
}

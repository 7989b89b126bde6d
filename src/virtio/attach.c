#include "virtio/attach.h"

#include "virtio/transport_mmio.h"
#include "virtio/transport_pci.h"

/* The VM's transport, resolved before the board is built (config.h). */
int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    if (b->cfg->transport == TRANSPORT_MMIO)
        return virtio_mmio_board_add(b, vdev, metrics);
    return virtio_pci_board_add(b, vdev, metrics);
}

void *virtio_find(const struct board *b, const struct virtio_device_ops *ops, unsigned n)
{
    return board_find(b, ops, n);
}

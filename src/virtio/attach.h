/* How a virtio device joins the board: through a transport, PCI or MMIO as
 * the VM's configuration says (the choice is made here, never by the
 * device). */
#ifndef EMBER_VIRTIO_ATTACH_H
#define EMBER_VIRTIO_ATTACH_H

#include "virtio/virtio.h"

/* Put 'vdev' on the board behind a transport; the board owns both from now
 * on (the model is freed through vdev->ops->destroy, even on failure).
 * 'metrics' names its group in the metrics ("" for none). */
int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics)
    EMBER_MUST_CHECK;

/* The n-th model of this kind of virtio device on the board, or NULL. */
void *virtio_find(const struct board *b, const struct virtio_device_ops *ops, unsigned n);

#endif

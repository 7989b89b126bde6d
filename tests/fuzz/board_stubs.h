/* The board side of a virtio device, for fuzz targets that link devices
 * alone (the board is not under test): no device is found, and attaching
 * one would be a bug in the target. Included by one file per target. */
#ifndef EMBER_TESTS_FUZZ_BOARD_STUBS_H
#define EMBER_TESTS_FUZZ_BOARD_STUBS_H

#include <stdlib.h>

#include "virtio/virtio.h"

void *virtio_find(const struct board *b, const struct virtio_device_ops *ops, unsigned n);
int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics);

void *virtio_find(const struct board *b, const struct virtio_device_ops *ops, unsigned n)
{
    (void)b, (void)ops, (void)n;
    return NULL;
}

int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    (void)b, (void)vdev, (void)metrics;
    abort();
}

#endif

/* virtio-console (one port, no multiport): the guest's hvc0. Bytes the guest
 * transmits go to a host callback; host input is offered with
 * virtio_console_receive() as the guest provides receive buffers. */
#ifndef EMBER_VIRTIO_CONSOLE_H
#define EMBER_VIRTIO_CONSOLE_H

#include <stddef.h>

#include "virtio/virtio.h"

struct virtio_console_host_ops {
    void (*tx)(void *ctx, const uint8_t *buf, size_t len);
    /* The guest queued receive buffers: offer input again. */
    void (*rx_ready)(void *ctx);
};

struct virtio_console {
    struct virtio_dev vdev;
    const struct virtio_console_host_ops *host;
    void *host_ctx;
    uint64_t bytes_in, bytes_out;
};

void virtio_console_init(struct virtio_console *vc, const struct guest_mem *gm,
                         const struct virtio_console_host_ops *host, void *host_ctx);
/* Copy up to 'len' bytes into the guest's receive buffers (any thread);
 * returns how many it took. */
size_t virtio_console_receive(struct virtio_console *vc, const uint8_t *buf, size_t len);

#endif

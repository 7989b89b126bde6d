/* virtio-console (one port, no multiport): the guest's hvc0. Bytes the guest
 * transmits go to a host callback; host input is offered with
 * virtio_console_receive() as the guest provides receive buffers. */
#ifndef EMBER_VIRTIO_CONSOLE_H
#define EMBER_VIRTIO_CONSOLE_H

#include <stddef.h>

#include "virtio/virtio.h"

/* Bytes one notification (or one call-back from the host) may send before
 * the queue yields to the rest of the event loop. */
#define VIRTIO_CONSOLE_TX_BUDGET (64u << 10)

struct virtio_console {
    struct virtio_dev vdev;
    struct chardev_host host; /* input_ready: the guest queued receive buffers */
    uint64_t bytes_in, bytes_out;
    uint64_t tx_off;    /* bytes of the first available chain already sent */
    uint32_t tx_budget; /* left in this round */
    bool tx_waiting;    /* the host is full; it calls back when it has room */
};

void virtio_console_init(struct virtio_console *vc, const struct guest_mem *gm,
                         const struct chardev_host *host);
/* Copy up to 'len' bytes into the guest's receive buffers (any thread);
 * returns how many it took. */
size_t virtio_console_receive(struct virtio_console *vc, const uint8_t *buf, size_t len);

/* With --console virtio: the console's output and input go to hvc0. */
int virtio_console_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

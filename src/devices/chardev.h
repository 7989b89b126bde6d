/* The host end of a character device the guest writes to and reads from (a
 * UART, a virtio console port): the device hands over what the guest sent,
 * and says when it can take input again. */
#ifndef EMBER_DEVICES_CHARDEV_H
#define EMBER_DEVICES_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

struct chardev_host_ops {
    /* Bytes the guest transmitted. */
    void (*write)(void *ctx, const uint8_t *buf, size_t len);
    /* The guest can take input now: offer it again. Called with the
     * device's lock held, so it must only wake someone up. */
    void (*input_ready)(void *ctx);
};

struct chardev_host {
    const struct chardev_host_ops *ops;
    void *ctx;
};

static inline void chardev_write(const struct chardev_host *h, const uint8_t *buf, size_t len)
{
    if (h->ops && h->ops->write)
        h->ops->write(h->ctx, buf, len);
}

static inline void chardev_input_ready(const struct chardev_host *h)
{
    if (h->ops && h->ops->input_ready)
        h->ops->input_ready(h->ctx);
}

#endif

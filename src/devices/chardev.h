/* The host end of a character device the guest writes to and reads from (a
 * UART, a virtio console port): the device hands over what the guest sent,
 * and says when it can take input again.
 *
 * Output applies backpressure: the host takes what its buffer has room for
 * and never blocks or spins. A device left holding bytes asks to be called
 * back (wait_writable) and keeps them — a UART shows a busy transmitter, a
 * virtio console leaves the chain in the ring — until the host has room. */
#ifndef EMBER_DEVICES_CHARDEV_H
#define EMBER_DEVICES_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

struct chardev_host_ops {
    /* Bytes the guest transmitted: returns how many the host took (all of
     * them, or fewer when its buffer is full; never blocks). */
    size_t (*write)(void *ctx, const uint8_t *buf, size_t len);
    /* The guest can take input now: offer it again. Called with the
     * device's lock held, so it must only wake someone up. */
    void (*input_ready)(void *ctx);
    /* Call fn(arg) once the host can take output again — on the event
     * loop, with no host lock held (it may take the device's lock). Called
     * with the device's lock held: it only records the wish. A host that
     * always takes everything may leave it NULL. */
    void (*wait_writable)(void *ctx, void (*fn)(void *arg), void *arg);
};

struct chardev_host {
    const struct chardev_host_ops *ops;
    void *ctx;
};

/* How many bytes the host took; with no host, output is dropped (all taken). */
static inline size_t chardev_write(const struct chardev_host *h, const uint8_t *buf, size_t len)
{
    if (h->ops && h->ops->write)
        return h->ops->write(h->ctx, buf, len);
    return len;
}

static inline void chardev_input_ready(const struct chardev_host *h)
{
    if (h->ops && h->ops->input_ready)
        h->ops->input_ready(h->ctx);
}

/* 1, or 0 if the host has no such call-back (it always takes all). */
static inline int chardev_wait_writable(const struct chardev_host *h, void (*fn)(void *arg),
                                        void *arg)
{
    if (!h->ops || !h->ops->wait_writable)
        return 0;
    h->ops->wait_writable(h->ctx, fn, arg);
    return 1;
}

#endif

#include "virtio/console.h"

#include <stdlib.h>

#include "util/util.h"
#include "virtio/attach.h"

#define CONSOLE_RX 0
#define CONSOLE_TX 1
#define CONSOLE_QUEUE_SIZE 128
#define CONSOLE_CONFIG_SIZE 12
#define CONSOLE_TX_CHUNK 4096

static uint64_t console_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0; /* one console port, no size, no emergency write */
}

static void console_config_read(struct virtio_dev *vdev, uint32_t offset, void *data,
                                unsigned len)
{
    (void)vdev;
    uint8_t cfg[CONSOLE_CONFIG_SIZE] = {0}; /* cols, rows, max_nr_ports, emerg_wr */
    le32_store(cfg + 4, 1);
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

static void console_host_writable(void *arg);

/* Send what the host takes of a chain, from where the last round stopped.
 * The chain is used once all of it has gone; until then it stays in the
 * ring (RETRY) while the host is full — the guest's writer waits, nothing
 * blocks — or while this round's budget is spent (the queue is kicked to
 * continue after the loop's other work). */
static enum virtio_chain_result console_send(struct virtio_dev *vdev, struct virtq *q,
                                            const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_console *vc = vdev->model;
    uint8_t buf[CONSOLE_TX_CHUNK];
    while (vc->tx_off < chain->readable_bytes) {
        if (vc->tx_budget == 0 && virtio_dev_kick(vdev, CONSOLE_TX))
            return VIRTIO_CHAIN_RETRY;
        size_t want = vc->tx_budget ? MIN(sizeof(buf), vc->tx_budget) : sizeof(buf);
        size_t n = virtq_chain_read(q, chain, vc->tx_off, buf, want);
        if (n == 0)
            break;
        size_t took = chardev_write(&vc->host, buf, n);
        vc->tx_off += took;
        vc->bytes_out += took;
        vc->tx_budget -= (uint32_t)MIN(took, vc->tx_budget);
        if (took < n) {
            if (vc->tx_waiting)
                return VIRTIO_CHAIN_RETRY;
            if (chardev_wait_writable(&vc->host, console_host_writable, vc)) {
                vc->tx_waiting = true;
                return VIRTIO_CHAIN_RETRY;
            }
            break; /* a host that cannot call back: the rest is dropped */
        }
    }
    vc->tx_off = 0;
    *written = 0;
    return VIRTIO_CHAIN_USED;
}

static void console_transmit(struct virtio_console *vc)
{
    vc->tx_budget = VIRTIO_CONSOLE_TX_BUDGET;
    virtio_dev_drain_queue(&vc->vdev, CONSOLE_TX, console_send);
}

/* The host has room again (on the event loop). */
static void console_host_writable(void *arg)
{
    struct virtio_console *vc = arg;
    pthread_mutex_lock(&vc->vdev.lock);
    vc->tx_waiting = false;
    if (virtio_dev_queue_running(&vc->vdev, CONSOLE_TX))
        console_transmit(vc);
    pthread_mutex_unlock(&vc->vdev.lock);
}

static void console_queue_notify(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_console *vc = vdev->model;
    if (q == CONSOLE_TX)
        console_transmit(vc);
    else
        chardev_input_ready(&vc->host);
}

static void console_reset(struct virtio_dev *vdev)
{
    struct virtio_console *vc = vdev->model;
    vc->tx_off = 0; /* a call-back still due finds the queue stopped */
}

static int console_activate(struct virtio_dev *vdev)
{
    struct virtio_console *vc = vdev->model;
    chardev_input_ready(&vc->host);
    return 0;
}

static size_t console_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_console *vc = vdev->model;
    out[0] = (struct device_counter){"bytes_in", vc->bytes_in};
    out[1] = (struct device_counter){"bytes_out", vc->bytes_out};
    return 2;
}

static void console_destroy(struct virtio_dev *vdev)
{
    struct virtio_console *vc = vdev->model;
    virtio_dev_destroy(vdev);
    free(vc);
}

static const struct virtio_device_ops console_ops = {
    .name = "console",
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = 2,
    .queue_max_size = CONSOLE_QUEUE_SIZE,
    .config_size = CONSOLE_CONFIG_SIZE,
    .features = console_features,
    .config_read = console_config_read,
    .activate = console_activate,
    .queue_notify = console_queue_notify,
    .reset = console_reset,
    .counters = console_counters,
    .destroy = console_destroy,
};

void virtio_console_init(struct virtio_console *vc, const struct guest_mem *gm,
                         const struct chardev_host *host)
{
    vc->host = *host;
    vc->bytes_in = vc->bytes_out = 0;
    vc->tx_off = 0;
    vc->tx_budget = 0;
    vc->tx_waiting = false;
    virtio_dev_init(&vc->vdev, &console_ops, vc, gm);
}

size_t virtio_console_receive(struct virtio_console *vc, const uint8_t *buf, size_t len)
{
    struct virtio_dev *vdev = &vc->vdev;
    struct virtq *q = &vdev->queues[CONSOLE_RX];
    struct virtq_chain chain;
    size_t taken = 0;
    pthread_mutex_lock(&vdev->lock);
    while (taken < len && virtio_dev_queue_running(vdev, CONSOLE_RX)) {
        int got = virtq_pop(q, &chain);
        if (got < 0)
            virtio_dev_queue_broken(vdev, CONSOLE_RX);
        if (got <= 0)
            break;
        size_t n = virtq_chain_write(q, &chain, 0, buf + taken, len - taken);
        taken += n;
        vc->bytes_in += n;
        if (virtq_push(q, chain.head, (uint32_t)n)) {
            virtio_dev_queue_broken(vdev, CONSOLE_RX);
            break;
        }
    }
    if (taken)
        virtio_dev_notify(vdev, CONSOLE_RX);
    else if (virtio_dev_queue_running(vdev, CONSOLE_RX))
        virtq_rearm(q); /* tell us when buffers arrive */
    pthread_mutex_unlock(&vdev->lock);
    return taken;
}

static size_t console_input(void *dev, const uint8_t *buf, size_t len)
{
    return virtio_console_receive(dev, buf, len);
}

int virtio_console_board_setup(struct board *b)
{
    if (b->cfg->console != CONSOLE_VIRTIO)
        return 0;
    struct virtio_console *vc = calloc(1, sizeof(*vc));
    if (!vc)
        return err_set(-ENOMEM, "out of memory");
    virtio_console_init(vc, b->mem, &b->console);
    int ret = virtio_attach(b, &vc->vdev, "virtio_console");
    if (!ret)
        board_take_console(b, console_input, vc);
    return ret;
}

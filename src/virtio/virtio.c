#include "virtio/virtio.h"

#include <string.h>

#include "util/log.h"

#define TRANSPORT_FEATURES                                                     \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |         \
     (1ull << VIRTIO_F_EVENT_IDX))

void virtio_dev_init(struct virtio_dev *vdev, const struct virtio_device_ops *ops,
                     void *model, const struct guest_mem *gm)
{
    memset(vdev, 0, sizeof(*vdev));
    pthread_mutex_init(&vdev->lock, NULL);
    vdev->ops = ops;
    vdev->model = model;
    vdev->gm = gm;
    vdev->device_features = TRANSPORT_FEATURES | ops->features(vdev);
    for (unsigned i = 0; i < ops->num_queues; i++)
        vdev->queues[i].size = ops->queue_max_size;
}

void virtio_dev_destroy(struct virtio_dev *vdev)
{
    pthread_mutex_destroy(&vdev->lock);
}

bool virtio_dev_has_feature(const struct virtio_dev *vdev, unsigned bit)
{
    return vdev->driver_features & (1ull << bit);
}

bool virtio_dev_live(const struct virtio_dev *vdev)
{
    const uint8_t need = VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
    return (vdev->status & need) == need && !(vdev->status & VIRTIO_STATUS_NEEDS_RESET);
}

bool virtio_dev_running(const struct virtio_dev *vdev)
{
    return virtio_dev_live(vdev) && !vdev->paused;
}

bool virtio_dev_queue_running(const struct virtio_dev *vdev, unsigned q)
{
    return q < vdev->ops->num_queues && virtio_dev_running(vdev) &&
           virtq_usable(&vdev->queues[q]);
}

void virtio_dev_notify(struct virtio_dev *vdev, unsigned q)
{
    struct virtq *vq = &vdev->queues[q];
    if (!vq->pushed)
        return; /* nothing new for the driver */
    vq->pushed = false;
    if (virtq_needs_interrupt(vq))
        vdev->transport->notify_queue(vdev, q);
}

bool virtio_dev_kick(struct virtio_dev *vdev, unsigned q)
{
    if (!vdev->transport || !vdev->transport->kick)
        return false;
    vdev->transport->kick(vdev, q);
    return true;
}

unsigned virtio_dev_drain_queue(struct virtio_dev *vdev, unsigned qi, virtio_chain_fn fn)
{
    struct virtq *q = &vdev->queues[qi];
    struct virtq_chain chain;
    unsigned taken = 0, budget = VIRTIO_DRAIN_BUDGET(q->size);
    int got = 0;
    bool stop = false;
    do {
        while (!stop && (got = virtq_pop(q, &chain)) == 1) {
            uint32_t written = 0;
            enum virtio_chain_result r = fn(vdev, q, &chain, &written);
            if (r == VIRTIO_CHAIN_RETRY) {
                virtq_unpop(q); /* the device resumes when it can */
                stop = true;
                break;
            }
            taken++;
            if (r == VIRTIO_CHAIN_USED && virtq_push(q, chain.head, written))
                break;
            /* Enough for one notification: the rest waits its turn. */
            if (taken >= budget && virtio_dev_kick(vdev, qi))
                stop = true;
        }
    } while (!stop && got == 0 && virtq_rearm(q));
    if (got < 0 || q->broken)
        virtio_dev_queue_broken(vdev, qi);
    else
        virtio_dev_notify(vdev, qi);
    return taken;
}

void virtio_dev_notify_config(struct virtio_dev *vdev)
{
    vdev->config_generation++;
    vdev->transport->notify_config(vdev);
}

void virtio_dev_queue_broken(struct virtio_dev *vdev, unsigned q)
{
    if (vdev->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    log_guest("%s: queue %u: %s; the device needs a reset", vdev->ops->name, q,
              virtq_error(&vdev->queues[q]));
    vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_dev_notify_config(vdev);
}

void virtio_dev_reset(struct virtio_dev *vdev)
{
    if (vdev->ops->reset)
        vdev->ops->reset(vdev);
    vdev->status = 0;
    vdev->driver_features = 0;
    for (unsigned i = 0; i < vdev->ops->num_queues; i++) {
        virtq_reset(&vdev->queues[i]);
        vdev->queues[i].size = vdev->ops->queue_max_size;
    }
}

static bool features_acceptable(const struct virtio_dev *vdev)
{
    return !(vdev->driver_features & ~vdev->device_features) &&
           (vdev->driver_features & (1ull << VIRTIO_F_VERSION_1));
}

static void activate(struct virtio_dev *vdev)
{
    for (unsigned i = 0; i < vdev->ops->num_queues; i++) {
        struct virtq *q = &vdev->queues[i];
        if (!q->ready)
            continue;
        if (virtq_start(q, vdev->gm)) {
            virtio_dev_queue_broken(vdev, i);
            return;
        }
    }
    if (vdev->ops->activate && vdev->ops->activate(vdev)) {
        log_guest("%s: cannot start: %s", vdev->ops->name, err_msg());
        vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
    }
}

/* The status register only gains bits (0 resets); FEATURES_OK sticks only if
 * the driver's features are acceptable, so the driver can check. */
void virtio_dev_set_status(struct virtio_dev *vdev, uint8_t status)
{
    if (status == 0) {
        virtio_dev_reset(vdev);
        return;
    }
    uint8_t old = vdev->status;
    /* A driver never clears a bit without a reset; refuse one that tries
     * (as Firecracker's transports do). NEEDS_RESET is the device's. */
    uint8_t kept = old & (uint8_t)~VIRTIO_STATUS_NEEDS_RESET;
    if ((status & kept) != kept) {
        log_guest("%s: status %#x would clear bits of %#x without a reset: ignored",
                  vdev->ops->name, status, old);
        return;
    }
    uint8_t added = status & (uint8_t)~old;
    if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(vdev))
        status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    vdev->status = (uint8_t)(status | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((added & VIRTIO_STATUS_DRIVER_OK) && virtio_dev_live(vdev)) {
        bool event_idx = virtio_dev_has_feature(vdev, VIRTIO_F_EVENT_IDX);
        bool indirect = virtio_dev_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
        for (unsigned i = 0; i < vdev->ops->num_queues; i++) {
            vdev->queues[i].event_idx = event_idx;
            vdev->queues[i].indirect = indirect;
        }
        activate(vdev);
    }
}

size_t virtio_dev_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    if (!vdev->ops->counters)
        return 0;
    pthread_mutex_lock(&vdev->lock);
    size_t n = vdev->ops->counters(vdev, out);
    pthread_mutex_unlock(&vdev->lock);
    return n;
}

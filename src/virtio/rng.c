#include "virtio/rng.h"

#include <sys/random.h>

#include "util/util.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_PER_REQUEST 4096 /* bounds the work one request can cause */

static uint64_t rng_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0;
}

static void rng_queue_notify(struct virtio_dev *vdev, unsigned qi)
{
    struct virtio_rng *rng = vdev->model;
    struct virtq *q = &vdev->queues[qi];
    static _Thread_local struct virtq_chain chain;
    int got;
    do {
        while ((got = virtq_pop(q, &chain)) == 1) {
            uint8_t buf[RNG_MAX_PER_REQUEST];
            size_t want = (size_t)MIN(chain.writable_bytes, sizeof(buf));
            ssize_t n = want ? getrandom(buf, want, 0) : 0;
            size_t written = n > 0 ? virtq_chain_write(q, &chain, 0, buf, (size_t)n) : 0;
            rng->bytes_served += written;
            if (virtq_push(q, chain.head, (uint32_t)written))
                break;
        }
    } while (got == 0 && virtq_rearm(q));
    if (got < 0 || q->broken)
        virtio_dev_queue_broken(vdev, qi);
    else
        virtio_dev_notify(vdev, qi);
}

static size_t rng_counters(struct virtio_dev *vdev, struct virtio_counter *out)
{
    out[0] = (struct virtio_counter){"bytes", ((struct virtio_rng *)vdev->model)->bytes_served};
    return 1;
}

static const struct virtio_device_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max_size = RNG_QUEUE_SIZE,
    .config_size = 0,
    .features = rng_features,
    .queue_notify = rng_queue_notify,
    .counters = rng_counters,
};

void virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *gm)
{
    rng->bytes_served = 0;
    virtio_dev_init(&rng->vdev, &rng_ops, rng, gm);
}

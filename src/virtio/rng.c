#include "virtio/rng.h"

#include <stdlib.h>
#include <sys/random.h>

#include "util/util.h"
#include "virtio/attach.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_PER_REQUEST 4096 /* bounds the work one request can cause */

static uint64_t rng_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0;
}

static enum virtio_chain_result rng_fill(struct virtio_dev *vdev, struct virtq *q,
                                         const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_rng *rng = vdev->model;
    uint8_t buf[RNG_MAX_PER_REQUEST];
    size_t want = (size_t)MIN(chain->writable_bytes, sizeof(buf));
    ssize_t n = want ? getrandom(buf, want, 0) : 0;
    *written = n > 0 ? (uint32_t)virtq_chain_write(q, chain, 0, buf, (size_t)n) : 0;
    rng->bytes_served += *written;
    return VIRTIO_CHAIN_USED;
}

static void rng_queue_notify(struct virtio_dev *vdev, unsigned qi)
{
    virtio_dev_drain_queue(vdev, qi, rng_fill);
}

static size_t rng_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    out[0] = (struct device_counter){"entropy_bytes", ((struct virtio_rng *)vdev->model)->bytes_served};
    return 1;
}

static void rng_destroy(struct virtio_dev *vdev)
{
    struct virtio_rng *rng = vdev->model;
    virtio_dev_destroy(vdev);
    free(rng);
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
    .destroy = rng_destroy,
};

void virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *gm)
{
    rng->bytes_served = 0;
    virtio_dev_init(&rng->vdev, &rng_ops, rng, gm);
}

int virtio_rng_board_setup(struct board *b)
{
    if (!b->cfg->rng)
        return 0;
    struct virtio_rng *rng = calloc(1, sizeof(*rng));
    if (!rng)
        return err_set(-ENOMEM, "out of memory");
    virtio_rng_init(rng, b->mem);
    return virtio_attach(b, &rng->vdev, "entropy");
}

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

/* One request's cost: an operation and the bytes it asks for. False:
 * throttled, nothing taken. */
static bool pay(struct virtio_rng *rng, uint64_t bytes)
{
    struct rate_limiter *rl = &rng->limiter;
    if (!rate_limiter_active(rl))
        return true;
    if (!rate_limiter_consume(rl, bytes, RATE_BYTES))
        return false;
    if (rate_limiter_consume(rl, 1, RATE_OPS))
        return true;
    rate_limiter_replenish(rl, bytes, RATE_BYTES);
    return false;
}

static enum virtio_chain_result rng_fill(struct virtio_dev *vdev, struct virtq *q,
                                         const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_rng *rng = vdev->model;
    uint8_t buf[RNG_MAX_PER_REQUEST];
    size_t want = (size_t)MIN(chain->writable_bytes, sizeof(buf));
    if (!pay(rng, want))
        return VIRTIO_CHAIN_RETRY; /* the limiter's timer resumes the queue */
    ssize_t n = want ? getrandom(buf, want, 0) : 0;
    *written = n > 0 ? (uint32_t)virtq_chain_write(q, chain, 0, buf, (size_t)n) : 0;
    rng->bytes_served += *written;
    return VIRTIO_CHAIN_USED;
}

static void rng_queue_notify(struct virtio_dev *vdev, unsigned qi)
{
    virtio_dev_drain_queue(vdev, qi, rng_fill);
}

static void rng_unthrottled(void *ctx)
{
    struct virtio_rng *rng = ctx;
    pthread_mutex_lock(&rng->vdev.lock);
    rate_limiter_timer_done(&rng->limiter);
    if (virtio_dev_queue_running(&rng->vdev, 0))
        virtio_dev_drain_queue(&rng->vdev, 0, rng_fill);
    pthread_mutex_unlock(&rng->vdev.lock);
}

static size_t rng_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_rng *rng = vdev->model;
    /* Firecracker's names. */
    out[0] = (struct device_counter){"entropy_bytes", rng->bytes_served};
    out[1] = (struct device_counter){"entropy_rate_limiter_throttled", rng->limiter.throttled};
    out[2] = (struct device_counter){"rate_limiter_event_count", rng->limiter.events};
    return 3;
}

static void rng_destroy(struct virtio_dev *vdev)
{
    struct virtio_rng *rng = vdev->model;
    rate_limiter_destroy(&rng->limiter);
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

int virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *gm,
                    const struct rate_limit_config *limit, struct evloop *loop)
{
    rng->bytes_served = 0;
    virtio_dev_init(&rng->vdev, &rng_ops, rng, gm);
    static const struct rate_limit_config unlimited;
    return rate_limiter_init(&rng->limiter, limit ? limit : &unlimited, loop,
                             rng_unthrottled, rng);
}

int virtio_rng_board_setup(struct board *b)
{
    if (!b->cfg->rng)
        return 0;
    struct virtio_rng *rng = calloc(1, sizeof(*rng));
    if (!rng)
        return err_set(-ENOMEM, "out of memory");
    int ret = virtio_rng_init(rng, b->mem, &b->cfg->rng_limit, b->loop);
    if (ret) {
        virtio_dev_destroy(&rng->vdev);
        free(rng);
        return err_prefix(ret, "entropy device");
    }
    return virtio_attach(b, &rng->vdev, "entropy");
}

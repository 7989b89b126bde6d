/* virtio-rng: the guest's /dev/hwrng, fed from the host's getrandom(). */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include "util/rate_limiter.h"
#include "virtio/virtio.h"

struct virtio_rng {
    struct virtio_dev vdev;
    uint64_t bytes_served;
    struct rate_limiter limiter; /* Firecracker's entropy rate_limiter */
};

/* 'limit' NULL: unlimited (then 'loop' is not used). */
int virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *gm,
                    const struct rate_limit_config *limit, struct evloop *loop)
    EMBER_MUST_CHECK;
/* One virtio-rng if the configuration asks for it. */
int virtio_rng_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

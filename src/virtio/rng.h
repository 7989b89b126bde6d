/* virtio-rng: the guest's /dev/hwrng, fed from the host's getrandom(). */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include "virtio/virtio.h"

struct virtio_rng {
    struct virtio_dev vdev;
    uint64_t bytes_served;
};

void virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *gm);
/* One virtio-rng if the configuration asks for it. */
int virtio_rng_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

/* virtio-pmem (device 27): a host file as the guest's persistent memory. */
#ifndef EMBER_VIRTIO_PMEM_H
#define EMBER_VIRTIO_PMEM_H

#include "virtio/virtio.h"

#define VIRTIO_ID_PMEM 27

struct virtio_pmem {
    struct virtio_dev vdev;
    int fd;                 /* fsync'ed on FLUSH; not owned */
    uint64_t gpa, size;     /* where the VM mapped the file */
    bool read_only;
    char id[65];
    uint64_t flushes, fails;
};

void virtio_pmem_init(struct virtio_pmem *pm, const struct guest_mem *gm,
                      const struct pmem_backing *backing, bool read_only, const char *id);
/* One device per configured pmem file, already mapped (b->backends.pmem). */
int virtio_pmem_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

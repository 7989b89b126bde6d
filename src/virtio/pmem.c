/* virtio-pmem: a host file the VM mapped into guest physical memory above
 * the RAM (vm.c, through the one guest-memory door); the device only tells
 * the driver where it is (config: start, size) and serves FLUSH requests,
 * which make the guest's writes through the mapping durable (fsync). */
#include "virtio/pmem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"

#define PMEM_QUEUE_SIZE 256
#define PMEM_CONFIG_SIZE 16
#define PMEM_REQ_FLUSH 0
#define PMEM_RESP_OK 0
#define PMEM_RESP_EIO 1

static uint64_t pmem_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0; /* no shared-memory region: the range is in the config */
}

static void pmem_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
    const struct virtio_pmem *pm = vdev->model;
    uint8_t cfg[PMEM_CONFIG_SIZE];
    le64_store(cfg, pm->gpa);
    le64_store(cfg + 8, pm->size);
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

/* The request is copied out of the chain before it is looked at. */
static enum virtio_chain_result pmem_request(struct virtio_dev *vdev, struct virtq *q,
                                             const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_pmem *pm = vdev->model;
    uint8_t req[4], resp[4];
    uint32_t ret = PMEM_RESP_EIO;
    if (chain->writable_bytes < sizeof(resp)) {
        pm->fails++; /* nowhere to answer: give it back untouched */
        *written = 0;
        return VIRTIO_CHAIN_USED;
    }
    if (virtq_chain_read(q, chain, 0, req, sizeof(req)) == sizeof(req) &&
        le32_load(req) == PMEM_REQ_FLUSH) {
        pm->flushes++;
        /* A read-only file is mapped private: nothing of the guest's to
         * keep. Synchronous, as Firecracker's: flushes are rare. */
        if (pm->read_only || fsync(pm->fd) == 0)
            ret = PMEM_RESP_OK;
        else
            log_guest("pmem %s: fsync failed: %s", pm->id, strerror(errno));
    }
    if (ret != PMEM_RESP_OK)
        pm->fails++;
    le32_store(resp, ret);
    *written = (uint32_t)virtq_chain_write(q, chain, 0, resp, sizeof(resp));
    return VIRTIO_CHAIN_USED;
}

static void pmem_queue_notify(struct virtio_dev *vdev, unsigned qi)
{
    virtio_dev_drain_queue(vdev, qi, pmem_request);
}

static size_t pmem_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_pmem *pm = vdev->model;
    out[0] = (struct device_counter){"flush_count", pm->flushes};
    out[1] = (struct device_counter){"event_fails", pm->fails};
    return 2;
}

static void pmem_destroy(struct virtio_dev *vdev)
{
    struct virtio_pmem *pm = vdev->model;
    virtio_dev_destroy(vdev);
    free(pm);
}

/* Where the file sits and how big it is were told to the guest at boot: a
 * restore must give it the same region (the same file size), or the guest
 * would read past the file or miss part of it. */
static void pmem_save(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_pmem *pm = vdev->model;
    rec_put_u64(r, "gpa", pm->gpa);
    rec_put_u64(r, "size", pm->size);
}

static int pmem_load(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_pmem *pm = vdev->model;
    uint64_t gpa, size;
    int ret = rec_get_u64(r, "gpa", UINT64_MAX, &gpa);
    if (!ret)
        ret = rec_get_u64(r, "size", UINT64_MAX, &size);
    if (!ret && (gpa != pm->gpa || size != pm->size))
        ret = err_set(-EINVAL, "the guest had a %llu-byte region at %#llx, the file now "
                               "gives %llu bytes at %#llx (was the file resized?)",
                      (unsigned long long)size, (unsigned long long)gpa,
                      (unsigned long long)pm->size, (unsigned long long)pm->gpa);
    return ret ? err_prefix(ret, "pmem %s", pm->id) : 0;
}

static const struct virtio_device_ops pmem_ops = {
    .name = "pmem",
    .device_id = VIRTIO_ID_PMEM,
    .num_queues = 1,
    .queue_max_size = PMEM_QUEUE_SIZE,
    .config_size = PMEM_CONFIG_SIZE,
    .features = pmem_features,
    .config_read = pmem_config_read,
    .queue_notify = pmem_queue_notify,
    .counters = pmem_counters,
    .save = pmem_save,
    .load = pmem_load,
    .destroy = pmem_destroy,
};

void virtio_pmem_init(struct virtio_pmem *pm, const struct guest_mem *gm,
                      const struct pmem_backing *backing, bool read_only, const char *id)
{
    memset(pm, 0, sizeof(*pm));
    pm->fd = backing->fd; /* the VM's files own it */
    pm->gpa = backing->gpa;
    pm->size = backing->size;
    pm->read_only = read_only;
    snprintf(pm->id, sizeof(pm->id), "%s", id);
    virtio_dev_init(&pm->vdev, &pmem_ops, pm, gm);
}

int virtio_pmem_board_setup(struct board *b)
{
    for (unsigned i = 0; i < b->cfg->nr_pmem; i++) {
        const struct pmem_config *c = &b->cfg->pmem[i];
        struct virtio_pmem *pm = calloc(1, sizeof(*pm));
        if (!pm)
            return err_set(-ENOMEM, "out of memory");
        char id[16];
        snprintf(id, sizeof(id), "pmem%u", i);
        virtio_pmem_init(pm, b->mem, &b->backends.pmem[i], c->read_only, c->id ? c->id : id);
        char metrics[80];
        snprintf(metrics, sizeof(metrics), "pmem_%s", pm->id);
        int ret = virtio_attach(b, &pm->vdev, metrics);
        if (ret)
            return err_prefix(ret, "pmem %s", c->path);
    }
    return 0;
}

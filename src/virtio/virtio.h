/* The interface between virtio device models and their transport.
 *
 * A model (blk, rng, console, ...) describes its queues, features and config
 * space, and processes queues when notified; it reaches guest memory only
 * through its virtqueues and raises interrupts through virtio_dev_notify().
 * It never sees the transport (PCI today) or the CPU backend. All model
 * callbacks run with vdev->lock held. */
#ifndef EMBER_VIRTIO_VIRTIO_H
#define EMBER_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/board.h"
#include "virtio/virtq.h"

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;

struct virtio_device_ops {
    const char *name;
    uint32_t device_id;
    unsigned num_queues;
    uint16_t queue_max_size;
    uint32_t config_size;
    /* Device-specific feature bits (the transport adds ring features). */
    uint64_t (*features)(struct virtio_dev *vdev);
    void (*config_read)(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len);
    void (*config_write)(struct virtio_dev *vdev, uint32_t offset, const void *data,
                         unsigned len);
    /* The driver set DRIVER_OK: queues are started; 0 or a negative errno. */
    int (*activate)(struct virtio_dev *vdev);
    /* The guest notified queue 'q' (or the device wants it polled). */
    void (*queue_notify)(struct virtio_dev *vdev, unsigned q);
    /* Back to the initial state; in-flight work must not touch the rings. */
    void (*reset)(struct virtio_dev *vdev);
    /* The VM pauses (true) or resumes: finish in-flight work and stop
     * watching backend events, or watch them again. */
    void (*pause)(struct virtio_dev *vdev, bool paused);
    /* Fill 'out' with the device's counters; returns how many. */
    size_t (*counters)(struct virtio_dev *vdev, struct device_counter *out);
    /* Snapshots: the model's own state beyond the rings (the transport
     * saves those), with the VM paused. */
    void (*save)(struct virtio_dev *vdev, struct rec r);
    int (*load)(struct virtio_dev *vdev, struct rec r);
    /* Free the model (the transport is gone already). */
    void (*destroy)(struct virtio_dev *vdev);
};

/* What the transport provides: interrupts, and "work to do" wake-ups. */
struct virtio_transport_ops {
    void (*notify_queue)(struct virtio_dev *vdev, unsigned q);
    void (*notify_config)(struct virtio_dev *vdev);
    /* Have queue_notify(q) called again soon on the event loop, after the
     * events already waiting there: a device that used up its budget for
     * one notification continues later without holding up the loop. May
     * be NULL (then budgets do not apply). */
    void (*kick)(struct virtio_dev *vdev, unsigned q);
};

struct virtio_dev {
    pthread_mutex_t lock;
    const struct virtio_device_ops *ops;
    void *model;
    const struct virtio_transport_ops *transport;
    void *transport_ctx;
    const struct guest_mem *gm;
    uint64_t device_features;  /* everything offered, transport bits included */
    uint64_t driver_features;
    uint8_t status;
    uint8_t config_generation;
    bool paused;              /* the VM is paused: no queue processing */
    struct virtq queues[VIRTIO_MAX_QUEUES];
};

void virtio_dev_init(struct virtio_dev *vdev, const struct virtio_device_ops *ops,
                     void *model, const struct guest_mem *gm);
void virtio_dev_destroy(struct virtio_dev *vdev);
bool virtio_dev_has_feature(const struct virtio_dev *vdev, unsigned bit);
/* The driver finished its setup (FEATURES_OK and DRIVER_OK) and the device
 * does not need a reset: the rings are the device's to use. */
bool virtio_dev_live(const struct virtio_dev *vdev);
/* Live, and the VM is not paused: queue q may be processed now. */
bool virtio_dev_running(const struct virtio_dev *vdev);
bool virtio_dev_queue_running(const struct virtio_dev *vdev, unsigned q);
/* Interrupt the driver about queue q if the ring says it wants one. */
void virtio_dev_notify(struct virtio_dev *vdev, unsigned q);
void virtio_dev_notify_config(struct virtio_dev *vdev);
/* A queue was corrupted by the guest: log once, set NEEDS_RESET, tell the
 * driver, and stop processing until it resets the device. */
void virtio_dev_queue_broken(struct virtio_dev *vdev, unsigned q);
/* The device's counters (none if it keeps none), read under its lock. */
size_t virtio_dev_counters(struct virtio_dev *vdev, struct device_counter *out);

/* What a device did with a chain the queue loop handed it. */
enum virtio_chain_result {
    VIRTIO_CHAIN_USED,  /* done: return it to the guest with *written bytes */
    VIRTIO_CHAIN_HELD,  /* the device returns it later (asynchronous I/O) */
    VIRTIO_CHAIN_RETRY, /* cannot take it now: leave it for a later round */
};
typedef enum virtio_chain_result (*virtio_chain_fn)(struct virtio_dev *vdev, struct virtq *q,
                                                    const struct virtq_chain *chain,
                                                    uint32_t *written);
/* The queue loop every device uses: hand each available chain of queue qi
 * to 'fn' until none is left (asking the guest to notify again, and looking
 * once more) or 'fn' says retry; then interrupt the driver if it wants to
 * hear of what was used, or mark the device broken if the ring was bad.
 * One call takes at most VIRTIO_DRAIN_BUDGET(size) chains — a guest that
 * keeps adding chains as fast as they are used cannot hold the loop — and
 * then kicks the queue to continue later.
 * Lock held; returns how many chains 'fn' used or held. */
#define VIRTIO_DRAIN_BUDGET(size) (2u * (size))
unsigned virtio_dev_drain_queue(struct virtio_dev *vdev, unsigned qi, virtio_chain_fn fn);
/* Ask the transport to run queue_notify(q) again later (see kick above);
 * false if it cannot, and the device must finish now. */
bool virtio_dev_kick(struct virtio_dev *vdev, unsigned q);

/* Driver-facing state machine, used by transports (lock held). */
void virtio_dev_reset(struct virtio_dev *vdev);
void virtio_dev_set_status(struct virtio_dev *vdev, uint8_t status);

#endif

/* The split virtqueue, device side: ring parsing and nothing else. Every
 * address, index, length and flag the guest controls is checked here, and
 * descriptors are copied out of guest memory before they are validated. A
 * queue the guest has corrupted reports an error once and stays broken until
 * the device is reset. */
#ifndef EMBER_VIRTIO_VIRTQ_H
#define EMBER_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "snapshot/record.h"

#define VIRTQ_MAX_SIZE 1024     /* largest queue a device offers */
/* Buffers in one chain, indirect included: a 1 MiB virtio-fs READ or WRITE
 * is 256 pages plus its headers and arguments. */
#define VIRTQ_MAX_CHAIN 260
#define VIRTQ_MAX_CHAIN_BYTES (1ull << 32)

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_buf {
    uint64_t gpa;
    uint32_t len;
    bool device_writes; /* VIRTQ_DESC_F_WRITE: the device fills it */
};

struct virtq_chain {
    uint16_t head;
    unsigned nr;          /* buffers in bufs */
    unsigned nr_readable; /* the first nr_readable buffers; the rest are writable */
    uint64_t readable_bytes;
    uint64_t writable_bytes;
    struct virtq_buf bufs[VIRTQ_MAX_CHAIN];
};

struct virtq {
    const struct guest_mem *gm;
    uint16_t size;          /* number of entries, a power of two */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool event_idx;         /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;          /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool ready;
    bool broken;            /* the guest corrupted it; see virtq_error() */
    uint16_t last_avail;    /* next available entry the device consumes */
    uint16_t used_idx;      /* the device's copy of used->idx */
    uint16_t signalled_used;/* used_idx at the last interrupt (EVENT_IDX) */
    bool signalled_valid;
    bool pushed;            /* entries used since the last interrupt decision */
    char error[128];
};

/* The driver enabled the queue, it was started (virtq_start: its rings
 * checked against guest memory) and is not broken. */
static inline bool virtq_usable(const struct virtq *q)
{
    return q->ready && q->gm && !q->broken;
}

/* Check the rings' placement and start using the queue. The queue keeps a
 * pointer to 'gm'. 0, or -EINVAL with virtq_error() set. Until it is
 * started, a queue has no chains and takes none back. */
int virtq_start(struct virtq *q, const struct guest_mem *gm);
void virtq_reset(struct virtq *q);

/* Next available chain: 1 and *chain filled, 0 when none is available, or
 * -EINVAL when the guest broke the ring (the queue is then broken). */
int virtq_pop(struct virtq *q, struct virtq_chain *chain);
/* Undo the last pop (a device that cannot use the chain yet). */
void virtq_unpop(struct virtq *q);
/* Return a chain to the guest with 'written' bytes written into it. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);
/* Whether the guest wants an interrupt for what was pushed since the last
 * one (VIRTQ_AVAIL_F_NO_INTERRUPT, or EVENT_IDX's used_event). */
bool virtq_needs_interrupt(struct virtq *q);
/* Ask the guest not to notify (true) or to notify again (false); with
 * EVENT_IDX this publishes avail_event. */
void virtq_suppress_notifications(struct virtq *q, bool suppress);
/* After draining a queue: ask for the next notification and return true if
 * entries arrived meanwhile (the caller then drains again). Devices process
 * queues as "do { pop... } while (virtq_rearm(q))". */
bool virtq_rearm(struct virtq *q);
/* True if the guest has made entries available that were not popped. */
bool virtq_has_available(struct virtq *q);
/* How many entries are available and not yet popped (0 if the ring is bad). */
uint16_t virtq_available(struct virtq *q);
const char *virtq_error(const struct virtq *q);
/* Snapshots: where the rings are and how far both sides have got. Loading
 * checks the placement as virtq_start does. */
void virtq_save(const struct virtq *q, struct rec r);
/* One line on the queue's positions, the guest's included (for diagnosis). */
void virtq_describe(const struct virtq *q, char *out, size_t max);
int virtq_load(struct virtq *q, const struct guest_mem *gm, uint16_t max_size, struct rec r)
    EMBER_MUST_CHECK;
/* A device found the guest's chains unusable (e.g. a receive buffer the
 * device may not write): the queue is broken from now on. */
void virtq_mark_broken(struct virtq *q, const char *why);

/* Copy between a chain's buffers and host memory: readable buffers from
 * 'offset' into 'dst', and 'src' into writable buffers from 'offset'.
 * Return the number of bytes copied. */
size_t virtq_chain_read(const struct virtq *q, const struct virtq_chain *c,
                        uint64_t offset, void *dst, size_t len);
size_t virtq_chain_write(const struct virtq *q, const struct virtq_chain *c,
                         uint64_t offset, const void *src, size_t len);

#endif

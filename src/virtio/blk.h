/* virtio-blk on a raw image (see backends/blockfile.h). Requests: IN, OUT,
 * FLUSH, GET_ID, DISCARD and WRITE_ZEROES (the last two only when the image's
 * file system can punch holes). Every request is parsed from the chain's
 * byte streams, without assuming how the driver split it into buffers, and
 * checked against the disk's size before any I/O is issued. */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <sys/uio.h>

#include "virtio/backends/blockfile.h"
#include "util/evloop.h"
#include "util/rate_limiter.h"
#include "virtio/virtio.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_QUEUE_SIZE 128
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_MAX_ZERO_SECTORS (1u << 22) /* 2 GiB per discard/zero request */

/* What a request asks for, as parsed (before any I/O). */
struct blk_parsed {
    uint32_t type;
    uint64_t sector;
    uint64_t data_len;     /* bytes to transfer (IN/OUT), range length (zero ops) */
    bool unmap;            /* WRITE_ZEROES may deallocate */
    bool has_status;       /* a writable byte exists for the status */
    uint64_t status_gpa;
    int status;            /* -1: do the I/O; else complete at once with it */
};

/* Parse chain 'c' of queue 'q' against a disk of 'capacity' sectors. */
void virtio_blk_parse(const struct virtq *q, const struct virtq_chain *c, uint64_t capacity,
                      bool read_only, bool discard_ok, struct blk_parsed *out);
/* iovecs over 'len' bytes from 'offset' of the readable (or writable)
 * stream; returns their number, or -1 if they do not fit in 'max'. */
int virtio_blk_chain_iov(const struct virtq *q, const struct virtq_chain *c, bool writable,
                         uint64_t offset, uint64_t len, struct iovec *iov, int max);

struct blk_request {
    struct blockfile_req io; /* first: the backend hands it back */
    struct virtio_blk *blk;
    uint64_t generation;     /* the device's, when issued: stale after a reset */
    uint16_t head;
    uint32_t used_len;
    uint64_t status_gpa;
    bool in_use;
    struct iovec iov[VIRTQ_MAX_CHAIN];
};

struct virtio_blk_stats {
    uint64_t reads, writes, flushes, discards, bytes_read, bytes_written, errors, updates;
};

struct virtio_blk {
    struct virtio_dev vdev;
    struct blockfile file;
    struct evloop *loop;
    char id[VIRTIO_BLK_ID_BYTES];
    uint64_t capacity;       /* 512-byte sectors */
    uint32_t blk_size;
    bool no_flush;           /* VIRTIO_BLK_F_FLUSH not offered (cache_type Unsafe) */
    uint64_t generation;
    struct blk_request reqs[VIRTIO_BLK_QUEUE_SIZE];
    struct virtio_blk_stats stats;
    struct rate_limiter limiter; /* Firecracker's rate_limiter: requests wait, never fail */
};

/* Takes over an opened image; registers its completions with 'loop'. */
int virtio_blk_init(struct virtio_blk *blk, const struct guest_mem *gm,
                    const struct blockfile *file, const char *id, struct evloop *loop)
    EMBER_MUST_CHECK;
void virtio_blk_destroy(struct virtio_blk *blk);
/* Switch to another opened image (the VM is running): in-flight requests
 * finish on the old one, which is then closed, and the driver is told about
 * the new capacity. */
int virtio_blk_replace_file(struct virtio_blk *blk, const struct blockfile *file)
    EMBER_MUST_CHECK;

/* Set (at setup) or change (PATCH /drives, VM running) the disk's rate
 * limiter; takes the device's lock. */
int virtio_blk_set_rate_limit(struct virtio_blk *blk, const struct rate_limit_config *cfg)
    EMBER_MUST_CHECK;

/* One disk per configured drive, vda first, each taking over its opened
 * image (b->backends). */
int virtio_blk_board_setup(struct board *b) EMBER_MUST_CHECK;
/* The board's index-th disk, or NULL. */
struct virtio_blk *virtio_blk_on_board(const struct board *b, unsigned index);

#endif

/* A raw disk image with asynchronous I/O through io_uring: reads, writes,
 * data flushes and fallocate-based discards run in the kernel while the
 * caller's thread goes on; completions are reaped when the eventfd fires.
 * The image is locked (shared for read-only, exclusive otherwise) so two VMs
 * never write one image. */
#ifndef EMBER_VIRTIO_BACKENDS_BLOCKFILE_H
#define EMBER_VIRTIO_BACKENDS_BLOCKFILE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/err.h"

struct blockfile_req;
typedef void (*blockfile_done_fn)(struct blockfile_req *req, int result);

enum blockfile_op { BF_READ, BF_WRITE, BF_FLUSH, BF_ZERO, BF_ZERO_UNMAP };

/* Embedded in the caller's request; valid until 'done' runs. */
struct blockfile_req {
    blockfile_done_fn done;
    enum blockfile_op op;
    const struct iovec *iov;
    int iovcnt;
    uint64_t offset;
    uint64_t length;  /* bytes the operation must cover */
    void *bounce;     /* O_DIRECT: aligned copy of misaligned guest buffers */
};

struct blockfile {
    int fd;
    char path[256];
    uint64_t size;
    bool read_only;
    bool direct;
    bool can_punch;   /* FALLOC_FL_PUNCH_HOLE works on this file */
    bool zero_range_unsupported; /* learned on first use */
    unsigned alignment; /* O_DIRECT buffer and offset alignment */
    struct io_uring ring;
    bool ring_ready;
    int event_fd;     /* readable when completions are waiting */
    unsigned inflight;
};

int blockfile_open(struct blockfile *bf, const char *path, bool read_only, bool direct)
    EMBER_MUST_CHECK;
void blockfile_close(struct blockfile *bf);

/* Queue 'req' (BF_READ/BF_WRITE: iov over [offset, offset+length); BF_FLUSH:
 * after every earlier request; BF_ZERO/BF_ZERO_UNMAP: make the range read as
 * zeros, keeping or releasing its space). 0, or a negative errno and 'done'
 * will not be called. */
int blockfile_queue(struct blockfile *bf, struct blockfile_req *req) EMBER_MUST_CHECK;
/* Submit everything queued; then reap finished requests (calls 'done'). */
void blockfile_submit(struct blockfile *bf);
void blockfile_reap(struct blockfile *bf);
/* Wait for every request in flight to complete (their 'done' runs). */
int blockfile_drain(struct blockfile *bf) EMBER_MUST_CHECK;

#endif

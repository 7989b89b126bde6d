/* virtio-fs (device ID 26): a host directory shared with the guest, which
 * mounts it with 'mount -t virtiofs TAG DIR'. The device is the glue: its
 * configuration (the tag, one request queue), a high-priority queue (FORGET)
 * and a request queue whose chains go, as iovecs over guest memory, to a
 * small pool of worker threads running the FUSE server
 * (backends/fs_server.h) — so a slow host file stalls neither a vCPU nor the
 * event loop, nor the other requests. Workers push their answers under the
 * device's lock; a reset or pause waits until none is in progress. */
#ifndef EMBER_VIRTIO_FS_H
#define EMBER_VIRTIO_FS_H

#include <sys/uio.h>

#include "virtio/backends/fs_server.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_FS 26
/* A READ or WRITE is FSRV_MAX_PAGES pages plus its headers and arguments,
 * and the spec forbids a chain (indirect tables included) longer than the
 * queue: Linux 6.1's virtiofs does not check that itself. */
#define VIRTIO_FS_QUEUE_SIZE 512
/* Requests ember holds at once (the guest waits for a free one beyond). */
#define VIRTIO_FS_JOBS 256
#define VIRTIO_FS_REQUEST_BUFS (FSRV_MAX_PAGES + 4) /* + in/out headers, arguments */
_Static_assert(VIRTIO_FS_REQUEST_BUFS <= VIRTIO_FS_QUEUE_SIZE, "a request must fit the queue");
_Static_assert(VIRTIO_FS_REQUEST_BUFS <= VIRTQ_MAX_CHAIN, "a request must fit one chain");
#define VIRTIO_FS_WORKERS 2
#define VIRTIO_FS_CONFIG_SIZE 40 /* tag[36], num_request_queues */
/* Files a guest may know at once per share (ENFILE beyond; about 100 bytes
 * of ember's memory each). */
#define VIRTIO_FS_MAX_NODES (1u << 18)

struct virtio_fs_job {
    bool busy;
    unsigned queue;
    uint16_t head;
    int in_cnt, out_cnt;
    struct iovec iov[VIRTQ_MAX_CHAIN]; /* readable ones, then writable ones */
};

struct virtio_fs {
    struct virtio_dev vdev;
    struct fsrv *srv;
    char tag[CONFIG_FS_TAG_MAX];
    char id[48];
    /* The jobs and the queue of work, under vdev.lock. */
    struct virtio_fs_job jobs[VIRTIO_FS_JOBS];
    uint16_t pending[VIRTIO_FS_JOBS]; /* ring of job indices */
    unsigned pending_at, nr_pending, in_flight;
    bool starved[2];  /* a queue left chains for want of a job */
    bool stopping;
    struct fs_read_half *half; /* a large read's second half, for an idle worker */
    unsigned idle_workers;
    pthread_cond_t work, idle, half_done;
    pthread_t workers[VIRTIO_FS_WORKERS];
    unsigned nr_workers;
    uint64_t bad_chains;
    uint64_t reads_split; /* large reads two workers copied */
};

/* Serve 'c' (its directory opened here). */
int virtio_fs_init(struct virtio_fs *fs, const struct guest_mem *gm, const struct fs_config *c,
                   const struct fsrv_limits *limits) EMBER_MUST_CHECK;
/* READ's reader (fsrv_read_fn): a read of FS_SPLIT_MIN bytes or more is
 * copied by two workers at once, half each, when one is idle. */
#define FS_SPLIT_MIN (256u << 10)
ssize_t virtio_fs_read(void *fs, int fd, const struct iovec *iov, int cnt, off_t off);
/* Start the workers (once the device is on the board). */
int virtio_fs_start(struct virtio_fs *fs) EMBER_MUST_CHECK;
void virtio_fs_destroy(struct virtio_fs *fs);

/* One device per configured share. */
int virtio_fs_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

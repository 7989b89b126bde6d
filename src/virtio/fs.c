#include "virtio/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "util/log.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/util.h"
#include "virtio/attach.h"

#define FS_HIPRIO_QUEUE 0
#define FS_REQUEST_QUEUE 1
#define FS_NUM_QUEUES 2

/* --- the pool ---------------------------------------------------------------- */

static struct virtio_fs_job *job_alloc(struct virtio_fs *fs)
{
    for (unsigned i = 0; i < VIRTIO_FS_JOBS; i++) {
        if (!fs->jobs[i].busy) {
            fs->jobs[i].busy = true;
            return &fs->jobs[i];
        }
    }
    return NULL;
}

/* The chain's buffers as iovecs over guest memory (checked: the ring code
 * validated every range; a buffer that is no longer guest memory fails). */
static bool chain_to_job(const struct virtq *q, const struct virtq_chain *c,
                         struct virtio_fs_job *job)
{
    job->in_cnt = job->out_cnt = 0;
    for (unsigned i = 0; i < c->nr; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (!b->len)
            continue;
        bool writable = i >= c->nr_readable;
        void *p = writable ? gm_ptr_for_write(q->gm, b->gpa, b->len)
                           : gm_ptr(q->gm, b->gpa, b->len);
        if (!p)
            return false;
        job->iov[job->in_cnt + job->out_cnt] = (struct iovec){p, b->len};
        if (writable)
            job->out_cnt++;
        else
            job->in_cnt++;
    }
    return true;
}

static enum virtio_chain_result take_chain(struct virtio_dev *vdev, struct virtq *q,
                                           const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_fs *fs = vdev->model;
    unsigned qi = (unsigned)(q - vdev->queues);
    struct virtio_fs_job *job = job_alloc(fs);
    if (!job) {
        fs->starved[qi] = true; /* a worker drains again when a job frees */
        return VIRTIO_CHAIN_RETRY;
    }
    if (!chain_to_job(q, chain, job)) {
        job->busy = false;
        fs->bad_chains++;
        *written = 0;
        return VIRTIO_CHAIN_USED;
    }
    job->queue = qi;
    job->head = chain->head;
    fs->pending[(fs->pending_at + fs->nr_pending) % VIRTIO_FS_JOBS] =
        (uint16_t)(job - fs->jobs);
    fs->nr_pending++;
    fs->in_flight++;
    pthread_cond_signal(&fs->work);
    return VIRTIO_CHAIN_HELD;
}

static void fs_queue_notify(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_fs *fs = vdev->model;
    fs->starved[q] = false;
    virtio_dev_drain_queue(vdev, q, take_chain);
}

/* A worker finished 'job' (lock held): answer the guest. */
static void complete(struct virtio_fs *fs, struct virtio_fs_job *job, size_t written)
{
    struct virtq *q = &fs->vdev.queues[job->queue];
    /* Stopping: the transport may be gone already (the board tears down). */
    if (!fs->stopping && virtio_dev_live(&fs->vdev)) {
        if (virtq_push(q, job->head, (uint32_t)written))
            virtio_dev_queue_broken(&fs->vdev, job->queue);
        else
            virtio_dev_notify(&fs->vdev, job->queue);
    }
    job->busy = false;
    if (--fs->in_flight == 0)
        pthread_cond_broadcast(&fs->idle);
    for (unsigned qi = 0; !fs->stopping && qi < FS_NUM_QUEUES; qi++)
        if (fs->starved[qi] && virtio_dev_queue_running(&fs->vdev, qi))
            fs_queue_notify(&fs->vdev, qi);
}

static void note_written(struct virtio_fs *fs, const struct virtio_fs_job *job, size_t written)
{
    for (int i = job->in_cnt; i < job->in_cnt + job->out_cnt && written; i++) {
        size_t n = MIN(written, job->iov[i].iov_len);
        gm_note_written(fs->vdev.gm, job->iov[i].iov_base, n);
        written -= n;
    }
}

/* --- large reads on two threads ---------------------------------------------- */

/* Copying a large READ into guest memory is most of its cost (in the nested
 * harness 2.6 of the 4.2 ms a 1 MiB read() takes with cache=never), and a
 * direct read() sends its requests one at a time: an idle worker copying
 * half of one is the only parallelism there is. */
struct fs_read_half {
    int fd;
    const struct iovec *iov;
    int cnt;
    off_t off;
    ssize_t got;
    int err;
    bool taken, done;
};

static void read_half(struct fs_read_half *h)
{
    h->got = preadv(h->fd, h->iov, h->cnt, h->off);
    h->err = h->got < 0 ? errno : 0;
}

/* Lock held: a worker with nothing queued copies a waiting half. */
static void help_with_half(struct virtio_fs *fs)
{
    struct fs_read_half *h = fs->half;
    fs->half = NULL;
    h->taken = true;
    pthread_mutex_unlock(&fs->vdev.lock);
    read_half(h);
    pthread_mutex_lock(&fs->vdev.lock);
    h->done = true;
    pthread_cond_broadcast(&fs->half_done);
}

ssize_t virtio_fs_read(void *ctx, int fd, const struct iovec *iov, int cnt, off_t off)
{
    struct virtio_fs *fs = ctx;
    int split = cnt / 2;
    size_t first = 0, total = 0;
    for (int i = 0; i < cnt; i++) {
        total += iov[i].iov_len;
        if (i < split)
            first += iov[i].iov_len;
    }
    if (total < FS_SPLIT_MIN || split == 0)
        return preadv(fd, iov, cnt, off);
    struct fs_read_half h = {.fd = fd, .iov = iov + split, .cnt = cnt - split,
                             .off = off + (off_t)first};
    pthread_mutex_lock(&fs->vdev.lock);
    bool shared = fs->idle_workers && !fs->half && !fs->stopping;
    if (shared) {
        fs->half = &h;
        pthread_cond_signal(&fs->work);
    }
    pthread_mutex_unlock(&fs->vdev.lock);
    if (!shared)
        return preadv(fd, iov, cnt, off);
    ssize_t got = preadv(fd, iov, split, off);
    int err = errno;
    pthread_mutex_lock(&fs->vdev.lock);
    if (fs->half == &h)
        fs->half = NULL; /* nobody came for it */
    while (h.taken && !h.done)
        pthread_cond_wait(&fs->half_done, &fs->vdev.lock);
    fs->reads_split += h.taken;
    pthread_mutex_unlock(&fs->vdev.lock);
    if (!h.taken)
        read_half(&h);
    if (got < 0) {
        errno = err;
        return -1;
    }
    /* preadv's contract: the second half counts only after a whole first
     * (an end of file or an error there leaves a short read). */
    return (size_t)got < first || h.got <= 0 ? got : got + h.got;
}

/* --- the workers ---------------------------------------------------------------- */

static void *worker(void *arg)
{
    struct virtio_fs *fs = arg;
    seccomp_enter_or_exit(SECCOMP_FS);
    pthread_mutex_lock(&fs->vdev.lock);
    for (;;) {
        while (!fs->stopping && !fs->nr_pending && !fs->half) {
            fs->idle_workers++;
            pthread_cond_wait(&fs->work, &fs->vdev.lock);
            fs->idle_workers--;
        }
        if (fs->stopping)
            break;
        if (fs->half) { /* it holds up a request already running */
            help_with_half(fs);
            continue;
        }
        struct virtio_fs_job *job = &fs->jobs[fs->pending[fs->pending_at]];
        fs->pending_at = (fs->pending_at + 1) % VIRTIO_FS_JOBS;
        fs->nr_pending--;
        pthread_mutex_unlock(&fs->vdev.lock);
        size_t written = fsrv_handle(fs->srv, job->iov, job->in_cnt, job->iov + job->in_cnt,
                                     job->out_cnt);
        note_written(fs, job, written);
        pthread_mutex_lock(&fs->vdev.lock);
        complete(fs, job, written);
    }
    pthread_mutex_unlock(&fs->vdev.lock);
    return NULL;
}

/* Lock held: until no request is queued or running. */
static void wait_idle(struct virtio_fs *fs)
{
    while (fs->in_flight)
        pthread_cond_wait(&fs->idle, &fs->vdev.lock);
}

/* --- the device ------------------------------------------------------------------ */

static uint64_t fs_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0; /* no notification queue, no DAX window */
}

static void fs_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
    struct virtio_fs *fs = vdev->model;
    uint8_t cfg[VIRTIO_FS_CONFIG_SIZE] = {0};
    memcpy(cfg, fs->tag, sizeof(fs->tag));
    le32_store(cfg + 36, 1); /* num_request_queues */
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

static void fs_reset(struct virtio_dev *vdev)
{
    struct virtio_fs *fs = vdev->model;
    wait_idle(fs); /* nothing may write into rings the driver takes back */
    fs->starved[0] = fs->starved[1] = false;
    fsrv_reset(fs->srv); /* the next driver starts with INIT and the root */
}

/* (On resume the transport looks at every queue once.) */
static void fs_pause(struct virtio_dev *vdev, bool paused)
{
    if (paused)
        wait_idle(vdev->model);
}

static void fs_save(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_fs *fs = vdev->model;
    wait_idle(fs);
    char tag[CONFIG_FS_TAG_MAX + 1] = {0};
    memcpy(tag, fs->tag, sizeof(fs->tag));
    rec_put_str(r, "tag", tag);
    fsrv_save(fs->srv, rec_put_child(r, "server"));
}

static int fs_load(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_fs *fs = vdev->model;
    char tag[CONFIG_FS_TAG_MAX + 1];
    struct rec server;
    int ret = rec_get_str(r, "tag", tag, sizeof(tag));
    if (!ret && strncmp(tag, fs->tag, sizeof(fs->tag)))
        ret = err_set(-EINVAL, "the snapshot's share is tagged '%s'", tag);
    if (!ret)
        ret = rec_get_child(r, "server", &server);
    if (!ret)
        ret = fsrv_load(fs->srv, server);
    return ret ? err_prefix(ret, "virtio-fs %s", fs->id) : 0;
}

static size_t fs_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    struct virtio_fs *fs = vdev->model;
    struct fsrv_stats st;
    fsrv_get_stats(fs->srv, &st);
    const struct device_counter c[] = {
        {"request_count", st.requests},     {"request_fails", st.errors},
        {"read_bytes", st.bytes_read},      {"write_bytes", st.bytes_written},
        {"refused_names", st.refused_escapes}, {"open_nodes", st.nodes},
        {"open_handles", st.handles},       {"bad_chains", fs->bad_chains},
        {"reads_split", fs->reads_split},
        {"node_fds", st.node_fds},          {"node_reopens", st.reopens},
        {"node_closes", st.evictions},      {"stale_nodes", st.stale},
    };
    _Static_assert(ARRAY_SIZE(c) <= DEVICE_MAX_COUNTERS, "too many counters");
    memcpy(out, c, sizeof(c));
    return ARRAY_SIZE(c);
}

static void fs_destroy(struct virtio_dev *vdev)
{
    struct virtio_fs *fs = vdev->model;
    virtio_fs_destroy(fs);
    free(fs);
}

static const struct virtio_device_ops fs_ops = {
    .name = "fs",
    .device_id = VIRTIO_ID_FS,
    .num_queues = FS_NUM_QUEUES,
    .queue_max_size = VIRTIO_FS_QUEUE_SIZE,
    .config_size = VIRTIO_FS_CONFIG_SIZE,
    .features = fs_features,
    .config_read = fs_config_read,
    .queue_notify = fs_queue_notify,
    .reset = fs_reset,
    .pause = fs_pause,
    .save = fs_save,
    .load = fs_load,
    .counters = fs_counters,
    .destroy = fs_destroy,
};

int virtio_fs_init(struct virtio_fs *fs, const struct guest_mem *gm, const struct fs_config *c,
                   const struct fsrv_limits *limits)
{
    memset(fs, 0, sizeof(*fs));
    int ret = fsrv_open(&fs->srv, c->path, c->read_only, c->cache, limits);
    if (ret)
        return ret;
    memcpy(fs->tag, c->tag, strnlen(c->tag, sizeof(fs->tag)));
    snprintf(fs->id, sizeof(fs->id), "%s", c->id ? c->id : c->tag);
    pthread_cond_init(&fs->work, NULL);
    pthread_cond_init(&fs->idle, NULL);
    pthread_cond_init(&fs->half_done, NULL);
    fsrv_set_reader(fs->srv, virtio_fs_read, fs);
    virtio_dev_init(&fs->vdev, &fs_ops, fs, gm);
    return 0;
}

int virtio_fs_start(struct virtio_fs *fs)
{
    for (unsigned i = 0; i < VIRTIO_FS_WORKERS; i++) {
        int e = thread_create(&fs->workers[i], worker, fs);
        if (e)
            return err_errno(-e, "virtio-fs: cannot start a worker");
        fs->nr_workers++;
    }
    return 0;
}

void virtio_fs_destroy(struct virtio_fs *fs)
{
    pthread_mutex_lock(&fs->vdev.lock);
    fs->stopping = true;
    pthread_cond_broadcast(&fs->work);
    pthread_mutex_unlock(&fs->vdev.lock);
    for (unsigned i = 0; i < fs->nr_workers; i++)
        pthread_join(fs->workers[i], NULL);
    fs->nr_workers = 0;
    fsrv_close(fs->srv);
    fs->srv = NULL;
    pthread_cond_destroy(&fs->work);
    pthread_cond_destroy(&fs->idle);
    pthread_cond_destroy(&fs->half_done);
    virtio_dev_destroy(&fs->vdev);
}

/* --- on the board -------------------------------------------------------------------- */

/* Each share may hold a share of the descriptors ember may open (raised to
 * the hard limit): three quarters for the nodes' O_PATH descriptors (the
 * least recently used closed beyond), a quarter for open files. The nodes
 * themselves (a name and an inode number each, not a descriptor) are
 * bounded by memory alone. */
static int share_limits(unsigned nr_shares, struct fsrv_limits *out)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the budget below follows */
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    const rlim_t reserve = 512; /* ember's own descriptors: disks, sockets, ... */
    rlim_t budget = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) / nr_shares : 0;
    if (budget > 1u << 20)
        budget = 1u << 20;
    if (budget < 64)
        return err_set(-EMFILE, "virtio-fs: too few file descriptors (ulimit -n %llu) for %u "
                                "shares", (unsigned long long)rl.rlim_cur, nr_shares);
    out->max_nodes = VIRTIO_FS_MAX_NODES;
    out->max_open = (unsigned)MIN(budget * 3 / 4, (rlim_t)65536);
    out->max_handles = (unsigned)MIN(budget / 4, (rlim_t)4096);
    return 0;
}

int virtio_fs_board_setup(struct board *b)
{
    if (!b->cfg->nr_shares)
        return 0;
    struct fsrv_limits limits;
    int ret = share_limits(b->cfg->nr_shares, &limits);
    for (unsigned i = 0; !ret && i < b->cfg->nr_shares; i++) {
        const struct fs_config *c = &b->cfg->shares[i];
        struct virtio_fs *fs = calloc(1, sizeof(*fs));
        if (!fs)
            return err_set(-ENOMEM, "out of memory");
        if ((ret = virtio_fs_init(fs, b->mem, c, &limits))) {
            free(fs);
            return ret; /* the message names the directory */
        }
        char metrics[80];
        snprintf(metrics, sizeof(metrics), "fs_%s", fs->id);
        if ((ret = virtio_attach(b, &fs->vdev, metrics)) || (ret = virtio_fs_start(fs)))
            return err_prefix(ret, "share %s", c->path);
    }
    return ret;
}

#include "virtio/blk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"

#define BLK_HEADER_SIZE 16
#define BLK_SEGMENT_SIZE 16
#define BLK_CONFIG_SIZE 60
/* Data segments per request, the header and status around them: 256 in all. */
#define BLK_SEG_MAX 254
_Static_assert(BLK_SEG_MAX + 2 <= VIRTQ_MAX_CHAIN, "a request must fit one chain");

/* --- parsing (pure: guest memory in, decision out) ----------------------- */

static bool range_ok(uint64_t capacity, uint64_t sector, uint64_t sectors)
{
    return sector <= capacity && sectors <= capacity - sector;
}

static void parse_zero_op(const struct virtq *q, const struct virtq_chain *c, uint64_t capacity,
                          struct blk_parsed *p)
{
    uint64_t payload = c->readable_bytes - BLK_HEADER_SIZE;
    /* One segment per request, as the configuration space says. */
    if (payload != BLK_SEGMENT_SIZE) {
        p->status = VIRTIO_BLK_S_IOERR;
        return;
    }
    uint8_t seg[BLK_SEGMENT_SIZE];
    if (virtq_chain_read(q, c, BLK_HEADER_SIZE, seg, sizeof(seg)) != sizeof(seg)) {
        p->status = VIRTIO_BLK_S_IOERR;
        return;
    }
    uint64_t sector = le64_load(seg);
    uint32_t sectors = le32_load(seg + 8), flags = le32_load(seg + 12);
    bool zeroes = p->type == VIRTIO_BLK_T_WRITE_ZEROES;
    if (flags & ~(zeroes ? 1u : 0u)) {
        p->status = VIRTIO_BLK_S_UNSUPP;
        return;
    }
    if (sectors == 0 || sectors > VIRTIO_BLK_MAX_ZERO_SECTORS ||
        !range_ok(capacity, sector, sectors)) {
        p->status = VIRTIO_BLK_S_IOERR;
        return;
    }
    p->sector = sector;
    p->data_len = (uint64_t)sectors * VIRTIO_BLK_SECTOR;
    p->unmap = zeroes ? (flags & 1) : true;
}

static void parse_rw(const struct virtq_chain *c, uint64_t capacity, bool read_only,
                     struct blk_parsed *p)
{
    bool out = p->type == VIRTIO_BLK_T_OUT;
    p->data_len = out ? c->readable_bytes - BLK_HEADER_SIZE : c->writable_bytes - 1;
    if (out && read_only)
        p->status = VIRTIO_BLK_S_IOERR;
    else if (p->data_len % VIRTIO_BLK_SECTOR ||
             !range_ok(capacity, p->sector, p->data_len / VIRTIO_BLK_SECTOR))
        p->status = VIRTIO_BLK_S_IOERR;
    else if (p->data_len == 0)
        p->status = VIRTIO_BLK_S_OK; /* nothing to move */
}

void virtio_blk_parse(const struct virtq *q, const struct virtq_chain *c, uint64_t capacity,
                      bool read_only, bool discard_ok, struct blk_parsed *p)
{
    memset(p, 0, sizeof(*p));
    p->status = -1;
    /* The status byte is the last byte the device may write. */
    for (unsigned i = c->nr; i > c->nr_readable; i--) {
        const struct virtq_buf *b = &c->bufs[i - 1];
        if (b->len) {
            p->has_status = true;
            p->status_gpa = b->gpa + b->len - 1;
            break;
        }
    }
    uint8_t hdr[BLK_HEADER_SIZE];
    if (!p->has_status || c->readable_bytes < BLK_HEADER_SIZE ||
        virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
        p->status = VIRTIO_BLK_S_IOERR;
        return;
    }
    p->type = le32_load(hdr);
    p->sector = le64_load(hdr + 8);
    switch (p->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        parse_rw(c, capacity, read_only, p);
        break;
    case VIRTIO_BLK_T_FLUSH:
    case VIRTIO_BLK_T_GET_ID:
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        if (!discard_ok)
            p->status = read_only ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP;
        else
            parse_zero_op(q, c, capacity, p);
        break;
    default:
        p->status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
}

int virtio_blk_chain_iov(const struct virtq *q, const struct virtq_chain *c, bool writable,
                         uint64_t offset, uint64_t len, struct iovec *iov, int max)
{
    unsigned first = writable ? c->nr_readable : 0, end = writable ? c->nr : c->nr_readable;
    int n = 0;
    for (unsigned i = first; i < end && len; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        uint64_t take = MIN(len, b->len - offset);
        void *p = writable ? gm_ptr_for_write(q->gm, b->gpa + offset, take)
                           : gm_ptr(q->gm, b->gpa + offset, take);
        if (!p || n == max)
            return -1;
        iov[n++] = (struct iovec){p, (size_t)take};
        len -= take;
        offset = 0;
    }
    return len ? -1 : n;
}

/* --- the device ---------------------------------------------------------- */

static struct blk_request *request_alloc(struct virtio_blk *blk)
{
    for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
        if (!blk->reqs[i].in_use) {
            blk->reqs[i].in_use = true;
            return &blk->reqs[i];
        }
    }
    return NULL;
}

/* Free the request and write its status byte: false if that byte is no
 * longer guest memory (the queue is then broken). */
static bool settle(struct virtio_blk *blk, struct blk_request *r, int status)
{
    struct virtq *q = &blk->vdev.queues[0];
    r->in_use = false;
    if (status != VIRTIO_BLK_S_OK)
        blk->stats.errors++;
    uint8_t s = (uint8_t)status;
    if (!gm_write(q->gm, r->status_gpa, &s, 1))
        return true;
    virtq_mark_broken(q, "status byte outside guest memory");
    return false;
}

/* An asynchronous request completed. */
static void finish(struct virtio_blk *blk, struct blk_request *r, int status)
{
    struct virtq *q = &blk->vdev.queues[0];
    if (r->generation != blk->generation || !virtio_dev_live(&blk->vdev)) {
        r->in_use = false; /* issued before a reset: the rings are no longer ours */
        return;
    }
    if (!settle(blk, r, status) || virtq_push(q, r->head, r->used_len))
        virtio_dev_queue_broken(&blk->vdev, 0);
    else if (blk->vdev.paused) /* draining for a pause: tell the guest now */
        virtio_dev_notify(&blk->vdev, 0);
}

static void on_io_done(struct blockfile_req *io, int result)
{
    struct blk_request *r = (struct blk_request *)io;
    struct virtio_blk *blk = r->blk;
    for (int i = 0; io->op == BF_READ && i < io->iovcnt; i++)
        gm_note_written(blk->vdev.gm, io->iov[i].iov_base, io->iov[i].iov_len);
    if (result < 0)
        log_guest("disk %s: I/O error at byte %llu: %s", blk->file.path,
                  (unsigned long long)io->offset, strerror(-result));
    finish(blk, r, result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void count(struct virtio_blk *blk, const struct blk_parsed *p)
{
    switch (p->type) {
    case VIRTIO_BLK_T_IN: blk->stats.reads++; blk->stats.bytes_read += p->data_len; break;
    case VIRTIO_BLK_T_OUT: blk->stats.writes++; blk->stats.bytes_written += p->data_len; break;
    case VIRTIO_BLK_T_FLUSH: blk->stats.flushes++; break;
    default: blk->stats.discards++; break;
    }
}

/* Turn a parsed request into backend I/O; returns a status to complete
 * with at once, or -1 if the backend now owns the request. */
static int issue(struct virtio_blk *blk, struct blk_request *r, const struct virtq_chain *c,
                 const struct blk_parsed *p)
{
    const struct virtq *q = &blk->vdev.queues[0];
    struct blockfile_req *io = &r->io;
    memset(io, 0, sizeof(*io));
    io->done = on_io_done;
    io->offset = p->sector * VIRTIO_BLK_SECTOR;
    io->length = p->data_len;
    switch (p->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool in = p->type == VIRTIO_BLK_T_IN;
        int n = virtio_blk_chain_iov(q, c, in, in ? 0 : BLK_HEADER_SIZE, p->data_len,
                                     r->iov, VIRTQ_MAX_CHAIN);
        if (n < 0)
            return VIRTIO_BLK_S_IOERR;
        io->op = in ? BF_READ : BF_WRITE;
        io->iov = r->iov;
        io->iovcnt = n;
        if (in)
            r->used_len += (uint32_t)p->data_len;
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        io->op = BF_FLUSH;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = (size_t)MIN(c->writable_bytes - 1, (uint64_t)VIRTIO_BLK_ID_BYTES);
        r->used_len += (uint32_t)virtq_chain_write(q, c, 0, blk->id, n);
        return VIRTIO_BLK_S_OK;
    }
    default:
        io->op = p->unmap ? BF_ZERO_UNMAP : BF_ZERO;
        break;
    }
    count(blk, p);
    int ret = blockfile_queue(&blk->file, io);
    if (ret == -EROFS || ret == -EINVAL)
        return VIRTIO_BLK_S_IOERR;
    if (ret == -EOPNOTSUPP)
        return VIRTIO_BLK_S_UNSUPP;
    return ret ? VIRTIO_BLK_S_IOERR : -1;
}

static bool discard_enabled(const struct virtio_blk *blk, uint32_t type)
{
    unsigned bit = type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
    return virtio_dev_has_feature(&blk->vdev, bit);
}

/* Pay the rate limiter for a request: one operation, and its bytes for
 * reads and writes. False: not now (the limiter's timer resumes the queue). */
static bool pay(struct virtio_blk *blk, const struct blk_parsed *p)
{
    if (!rate_limiter_active(&blk->limiter) || p->status >= 0)
        return true; /* requests completed at once cost nothing */
    bool rw = p->type == VIRTIO_BLK_T_IN || p->type == VIRTIO_BLK_T_OUT;
    uint64_t bytes = rw ? p->data_len : 0;
    if (bytes && !rate_limiter_consume(&blk->limiter, bytes, RATE_BYTES))
        return false;
    if (rate_limiter_consume(&blk->limiter, 1, RATE_OPS))
        return true;
    if (bytes) /* refused by the other bucket: the bytes were not used */
        rate_limiter_replenish(&blk->limiter, bytes, RATE_BYTES);
    return false;
}

/* Start one request; the chain comes back at once or when its I/O ends. */
static enum virtio_chain_result start_request(struct virtio_dev *vdev, struct virtq *q,
                                              const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_blk *blk = vdev->model;
    struct blk_request *r = request_alloc(blk);
    if (!r)
        return VIRTIO_CHAIN_RETRY; /* resumed when a request completes */
    struct blk_parsed p;
    virtio_blk_parse(q, chain, blk->capacity, blk->file.read_only, !blk->file.read_only, &p);
    if (p.type == VIRTIO_BLK_T_DISCARD || p.type == VIRTIO_BLK_T_WRITE_ZEROES)
        if (p.status < 0 && !discard_enabled(blk, p.type))
            p.status = VIRTIO_BLK_S_UNSUPP;
    if (!p.has_status) {
        /* Nowhere to report: give the chain back untouched. */
        r->in_use = false;
        blk->stats.errors++;
        return VIRTIO_CHAIN_USED;
    }
    if (!pay(blk, &p)) {
        r->in_use = false;
        return VIRTIO_CHAIN_RETRY; /* the chain stays in the ring */
    }
    r->blk = blk;
    r->generation = blk->generation;
    r->head = chain->head;
    r->status_gpa = p.status_gpa;
    r->used_len = 1; /* the status byte */
    int status = p.status >= 0 ? p.status : issue(blk, r, chain, &p);
    if (status < 0)
        return VIRTIO_CHAIN_HELD;
    *written = r->used_len;
    settle(blk, r, status);
    return VIRTIO_CHAIN_USED;
}

/* Start requests until the queue is empty or requests run out. */
static void process(struct virtio_blk *blk)
{
    virtio_dev_drain_queue(&blk->vdev, 0, start_request);
    blockfile_submit(&blk->file);
}

static void blk_queue_notify(struct virtio_dev *vdev, unsigned q)
{
    (void)q;
    process(vdev->model);
}

/* The rate limiter's timer: tokens have refilled, look at the queue again. */
static void blk_unthrottled(void *ctx)
{
    struct virtio_blk *blk = ctx;
    pthread_mutex_lock(&blk->vdev.lock);
    rate_limiter_timer_done(&blk->limiter);
    if (virtio_dev_queue_running(&blk->vdev, 0))
        process(blk);
    pthread_mutex_unlock(&blk->vdev.lock);
}

int virtio_blk_set_rate_limit(struct virtio_blk *blk, const struct rate_limit_config *cfg)
{
    pthread_mutex_lock(&blk->vdev.lock);
    int ret = rate_limiter_update(&blk->limiter, cfg);
    pthread_mutex_unlock(&blk->vdev.lock);
    return ret;
}

static void blk_on_completion(void *ctx, uint32_t events)
{
    struct virtio_blk *blk = ctx;
    (void)events;
    pthread_mutex_lock(&blk->vdev.lock);
    blockfile_reap(&blk->file);
    if (virtio_dev_queue_running(&blk->vdev, 0))
        process(blk); /* pushes completions' interrupt, picks up waiting work */
    pthread_mutex_unlock(&blk->vdev.lock);
}

static uint64_t blk_features(struct virtio_dev *vdev)
{
    struct virtio_blk *blk = vdev->model;
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE);
    if (!blk->no_flush)
        f |= 1ull << VIRTIO_BLK_F_FLUSH;
    if (blk->file.read_only)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else if (blk->file.can_punch)
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    return f;
}

static void blk_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
    struct virtio_blk *blk = vdev->model;
    uint8_t cfg[BLK_CONFIG_SIZE] = {0};
    le64_store(cfg + 0, blk->capacity);
    le32_store(cfg + 12, BLK_SEG_MAX);
    le32_store(cfg + 20, blk->blk_size);
    uint32_t align = blk->blk_size / VIRTIO_BLK_SECTOR;
    le32_store(cfg + 36, VIRTIO_BLK_MAX_ZERO_SECTORS); /* max_discard_sectors */
    le32_store(cfg + 40, 1);                            /* max_discard_seg */
    le32_store(cfg + 44, align);                        /* discard_sector_alignment */
    le32_store(cfg + 48, VIRTIO_BLK_MAX_ZERO_SECTORS); /* max_write_zeroes_sectors */
    le32_store(cfg + 52, 1);                            /* max_write_zeroes_seg */
    cfg[56] = blk->file.can_punch;                      /* write_zeroes_may_unmap */
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

static void blk_reset(struct virtio_dev *vdev)
{
    struct virtio_blk *blk = vdev->model;
    blk->generation++; /* in-flight requests will not touch the new rings */
}

static void blk_pause(struct virtio_dev *vdev, bool paused)
{
    struct virtio_blk *blk = vdev->model;
    /* Completions land in the rings (the guest sees them later). */
    if (paused && blockfile_drain(&blk->file))
        log_error("%s; the guest will not see those requests complete", err_msg());
    evloop_modify(blk->loop, blk->file.event_fd, paused ? 0 : EPOLLIN);
}

static size_t blk_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_blk *blk = vdev->model;
    const struct virtio_blk_stats *st = &blk->stats;
    const struct device_counter c[] = {
        {"read_count", st->reads},       {"write_count", st->writes},
        {"read_bytes", st->bytes_read},  {"write_bytes", st->bytes_written},
        {"flush_count", st->flushes},    {"discard_count", st->discards},
        {"execute_fails", st->errors}, /* Firecracker's names */
        {"update_count", st->updates},
        {"rate_limiter_throttled_events", blk->limiter.throttled},
        {"rate_limiter_event_count", blk->limiter.events},
    };
    memcpy(out, c, sizeof(c));
    return ARRAY_SIZE(c);
}

static void blk_destroy(struct virtio_dev *vdev)
{
    struct virtio_blk *blk = vdev->model;
    virtio_blk_destroy(blk);
    free(blk);
}

static const struct virtio_device_ops blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_size = BLK_CONFIG_SIZE,
    .features = blk_features,
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .pause = blk_pause,
    .counters = blk_counters,
    .destroy = blk_destroy,
};

int virtio_blk_init(struct virtio_blk *blk, const struct guest_mem *gm,
                    const struct blockfile *file, const char *id, struct evloop *loop)
{
    memset(blk, 0, sizeof(*blk));
    blk->file = *file;
    blk->loop = loop;
    blk->capacity = file->size / VIRTIO_BLK_SECTOR;
    blk->blk_size = file->direct ? file->alignment : VIRTIO_BLK_SECTOR;
    /* GET_ID: up to 20 bytes, not NUL-terminated when all are used. */
    memcpy(blk->id, id, strnlen(id, sizeof(blk->id)));
    virtio_dev_init(&blk->vdev, &blk_ops, blk, gm);
    static const struct rate_limit_config unlimited;
    int ret = rate_limiter_init(&blk->limiter, &unlimited, loop, blk_unthrottled, blk);
    return ret ? ret : evloop_add(loop, blk->file.event_fd, EPOLLIN, blk_on_completion, blk);
}

int virtio_blk_replace_file(struct virtio_blk *blk, const struct blockfile *file)
{
    if (file->read_only != blk->file.read_only)
        return err_set(-EINVAL, "the new image must be %s like the old one",
                       blk->file.read_only ? "read-only" : "writable");
    pthread_mutex_lock(&blk->vdev.lock);
    /* Requests on the old image complete into the rings before it goes. */
    int ret = blockfile_drain(&blk->file);
    if (ret) {
        pthread_mutex_unlock(&blk->vdev.lock);
        return ret;
    }
    uint32_t events = blk->vdev.paused ? 0 : EPOLLIN;
    ret = evloop_add(blk->loop, file->event_fd, events, blk_on_completion, blk);
    if (ret) {
        pthread_mutex_unlock(&blk->vdev.lock);
        return ret;
    }
    evloop_remove(blk->loop, blk->file.event_fd);
    struct blockfile old = blk->file;
    blk->file = *file;
    blk->capacity = file->size / VIRTIO_BLK_SECTOR;
    blk->stats.updates++;
    if (virtio_dev_queue_running(&blk->vdev, 0))
        process(blk);
    if (blk->vdev.status & VIRTIO_STATUS_DRIVER_OK)
        virtio_dev_notify_config(&blk->vdev); /* the capacity may have changed */
    pthread_mutex_unlock(&blk->vdev.lock);
    blockfile_close(&old);
    return 0;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
    rate_limiter_destroy(&blk->limiter);
    evloop_remove(blk->loop, blk->file.event_fd);
    blockfile_close(&blk->file);
    virtio_dev_destroy(&blk->vdev);
}

/* --- on the board ---------------------------------------------------------- */

int virtio_blk_board_setup(struct board *b)
{
    for (unsigned i = 0; i < b->cfg->nr_disks; i++) {
        const struct disk_config *d = &b->cfg->disks[i];
        struct virtio_blk *blk = calloc(1, sizeof(*blk));
        if (!blk)
            return err_set(-ENOMEM, "out of memory");
        const char *id = d->id;
        if (!id) {
            const char *slash = strrchr(d->path, '/');
            id = slash ? slash + 1 : d->path;
        }
        b->backends.disk_taken[i] = true; /* the device closes it from now on */
        int ret = virtio_blk_init(blk, b->mem, &b->backends.disks[i], id, b->loop);
        blk->no_flush = d->no_flush;
        if (!ret)
            ret = virtio_blk_set_rate_limit(blk, &d->rate_limit);
        if (ret) {
            virtio_blk_destroy(blk);
            free(blk);
            return err_prefix(ret, "disk %s", d->path);
        }
        /* Named by the drive's id, or by the serial the guest reads. */
        char metrics[80];
        if (d->id)
            snprintf(metrics, sizeof(metrics), "block_%s", d->id);
        else
            snprintf(metrics, sizeof(metrics), "block_%.*s", VIRTIO_BLK_ID_BYTES, id);
        if ((ret = virtio_attach(b, &blk->vdev, metrics)))
            return err_prefix(ret, "disk %s", d->path);
    }
    return 0;
}

struct virtio_blk *virtio_blk_on_board(const struct board *b, unsigned index)
{
    return virtio_find(b, &blk_ops, index);
}

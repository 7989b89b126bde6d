#include "virtio/balloon.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"

#define BALLOON_QUEUE_SIZE 256
#define BALLOON_NUM_QUEUES 5     /* inflate, deflate, statistics, hinting, reporting */
#define BALLOON_MAX_PFNS 1024    /* per chain: bounds the work one request can cause */
#define BALLOON_STATS_BYTES (BALLOON_NR_STATS * 10)
#define BALLOON_CONFIG_SIZE 16   /* num_pages, actual, free_page_hint_cmd_id, poison_val */

static uint64_t balloon_features(struct virtio_dev *vdev)
{
    struct virtio_balloon *b = vdev->model;
    return (b->stats_interval_s ? 1ull << VIRTIO_BALLOON_F_STATS_VQ : 0) |
           (b->deflate_on_oom ? 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0) |
           (b->hinting_enabled ? 1ull << VIRTIO_BALLOON_F_FREE_PAGE_HINT : 0) |
           (b->reporting ? 1ull << VIRTIO_BALLOON_F_REPORTING : 0);
}

/* Drivers number only the queues their features call for. */
static void assign_roles(struct virtio_balloon *b)
{
    unsigned n = 0;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        b->roles[i] = BQ_NONE;
    b->roles[n++] = BQ_INFLATE;
    b->roles[n++] = BQ_DEFLATE;
    if (virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_STATS_VQ))
        b->roles[n++] = BQ_STATS;
    if (virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT))
        b->roles[n++] = BQ_HINTING;
    if (virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_REPORTING))
        b->roles[n++] = BQ_REPORTING;
}

static void balloon_config_read(struct virtio_dev *vdev, uint32_t offset, void *data,
                                unsigned len)
{
    struct virtio_balloon *b = vdev->model;
    uint8_t cfg[BALLOON_CONFIG_SIZE] = {0};
    le32_store(cfg, b->target_pages);
    le32_store(cfg + 4, b->actual_pages);
    le32_store(cfg + 8, b->hinting.host_cmd);
    memset(data, 0, len);
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN((size_t)len, sizeof(cfg) - offset));
}

static void balloon_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
                                 unsigned len)
{
    struct virtio_balloon *b = vdev->model;
    /* Only 'actual' is the driver's to write. */
    if (offset == 4 && len == 4)
        b->actual_pages = le32_load(data);
    else
        log_guest("balloon: %u-byte config write at %u ignored", len, offset);
}

/* Discard runs of consecutive page frames with one call each. */
static void discard_pages(struct virtio_balloon *b, const uint32_t *pfns, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 1;
        while (i + run < n && pfns[i + run] == pfns[i] + run)
            run++;
        uint64_t gpa = (uint64_t)pfns[i] * BALLOON_PAGE_SIZE;
        if (gm_discard(b->vdev.gm, gpa, run * BALLOON_PAGE_SIZE)) {
            b->discard_fails++;
            log_guest("balloon: pages at %#llx (%zu) are not guest RAM",
                      (unsigned long long)gpa, run);
        }
        i += run;
    }
}

static enum virtio_chain_result take_pfns(struct virtio_dev *vdev, struct virtq *q,
                                          const struct virtq_chain *chain, bool inflate)
{
    struct virtio_balloon *b = vdev->model;
    uint32_t raw[BALLOON_MAX_PFNS];
    size_t bytes = virtq_chain_read(q, chain, 0, raw, sizeof(raw));
    size_t n = bytes / sizeof(uint32_t);
    for (size_t i = 0; i < n; i++)
        raw[i] = le32_load(&raw[i]);
    if (inflate) {
        discard_pages(b, raw, n);
        b->inflated += n;
    } else {
        b->deflated += n; /* the guest takes them back by touching them */
    }
    return VIRTIO_CHAIN_USED;
}

static enum virtio_chain_result inflate_chain(struct virtio_dev *vdev, struct virtq *q,
                                              const struct virtq_chain *chain,
                                              uint32_t *written)
{
    *written = 0;
    return take_pfns(vdev, q, chain, true);
}

static enum virtio_chain_result deflate_chain(struct virtio_dev *vdev, struct virtq *q,
                                              const struct virtq_chain *chain,
                                              uint32_t *written)
{
    *written = 0;
    return take_pfns(vdev, q, chain, false);
}

/* A range of free guest memory the driver named: the whole pages in it are
 * discarded (a partial one may still hold the guest's data). Returns the
 * bytes discarded. */
static uint64_t discard_range(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
{
    const uint64_t mask = BALLOON_PAGE_SIZE - 1;
    if (gpa > UINT64_MAX - len - mask)
        return 0; /* wraps: no guest RAM is there anyway */
    uint64_t start = (gpa + mask) & ~mask, end = (gpa + len) & ~mask;
    if (end <= start)
        return 0;
    if (gm_discard(b->vdev.gm, start, end - start)) {
        b->discard_fails++;
        return 0;
    }
    return end - start;
}

/* Each buffer of a report is a range of free guest memory. */
static enum virtio_chain_result report_chain(struct virtio_dev *vdev, struct virtq *q,
                                             const struct virtq_chain *chain,
                                             uint32_t *written)
{
    (void)q;
    struct virtio_balloon *b = vdev->model;
    for (unsigned i = 0; i < chain->nr; i++)
        b->reported_bytes += discard_range(b, chain->bufs[i].gpa, chain->bufs[i].len);
    b->reports++;
    *written = 0;
    return VIRTIO_CHAIN_USED;
}

static void set_hint_cmd(struct virtio_balloon *b, uint32_t cmd)
{
    b->hinting.host_cmd = cmd;
    if (virtio_dev_live(&b->vdev))
        virtio_dev_notify_config(&b->vdev);
}

/* A chain is a command (readable, 4 bytes) or free blocks (writable). The
 * blocks are discarded only while the run they belong to is the host's
 * current one: once the host said DONE the guest may be using them again. */
static enum virtio_chain_result hint_chain(struct virtio_dev *vdev, struct virtq *q,
                                           const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_balloon *b = vdev->model;
    struct balloon_hinting *h = &b->hinting;
    *written = 0;
    uint8_t raw[4];
    if (chain->nr_readable) {
        if (chain->readable_bytes != 4 || virtq_chain_read(q, chain, 0, raw, 4) != 4) {
            log_guest("balloon: a %llu-byte hinting command ignored",
                      (unsigned long long)chain->readable_bytes);
            return VIRTIO_CHAIN_USED;
        }
        h->guest_cmd = le32_load(raw);
        h->has_guest_cmd = true;
        bool finished = h->guest_cmd == BALLOON_HINT_CMD_STOP ||
                        h->guest_cmd == BALLOON_HINT_CMD_DONE;
        if (finished && h->ack_on_stop && h->host_cmd >= 2)
            set_hint_cmd(b, BALLOON_HINT_CMD_DONE);
    }
    bool current = h->host_cmd >= 2 && h->has_guest_cmd && h->guest_cmd == h->host_cmd;
    for (unsigned i = chain->nr_readable; current && i < chain->nr; i++) {
        h->hinted_bytes += discard_range(b, chain->bufs[i].gpa, chain->bufs[i].len);
        h->hints++;
    }
    return VIRTIO_CHAIN_USED;
}

/* Tag/value pairs, 10 bytes each, packed little-endian. */
static enum virtio_chain_result stats_chain(struct virtio_dev *vdev, struct virtq *q,
                                            const struct virtq_chain *chain,
                                            uint32_t *written)
{
    struct virtio_balloon *b = vdev->model;
    uint8_t raw[BALLOON_STATS_BYTES];
    size_t bytes = virtq_chain_read(q, chain, 0, raw, sizeof(raw));
    for (size_t off = 0; off + 10 <= bytes; off += 10) {
        uint16_t tag = le16_load(raw + off);
        if (tag < BALLOON_NR_STATS) {
            b->stats[tag] = le64_load(raw + off + 2);
            b->stats_present |= (uint16_t)(1u << tag);
        }
    }
    b->stats_updates++;
    if (b->stats_held) /* a driver that lends two: give the older one back */
        virtq_push(q, b->stats_head, 0);
    b->stats_held = true;
    b->stats_head = chain->head;
    *written = 0;
    return VIRTIO_CHAIN_HELD;
}

static void balloon_queue_notify(struct virtio_dev *vdev, unsigned qi)
{
    struct virtio_balloon *b = vdev->model;
    static const virtio_chain_fn handlers[] = {
        [BQ_INFLATE] = inflate_chain,
        [BQ_DEFLATE] = deflate_chain,
        [BQ_STATS] = stats_chain,
        [BQ_HINTING] = hint_chain,
        [BQ_REPORTING] = report_chain,
    };
    enum balloon_queue_role role = qi < VIRTIO_MAX_QUEUES ? b->roles[qi] : BQ_NONE;
    if (role == BQ_NONE) {
        log_guest("balloon: notify of queue %u, which has no use", qi);
        return;
    }
    virtio_dev_drain_queue(vdev, qi, handlers[role]);
}

static int stats_queue(const struct virtio_balloon *b)
{
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        if (b->roles[i] == BQ_STATS)
            return (int)i;
    return -1;
}

static void request_stats_locked(struct virtio_balloon *b)
{
    int qi = stats_queue(b);
    if (!b->stats_held || qi < 0 || !virtio_dev_queue_running(&b->vdev, (unsigned)qi))
        return;
    b->stats_held = false;
    if (virtq_push(&b->vdev.queues[qi], b->stats_head, 0))
        virtio_dev_queue_broken(&b->vdev, (unsigned)qi);
    else
        virtio_dev_notify(&b->vdev, (unsigned)qi);
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
    pthread_mutex_lock(&b->vdev.lock);
    request_stats_locked(b);
    pthread_mutex_unlock(&b->vdev.lock);
}

/* Drivers add their first statistics buffer (and may add pages) before they
 * set DRIVER_OK, when their notify is not acted on: look at every queue. */
static int balloon_activate(struct virtio_dev *vdev)
{
    struct virtio_balloon *b = vdev->model;
    assign_roles(b);
    for (unsigned qi = 0; qi < BALLOON_NUM_QUEUES; qi++)
        if (b->roles[qi] != BQ_NONE && virtio_dev_queue_running(vdev, qi))
            balloon_queue_notify(vdev, qi);
    return 0;
}

static void balloon_reset(struct virtio_dev *vdev)
{
    struct virtio_balloon *b = vdev->model;
    b->stats_held = false;
    b->actual_pages = 0;
    b->hinting.has_guest_cmd = false;
    assign_roles(b);
}

static void arm_timer(struct virtio_balloon *b)
{
    if (b->stats_timer < 0)
        return;
    struct itimerspec its = {.it_interval = {b->stats_interval_s, 0},
                             .it_value = {b->stats_interval_s, 0}};
    timerfd_settime(b->stats_timer, 0, &its, NULL);
}

static void on_stats_timer(void *ctx, uint32_t events)
{
    (void)events;
    struct virtio_balloon *b = ctx;
    uint64_t expirations;
    if (read(b->stats_timer, &expirations, sizeof(expirations)) < 0)
        return;
    virtio_balloon_request_stats(b);
}

static size_t balloon_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    struct virtio_balloon *b = vdev->model;
    size_t n = 0;
    out[n++] = (struct device_counter){"inflate_count", b->inflated};
    out[n++] = (struct device_counter){"deflate_count", b->deflated};
    out[n++] = (struct device_counter){"stats_updates_count", b->stats_updates};
    out[n++] = (struct device_counter){"free_page_report_count", b->reports};
    out[n++] = (struct device_counter){"free_page_report_freed", b->reported_bytes};
    out[n++] = (struct device_counter){"free_page_hint_count", b->hinting.hints};
    out[n++] = (struct device_counter){"free_page_hint_freed", b->hinting.hinted_bytes};
    out[n++] = (struct device_counter){"discard_fails", b->discard_fails};
    return n;
}

static void balloon_save(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_balloon *b = vdev->model;
    rec_put_u64(r, "target_pages", b->target_pages);
    rec_put_u64(r, "actual_pages", b->actual_pages);
    rec_put_u64(r, "stats_interval_s", b->stats_interval_s);
    rec_put_bool(r, "stats_held", b->stats_held);
    rec_put_u64(r, "stats_head", b->stats_head);
    if (!b->hinting_enabled)
        return;
    struct rec h = rec_put_child(r, "hinting");
    rec_put_u64(h, "host_cmd", b->hinting.host_cmd);
    rec_put_u64(h, "last_run", b->hinting.last_run);
    rec_put_bool(h, "has_guest_cmd", b->hinting.has_guest_cmd);
    rec_put_u64(h, "guest_cmd", b->hinting.guest_cmd);
    rec_put_bool(h, "ack_on_stop", b->hinting.ack_on_stop);
}

static int load_hinting(struct rec r, struct balloon_hinting *h)
{
    int ret = rec_get_u32(r, "host_cmd", UINT32_MAX, &h->host_cmd);
    if (!ret)
        ret = rec_get_u32(r, "last_run", UINT32_MAX, &h->last_run);
    if (!ret)
        ret = rec_get_bool(r, "has_guest_cmd", &h->has_guest_cmd);
    if (!ret)
        ret = rec_get_u32(r, "guest_cmd", UINT32_MAX, &h->guest_cmd);
    if (!ret)
        ret = rec_get_bool(r, "ack_on_stop", &h->ack_on_stop);
    return ret ? err_prefix(ret, "hinting") : 0;
}

static int balloon_load(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_balloon *b = vdev->model;
    uint64_t target, actual, interval, head;
    bool held;
    int ret = rec_get_u64(r, "target_pages", UINT32_MAX, &target);
    if (!ret)
        ret = rec_get_u64(r, "actual_pages", UINT32_MAX, &actual);
    if (!ret)
        ret = rec_get_u64(r, "stats_interval_s", UINT32_MAX, &interval);
    if (!ret)
        ret = rec_get_bool(r, "stats_held", &held);
    if (!ret)
        ret = rec_get_u64(r, "stats_head", BALLOON_QUEUE_SIZE - 1, &head);
    if (!ret && (interval != 0) != (b->stats_interval_s != 0))
        ret = err_set(-EINVAL, "balloon: statistics are %s in the snapshot but %s here",
                      interval ? "on" : "off", b->stats_interval_s ? "on" : "off");
    struct balloon_hinting hinting = {0};
    struct rec h;
    if (!ret && rec_has(r, "hinting") != b->hinting_enabled)
        ret = err_set(-EINVAL, "free page hinting is %s in the snapshot but %s here",
                      b->hinting_enabled ? "off" : "on", b->hinting_enabled ? "on" : "off");
    if (!ret && b->hinting_enabled && !(ret = rec_get_child(r, "hinting", &h)))
        ret = load_hinting(h, &hinting);
    if (ret)
        return err_prefix(ret, "balloon");
    assign_roles(b);
    int qi = stats_queue(b);
    if (held && (qi < 0 || head >= vdev->queues[qi].size))
        return err_set(-EINVAL, "balloon: the held statistics buffer %llu is not in its queue",
                       (unsigned long long)head);
    b->target_pages = (uint32_t)target, b->actual_pages = (uint32_t)actual;
    b->stats_interval_s = (uint32_t)interval;
    b->stats_held = held, b->stats_head = (uint16_t)head;
    b->hinting = hinting;
    arm_timer(b);
    return 0;
}

void virtio_balloon_cleanup(struct virtio_balloon *b)
{
    if (b->stats_timer >= 0) {
        if (b->loop)
            evloop_remove(b->loop, b->stats_timer);
        close(b->stats_timer);
        b->stats_timer = -1;
    }
    virtio_dev_destroy(&b->vdev);
}

static void balloon_destroy(struct virtio_dev *vdev)
{
    struct virtio_balloon *b = vdev->model;
    virtio_balloon_cleanup(b);
    free(b);
}

static const struct virtio_device_ops balloon_ops = {
    .name = "balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = BALLOON_NUM_QUEUES,
    .queue_max_size = BALLOON_QUEUE_SIZE,
    .config_size = BALLOON_CONFIG_SIZE,
    .features = balloon_features,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .activate = balloon_activate,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .counters = balloon_counters,
    .save = balloon_save,
    .load = balloon_load,
    .destroy = balloon_destroy,
};

static uint32_t mib_to_pages(uint32_t mib)
{
    return mib * (uint32_t)((1u << 20) / BALLOON_PAGE_SIZE);
}

int virtio_balloon_init(struct virtio_balloon *b, const struct guest_mem *gm,
                        const struct balloon_config *cfg, struct evloop *loop)
{
    memset(b, 0, sizeof(*b));
    b->target_pages = mib_to_pages(cfg->amount_mib);
    b->deflate_on_oom = cfg->deflate_on_oom;
    b->reporting = cfg->free_page_reporting;
    b->hinting_enabled = cfg->free_page_hinting;
    b->stats_interval_s = cfg->stats_interval_s;
    b->loop = loop;
    b->stats_timer = -1;
    virtio_dev_init(&b->vdev, &balloon_ops, b, gm);
    assign_roles(b);
    if (!b->stats_interval_s || !loop)
        return 0;
    b->stats_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    int ret = b->stats_timer < 0 ? err_errno(-errno, "balloon: statistics timer") : 0;
    if (!ret && (ret = evloop_add(loop, b->stats_timer, EPOLLIN, on_stats_timer, b)))
        err_prefix(ret, "balloon: statistics timer");
    if (ret) {
        if (b->stats_timer >= 0)
            close(b->stats_timer);
        b->stats_timer = -1;
        b->loop = NULL;
        virtio_dev_destroy(&b->vdev);
        return ret;
    }
    arm_timer(b);
    return 0;
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t mib)
{
    uint64_t ram_mib = b->vdev.gm->total_size >> 20;
    if (mib > ram_mib)
        return err_set(-EINVAL, "balloon: amount_mib %u is more than the guest's %llu MiB",
                       mib, (unsigned long long)ram_mib);
    pthread_mutex_lock(&b->vdev.lock);
    b->target_pages = mib_to_pages(mib);
    if (virtio_dev_live(&b->vdev))
        virtio_dev_notify_config(&b->vdev);
    pthread_mutex_unlock(&b->vdev.lock);
    return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t seconds)
{
    pthread_mutex_lock(&b->vdev.lock);
    int ret = 0;
    if (!b->stats_interval_s != !seconds)
        ret = err_set(-EINVAL, "balloon: statistics were %s when the VM started and cannot be "
                               "turned %s now",
                      b->stats_interval_s ? "on" : "off", seconds ? "on" : "off");
    else
        b->stats_interval_s = seconds;
    pthread_mutex_unlock(&b->vdev.lock);
    if (!ret)
        arm_timer(b);
    return ret;
}

void virtio_balloon_get_stats(struct virtio_balloon *b, struct balloon_stats *out)
{
    pthread_mutex_lock(&b->vdev.lock);
    out->target_pages = b->target_pages;
    out->actual_pages = b->actual_pages;
    out->present = b->stats_present;
    memcpy(out->value, b->stats, sizeof(out->value));
    pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_start_hinting(struct virtio_balloon *b, bool ack_on_stop)
{
    pthread_mutex_lock(&b->vdev.lock);
    struct balloon_hinting *h = &b->hinting;
    h->last_run = h->last_run < 2 || h->last_run == UINT32_MAX ? 2 : h->last_run + 1;
    h->ack_on_stop = ack_on_stop;
    set_hint_cmd(b, h->last_run);
    pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_stop_hinting(struct virtio_balloon *b)
{
    pthread_mutex_lock(&b->vdev.lock);
    set_hint_cmd(b, BALLOON_HINT_CMD_DONE);
    pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_hinting_status(struct virtio_balloon *b, struct balloon_hinting *out)
{
    pthread_mutex_lock(&b->vdev.lock);
    *out = b->hinting;
    pthread_mutex_unlock(&b->vdev.lock);
}

struct virtio_balloon *virtio_balloon_on_board(const struct board *b)
{
    return virtio_find(b, &balloon_ops, 0);
}

int virtio_balloon_board_setup(struct board *b)
{
    const struct balloon_config *cfg = &b->cfg->balloon;
    if (!cfg->enabled)
        return 0;
    int ret = balloon_config_check(cfg, b->mem->total_size);
    if (ret)
        return ret;
    struct virtio_balloon *bl = malloc(sizeof(*bl));
    if (!bl)
        return err_set(-ENOMEM, "out of memory");
    ret = virtio_balloon_init(bl, b->mem, cfg, b->loop);
    if (ret) {
        free(bl);
        return ret;
    }
    return virtio_attach(b, &bl->vdev, "balloon");
}

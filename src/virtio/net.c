#include "virtio/net.h"

#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"

#define NET_RX 0
#define NET_TX 1
#define NET_CONFIG_SIZE 12
#define NET_S_LINK_UP 1
#define NUM_BUFFERS_OFFSET 10
#define RX_BURST 64 /* frames per event before others get a turn */

/* --- interest in backend events ------------------------------------------ */

static void update_interest(struct virtio_net *vn)
{
    bool running = virtio_dev_queue_running(&vn->vdev, NET_RX);
    uint32_t events = 0;
    /* A frame waiting (for room or for the rx limiter) stops reading. */
    if (running && !vn->frame_pending)
        events |= EPOLLIN;
    if (vn->tx_waiting)
        events |= EPOLLOUT;
    vn->wanted_events = events;
    if (events != vn->poll_events && vn->loop &&
        evloop_modify(vn->loop, vn->be->poll_fd, events) == 0)
        vn->poll_events = events;
    /* The service's frames come in only while the backend's do. */
    uint32_t mmds = events & EPOLLIN;
    if (vn->be->mmds && mmds != vn->mmds_events && vn->loop &&
        evloop_modify(vn->loop, vn->be->mmds->poll_fd, mmds) == 0)
        vn->mmds_events = mmds;
}

/* --- rate limits ---------------------------------------------------------- */

/* One frame's cost: an operation and its bytes (without the virtio-net
 * header, as the byte counters). False: throttled, nothing taken. */
static bool pay(struct rate_limiter *rl, uint64_t bytes)
{
    if (!rate_limiter_active(rl))
        return true;
    if (!rate_limiter_consume(rl, bytes, RATE_BYTES))
        return false;
    if (rate_limiter_consume(rl, 1, RATE_OPS))
        return true;
    rate_limiter_replenish(rl, bytes, RATE_BYTES);
    return false;
}

static void refund(struct rate_limiter *rl, uint64_t bytes)
{
    rate_limiter_replenish(rl, bytes, RATE_BYTES);
    rate_limiter_replenish(rl, 1, RATE_OPS);
}

/* --- receive ------------------------------------------------------------- */

/* Copy the pending frame into receive chains. 1: delivered; 0: not enough
 * buffers yet (nothing consumed); -1: dropped or the ring is broken. */
static int deliver(struct virtio_net *vn)
{
    struct virtq *q = &vn->vdev.queues[NET_RX];
    struct virtq_chain first, chain;
    bool mergeable = virtio_dev_has_feature(&vn->vdev, VIRTIO_NET_F_MRG_RXBUF);
    uint16_t heads[VIRTIO_NET_MAX_MERGE];
    uint32_t lens[VIRTIO_NET_MAX_MERGE];
    unsigned n = 0;
    size_t off = 0;
    while (off < vn->frame_len) {
        struct virtq_chain *c = n == 0 ? &first : &chain;
        int got = virtq_pop(q, c);
        if (got < 0)
            return -1;
        if (got == 0 || n == VIRTIO_NET_MAX_MERGE) {
            for (unsigned i = got > 0 ? n + 1 : n; i; i--)
                virtq_unpop(q);
            return got == 0 ? 0 : (vn->stats.rx_dropped++, -1);
        }
        if (c->writable_bytes == 0) {
            virtq_mark_broken(q, "receive chain with no device-writable buffer");
            return -1;
        }
        if (!mergeable && c->writable_bytes < vn->frame_len) {
            virtq_unpop(q); /* keep the buffer for a frame that fits */
            vn->stats.rx_dropped++;
            return -1;
        }
        size_t want = (size_t)MIN(vn->frame_len - off, c->writable_bytes);
        size_t done = virtq_chain_write(q, c, 0, vn->frame + off, want);
        heads[n] = c->head;
        lens[n++] = (uint32_t)done;
        off += done;
    }
    /* The header's num_buffers tells the driver how many chains to merge. */
    uint8_t nb[2];
    le16_store(nb, (uint16_t)n);
    virtq_chain_write(q, &first, NUM_BUFFERS_OFFSET, nb, sizeof(nb));
    for (unsigned i = 0; i < n; i++)
        if (virtq_push(q, heads[i], lens[i]))
            return -1;
    vn->stats.rx_packets++;
    vn->stats.rx_bytes += vn->frame_len - NET_HDR_SIZE;
    return 1;
}

static void receive(struct virtio_net *vn)
{
    struct virtq *q = &vn->vdev.queues[NET_RX];
    unsigned delivered = 0;
    while (delivered < RX_BURST) {
        if (!vn->frame_pending) {
            struct net_backend *mmds = vn->be->mmds;
            ssize_t n = mmds ? mmds->ops->recv(mmds, vn->frame, sizeof(vn->frame)) : 0;
            if (n == 0)
                n = vn->be->ops->recv(vn->be, vn->frame, sizeof(vn->frame));
            if (n == 0)
                break;
            if (n < NET_HDR_SIZE) {
                if (n < 0)
                    log_guest("%s: receive failed: %s", vn->be->desc, strerror((int)-n));
                vn->stats.rx_dropped++;
                if (n < 0)
                    break;
                continue;
            }
            vn->frame_len = (size_t)n;
            vn->frame_pending = true;
            vn->frame_paid = false;
        }
        /* Paid once: a frame that waits for room is not charged again. */
        if (!vn->frame_paid && !pay(&vn->rx_limiter, vn->frame_len - NET_HDR_SIZE))
            break; /* the limiter's timer calls receive() again */
        vn->frame_paid = true;
        uint16_t tried = virtq_available(q);
        int r = deliver(vn);
        if (r == 0) {
            /* No room: keep the frame, stop reading, and ask to hear of new
             * buffers; retry only if more arrived than were just too few. */
            virtq_rearm(q);
            if (virtq_available(q) > tried)
                continue;
            break;
        }
        vn->frame_pending = vn->frame_paid = false;
        if (q->broken)
            break;
        if (r > 0)
            delivered++;
    }
    if (q->broken)
        virtio_dev_queue_broken(&vn->vdev, NET_RX);
    else if (delivered)
        virtio_dev_notify(&vn->vdev, NET_RX);
}

/* --- transmit ------------------------------------------------------------ */

/* A frame for the metadata service goes to its stack, never to the
 * backend (a TAP would hand it to the host's network). True when taken. */
static bool divert_to_mmds(struct virtio_net *vn, const struct iovec *iov, int n)
{
    struct net_backend *mmds = vn->be->mmds;
    if (!mmds)
        return false;
    uint8_t head[NET_HDR_SIZE + 14 + 28];
    size_t len = 0, got = 0;
    for (int i = 0; i < n; i++) {
        size_t take = MIN(iov[i].iov_len, sizeof(head) - got);
        memcpy(head + got, iov[i].iov_base, take);
        got += take;
        len += iov[i].iov_len;
    }
    if (!net_mmds_wants(mmds->mmds_ip, head, got))
        return false;
    if (!vn->mmds_tx && !(vn->mmds_tx = malloc(NET_MAX_FRAME)))
        return true; /* dropped: the guest retransmits */
    size_t off = 0;
    for (int i = 0; i < n; i++) { /* the whole frame, copied once from the guest */
        memcpy(vn->mmds_tx + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    if (net_mmds_complete_frame(vn->mmds_tx, len)) {
        if (!vn->mmds_dropped++)
            log_guest("%s: a frame for the metadata service with offloads it cannot take "
                      "(GSO) or a bad header: dropped", vn->be->desc);
        return true;
    }
    /* Tell the stack where the guest is before its first packet, so that it
     * answers at once instead of asking by ARP from an address the guest
     * may not know. */
    uint8_t arp[NET_MMDS_ARP_FRAME];
    if (len >= NET_HDR_SIZE + 14 + 20 &&
        net_mmds_gratuitous_arp(vn->mmds_tx, len, arp) &&
        memcmp(vn->mmds_peer, arp + NET_HDR_SIZE + 14 + 8, sizeof(vn->mmds_peer))) {
        memcpy(vn->mmds_peer, arp + NET_HDR_SIZE + 14 + 8, sizeof(vn->mmds_peer));
        struct iovec a = {arp, sizeof(arp)};
        (void)mmds->ops->send(mmds, &a, 1);
    }
    struct iovec whole = {vn->mmds_tx, len};
    (void)mmds->ops->send(mmds, &whole, 1); /* slirp takes every frame */
    return true;
}

static enum virtio_chain_result send_frame(struct virtio_dev *vdev, struct virtq *q,
                                          const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_net *vn = vdev->model;
    struct iovec iov[VIRTQ_MAX_CHAIN];
    int n = 0;
    bool ok = chain->readable_bytes > NET_HDR_SIZE && chain->readable_bytes <= NET_MAX_FRAME;
    for (unsigned i = 0; ok && i < chain->nr_readable; i++) {
        if (!chain->bufs[i].len)
            continue;
        void *p = gm_ptr(q->gm, chain->bufs[i].gpa, chain->bufs[i].len);
        ok = p != NULL;
        iov[n++] = (struct iovec){p, chain->bufs[i].len};
    }
    uint64_t bytes = chain->readable_bytes - NET_HDR_SIZE;
    if (ok && !pay(&vn->tx_limiter, bytes))
        return VIRTIO_CHAIN_RETRY; /* the limiter's timer resumes the queue */
    int ret = !ok ? -EINVAL : divert_to_mmds(vn, iov, n) ? 0 : vn->be->ops->send(vn->be, iov, n);
    if (ret == -EAGAIN) {
        refund(&vn->tx_limiter, bytes); /* paid again when it is sent */
        vn->tx_waiting = true; /* resumed when the backend is writable */
        return VIRTIO_CHAIN_RETRY;
    }
    if (ret) {
        vn->stats.tx_errors++;
    } else {
        vn->stats.tx_packets++;
        vn->stats.tx_bytes += chain->readable_bytes - NET_HDR_SIZE;
    }
    *written = 0;
    return VIRTIO_CHAIN_USED;
}

static void transmit(struct virtio_net *vn)
{
    if (!vn->tx_waiting)
        virtio_dev_drain_queue(&vn->vdev, NET_TX, send_frame);
}

/* --- device ops ------------------------------------------------------------ */

void virtio_net_backend_ready(struct virtio_net *vn, uint32_t events)
{
    struct virtio_dev *vdev = &vn->vdev;
    pthread_mutex_lock(&vdev->lock);
    if (virtio_dev_running(vdev)) {
        if ((events & EPOLLOUT) && vn->tx_waiting) {
            vn->tx_waiting = false;
            transmit(vn);
        }
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && virtio_dev_queue_running(vdev, NET_RX))
            receive(vn);
    }
    update_interest(vn);
    pthread_mutex_unlock(&vdev->lock);
}

static void rx_unthrottled(void *ctx)
{
    struct virtio_net *vn = ctx;
    pthread_mutex_lock(&vn->vdev.lock);
    rate_limiter_timer_done(&vn->rx_limiter);
    if (virtio_dev_queue_running(&vn->vdev, NET_RX))
        receive(vn);
    update_interest(vn);
    pthread_mutex_unlock(&vn->vdev.lock);
}

static void tx_unthrottled(void *ctx)
{
    struct virtio_net *vn = ctx;
    pthread_mutex_lock(&vn->vdev.lock);
    rate_limiter_timer_done(&vn->tx_limiter);
    if (virtio_dev_queue_running(&vn->vdev, NET_TX))
        transmit(vn);
    update_interest(vn);
    pthread_mutex_unlock(&vn->vdev.lock);
}

int virtio_net_set_rate_limits(struct virtio_net *vn, const struct rate_limit_config *rx,
                               const struct rate_limit_config *tx)
{
    pthread_mutex_lock(&vn->vdev.lock);
    int ret = rate_limiter_update(&vn->rx_limiter, rx);
    if (!ret)
        ret = rate_limiter_update(&vn->tx_limiter, tx);
    pthread_mutex_unlock(&vn->vdev.lock);
    return ret;
}

static void on_backend(void *ctx, uint32_t events)
{
    virtio_net_backend_ready(ctx, events);
}

static void net_queue_notify(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_net *vn = vdev->model;
    if (q == NET_TX)
        transmit(vn);
    else
        receive(vn); /* new buffers: the pending frame may fit now */
    update_interest(vn);
}

static uint64_t net_features(struct virtio_dev *vdev)
{
    struct virtio_net *vn = vdev->model;
    uint64_t f = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
                 (1ull << VIRTIO_NET_F_MRG_RXBUF);
    if (vn->be->vnet_hdr)
        f |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
             (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
             (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
             (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN);
    return f;
}

static void net_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
    struct virtio_net *vn = vdev->model;
    uint8_t cfg[NET_CONFIG_SIZE] = {0};
    memcpy(cfg, vn->mac, 6);
    le16_store(cfg + 6, NET_S_LINK_UP);
    le16_store(cfg + 8, 1); /* one queue pair */
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

/* The guest accepts offloaded (partial-checksum, GSO) frames only as far as
 * it negotiated; tell the TAP so it never hands us more. */
static int net_activate(struct virtio_dev *vdev)
{
    struct virtio_net *vn = vdev->model;
    unsigned tun = 0;
    if (virtio_dev_has_feature(vdev, VIRTIO_NET_F_GUEST_CSUM)) {
        tun |= TUN_F_CSUM;
        if (virtio_dev_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO4))
            tun |= TUN_F_TSO4;
        if (virtio_dev_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO6))
            tun |= TUN_F_TSO6;
        if (virtio_dev_has_feature(vdev, VIRTIO_NET_F_GUEST_ECN))
            tun |= TUN_F_TSO_ECN;
    }
    int ret = vn->be->ops->set_offloads(vn->be, tun);
    update_interest(vn);
    return ret;
}

static void net_reset(struct virtio_dev *vdev)
{
    struct virtio_net *vn = vdev->model;
    vn->frame_pending = vn->frame_paid = false;
    vn->tx_waiting = false;
    vn->be->ops->set_offloads(vn->be, 0);
    vdev->status = 0; /* so update_interest sees the device stopped */
    update_interest(vn);
}

static void net_pause(struct virtio_dev *vdev, bool paused)
{
    (void)paused; /* virtio_dev_running() now says whether to watch */
    update_interest(vdev->model);
}

static size_t net_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_net *vn = vdev->model;
    const struct virtio_net_stats *st = &vn->stats;
    const struct device_counter c[] = {
        {"rx_packets_count", st->rx_packets}, {"rx_bytes_count", st->rx_bytes},
        {"rx_dropped", st->rx_dropped},       {"tx_packets_count", st->tx_packets},
        {"tx_bytes_count", st->tx_bytes},     {"tx_fails", st->tx_errors},
        /* Firecracker's names, its 'event' placement included. */
        {"rx_rate_limiter_throttled", vn->rx_limiter.throttled},
        {"rx_event_rate_limiter_count", vn->rx_limiter.events},
        {"tx_rate_limiter_throttled", vn->tx_limiter.throttled},
        {"tx_rate_limiter_event_count", vn->tx_limiter.events},
    };
    memcpy(out, c, sizeof(c));
    return ARRAY_SIZE(c);
}

static void net_destroy(struct virtio_dev *vdev)
{
    struct virtio_net *vn = vdev->model;
    virtio_net_destroy(vn);
    free(vn);
}

static const struct virtio_device_ops net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .queue_max_size = VIRTIO_NET_QUEUE_SIZE,
    .config_size = NET_CONFIG_SIZE,
    .features = net_features,
    .config_read = net_config_read,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .pause = net_pause,
    .counters = net_counters,
    .destroy = net_destroy,
};

int virtio_net_init(struct virtio_net *vn, const struct guest_mem *gm, struct net_backend *be,
                    const uint8_t mac[6], struct evloop *loop)
{
    vn->be = be;
    vn->loop = loop;
    memcpy(vn->mac, mac, 6);
    virtio_dev_init(&vn->vdev, &net_ops, vn, gm);
    static const struct rate_limit_config unlimited;
    int ret = rate_limiter_init(&vn->rx_limiter, &unlimited, loop, rx_unthrottled, vn);
    if (!ret)
        ret = rate_limiter_init(&vn->tx_limiter, &unlimited, loop, tx_unthrottled, vn);
    if (ret || !loop)
        return ret;
    ret = evloop_add(loop, be->poll_fd, 0, on_backend, vn);
    if (!ret && be->mmds && (ret = evloop_add(loop, be->mmds->poll_fd, 0, on_backend, vn)))
        evloop_remove(loop, be->poll_fd);
    return ret;
}

void virtio_net_destroy(struct virtio_net *vn)
{
    const struct virtio_net_stats *st = &vn->stats;
    log_info("%s: rx %llu frames %llu bytes (%llu dropped, %llu by the backend), "
             "tx %llu frames %llu bytes (%llu errors)", vn->be->desc,
             (unsigned long long)st->rx_packets, (unsigned long long)st->rx_bytes,
             (unsigned long long)st->rx_dropped, (unsigned long long)vn->be->dropped_rx,
             (unsigned long long)st->tx_packets, (unsigned long long)st->tx_bytes,
             (unsigned long long)st->tx_errors);
    const struct virtq *rx = &vn->vdev.queues[NET_RX];
    uint16_t avail = 0;
    if (rx->ready && rx->gm && gm_read_u16(rx->gm, rx->avail_gpa + 2, &avail) == 0)
        log_info("%s: receive queue: %u buffers available, %s (%zu bytes), mergeable %s, "
                 "reading the backend: %s",
                 vn->be->desc, (uint16_t)(avail - rx->last_avail),
                 vn->frame_pending ? "a frame waiting for room" : "no frame waiting",
                 vn->frame_len,
                 virtio_dev_has_feature(&vn->vdev, VIRTIO_NET_F_MRG_RXBUF) ? "yes" : "no",
                 (vn->wanted_events & EPOLLIN) ? "yes" : "no");
    rate_limiter_destroy(&vn->rx_limiter);
    rate_limiter_destroy(&vn->tx_limiter);
    if (vn->loop)
        evloop_remove(vn->loop, vn->be->poll_fd);
    if (vn->loop && vn->be->mmds)
        evloop_remove(vn->loop, vn->be->mmds->poll_fd);
    free(vn->mmds_tx);
    net_backend_destroy(vn->be);
    virtio_dev_destroy(&vn->vdev);
}

/* --- on the board ---------------------------------------------------------- */

int virtio_net_board_setup(struct board *b)
{
    for (unsigned i = 0; i < b->cfg->nr_nics; i++) {
        struct net_backend *be = b->backends.nets[i];
        b->backends.nets[i] = NULL; /* the device owns it from now on */
        struct virtio_net *vn = calloc(1, sizeof(*vn));
        if (!vn) {
            net_backend_destroy(be);
            return err_set(-ENOMEM, "out of memory");
        }
        const struct nic_config *nc = &b->cfg->nics[i];
        int ret = virtio_net_init(vn, b->mem, be, nc->mac, b->loop);
        if (!ret)
            ret = virtio_net_set_rate_limits(vn, &nc->rx_limit, &nc->tx_limit);
        if (ret) {
            virtio_net_destroy(vn);
            free(vn);
            return err_prefix(ret, "network interface %u", i);
        }
        char metrics[80];
        if (b->cfg->nics[i].id)
            snprintf(metrics, sizeof(metrics), "net_%s", b->cfg->nics[i].id);
        else
            snprintf(metrics, sizeof(metrics), "net_%u", i);
        if ((ret = virtio_attach(b, &vn->vdev, metrics)))
            return err_prefix(ret, "network interface %u", i);
    }
    return 0;
}

struct virtio_net *virtio_net_on_board(const struct board *b, unsigned index)
{
    return virtio_find(b, &net_ops, index);
}

#include "virtio/vsock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"
#include "virtio/vsock_conn.h"

#define VSOCK_CONFIG_SIZE 8 /* le64 guest_cid */
#define VSOCK_EVENT_SIZE 4  /* le32 id */

/* --- packets from the guest ---------------------------------------------------- */

static bool rst_ring_full(const struct virtio_vsock *vs)
{
    return vs->rst_len == VSOCK_RST_RING;
}

/* An RST for a packet that belongs to no connection (the caller made sure
 * there is room: tx stops while the ring is full). */
static void queue_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
    unsigned slot = (vs->rst_head + vs->rst_len) % VSOCK_RST_RING;
    vs->rst[slot].local_port = local_port;
    vs->rst[slot].peer_port = peer_port;
    vs->rst_len++;
}

/* The guest connects to a host port: to "<uds_path>_<port>", now. */
static void peer_request(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
    if (vs->nr_conns >= VSOCK_MAX_CONNS) {
        log_guest("vsock: the guest has %u connections; refusing another", vs->nr_conns);
        vs->stats.conns_refused++;
        queue_rst(vs, h->dst_port, h->src_port);
        return;
    }
    int fd = vsock_uds_connect(vs->uds, h->dst_port);
    if (fd < 0) {
        log_debug("vsock: guest port %u -> host port %u: %s", h->src_port, h->dst_port,
                  strerror(-fd));
        vs->stats.conns_refused++;
        queue_rst(vs, h->dst_port, h->src_port);
        return;
    }
    struct vsock_conn *c = conn_new(vs, h->dst_port, h->src_port, fd, VSOCK_PEER_INIT);
    if (!c) {
        close(fd);
        vs->stats.conns_refused++;
        queue_rst(vs, h->dst_port, h->src_port);
        return;
    }
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pending = VSOCK_PEND_RESPONSE;
    conn_update(vs, c);
}

static void handle_packet(struct virtio_vsock *vs, struct virtq *q,
                          const struct virtq_chain *chain, const struct vsock_hdr *h)
{
    if (h->src_cid != vs->cid || h->dst_cid != VSOCK_HOST_CID) {
        vs->stats.tx_dropped++;
        log_guest("vsock: dropped a packet from CID %llu to CID %llu (the guest is CID %llu, "
                  "the host 2)", (unsigned long long)h->src_cid,
                  (unsigned long long)h->dst_cid, (unsigned long long)vs->cid);
        return;
    }
    struct vsock_conn *c = virtio_vsock_find(vs, h->dst_port, h->src_port);
    uint64_t payload = chain->readable_bytes - VSOCK_HDR_SIZE;
    bool bad_len = h->op == VSOCK_OP_RW && (h->len > payload || h->len > VSOCK_MAX_PKT);
    if (h->type != VSOCK_TYPE_STREAM || bad_len) {
        if (bad_len) {
            vs->stats.tx_dropped++;
            log_guest("vsock: a data packet says %u bytes and carries %llu (at most %u)",
                      h->len, (unsigned long long)payload, VSOCK_MAX_PKT);
        }
        if (c) {
            conn_kill(vs, c); /* its stream lost bytes: it cannot go on */
            conn_update(vs, c);
        } else if (h->op != VSOCK_OP_RST) {
            queue_rst(vs, h->dst_port, h->src_port);
        }
        return;
    }
    if (!c) {
        if (h->op == VSOCK_OP_REQUEST)
            peer_request(vs, h);
        else if (h->op != VSOCK_OP_RST)
            queue_rst(vs, h->dst_port, h->src_port);
        return;
    }
    if (c->state == VSOCK_DEAD) {
        /* Our RST is on its way. A new request on the same ports, or the
         * guest's own RST, means the guest has moved on: forget ours. */
        if (h->op == VSOCK_OP_REQUEST || h->op == VSOCK_OP_RST) {
            conn_free(vs, c);
            if (h->op == VSOCK_OP_REQUEST)
                peer_request(vs, h);
        }
        return;
    }
    conn_peer_credit(c, h->buf_alloc, h->fwd_cnt);
    switch (h->op) {
    case VSOCK_OP_RST:
        conn_free(vs, c); /* refused, or reset by the guest: the host stream closes */
        return;
    case VSOCK_OP_RESPONSE:
        if (c->state == VSOCK_LOCAL_INIT)
            conn_establish_local(vs, c);
        else
            conn_violation(vs, c, "an unexpected RESPONSE");
        break;
    case VSOCK_OP_RW:
        if (c->state != VSOCK_ESTABLISHED || (c->peer_shutdown & VSOCK_SHUTDOWN_SEND))
            conn_violation(vs, c, "data on a connection that takes none");
        else if (h->len)
            conn_from_guest(vs, c, q, chain, h->len);
        break;
    case VSOCK_OP_SHUTDOWN:
        if (c->state == VSOCK_ESTABLISHED)
            conn_peer_shutdown(vs, c, h->flags);
        break;
    case VSOCK_OP_CREDIT_UPDATE:
        break; /* the credit above was all it said */
    case VSOCK_OP_CREDIT_REQUEST:
        if (c->state == VSOCK_ESTABLISHED)
            c->pending |= VSOCK_PEND_CREDIT_UPDATE;
        break;
    case VSOCK_OP_REQUEST:
        conn_violation(vs, c, "a second REQUEST");
        break;
    default:
        vs->stats.tx_dropped++;
        log_guest("vsock: dropped a packet with unknown op %u", h->op);
        break;
    }
    conn_update(vs, c);
}

static enum virtio_chain_result tx_chain(struct virtio_dev *vdev, struct virtq *q,
                                         const struct virtq_chain *chain, uint32_t *written)
{
    struct virtio_vsock *vs = vdev->model;
    *written = 0;
    if (rst_ring_full(vs)) {
        vs->tx_blocked = true; /* resumed once the guest took some resets */
        return VIRTIO_CHAIN_RETRY;
    }
    if (chain->readable_bytes < VSOCK_HDR_SIZE) {
        virtq_mark_broken(q, "transmit chain shorter than a packet header");
        return VIRTIO_CHAIN_USED;
    }
    uint8_t raw[VSOCK_HDR_SIZE];
    struct vsock_hdr h;
    virtq_chain_read(q, chain, 0, raw, sizeof(raw));
    vsock_hdr_load(&h, raw);
    vs->stats.tx_packets++;
    handle_packet(vs, q, chain, &h);
    return VIRTIO_CHAIN_USED;
}

static void process_tx(struct virtio_vsock *vs)
{
    if (!vs->tx_blocked && virtio_dev_queue_running(&vs->vdev, VSOCK_TX))
        virtio_dev_drain_queue(&vs->vdev, VSOCK_TX, tx_chain);
}

/* --- packets for the guest ------------------------------------------------------ */

static uint32_t fill_rst(struct virtio_vsock *vs, struct virtq *q,
                         const struct virtq_chain *chain)
{
    struct vsock_hdr h = {
        .src_cid = VSOCK_HOST_CID, .dst_cid = vs->cid,
        .src_port = vs->rst[vs->rst_head].local_port,
        .dst_port = vs->rst[vs->rst_head].peer_port,
        .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
    };
    uint8_t raw[VSOCK_HDR_SIZE];
    vsock_hdr_store(&h, raw);
    virtq_chain_write(q, chain, 0, raw, sizeof(raw));
    vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_RING;
    vs->rst_len--;
    vs->stats.rx_packets++;
    vs->stats.resets++;
    return VSOCK_HDR_SIZE;
}

/* TRANSPORT_RESET on the event queue (after a restore: the guest's
 * connections went with the old host side). */
static void deliver_event(struct virtio_vsock *vs)
{
    struct virtio_dev *vdev = &vs->vdev;
    struct virtq *q = &vdev->queues[VSOCK_EVENT];
    struct virtq_chain chain;
    if (!vs->reset_event || !virtio_dev_queue_running(vdev, VSOCK_EVENT))
        return;
    int got = virtq_pop(q, &chain);
    if (got == 0 && virtq_rearm(q))
        got = virtq_pop(q, &chain);
    if (got < 0) {
        virtio_dev_queue_broken(vdev, VSOCK_EVENT);
        return;
    }
    if (got == 0)
        return; /* the driver's next event buffer brings us back */
    if (chain.writable_bytes < VSOCK_EVENT_SIZE) {
        virtq_mark_broken(q, "event buffer smaller than an event");
        virtio_dev_queue_broken(vdev, VSOCK_EVENT);
        return;
    }
    uint8_t ev[VSOCK_EVENT_SIZE];
    le32_store(ev, VSOCK_EVENT_TRANSPORT_RESET);
    virtq_chain_write(q, &chain, 0, ev, sizeof(ev));
    if (virtq_push(q, chain.head, VSOCK_EVENT_SIZE)) {
        virtio_dev_queue_broken(vdev, VSOCK_EVENT);
        return;
    }
    vs->reset_event = false;
    log_info("vsock: told the guest its connections were reset (TRANSPORT_RESET)");
    virtio_dev_notify(vdev, VSOCK_EVENT);
}

/* Hand the guest what is owed: resets first, then each connection in turn
 * (one packet per turn, so a busy stream does not starve the others). */
static void flush_rx(struct virtio_vsock *vs)
{
    struct virtio_dev *vdev = &vs->vdev;
    struct virtq *q = &vdev->queues[VSOCK_RX];
    struct virtq_chain chain;
    deliver_event(vs);
    if (!virtio_dev_queue_running(vdev, VSOCK_RX))
        return;
    unsigned sent = 0;
    while (sent < VSOCK_RX_BURST && (vs->rst_len || vs->rxq_head)) {
        int got = virtq_pop(q, &chain);
        if (got < 0)
            break;
        if (got == 0) {
            if (virtq_rearm(q)) /* buffers arrived meanwhile */
                continue;
            break;
        }
        if (chain.writable_bytes < VSOCK_HDR_SIZE) {
            virtq_mark_broken(q, chain.writable_bytes
                                     ? "receive buffer smaller than a packet header"
                                     : "receive chain with no device-writable buffer");
            break;
        }
        uint32_t used;
        if (vs->rst_len) {
            used = fill_rst(vs, q, &chain);
        } else {
            struct vsock_conn *c = vs->rxq_head;
            used = conn_fill(vs, c, q, &chain);
            conn_rxq_remove(vs, c);
            if (c->state == VSOCK_DEAD && !c->pending) {
                conn_free(vs, c); /* its RST went out, or it had nothing left */
            } else {
                if (used && conn_has_work(c))
                    conn_rxq_add(vs, c); /* to the back: others get a turn */
                conn_rearm(vs, c);
            }
            if (!used) {
                virtq_unpop(q); /* it had nothing after all (its stream ran dry) */
                continue;
            }
        }
        if (virtq_push(q, chain.head, used))
            break;
        sent++;
    }
    if (q->broken)
        virtio_dev_queue_broken(vdev, VSOCK_RX);
    else if (sent)
        virtio_dev_notify(vdev, VSOCK_RX);
    if (sent == VSOCK_RX_BURST && (vs->rst_len || vs->rxq_head))
        vsock_uds_kick(vs->uds); /* more next round, after other work */
    if (vs->tx_blocked && !rst_ring_full(vs)) {
        vs->tx_blocked = false;
        vsock_uds_kick(vs->uds);
    }
}

/* Connections the guest can no longer hear about (the driver is gone):
 * their resets are moot. */
static void reap_dead(struct virtio_vsock *vs)
{
    struct vsock_conn *c = vs->rxq_head;
    while (c) {
        struct vsock_conn *next = c->rx_next;
        if (c->state == VSOCK_DEAD)
            conn_free(vs, c);
        c = next;
    }
    vs->rst_len = 0;
    vs->tx_blocked = false;
}

void virtio_vsock_poll(struct virtio_vsock *vs)
{
    struct virtio_dev *vdev = &vs->vdev;
    pthread_mutex_lock(&vdev->lock);
    if (!vdev->paused) {
        vsock_uds_process(vs->uds);
        if (virtio_dev_running(vdev)) {
            process_tx(vs);
            flush_rx(vs);
        } else if (!virtio_dev_live(vdev)) {
            reap_dead(vs);
        }
    }
    pthread_mutex_unlock(&vdev->lock);
}

static void on_poll(void *ctx, uint32_t events)
{
    (void)events;
    virtio_vsock_poll(ctx);
}

/* --- the backend's calls (lock held, from vsock_uds_process) -------------------- */

static int uds_host_connect(void *ctx, int fd, uint32_t port, const uint8_t *early, size_t n)
{
    struct virtio_vsock *vs = ctx;
    if (vs->nr_conns >= VSOCK_MAX_CONNS) {
        log_warn("vsock: %u connections already; refusing a host connection to port %u",
                 vs->nr_conns, port);
        return -ENOSPC;
    }
    uint32_t local = conn_alloc_local_port(vs, port);
    struct vsock_conn *c = conn_new(vs, local, port, fd, VSOCK_LOCAL_INIT);
    if (!c)
        return -ENOMEM;
    memcpy(c->early, early, n);
    c->early_len = (uint8_t)n;
    c->pending = VSOCK_PEND_REQUEST;
    conn_update(vs, c);
    return 0;
}

static void uds_stream_event(void *ctx, void *tag, uint32_t events)
{
    conn_stream_event(ctx, tag, events);
}

static void uds_tick(void *ctx, uint64_t now_ns)
{
    virtio_vsock_tick(ctx, now_ns);
}

static const struct vsock_uds_client uds_client = {
    .host_connect = uds_host_connect,
    .stream_event = uds_stream_event,
    .tick = uds_tick,
};

/* --- device ops ------------------------------------------------------------------- */

static bool on_loop_thread(const struct virtio_vsock *vs)
{
    return !vs->loop || pthread_equal(pthread_self(), vs->loop_thread);
}

static void vsock_queue_notify(struct virtio_dev *vdev, unsigned q)
{
    struct virtio_vsock *vs = vdev->model;
    if (!on_loop_thread(vs)) {
        vsock_uds_kick(vs->uds); /* a vCPU's notify: the loop does the work */
        return;
    }
    if (q == VSOCK_TX)
        process_tx(vs);
    flush_rx(vs);
}

static uint64_t vsock_features(struct virtio_dev *vdev)
{
    (void)vdev;
    return 0; /* stream sockets only, which needs no feature bit */
}

static void vsock_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned len)
{
    struct virtio_vsock *vs = vdev->model;
    uint8_t cfg[VSOCK_CONFIG_SIZE];
    le64_store(cfg, vs->cid);
    if (offset < sizeof(cfg))
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
}

static int vsock_activate(struct virtio_dev *vdev)
{
    struct virtio_vsock *vs = vdev->model;
    vsock_uds_kick(vs->uds); /* host connections may be waiting for the driver */
    return 0;
}

static void vsock_reset(struct virtio_dev *vdev)
{
    struct virtio_vsock *vs = vdev->model;
    conn_free_all(vs);
    vs->rst_len = vs->rst_head = 0;
    vs->tx_blocked = false;
    vs->reset_event = false;
}

static void vsock_pause(struct virtio_dev *vdev, bool paused)
{
    struct virtio_vsock *vs = vdev->model;
    if (vs->loop && vs->watching)
        evloop_modify(vs->loop, vsock_uds_poll_fd(vs->uds), paused ? 0 : EPOLLIN);
    if (!paused)
        vsock_uds_kick(vs->uds);
}

static size_t vsock_counters(struct virtio_dev *vdev, struct device_counter *out)
{
    const struct virtio_vsock *vs = vdev->model;
    const struct virtio_vsock_stats *st = &vs->stats;
    const struct device_counter c[] = {
        {"rx_packets_count", st->rx_packets},
        {"rx_bytes_count", st->rx_bytes},
        {"tx_packets_count", st->tx_packets},
        {"tx_bytes_count", st->tx_bytes},
        {"conns_added", st->conns_added},
        {"conns_removed", st->conns_removed},
        {"conns_killed", st->conns_killed},
        {"conns_refused", st->conns_refused},
        {"host_conns_refused", vs->uds->stats.host_refused},
        {"resets", st->resets},
        {"tx_dropped", st->tx_dropped},
        {"rx_read_fails", st->rx_read_fails},
        {"tx_write_fails", st->tx_write_fails},
        {"tx_flush_fails", st->tx_flush_fails},
    };
    _Static_assert(ARRAY_SIZE(c) <= DEVICE_MAX_COUNTERS, "too many counters");
    memcpy(out, c, sizeof(c));
    return ARRAY_SIZE(c);
}

/* The connections are not saved: they belong to this process's host
 * sockets. A restored guest is told they are gone (TRANSPORT_RESET). */
static void vsock_save(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_vsock *vs = vdev->model;
    rec_put_u64(r, "guest_cid", vs->cid);
}

static int vsock_load(struct virtio_dev *vdev, struct rec r)
{
    struct virtio_vsock *vs = vdev->model;
    uint64_t cid;
    int ret = rec_get_u64(r, "guest_cid", UINT32_MAX, &cid);
    if (!ret && cid != vs->cid)
        ret = err_set(-EINVAL, "vsock: the snapshot's guest CID is %llu, the device's %llu",
                      (unsigned long long)cid, (unsigned long long)vs->cid);
    if (ret)
        return ret;
    conn_free_all(vs);
    vs->rst_len = vs->rst_head = 0;
    vs->reset_event = virtio_dev_live(vdev);
    return 0;
}

static void vsock_destroy(struct virtio_dev *vdev)
{
    struct virtio_vsock *vs = vdev->model;
    virtio_vsock_destroy(vs);
    free(vs);
}

static const struct virtio_device_ops vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_max_size = VSOCK_QUEUE_SIZE,
    .config_size = VSOCK_CONFIG_SIZE,
    .features = vsock_features,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
    .pause = vsock_pause,
    .counters = vsock_counters,
    .save = vsock_save,
    .load = vsock_load,
    .destroy = vsock_destroy,
};

int virtio_vsock_init(struct virtio_vsock *vs, const struct guest_mem *gm, uint64_t cid,
                      struct vsock_uds *uds, struct evloop *loop)
{
    vs->uds = uds;
    vs->loop = loop;
    vs->loop_thread = pthread_self();
    vs->cid = cid;
    vs->next_local_port = VSOCK_LOCAL_PORT_BASE;
    virtio_dev_init(&vs->vdev, &vsock_ops, vs, gm);
    vsock_uds_attach(uds, &uds_client, vs);
    if (!loop)
        return 0;
    int ret = evloop_add(loop, vsock_uds_poll_fd(uds), EPOLLIN, on_poll, vs);
    vs->watching = ret == 0;
    return ret;
}

void virtio_vsock_destroy(struct virtio_vsock *vs)
{
    const struct virtio_vsock_stats *st = &vs->stats;
    log_info("vsock: %llu connections (%llu killed, %llu refused), to the guest %llu bytes, "
             "from it %llu bytes", (unsigned long long)st->conns_added,
             (unsigned long long)st->conns_killed, (unsigned long long)st->conns_refused,
             (unsigned long long)st->rx_bytes, (unsigned long long)st->tx_bytes);
    if (vs->watching)
        evloop_remove(vs->loop, vsock_uds_poll_fd(vs->uds));
    conn_free_all(vs);
    vsock_uds_destroy(vs->uds);
    vs->uds = NULL;
    virtio_dev_destroy(&vs->vdev);
}

/* --- on the board ------------------------------------------------------------------- */

/* Each connection holds a host socket: make room for VSOCK_MAX_CONNS of
 * them next to ember's own descriptors, as far as the hard limit allows
 * (beyond it, connections are refused as at the limit). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    const rlim_t want = VSOCK_MAX_CONNS + VSOCK_UDS_MAX_PENDING + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = MIN(want, rl.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_debug("vsock: file descriptor limit raised to %llu", (unsigned long long)rl.rlim_cur);
}

int virtio_vsock_board_setup(struct board *b)
{
    if (!b->cfg->vsock.uds_path)
        return 0;
    struct vsock_uds *uds = *b->backends.vsock;
    *b->backends.vsock = NULL; /* the device owns it from now on */
    if (!uds)
        return err_set(-EINVAL, "vsock: the host socket was not opened");
    struct virtio_vsock *vs = calloc(1, sizeof(*vs));
    if (!vs) {
        vsock_uds_destroy(uds);
        return err_set(-ENOMEM, "out of memory");
    }
    raise_fd_limit();
    int ret = virtio_vsock_init(vs, b->mem, b->cfg->vsock.cid, uds, b->loop);
    if (ret) {
        virtio_vsock_destroy(vs);
        free(vs);
        return err_prefix(ret, "vsock");
    }
    log_info("vsock: guest CID %u, host socket %s", b->cfg->vsock.cid, b->cfg->vsock.uds_path);
    return virtio_attach(b, &vs->vdev, "vsock");
}

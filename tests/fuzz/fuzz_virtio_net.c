/* libFuzzer target: a hostile driver against virtio-net, on an in-memory
 * backend that never reaches the host's network. The input's first bytes
 * choose what the driver negotiates (mergeable buffers, indirect
 * descriptors, event index, offloads), the queue sizes, rate limits and
 * whether a metadata-service side backend is attached; each following step
 * is one of: a transmit chain (any descriptor layout, header split
 * anywhere, frames for the metadata service), receive buffers (any sizes,
 * read-only ones, loops, indirect tables), a frame arriving from the
 * backend or the metadata service (up to a 64 KiB GSO frame), the backend
 * refusing and then taking frames, rate-limiter time passing, a reset with
 * any status sequence. Every guest address must stay in guest RAM (ASan
 * watches), every frame handed to a backend must be one the guest gave. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/net.h"

#define MEM (4ull << 20)
#define QSIZE 8
#define TABLE_BYTES (16 * QSIZE)
#define DATA_BYTES 128
#define HEADER 8
#define STEP (4 + TABLE_BYTES + DATA_BYTES)
#define TX_DATA 0x100000ull
#define RX_DATA 0x200000ull
#define MMDS_IP 0xfea9fea9u /* 169.254.169.254 in network byte order */

/* The board side and the real backends are not under test. */
#include "board_stubs.h"
void net_backend_destroy(struct net_backend *be);
void net_backend_destroy(struct net_backend *be)
{
    (void)be; /* the fuzzer's backends are static */
}

/* --- an in-memory backend ----------------------------------------------- */

struct mem_backend {
    struct net_backend be;
    int send_ret;            /* what send answers next (0, -EAGAIN, -EIO) */
    uint8_t frame[NET_MAX_FRAME];
    size_t frame_len;        /* a frame waiting to be received, or 0 */
    uint64_t sent_bytes;
};

static int mb_send(struct net_backend *be, const struct iovec *iov, int n)
{
    struct mem_backend *m = (struct mem_backend *)be;
    static uint8_t sink[NET_MAX_FRAME + 64];
    if (m->send_ret)
        return m->send_ret;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (len + iov[i].iov_len > sizeof(sink))
            abort(); /* the device let through a frame larger than it allows */
        memcpy(sink + len, iov[i].iov_base, iov[i].iov_len); /* ASan checks each */
        len += iov[i].iov_len;
    }
    if (len < NET_HDR_SIZE)
        abort(); /* a frame without its virtio-net header */
    m->sent_bytes += len;
    return 0;
}

static ssize_t mb_recv(struct net_backend *be, uint8_t *buf, size_t len)
{
    struct mem_backend *m = (struct mem_backend *)be;
    size_t n = m->frame_len;
    if (!n)
        return 0;
    if (n > len)
        abort(); /* the device offered less room than a frame may need */
    memcpy(buf, m->frame, n);
    m->frame_len = 0;
    return (ssize_t)n;
}

static int mb_offloads(struct net_backend *be, unsigned flags)
{
    (void)be, (void)flags;
    return 0;
}

static void mb_destroy(struct net_backend *be)
{
    (void)be;
}

static const struct net_backend_ops mb_ops = {mb_send, mb_recv, mb_offloads, mb_destroy};

/* A transport that remembers kicks (a device over its budget) and runs
 * them when the input lets the event loop run. */
static unsigned kicked;
static void t_queue(struct virtio_dev *v, unsigned q) { (void)v, (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static void t_kick(struct virtio_dev *v, unsigned q)
{
    (void)v;
    if (q >= 2)
        abort(); /* a queue virtio-net does not have */
    kicked |= 1u << q;
}
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue,
                                                   .notify_config = t_config,
                                                   .kick = t_kick};

/* The rate limiters' clock: moves only when the input says time passes. */
static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

/* --- the driver --------------------------------------------------------- */

struct rig {
    struct virtio_net *vn;
    struct mem_backend *main_be, *mmds_be;
    uint8_t *mem;
    uint16_t avail[2];
    uint16_t qsize[2];
    uint64_t features;
};

static const uint64_t ring_base[2] = {0x1000, 0x4000}; /* rx, tx: desc, +0x1000 avail, +0x2000 used */

static void setup_queues(struct rig *r, uint8_t status)
{
    struct virtio_dev *vdev = &r->vn->vdev;
    for (unsigned i = 0; i < 2; i++) {
        struct virtq *q = &vdev->queues[i];
        q->size = r->qsize[i];
        q->desc_gpa = ring_base[i];
        q->avail_gpa = ring_base[i] + 0x1000;
        q->used_gpa = ring_base[i] + 0x2000;
        q->ready = true;
        memset(r->mem + ring_base[i] + 0x1000, 0, 0x2000);
        r->avail[i] = 0;
    }
    vdev->driver_features = r->features;
    /* A driver may skip steps (DRIVER_OK without FEATURES_OK included). */
    virtio_dev_set_status(vdev, status & 3);
    virtio_dev_set_status(vdev, status);
}

static void publish(struct rig *r, unsigned qi, uint8_t head, uint8_t second)
{
    uint64_t avail = ring_base[qi] + 0x1000;
    uint16_t size = r->qsize[qi];
    le16_store(r->mem + avail + 4 + 2u * (r->avail[qi] % size), head % size);
    le16_store(r->mem + avail + 2, ++r->avail[qi]);
    if (second & 1) /* sometimes a second chain in the same notification */
        le16_store(r->mem + avail + 4 + 2u * (r->avail[qi] % size), (second >> 1) % size),
            le16_store(r->mem + avail + 2, ++r->avail[qi]);
}

static void notify(struct rig *r, unsigned qi)
{
    struct virtio_dev *vdev = &r->vn->vdev;
    pthread_mutex_lock(&vdev->lock);
    if (virtio_dev_queue_running(vdev, qi)) /* as the transports check */
        vdev->ops->queue_notify(vdev, qi);
    pthread_mutex_unlock(&vdev->lock);
}

/* A frame from the network: its length from the input, its bytes the
 * step's data repeated (a header and an Ethernet frame in the seeds). */
static void arrive(struct rig *r, const uint8_t *s, const uint8_t *data)
{
    struct mem_backend *m = (s[3] & 2) && r->mmds_be ? r->mmds_be : r->main_be;
    size_t len = (size_t)(s[1] | s[2] << 8 | (s[3] & 1) << 16);
    len = MIN(len, sizeof(m->frame));
    for (size_t off = 0; off < len; off += DATA_BYTES)
        memcpy(m->frame + off, data, MIN(DATA_BYTES, len - off));
    m->frame_len = len;
    virtio_net_backend_ready(r->vn, EPOLLIN);
}

static void notify(struct rig *r, unsigned qi);

/* The event loop's turn: rate-limiter timers, kicked queues, and what a
 * transport does besides (the VM pausing, the driver reading config). */
static void time_passes(struct rig *r, const uint8_t *s)
{
    struct virtio_dev *vdev = &r->vn->vdev;
    fake_now += (uint64_t)s[1] * 1000000;
    struct rate_limiter *rls[2] = {&r->vn->rx_limiter, &r->vn->tx_limiter};
    for (unsigned i = 0; i < 2; i++)
        if (rls[i]->blocked) /* what the limiter's timer would do */
            rls[i]->unblocked(rls[i]->ctx);
    for (unsigned q = 0; q < 2; q++)
        if (kicked & (1u << q))
            kicked &= ~(1u << q), notify(r, q);
    if (s[2] & 0x80) { /* pause or resume, as the transports do */
        pthread_mutex_lock(&vdev->lock);
        vdev->paused = !vdev->paused;
        vdev->ops->pause(vdev, vdev->paused);
        pthread_mutex_unlock(&vdev->lock);
        for (unsigned q = 0; !vdev->paused && q < 2; q++)
            notify(r, q); /* what was notified meanwhile */
    }
    uint8_t cfg[8];
    unsigned off = s[2] & 0x0f, len = 1u << (s[3] % 4);
    if (off + len <= vdev->ops->config_size) { /* as the transports check */
        pthread_mutex_lock(&vdev->lock);
        vdev->ops->config_read(vdev, off, cfg, len);
        pthread_mutex_unlock(&vdev->lock);
    }
}

static void run_step(struct rig *r, const uint8_t *s)
{
    const uint8_t *table = s + 4, *data = s + 4 + TABLE_BYTES;
    switch (s[0] % 7) {
    case 0: /* transmit */
    case 1: /* receive buffers */ {
        unsigned qi = s[0] % 7 == 0 ? 1 : 0;
        memcpy(r->mem + ring_base[qi], table, TABLE_BYTES);
        memcpy(r->mem + (qi ? TX_DATA : RX_DATA), data, DATA_BYTES);
        r->main_be->send_ret = s[3] % 8 == 1 ? -EAGAIN : s[3] % 8 == 2 ? -EIO : 0;
        publish(r, qi, s[1], s[2]);
        notify(r, qi);
        break;
    }
    case 2: arrive(r, s, data); break;
    case 3: /* the backend has room again */
        r->main_be->send_ret = 0;
        virtio_net_backend_ready(r->vn, EPOLLOUT | (s[1] & 1 ? EPOLLIN : 0));
        break;
    case 4: time_passes(r, s); break;
    case 5: /* reset, then set up again with any status sequence */
        pthread_mutex_lock(&r->vn->vdev.lock);
        virtio_dev_set_status(&r->vn->vdev, 0);
        r->features = (r->features & ~0xffffull) | le16_load(s + 1);
        setup_queues(r, s[3]);
        pthread_mutex_unlock(&r->vn->vdev.lock);
        break;
    case 6: { /* the operator changes the rate limits */
        struct rate_limit_config rx = {.bandwidth = {s[1] * 64u, 0, 1 + s[2] % 8},
                                       .bandwidth_set = true};
        struct rate_limit_config tx = {.ops = {s[3] % 4, 0, 1 + s[2] % 8}, .ops_set = true};
        if (virtio_net_set_rate_limits(r->vn, &rx, &tx))
            abort();
        break;
    }
    }
}

static int setup_device(struct rig *r, const struct guest_mem *gm, const uint8_t *h,
                        struct evloop *loop, int poll_fd[2])
{
    static struct mem_backend main_be, mmds_be;
    main_be = (struct mem_backend){.be = {.ops = &mb_ops, .poll_fd = poll_fd[0],
                                          .vnet_hdr = h[0] & 8, .can_block_tx = true}};
    mmds_be = (struct mem_backend){.be = {.ops = &mb_ops, .poll_fd = poll_fd[1],
                                          .mmds_ip = MMDS_IP}};
    snprintf(main_be.be.desc, sizeof(main_be.be.desc), "fuzz-net");
    snprintf(mmds_be.be.desc, sizeof(mmds_be.be.desc), "fuzz-mmds");
    if (h[0] & 0x40)
        main_be.be.mmds = &mmds_be.be;
    r->main_be = &main_be;
    r->mmds_be = (h[0] & 0x40) ? &mmds_be : NULL;
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    if (virtio_net_init(r->vn, gm, &main_be.be, mac, loop))
        return -1;
    r->vn->vdev.transport = &t_ops;
    r->vn->rx_limiter.clock = r->vn->tx_limiter.clock = fake_clock;
    struct rate_limit_config rx = {.bandwidth = {h[4] * 16u, h[5] * 16u, 1 + h[6] % 16},
                                   .bandwidth_set = (h[0] & 0x10) != 0};
    struct rate_limit_config tx = {.bandwidth = {h[5] * 16u, 0, 1 + h[6] % 16},
                                   .ops = {h[7] % 8, 0, 1 + h[6] % 16},
                                   .bandwidth_set = (h[0] & 0x20) != 0,
                                   .ops_set = (h[0] & 0x20) != 0};
    if (virtio_net_set_rate_limits(r->vn, &rx, &tx))
        return -1;
    r->qsize[0] = (uint16_t)(1u << (1 + h[1] % 3)); /* 2, 4 or 8 */
    r->qsize[1] = (uint16_t)(1u << (1 + (h[1] >> 2) % 3));
    /* Anything, offered or not: the device must refuse what it does not offer. */
    r->features = (1ull << VIRTIO_F_VERSION_1) | le16_load(h + 2) |
                  ((h[0] & 1) ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0) |
                  ((h[0] & 2) ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) |
                  ((h[0] & 4) ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
                  ((h[0] & 0x80) ? 1ull << VIRTIO_NET_F_GUEST_CSUM : 0);
    pthread_mutex_lock(&r->vn->vdev.lock);
    setup_queues(r, (h[1] & 0x80) ? h[3] : 0x0f);
    pthread_mutex_unlock(&r->vn->vdev.lock);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm;
    static struct evloop loop;
    static int poll_fd[2];
    static bool ready;
    if (!ready) {
        if (gm_create_anon(&gm, MEM, 1ull << 32) || evloop_init(&loop))
            abort();
        poll_fd[0] = eventfd_create();
        poll_fd[1] = eventfd_create();
        if (poll_fd[0] < 0 || poll_fd[1] < 0)
            abort();
        /* FUZZ_VERBOSE=1: each input's counters (the device logs them). */
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_INFO : LOG_ERROR);
        ready = true;
    }
    if (size < HEADER)
        return 0;
    struct rig r = {.mem = gm.regions[0].hva};
    memset(r.mem, 0, RX_DATA + DATA_BYTES);
    fake_now = 0;
    kicked = 0;
    r.vn = calloc(1, sizeof(*r.vn));
    if (!r.vn || setup_device(&r, &gm, data, &loop, poll_fd)) {
        fprintf(stderr, "setup: %s\n", err_msg());
        abort();
    }
    for (size_t off = HEADER; off + STEP <= size; off += STEP)
        run_step(&r, data + off);
    virtio_net_destroy(r.vn);
    free(r.vn);
    return 0;
}

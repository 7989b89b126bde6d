/* virtio-net's receive and transmit paths against fake guest memory and a
 * fake backend, well-formed and hostile. */
#include "fakes.h"

#include <stdio.h>
#include <sys/epoll.h>

#include "util/util.h"
#include "virtio/net.h"

#define RO 0
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define MEM_SIZE 0x100000ull
#define QSIZE 16

/* One split ring in fake memory, driven as the guest would. */
struct ring {
    uint8_t *mem;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
};

static void ring_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next)
{
    uint8_t *d = r->mem + r->desc + 16u * i;
    le64_store(d, addr);
    le32_store(d + 8, len);
    le16_store(d + 12, flags);
    le16_store(d + 14, next);
}

static void ring_publish(struct ring *r, uint16_t head)
{
    le16_store(r->mem + r->avail + 4 + 2u * (r->avail_idx % QSIZE), head);
    r->avail_idx++;
    le16_store(r->mem + r->avail + 2, r->avail_idx);
}

static uint16_t ring_used_idx(struct ring *r)
{
    return le16_load(r->mem + r->used + 2);
}

static uint32_t ring_used_len(struct ring *r, uint16_t i)
{
    return le32_load(r->mem + r->used + 4 + 8u * (i % QSIZE) + 4);
}

struct fake_be {
    struct net_backend be;
    uint8_t sent[NET_MAX_FRAME];
    size_t sent_len;
    unsigned sends;
    int send_ret;
    uint8_t next_frame[NET_MAX_FRAME];
    size_t next_len; /* 0: nothing to receive */
};

static int fb_send(struct net_backend *be, const struct iovec *iov, int n)
{
    struct fake_be *f = (struct fake_be *)be;
    if (f->send_ret)
        return f->send_ret;
    f->sent_len = 0;
    for (int i = 0; i < n; i++) {
        memcpy(f->sent + f->sent_len, iov[i].iov_base, iov[i].iov_len);
        f->sent_len += iov[i].iov_len;
    }
    f->sends++;
    return 0;
}

static ssize_t fb_recv(struct net_backend *be, uint8_t *buf, size_t len)
{
    struct fake_be *f = (struct fake_be *)be;
    size_t n = f->next_len;
    if (!n || n > len)
        return 0;
    memcpy(buf, f->next_frame, n);
    f->next_len = 0;
    return (ssize_t)n;
}

static int fb_offloads(struct net_backend *be, unsigned flags)
{
    (void)be;
    (void)flags;
    return 0;
}

static void fb_destroy(struct net_backend *be)
{
    (void)be;
}

static const struct net_backend_ops fb_ops = {fb_send, fb_recv, fb_offloads, fb_destroy};

static unsigned irqs, config_irqs;
static void t_queue(struct virtio_dev *v, unsigned q) { (void)v; (void)q; irqs++; }
static void t_config(struct virtio_dev *v) { (void)v; config_irqs++; }
static const struct virtio_transport_ops t_ops = {
    .notify_queue = t_queue, .notify_config = t_config};

struct fixture {
    struct guest_mem gm;
    uint8_t *mem;
    struct fake_be fb;
    struct virtio_net *vn;
    struct ring rx, tx;
};

static struct fixture *setup(bool mergeable)
{
    struct fixture *x = calloc(1, sizeof(*x));
    fake_mem_init(&x->gm, 0, MEM_SIZE);
    x->mem = x->gm.regions[0].hva;
    x->fb.be = (struct net_backend){.ops = &fb_ops, .poll_fd = -1, .vnet_hdr = true};
    snprintf(x->fb.be.desc, sizeof(x->fb.be.desc), "fake");
    x->vn = calloc(1, sizeof(*x->vn));
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    assert_int_equal(virtio_net_init(x->vn, &x->gm, &x->fb.be, mac, NULL), 0);
    struct virtio_dev *vdev = &x->vn->vdev;
    vdev->transport = &t_ops;
    x->rx = (struct ring){x->mem, 0x1000, 0x2000, 0x3000, 0};
    x->tx = (struct ring){x->mem, 0x4000, 0x5000, 0x6000, 0};
    struct ring *rings[2] = {&x->rx, &x->tx};
    for (int i = 0; i < 2; i++) {
        struct virtq *q = &vdev->queues[i];
        q->size = QSIZE;
        q->desc_gpa = rings[i]->desc;
        q->avail_gpa = rings[i]->avail;
        q->used_gpa = rings[i]->used;
        q->ready = true;
    }
    vdev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
                            (mergeable ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0);
    virtio_dev_set_status(vdev, 0x0f);
    assert_true(virtio_dev_running(vdev));
    irqs = config_irqs = 0;
    return x;
}

static void teardown_fixture(struct fixture *x)
{
    virtio_net_destroy(x->vn);
    free(x->vn);
    fake_mem_free(&x->gm);
    free(x);
}

static void notify(struct fixture *x, unsigned q)
{
    struct virtio_dev *vdev = &x->vn->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, q);
    pthread_mutex_unlock(&vdev->lock);
}

static void test_tx_passes_frames_through(void **state)
{
    (void)state;
    struct fixture *x = setup(true);
    /* Header (12 bytes, checksum offload requested) and a frame in two parts. */
    uint8_t hdr[12] = {NET_HDR_F_NEEDS_CSUM};
    memcpy(x->mem + 0x10000, hdr, 12);
    memset(x->mem + 0x11000, 0xab, 60);
    memset(x->mem + 0x12000, 0xcd, 40);
    ring_desc(&x->tx, 0, 0x10000, 12, NEXT, 1);
    ring_desc(&x->tx, 1, 0x11000, 60, NEXT, 2);
    ring_desc(&x->tx, 2, 0x12000, 40, RO, 0);
    ring_publish(&x->tx, 0);
    notify(x, 1);
    assert_int_equal(x->fb.sends, 1);
    assert_int_equal(x->fb.sent_len, 112);
    assert_int_equal(x->fb.sent[0], NET_HDR_F_NEEDS_CSUM); /* header untouched */
    assert_int_equal(x->fb.sent[12], 0xab);
    assert_int_equal(x->fb.sent[111], 0xcd);
    assert_int_equal(ring_used_idx(&x->tx), 1);
    assert_true(x->vn->stats.tx_packets == 1 && x->vn->stats.tx_bytes == 100);
    teardown_fixture(x);
}

static void test_tx_bad_chains_and_backpressure(void **state)
{
    (void)state;
    struct fixture *x = setup(true);
    /* Only a header, no frame: counted as an error, returned to the guest. */
    ring_desc(&x->tx, 0, 0x10000, 12, RO, 0);
    ring_publish(&x->tx, 0);
    notify(x, 1);
    assert_int_equal(x->fb.sends, 0);
    assert_int_equal(ring_used_idx(&x->tx), 1);
    assert_true(x->vn->stats.tx_errors == 1);
    /* The backend is full: the chain stays available until it drains. */
    x->fb.send_ret = -EAGAIN;
    ring_desc(&x->tx, 1, 0x10000, 80, RO, 0);
    ring_publish(&x->tx, 1);
    notify(x, 1);
    assert_int_equal(ring_used_idx(&x->tx), 1);
    assert_true(x->vn->tx_waiting);
    x->fb.send_ret = 0;
    virtio_net_backend_ready(x->vn, EPOLLOUT);
    assert_false(x->vn->tx_waiting);
    assert_int_equal(x->fb.sends, 1);
    assert_int_equal(ring_used_idx(&x->tx), 2);
    teardown_fixture(x);
}

static void post_rx_buffers(struct fixture *x, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t d = (uint16_t)(x->rx.avail_idx % QSIZE);
        ring_desc(&x->rx, d, 0x40000 + 0x2000ull * d, len, WR, 0);
        ring_publish(&x->rx, d);
    }
}

static void queue_frame(struct fixture *x, size_t payload)
{
    memset(x->fb.next_frame, 0, NET_HDR_SIZE);
    for (size_t i = 0; i < payload; i++)
        x->fb.next_frame[NET_HDR_SIZE + i] = (uint8_t)i;
    x->fb.next_len = NET_HDR_SIZE + payload;
}

static void test_rx_mergeable(void **state)
{
    (void)state;
    struct fixture *x = setup(true);
    post_rx_buffers(x, 4, 1500);
    queue_frame(x, 4000); /* 4012 bytes: three 1500-byte buffers */
    virtio_net_backend_ready(x->vn, EPOLLIN);
    assert_int_equal(ring_used_idx(&x->rx), 3);
    assert_int_equal(ring_used_len(&x->rx, 0), 1500);
    assert_int_equal(ring_used_len(&x->rx, 1), 1500);
    assert_int_equal(ring_used_len(&x->rx, 2), 1012);
    assert_int_equal(le16_load(x->mem + 0x40000 + 10), 3); /* num_buffers */
    assert_int_equal(x->mem[0x40000 + 12 + 100], 100);
    assert_int_equal(x->mem[0x42000 + (1500 - 12 - 1488) + 0], (uint8_t)(1488));
    assert_true(irqs >= 1);
    teardown_fixture(x);
}

static void test_rx_waits_for_buffers(void **state)
{
    (void)state;
    struct fixture *x = setup(true);
    post_rx_buffers(x, 1, 1500);
    queue_frame(x, 3000); /* needs three buffers; only one is there */
    virtio_net_backend_ready(x->vn, EPOLLIN);
    assert_int_equal(ring_used_idx(&x->rx), 0);  /* nothing consumed */
    assert_true(x->vn->frame_pending);
    assert_false(x->vn->wanted_events & EPOLLIN); /* stops reading the backend */
    post_rx_buffers(x, 2, 1500);
    notify(x, 0);                                 /* the guest kicks the rx queue */
    assert_false(x->vn->frame_pending);
    assert_int_equal(ring_used_idx(&x->rx), 3);
    assert_true(x->vn->wanted_events & EPOLLIN);
    teardown_fixture(x);
}

static void test_rx_without_mergeable_drops_big_frames(void **state)
{
    (void)state;
    struct fixture *x = setup(false);
    post_rx_buffers(x, 2, 1500);
    queue_frame(x, 3000);
    virtio_net_backend_ready(x->vn, EPOLLIN);
    assert_int_equal(ring_used_idx(&x->rx), 0); /* buffer kept for a frame that fits */
    assert_true(x->vn->stats.rx_dropped == 1);
    queue_frame(x, 1000);
    virtio_net_backend_ready(x->vn, EPOLLIN);
    assert_int_equal(ring_used_idx(&x->rx), 1);
    assert_int_equal(le16_load(x->mem + 0x40000 + 10), 1);
    teardown_fixture(x);
}

static void test_hostile_rings(void **state)
{
    (void)state;
    /* A receive buffer the device may not write. */
    struct fixture *x = setup(true);
    ring_desc(&x->rx, 0, 0x40000, 1500, RO, 0);
    ring_publish(&x->rx, 0);
    queue_frame(x, 100);
    virtio_net_backend_ready(x->vn, EPOLLIN);
    assert_true(x->vn->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(config_irqs, 1);
    teardown_fixture(x);
    /* A transmit chain that loops. */
    x = setup(true);
    ring_desc(&x->tx, 0, 0x10000, 64, NEXT, 1);
    ring_desc(&x->tx, 1, 0x10000, 64, NEXT, 0);
    ring_publish(&x->tx, 0);
    notify(x, 1);
    assert_true(x->vn->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(x->fb.sends, 0);
    teardown_fixture(x);
    /* A transmit buffer outside guest memory. */
    x = setup(true);
    ring_desc(&x->tx, 0, MEM_SIZE - 8, 64, RO, 0);
    ring_publish(&x->tx, 0);
    notify(x, 1);
    assert_true(x->vn->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    teardown_fixture(x);
}

static void test_config_and_features(void **state)
{
    (void)state;
    struct fixture *x = setup(true);
    uint8_t cfg[8];
    x->vn->vdev.ops->config_read(&x->vn->vdev, 0, cfg, 8);
    assert_memory_equal(cfg, "\x02\x00\x00\x00\x00\x01", 6);
    assert_int_equal(le16_load(cfg + 6), 1); /* link up */
    uint64_t f = x->vn->vdev.device_features;
    assert_true(f & (1ull << VIRTIO_NET_F_HOST_TSO4));
    teardown_fixture(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_passes_frames_through),
        cmocka_unit_test(test_tx_bad_chains_and_backpressure),
        cmocka_unit_test(test_rx_mergeable),
        cmocka_unit_test(test_rx_waits_for_buffers),
        cmocka_unit_test(test_rx_without_mergeable_drops_big_frames),
        cmocka_unit_test(test_hostile_rings),
        cmocka_unit_test(test_config_and_features),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}

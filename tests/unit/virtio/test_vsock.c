/* virtio-vsock against fake guest rings and real host Unix sockets: the
 * connection state machine both ways, Firecracker's CONNECT protocol, credit
 * accounting in both directions, bounded buffering, resets, snapshots, and
 * a table of hostile packets and rings. */
#include "fakes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"
#include "virtio/vsock.h"

#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define IND VIRTQ_DESC_F_INDIRECT
#define MEM_SIZE (16ull << 20)
#define QSIZE 64
#define CID 3
#define RXBUF(i) (0x100000ull + 0x2000ull * (i))
#define RXTAB(i) (0x0a000ull + 0x20ull * (i))
#define TXBUF(i) (0x400000ull + 0x11000ull * (i))
#define EVBUF(i) (0x0c000ull + 0x10ull * (i))
#define RX_PAYLOAD 4096

struct ring {
    uint8_t *mem;
    uint64_t desc, avail, used;
    uint16_t avail_idx, seen;
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

static void table_desc(uint8_t *mem, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
                       uint16_t flags, uint16_t next)
{
    uint8_t *d = mem + table + 16u * i;
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

static uint16_t ring_used_idx(const struct ring *r)
{
    return le16_load(r->mem + r->used + 2);
}

static void ring_used(const struct ring *r, uint16_t i, uint32_t *id, uint32_t *len)
{
    const uint8_t *e = r->mem + r->used + 4 + 8u * (i % QSIZE);
    *id = le32_load(e);
    *len = le32_load(e + 4);
}

static unsigned irqs, config_irqs;
static void t_queue(struct virtio_dev *v, unsigned q) { (void)v; (void)q; irqs++; }
static void t_config(struct virtio_dev *v) { (void)v; config_irqs++; }
static const struct virtio_transport_ops t_ops = {
    .notify_queue = t_queue, .notify_config = t_config};

struct fixture {
    char dir[64], path[128];
    struct guest_mem gm;
    uint8_t *mem;
    struct virtio_vsock *vs;
    struct ring rx, tx, ev;
    bool rx_single[QSIZE];
};

static struct fixture *setup(void)
{
    struct fixture *x = calloc(1, sizeof(*x));
    snprintf(x->dir, sizeof(x->dir), "/tmp/ember-vsock-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->path, sizeof(x->path), "%s/v.sock", x->dir);
    fake_mem_init(&x->gm, 0, MEM_SIZE);
    x->mem = x->gm.regions[0].hva;
    struct vsock_uds *uds;
    assert_int_equal(vsock_uds_open(x->path, &uds), 0);
    x->vs = calloc(1, sizeof(*x->vs));
    assert_int_equal(virtio_vsock_init(x->vs, &x->gm, CID, uds, NULL), 0);
    struct virtio_dev *vdev = &x->vs->vdev;
    vdev->transport = &t_ops;
    x->rx = (struct ring){x->mem, 0x1000, 0x2000, 0x3000, 0, 0};
    x->tx = (struct ring){x->mem, 0x4000, 0x5000, 0x6000, 0, 0};
    x->ev = (struct ring){x->mem, 0x7000, 0x8000, 0x9000, 0, 0};
    struct ring *rings[3] = {&x->rx, &x->tx, &x->ev};
    for (int i = 0; i < 3; i++) {
        struct virtq *q = &vdev->queues[i];
        q->size = QSIZE;
        q->desc_gpa = rings[i]->desc;
        q->avail_gpa = rings[i]->avail;
        q->used_gpa = rings[i]->used;
        q->ready = true;
    }
    vdev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC);
    virtio_dev_set_status(vdev, 0x0f);
    assert_true(virtio_dev_running(vdev));
    irqs = config_irqs = 0;
    return x;
}

static void teardown_fixture(struct fixture *x)
{
    virtio_vsock_destroy(x->vs);
    free(x->vs);
    fake_mem_free(&x->gm);
    struct stat st;
    assert_int_equal(stat(x->path, &st), -1); /* the listener's file is gone */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
    assert_int_equal(system(cmd), 0);
    free(x);
}

static void pump(struct fixture *x)
{
    for (int i = 0; i < 4; i++)
        virtio_vsock_poll(x->vs);
}

/* --- the guest's side -------------------------------------------------------- */

/* n receive buffers: a 44-byte header and a 4 KiB payload, as Linux 6.1
 * posts them (here through an indirect table), or one buffer for both. */
static void post_rx(struct fixture *x, unsigned n, bool single)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t s = (uint16_t)(x->rx.avail_idx % QSIZE);
        x->rx_single[s] = single;
        if (single) {
            ring_desc(&x->rx, s, RXBUF(s), VSOCK_HDR_SIZE + RX_PAYLOAD, WR, 0);
        } else {
            table_desc(x->mem, RXTAB(s), 0, RXBUF(s), VSOCK_HDR_SIZE, WR | NEXT, 1);
            table_desc(x->mem, RXTAB(s), 1, RXBUF(s) + 0x40, RX_PAYLOAD, WR, 0);
            ring_desc(&x->rx, s, RXTAB(s), 32, IND, 0);
        }
        ring_publish(&x->rx, s);
    }
}

/* Top the receive ring up to QSIZE outstanding buffers. */
static void refill_rx(struct fixture *x)
{
    unsigned outstanding = (uint16_t)(x->rx.avail_idx - ring_used_idx(&x->rx));
    post_rx(x, QSIZE - outstanding, true);
}

struct pkt {
    struct vsock_hdr h;
    uint8_t data[RX_PAYLOAD];
    uint32_t used_len;
};

/* The next packet the device gave the guest, if any. */
static bool next_rx(struct fixture *x, struct pkt *p)
{
    if (x->rx.seen == ring_used_idx(&x->rx))
        return false;
    uint32_t id, len;
    ring_used(&x->rx, x->rx.seen++, &id, &len);
    assert_true(id < QSIZE);
    vsock_hdr_load(&p->h, x->mem + RXBUF(id));
    p->used_len = len;
    assert_int_equal(len, VSOCK_HDR_SIZE + p->h.len);
    assert_true(p->h.len <= RX_PAYLOAD);
    memcpy(p->data, x->mem + RXBUF(id) + (x->rx_single[id] ? VSOCK_HDR_SIZE : 0x40), p->h.len);
    assert_int_equal(p->h.src_cid, VSOCK_HOST_CID);
    assert_int_equal(p->h.dst_cid, CID);
    assert_int_equal(p->h.type, VSOCK_TYPE_STREAM);
    assert_int_equal(p->h.buf_alloc, p->h.op == VSOCK_OP_RST ? p->h.buf_alloc : VSOCK_CONN_BUF);
    return true;
}

static struct pkt *expect_rx(struct fixture *x, uint16_t op, uint32_t src_port, uint32_t dst_port)
{
    static struct pkt p;
    assert_true(next_rx(x, &p));
    if (p.h.op != op)
        fail_msg("expected op %u, got op %u (ports %u -> %u)", op, p.h.op, p.h.src_port,
                 p.h.dst_port);
    assert_int_equal(p.h.src_port, src_port);
    assert_int_equal(p.h.dst_port, dst_port);
    return &p;
}

static void expect_no_rx(struct fixture *x)
{
    struct pkt p;
    if (next_rx(x, &p))
        fail_msg("unexpected packet op %u %u -> %u len %u", p.h.op, p.h.src_port, p.h.dst_port,
                 p.h.len);
}

struct txp {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port;
    uint16_t op, type;
    uint32_t flags, buf_alloc, fwd_cnt;
    uint32_t len;          /* header's len (default: the payload's) */
    bool lie_len;
    const void *data;
    uint32_t data_len;
    bool split;            /* header and payload in two buffers (indirect) */
    uint32_t chain_len;    /* if not 0: the chain's size, whatever the header says */
};

/* The guest sends a packet (from CID 3 to the host unless told otherwise). */
static void send_tx(struct fixture *x, struct txp p)
{
    uint16_t s = (uint16_t)(x->tx.avail_idx % QSIZE);
    struct vsock_hdr h = {
        .src_cid = p.src_cid ? p.src_cid : CID,
        .dst_cid = p.dst_cid ? p.dst_cid : VSOCK_HOST_CID,
        .src_port = p.src_port, .dst_port = p.dst_port,
        .len = p.lie_len ? p.len : p.data_len,
        .type = p.type ? p.type : VSOCK_TYPE_STREAM,
        .op = p.op, .flags = p.flags,
        .buf_alloc = p.buf_alloc ? p.buf_alloc : 256 * 1024, .fwd_cnt = p.fwd_cnt,
    };
    vsock_hdr_store(&h, x->mem + TXBUF(s));
    if (p.data_len)
        memcpy(x->mem + TXBUF(s) + 0x100, p.data, p.data_len);
    if (p.chain_len) {
        ring_desc(&x->tx, s, TXBUF(s), p.chain_len, 0, 0);
    } else if (p.split || p.data_len) {
        uint64_t tab = TXBUF(s) + 0x80;
        table_desc(x->mem, tab, 0, TXBUF(s), VSOCK_HDR_SIZE, NEXT, 1);
        table_desc(x->mem, tab, 1, TXBUF(s) + 0x100, p.data_len, 0, 0);
        ring_desc(&x->tx, s, tab, 32, IND, 0);
    } else {
        ring_desc(&x->tx, s, TXBUF(s), VSOCK_HDR_SIZE, 0, 0);
    }
    ring_publish(&x->tx, s);
    struct virtio_dev *vdev = &x->vs->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, VSOCK_TX);
    pthread_mutex_unlock(&vdev->lock);
}

static void notify_rx(struct fixture *x)
{
    struct virtio_dev *vdev = &x->vs->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, VSOCK_RX);
    pthread_mutex_unlock(&vdev->lock);
}

/* --- the host's side ------------------------------------------------------------ */

static void set_timeout(int fd)
{
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int unix_listen(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4096), 0);
    return fd;
}

static int port_listener(struct fixture *x, uint32_t port)
{
    char p[160];
    snprintf(p, sizeof(p), "%s_%u", x->path, port);
    return unix_listen(p);
}

static int accept_one(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    set_timeout(fd);
    return fd;
}

static int host_connect(struct fixture *x)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", x->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    set_timeout(fd);
    return fd;
}

static void host_write(int fd, const void *data, size_t len)
{
    assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static size_t host_read(int fd, void *buf, size_t len)
{
    ssize_t n = read(fd, buf, len);
    assert_true(n >= 0);
    return (size_t)n;
}

/* The host program's socket was closed without a word. */
static void expect_host_eof(int fd)
{
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n != 0 && !(n < 0 && errno == ECONNRESET))
        fail_msg("expected the host socket closed, read gave %zd (%s)", n, strerror(errno));
}

/* The guest connects to host port 'port' from its 'gport': the device's
 * RESPONSE, and the host program's end of it. */
static int guest_connects(struct fixture *x, int lfd, uint32_t gport, uint32_t port)
{
    send_tx(x, (struct txp){.src_port = gport, .dst_port = port, .op = VSOCK_OP_REQUEST});
    pump(x);
    expect_rx(x, VSOCK_OP_RESPONSE, port, gport);
    return accept_one(lfd);
}

/* --- tests ------------------------------------------------------------------------- */

static void test_guest_to_host(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 32, false);
    int lfd = port_listener(x, 5000);
    int h = guest_connects(x, lfd, 1234, 5000);
    struct vsock_conn *c = virtio_vsock_find(x->vs, 5000, 1234);
    assert_non_null(c);
    assert_int_equal(c->state, VSOCK_ESTABLISHED);
    /* Guest -> host, in a packet split over two buffers. */
    send_tx(x, (struct txp){.src_port = 1234, .dst_port = 5000, .op = VSOCK_OP_RW,
                            .data = "hello", .data_len = 5, .split = true});
    char buf[64];
    assert_int_equal(host_read(h, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(c->fwd_cnt, 5);
    /* Host -> guest, with our credit in the header. */
    host_write(h, "world!", 6);
    pump(x);
    struct pkt *p = expect_rx(x, VSOCK_OP_RW, 5000, 1234);
    assert_int_equal(p->h.len, 6);
    assert_memory_equal(p->data, "world!", 6);
    assert_int_equal(p->h.fwd_cnt, 5);
    /* The host program closes: the guest hears it will get nothing more
     * and may send nothing more, then its RST ends the connection. */
    close(h);
    pump(x);
    p = expect_rx(x, VSOCK_OP_SHUTDOWN, 5000, 1234);
    assert_int_equal(p->h.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
    send_tx(x, (struct txp){.src_port = 1234, .dst_port = 5000, .op = VSOCK_OP_RST});
    assert_null(virtio_vsock_find(x->vs, 5000, 1234));
    assert_int_equal(x->vs->nr_conns, 0);
    assert_int_equal(x->vs->stats.conns_added, 1);
    assert_int_equal(x->vs->stats.conns_removed, 1);
    assert_int_equal(x->vs->nr_deadlines, 0);
    assert_true(irqs > 0);
    close(lfd);
    teardown_fixture(x);
}

static void test_guest_to_missing_listener(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 4, true);
    send_tx(x, (struct txp){.src_port = 77, .dst_port = 4444, .op = VSOCK_OP_REQUEST});
    pump(x);
    expect_rx(x, VSOCK_OP_RST, 4444, 77);
    assert_int_equal(x->vs->nr_conns, 0);
    assert_int_equal(x->vs->stats.conns_refused, 1);
    assert_int_equal(x->vs->stats.resets, 1);
    /* A stale socket file (nobody listening) is refused the same way. */
    int lfd = port_listener(x, 4445);
    close(lfd);
    send_tx(x, (struct txp){.src_port = 78, .dst_port = 4445, .op = VSOCK_OP_REQUEST});
    pump(x);
    expect_rx(x, VSOCK_OP_RST, 4445, 78);
    teardown_fixture(x);
}

/* A host program connects with "CONNECT 52\n" and more bytes in the same
 * write: REQUEST to the guest, "OK <port>\n" once it answers, the early
 * bytes delivered first. */
static void test_host_to_guest(void **state)
{
    (void)state;
    struct fixture *x = setup();
    int h = host_connect(x);
    host_write(h, "CONNECT 52\nearly", 16);
    pump(x); /* no receive buffers yet: the REQUEST waits */
    expect_no_rx(x);
    post_rx(x, 8, false);
    notify_rx(x);
    uint32_t local = VSOCK_LOCAL_PORT_BASE;
    expect_rx(x, VSOCK_OP_REQUEST, local, 52);
    struct vsock_conn *c = virtio_vsock_find(x->vs, local, 52);
    assert_non_null(c);
    assert_int_equal(c->state, VSOCK_LOCAL_INIT);
    assert_true(c->deadline_ns != 0);
    send_tx(x, (struct txp){.src_port = 52, .dst_port = local, .op = VSOCK_OP_RESPONSE,
                            .buf_alloc = 65536});
    char buf[64];
    size_t n = host_read(h, buf, sizeof(buf));
    buf[n] = 0;
    assert_string_equal(buf, "OK 1073741824\n");
    assert_int_equal(c->deadline_ns, 0);
    pump(x);
    struct pkt *p = expect_rx(x, VSOCK_OP_RW, local, 52);
    assert_int_equal(p->h.len, 5);
    assert_memory_equal(p->data, "early", 5);
    host_write(h, "more", 4);
    pump(x);
    p = expect_rx(x, VSOCK_OP_RW, local, 52);
    assert_memory_equal(p->data, "more", 4);
    /* A second host program gets the next port. */
    int h2 = host_connect(x);
    host_write(h2, "connect 53\n", 11);
    pump(x);
    expect_rx(x, VSOCK_OP_REQUEST, local + 1, 53);
    /* ... and the guest refuses it: the host socket closes without "OK". */
    send_tx(x, (struct txp){.src_port = 53, .dst_port = local + 1, .op = VSOCK_OP_RST});
    expect_host_eof(h2);
    assert_null(virtio_vsock_find(x->vs, local + 1, 53));
    close(h2);
    close(h);
    teardown_fixture(x);
}

static void test_connect_line_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int want;
        uint32_t port;
    } cases[] = {
        {"CONNECT 52\n", 1, 52},
        {"connect 4294967295\n", 1, 4294967295u},
        {"Connect\t7 \r\n", 1, 7},
        {"  CONNECT 1\n", 1, 1},
        {"CONNECT 0\n", 1, 0},
        {"CONNECT", 0, 0},
        {"CONNECT 12", 0, 0},
        {"CONN", 0, 0},
        {"", 0, 0},
        {"CONNECT 4294967296\n", -1, 0},
        {"CONNECT -1\n", -1, 0},
        {"CONNECT\n", -1, 0},
        {"CONNECT52\n", -1, 0},
        {"CONNECT 5 2\n", -1, 0},
        {"CONNECT 0x10\n", -1, 0},
        {"GET / HTTP/1.1\r\n", -1, 0},
        {"C0NNECT 1", -1, 0},
        {"\x16\x03\x01", -1, 0},
        {"CONNECT                          ", -1, 0}, /* 32 bytes, no newline */
        {"CONNECTS 5\n", -1, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint32_t port = 0;
        size_t line = 0;
        int got = vsock_uds_parse_connect((const uint8_t *)cases[i].text,
                                          strlen(cases[i].text), &port, &line);
        if (got != cases[i].want)
            fail_msg("'%s': got %d, want %d", cases[i].text, got, cases[i].want);
        if (got == 1) {
            assert_int_equal(port, cases[i].port);
            assert_int_equal(line, strlen(cases[i].text));
        }
    }
}

/* Host programs that do not say CONNECT properly are dropped: garbage at
 * once, silence at the deadline, a full line's worth without a newline. */
static void test_host_protocol_errors(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 8, true);
    int garbage = host_connect(x);
    host_write(garbage, "HELLO\n", 6);
    int http = host_connect(x);
    host_write(http, "GET / HTTP/1.1\r\n", 16);
    int endless = host_connect(x);
    host_write(endless, "CONNECT 111111111111111111111111", 32);
    int silent = host_connect(x);
    int partial = host_connect(x);
    host_write(partial, "CONN", 4);
    pump(x);
    expect_host_eof(garbage);
    expect_host_eof(http);
    expect_host_eof(endless);
    struct vsock_uds *u = x->vs->uds;
    assert_int_equal(u->nr_pending, 2);
    assert_int_equal(x->vs->nr_conns, 0);
    expect_no_rx(x);
    /* Before the deadline nothing happens; after it both are gone. */
    vsock_uds_expire(u, vsock_uds_now_ns() + 1000000000ull);
    assert_int_equal(u->nr_pending, 2);
    vsock_uds_expire(u, vsock_uds_now_ns() + (VSOCK_UDS_CONNECT_DEADLINE_MS + 1) * 1000000ull);
    assert_int_equal(u->nr_pending, 0);
    expect_host_eof(silent);
    expect_host_eof(partial);
    assert_int_equal(u->stats.host_refused, 5);
    /* A client that hangs up before speaking is forgotten too. */
    int quitter = host_connect(x);
    pump(x);
    assert_int_equal(u->nr_pending, 1);
    close(quitter);
    pump(x);
    assert_int_equal(u->nr_pending, 0);
    close(garbage), close(http), close(endless), close(silent), close(partial);
    teardown_fixture(x);
}

/* More clients than may wait for CONNECT: the oldest makes room. */
static void test_host_pending_limit(void **state)
{
    (void)state;
    struct fixture *x = setup();
    int fds[VSOCK_UDS_MAX_PENDING + 1];
    for (unsigned i = 0; i <= VSOCK_UDS_MAX_PENDING; i++) {
        fds[i] = host_connect(x);
        pump(x);
    }
    assert_int_equal(x->vs->uds->nr_pending, VSOCK_UDS_MAX_PENDING);
    expect_host_eof(fds[0]);
    for (unsigned i = 0; i <= VSOCK_UDS_MAX_PENDING; i++)
        close(fds[i]);
    pump(x);
    assert_int_equal(x->vs->uds->nr_pending, 0);
    teardown_fixture(x);
}

/* Host -> guest never exceeds the guest's buffer: a full buffer stops the
 * reading of the host socket and asks for credit once; the guest's update
 * lets the rest through. */
static void test_credit_host_to_guest(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 32, false);
    int lfd = port_listener(x, 6000);
    send_tx(x, (struct txp){.src_port = 9, .dst_port = 6000, .op = VSOCK_OP_REQUEST,
                            .buf_alloc = 10000});
    pump(x);
    expect_rx(x, VSOCK_OP_RESPONSE, 6000, 9);
    int h = accept_one(lfd);
    static uint8_t data[30000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    host_write(h, data, sizeof(data));
    pump(x);
    uint32_t got = 0;
    struct pkt p;
    while (next_rx(x, &p) && p.h.op == VSOCK_OP_RW) {
        assert_memory_equal(p.data, data + got, p.h.len);
        got += p.h.len;
    }
    assert_int_equal(got, 10000);
    assert_int_equal(p.h.op, VSOCK_OP_CREDIT_REQUEST);
    expect_no_rx(x);
    pump(x);
    expect_no_rx(x); /* asked once, and not a byte more */
    /* The guest read 6000 bytes. */
    send_tx(x, (struct txp){.src_port = 9, .dst_port = 6000, .op = VSOCK_OP_CREDIT_UPDATE,
                            .buf_alloc = 10000, .fwd_cnt = 6000});
    pump(x);
    uint32_t more = 0;
    while (next_rx(x, &p) && p.h.op == VSOCK_OP_RW) {
        assert_memory_equal(p.data, data + got + more, p.h.len);
        more += p.h.len;
    }
    assert_int_equal(more, 6000);
    /* A guest that claims a huge buffer gets what the host has, no more. */
    send_tx(x, (struct txp){.src_port = 9, .dst_port = 6000, .op = VSOCK_OP_CREDIT_UPDATE,
                            .buf_alloc = 0xffffffff, .fwd_cnt = 16000});
    pump(x);
    uint32_t rest = 0;
    while (next_rx(x, &p) && p.h.op == VSOCK_OP_RW)
        rest += p.h.len;
    assert_int_equal(got + more + rest, sizeof(data));
    close(h);
    close(lfd);
    teardown_fixture(x);
}

/* Guest -> host: the credit we give is honoured by a well-behaved guest and
 * updated as the host reads; a guest that sends beyond it is reset, and
 * ember never holds more than VSOCK_CONN_BUF for it. */
static void test_credit_guest_to_host(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 48, true);
    int lfd = port_listener(x, 7000);
    int h = guest_connects(x, lfd, 10, 7000);
    int small = 4096;
    setsockopt(h, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    static uint8_t chunk[VSOCK_MAX_PKT];
    memset(chunk, 0x5a, sizeof(chunk));
    /* The host reads nothing: send beyond the 256 KiB we offered. */
    unsigned sent = 0;
    struct vsock_conn *c;
    while ((c = virtio_vsock_find(x->vs, 7000, 10)) && c->state != VSOCK_DEAD && sent < 64) {
        assert_true(c->buf_cap <= VSOCK_CONN_BUF);
        assert_true(c->buf_len <= VSOCK_CONN_BUF);
        send_tx(x, (struct txp){.src_port = 10, .dst_port = 7000, .op = VSOCK_OP_RW,
                                .data = chunk, .data_len = sizeof(chunk)});
        sent++;
    }
    assert_true(sent > 3 && sent < 64); /* the host socket took some, ember 256 KiB */
    assert_int_equal(x->vs->stats.conns_killed, 1);
    pump(x);
    struct pkt p;
    bool rst = false;
    while (next_rx(x, &p))
        rst |= p.h.op == VSOCK_OP_RST && p.h.src_port == 7000 && p.h.dst_port == 10;
    assert_true(rst);
    assert_null(virtio_vsock_find(x->vs, 7000, 10));
    close(h);

    /* A guest that keeps within its credit, with a host that reads. */
    h = guest_connects(x, lfd, 11, 7000);
    c = virtio_vsock_find(x->vs, 7000, 11);
    uint32_t total = 0;
    for (int i = 0; i < 3; i++) {
        send_tx(x, (struct txp){.src_port = 11, .dst_port = 7000, .op = VSOCK_OP_RW,
                                .data = chunk, .data_len = sizeof(chunk)});
        total += sizeof(chunk);
        static uint8_t sink[VSOCK_MAX_PKT];
        size_t want = sizeof(chunk);
        while (want) {
            size_t n = host_read(h, sink, want);
            assert_true(n > 0);
            want -= n;
            pump(x); /* flushes what waits */
        }
    }
    assert_int_equal(c->fwd_cnt, total);
    assert_int_equal(c->rx_cnt, total);
    /* 128 KiB forwarded since the guest last heard: an update was sent. */
    bool update = false;
    uint32_t last_fwd = 0;
    while (next_rx(x, &p)) {
        update |= p.h.op == VSOCK_OP_CREDIT_UPDATE;
        last_fwd = p.h.fwd_cnt;
    }
    assert_true(update);
    assert_true(last_fwd >= VSOCK_CREDIT_THRESHOLD);
    /* The guest asks for credit: it gets an update at once. */
    send_tx(x, (struct txp){.src_port = 11, .dst_port = 7000, .op = VSOCK_OP_CREDIT_REQUEST});
    pump(x);
    struct pkt *u = expect_rx(x, VSOCK_OP_CREDIT_UPDATE, 7000, 11);
    assert_int_equal(u->h.fwd_cnt, total);
    close(h);
    close(lfd);
    teardown_fixture(x);
}

/* Half-closes both ways, and the RST that ends a connection once both
 * directions are done. */
static void test_shutdown(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 16, false);
    int lfd = port_listener(x, 8000);
    int h = guest_connects(x, lfd, 20, 8000);
    send_tx(x, (struct txp){.src_port = 20, .dst_port = 8000, .op = VSOCK_OP_RW,
                            .data = "request", .data_len = 7});
    send_tx(x, (struct txp){.src_port = 20, .dst_port = 8000, .op = VSOCK_OP_SHUTDOWN,
                            .flags = VSOCK_SHUTDOWN_SEND});
    char buf[16];
    assert_int_equal(host_read(h, buf, sizeof(buf)), 7);
    assert_int_equal(host_read(h, buf, sizeof(buf)), 0); /* EOF after the data */
    /* The host still answers. */
    host_write(h, "reply", 5);
    shutdown(h, SHUT_WR);
    pump(x);
    struct pkt *p = expect_rx(x, VSOCK_OP_RW, 8000, 20);
    assert_memory_equal(p->data, "reply", 5);
    /* Both directions are done: the connection ends with an RST. */
    expect_rx(x, VSOCK_OP_RST, 8000, 20);
    assert_null(virtio_vsock_find(x->vs, 8000, 20));
    expect_host_eof(h);
    close(h);

    /* The guest closes completely: RST at once when nothing waits. */
    h = guest_connects(x, lfd, 21, 8000);
    send_tx(x, (struct txp){.src_port = 21, .dst_port = 8000, .op = VSOCK_OP_SHUTDOWN,
                            .flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV});
    pump(x);
    expect_rx(x, VSOCK_OP_RST, 8000, 21);
    expect_host_eof(h);
    /* The host's writes now fail rather than pile up. */
    assert_int_equal(send(h, "x", 1, MSG_NOSIGNAL), -1);
    close(h);
    close(lfd);
    teardown_fixture(x);
}

/* A host program that connects but gives up, and a guest that never
 * answers a REQUEST. */
static void test_local_init_timeouts(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 16, true);
    int h = host_connect(x);
    host_write(h, "CONNECT 99\n", 11);
    pump(x);
    uint32_t local = VSOCK_LOCAL_PORT_BASE;
    expect_rx(x, VSOCK_OP_REQUEST, local, 99);
    virtio_vsock_tick(x->vs, vsock_uds_now_ns() + 1000000000ull);
    pump(x);
    expect_no_rx(x);
    virtio_vsock_tick(x->vs, vsock_uds_now_ns() + (VSOCK_REQUEST_TIMEOUT_MS + 1) * 1000000ull);
    pump(x);
    expect_rx(x, VSOCK_OP_RST, local, 99);
    expect_host_eof(h);
    assert_int_equal(x->vs->nr_conns, 0);
    assert_int_equal(x->vs->nr_deadlines, 0);
    close(h);
    /* The host program hangs up while its REQUEST is unanswered. */
    h = host_connect(x);
    host_write(h, "CONNECT 98\n", 11);
    pump(x);
    expect_rx(x, VSOCK_OP_REQUEST, local + 1, 98);
    close(h);
    pump(x);
    expect_rx(x, VSOCK_OP_RST, local + 1, 98);
    assert_int_equal(x->vs->nr_conns, 0);
    teardown_fixture(x);
}

/* Hostile packets: each gets an RST, is dropped, or breaks the device, and
 * ember goes on. */
static void test_hostile_packets(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        struct txp p;
        bool on_conn;   /* sent on an established connection (ports 30 -> 9000) */
        int reply;      /* 0: nothing; else the op the guest gets */
        bool kills;     /* the connection is reset */
    } cases[] = {
        {"a spoofed source CID", {.src_cid = 7, .src_port = 1, .dst_port = 2,
                                  .op = VSOCK_OP_REQUEST}, false, 0, false},
        {"a packet for another guest", {.dst_cid = 5, .src_port = 1, .dst_port = 2,
                                        .op = VSOCK_OP_REQUEST}, false, 0, false},
        {"a datagram", {.src_port = 1, .dst_port = 2, .op = VSOCK_OP_REQUEST, .type = 3},
         false, VSOCK_OP_RST, false},
        {"data for no connection", {.src_port = 1, .dst_port = 2, .op = VSOCK_OP_RW,
                                    .data = "x", .data_len = 1}, false, VSOCK_OP_RST, false},
        {"a response for no connection", {.src_port = 1, .dst_port = 2,
                                          .op = VSOCK_OP_RESPONSE}, false, VSOCK_OP_RST, false},
        {"an RST for no connection", {.src_port = 1, .dst_port = 2, .op = VSOCK_OP_RST},
         false, 0, false},
        {"a length beyond the chain", {.src_port = 30, .dst_port = 9000, .op = VSOCK_OP_RW,
                                       .data = "abc", .data_len = 3, .lie_len = true,
                                       .len = 4000}, true, VSOCK_OP_RST, true},
        {"a length beyond 64 KiB", {.src_port = 30, .dst_port = 9000, .op = VSOCK_OP_RW,
                                    .lie_len = true, .len = 0x80000, .chain_len = 0x80000 + 44},
         true, VSOCK_OP_RST, true},
        {"an unknown op", {.src_port = 30, .dst_port = 9000, .op = 99}, true, 0, false},
        {"a second REQUEST", {.src_port = 30, .dst_port = 9000, .op = VSOCK_OP_REQUEST},
         true, VSOCK_OP_RST, true},
        {"a RESPONSE to nothing", {.src_port = 30, .dst_port = 9000, .op = VSOCK_OP_RESPONSE},
         true, VSOCK_OP_RST, true},
        {"a datagram on a connection", {.src_port = 30, .dst_port = 9000,
                                        .op = VSOCK_OP_RW, .type = 2, .data = "z",
                                        .data_len = 1}, true, VSOCK_OP_RST, true},
        {"an empty data packet", {.src_port = 30, .dst_port = 9000, .op = VSOCK_OP_RW},
         true, 0, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct fixture *x = setup();
        post_rx(x, 16, true);
        int lfd = port_listener(x, 9000), h = -1;
        if (cases[i].on_conn)
            h = guest_connects(x, lfd, 30, 9000);
        uint64_t dropped = x->vs->stats.tx_dropped;
        send_tx(x, cases[i].p);
        pump(x);
        struct pkt p;
        bool got = next_rx(x, &p);
        if (cases[i].reply && (!got || p.h.op != cases[i].reply))
            fail_msg("%s: expected op %d, got %s %u", cases[i].what, cases[i].reply,
                     got ? "op" : "nothing", got ? p.h.op : 0);
        if (!cases[i].reply && got)
            fail_msg("%s: unexpected op %u", cases[i].what, p.h.op);
        if (got) {
            assert_int_equal(p.h.src_port, cases[i].p.dst_port);
            assert_int_equal(p.h.dst_port, cases[i].p.src_port);
        }
        struct vsock_conn *c = virtio_vsock_find(x->vs, 9000, 30);
        if (cases[i].on_conn) {
            if (cases[i].kills != (c == NULL))
                fail_msg("%s: the connection %s", cases[i].what,
                         c ? "survived" : "was reset");
            if (cases[i].kills)
                expect_host_eof(h);
        }
        if (i < 2 || cases[i].p.op == 99)
            assert_true(x->vs->stats.tx_dropped == dropped + 1);
        assert_true(virtio_dev_live(&x->vs->vdev));
        if (h >= 0)
            close(h);
        close(lfd);
        teardown_fixture(x);
    }
}

/* Hostile rings: a transmit chain too short for a header, a receive buffer
 * too small for one, an event buffer too small for an event. The device
 * needs a reset; after the reset it works again. */
static void test_hostile_rings(void **state)
{
    (void)state;
    struct fixture *x = setup();
    send_tx(x, (struct txp){.chain_len = 20});
    assert_true(x->vs->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(config_irqs, 1);
    teardown_fixture(x);

    x = setup();
    ring_desc(&x->rx, 0, RXBUF(0), 30, WR, 0);
    ring_publish(&x->rx, 0);
    send_tx(x, (struct txp){.src_port = 1, .dst_port = 2, .op = VSOCK_OP_REQUEST});
    assert_true(x->vs->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    teardown_fixture(x);

    x = setup();
    ring_desc(&x->rx, 0, RXBUF(0), 4096, 0, 0); /* read-only for the device */
    ring_publish(&x->rx, 0);
    send_tx(x, (struct txp){.src_port = 1, .dst_port = 2, .op = VSOCK_OP_REQUEST});
    assert_true(x->vs->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
    teardown_fixture(x);

    /* A looping transmit chain; then the driver resets and starts again. */
    x = setup();
    post_rx(x, 4, true);
    int lfd = port_listener(x, 9100);
    int h = guest_connects(x, lfd, 40, 9100);
    ring_desc(&x->tx, 5, TXBUF(5), 44, NEXT, 6);
    ring_desc(&x->tx, 6, TXBUF(6), 44, NEXT, 5);
    ring_publish(&x->tx, 5);
    struct virtio_dev *vdev = &x->vs->vdev;
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, VSOCK_TX);
    pthread_mutex_unlock(&vdev->lock);
    assert_true(vdev->status & VIRTIO_STATUS_NEEDS_RESET);
    pump(x);
    pthread_mutex_lock(&vdev->lock);
    virtio_dev_set_status(vdev, 0); /* reset: every connection goes */
    pthread_mutex_unlock(&vdev->lock);
    assert_int_equal(x->vs->nr_conns, 0);
    close(h);
    close(lfd);
    teardown_fixture(x);
}

/* The guest floods packets that each owe an RST, without receive buffers:
 * transmit stops at VSOCK_RST_RING owed resets and resumes as the guest
 * takes them; none is lost. */
static void test_rst_flood(void **state)
{
    (void)state;
    struct fixture *x = setup();
    unsigned total = 300, queued = 0;
    /* Up to QSIZE chains in flight; the device takes what it can. */
    while (queued < total && (uint16_t)(x->tx.avail_idx - ring_used_idx(&x->tx)) < QSIZE) {
        send_tx(x, (struct txp){.src_port = 1000 + queued, .dst_port = 1, .op = VSOCK_OP_RW,
                                .data = "x", .data_len = 1});
        queued++;
    }
    unsigned got = 0;
    while (got < total) {
        while (queued < total && (uint16_t)(x->tx.avail_idx - ring_used_idx(&x->tx)) < QSIZE) {
            send_tx(x, (struct txp){.src_port = 1000 + queued, .dst_port = 1,
                                    .op = VSOCK_OP_RW, .data = "x", .data_len = 1});
            queued++;
        }
        assert_true(x->vs->rst_len <= VSOCK_RST_RING);
        if (x->vs->rst_len == VSOCK_RST_RING)
            assert_true(x->vs->tx_blocked);
        post_rx(x, 32, true);
        notify_rx(x);
        pump(x);
        struct pkt p;
        unsigned before = got;
        while (next_rx(x, &p)) {
            assert_int_equal(p.h.op, VSOCK_OP_RST);
            assert_int_equal(p.h.dst_port, 1000 + got);
            got++;
        }
        assert_true(got > before);
    }
    assert_int_equal(got, total);
    assert_int_equal(x->vs->stats.resets, total);
    teardown_fixture(x);
}

/* VSOCK_MAX_CONNS connections from the guest, then one more is refused. */
static void test_many_connections(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2 * VSOCK_MAX_CONNS + 64)
        skip();
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
    struct fixture *x = setup();
    int lfd = port_listener(x, 9200);
    static int hs[VSOCK_MAX_CONNS];
    unsigned responses = 0;
    for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
        send_tx(x, (struct txp){.src_port = 50000 + i, .dst_port = 9200,
                                .op = VSOCK_OP_REQUEST});
        if (i < VSOCK_MAX_CONNS)
            hs[i] = accept_one(lfd);
        if (i % 32 == 31 || i == VSOCK_MAX_CONNS) {
            refill_rx(x);
            notify_rx(x);
            struct pkt p;
            while (next_rx(x, &p)) {
                if (p.h.op == VSOCK_OP_RESPONSE)
                    responses++;
                else
                    assert_int_equal(p.h.op, VSOCK_OP_RST);
            }
        }
    }
    assert_int_equal(responses, VSOCK_MAX_CONNS);
    assert_int_equal(x->vs->nr_conns, VSOCK_MAX_CONNS);
    assert_int_equal(x->vs->stats.conns_refused, 1);
    /* Every host program hangs up: each connection tells the guest. */
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        close(hs[i]);
    unsigned shutdowns = 0;
    for (int round = 0; round < 200 && shutdowns < VSOCK_MAX_CONNS; round++) {
        refill_rx(x);
        notify_rx(x);
        pump(x);
        struct pkt p;
        while (next_rx(x, &p))
            shutdowns += p.h.op == VSOCK_OP_SHUTDOWN;
    }
    assert_int_equal(shutdowns, VSOCK_MAX_CONNS);
    close(lfd);
    teardown_fixture(x); /* frees the rest */
}

/* Snapshots: the model saves its CID; a restored device drops whatever it
 * had and tells the driver with TRANSPORT_RESET once it has an event
 * buffer. */
static void test_snapshot_reset_event(void **state)
{
    (void)state;
    struct fixture *x = setup();
    post_rx(x, 8, true);
    int lfd = port_listener(x, 9300);
    int h = guest_connects(x, lfd, 60, 9300);
    struct virtio_dev *vdev = &x->vs->vdev;
    struct rec r = rec_new();
    vdev->ops->save(vdev, r);
    pthread_mutex_lock(&vdev->lock);
    assert_int_equal(vdev->ops->load(vdev, r), 0);
    pthread_mutex_unlock(&vdev->lock);
    assert_int_equal(x->vs->nr_conns, 0);
    expect_host_eof(h);
    assert_true(x->vs->reset_event);
    pump(x);
    assert_int_equal(ring_used_idx(&x->ev), 0); /* no event buffer yet */
    ring_desc(&x->ev, 0, EVBUF(0), 4, WR, 0);
    le32_store(x->mem + EVBUF(0), 0xdead);
    ring_publish(&x->ev, 0);
    pthread_mutex_lock(&vdev->lock);
    vdev->ops->queue_notify(vdev, VSOCK_EVENT);
    pthread_mutex_unlock(&vdev->lock);
    assert_int_equal(ring_used_idx(&x->ev), 1);
    assert_int_equal(le32_load(x->mem + EVBUF(0)), VSOCK_EVENT_TRANSPORT_RESET);
    assert_false(x->vs->reset_event);
    /* A new connection works. */
    int h2 = guest_connects(x, lfd, 61, 9300);
    send_tx(x, (struct txp){.src_port = 61, .dst_port = 9300, .op = VSOCK_OP_RW,
                            .data = "again", .data_len = 5});
    char buf[8];
    assert_int_equal(host_read(h2, buf, sizeof(buf)), 5);
    /* Another CID in the snapshot is refused. */
    rec_free(r);
    r = rec_new();
    rec_put_u64(r, "guest_cid", 4);
    pthread_mutex_lock(&vdev->lock);
    assert_int_not_equal(vdev->ops->load(vdev, r), 0);
    pthread_mutex_unlock(&vdev->lock);
    rec_free(r);
    /* An event buffer too small for an event breaks the device. */
    r = rec_new();
    vdev->ops->save(vdev, r);
    pthread_mutex_lock(&vdev->lock);
    assert_int_equal(vdev->ops->load(vdev, r), 0);
    pthread_mutex_unlock(&vdev->lock);
    rec_free(r);
    ring_desc(&x->ev, 1, EVBUF(1), 2, WR, 0);
    ring_publish(&x->ev, 1);
    pump(x);
    assert_true(vdev->status & VIRTIO_STATUS_NEEDS_RESET);
    close(h), close(h2), close(lfd);
    teardown_fixture(x);
}

static void test_config_and_counters(void **state)
{
    (void)state;
    struct fixture *x = setup();
    struct virtio_dev *vdev = &x->vs->vdev;
    uint8_t cfg[8];
    vdev->ops->config_read(vdev, 0, cfg, 8);
    assert_int_equal(le64_load(cfg), CID);
    uint32_t hi = 1;
    vdev->ops->config_read(vdev, 4, &hi, 4);
    assert_int_equal(hi, 0);
    assert_int_equal(vdev->ops->device_id, 19);
    assert_int_equal(vdev->ops->num_queues, 3);
    struct device_counter c[DEVICE_MAX_COUNTERS];
    size_t n = vdev->ops->counters(vdev, c);
    assert_true(n >= 10 && n <= DEVICE_MAX_COUNTERS);
    assert_string_equal(c[0].name, "rx_packets_count");
    teardown_fixture(x);
}

/* The listening socket: a stale file is replaced, a live one refused. */
static void test_listener_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/ember-vsock-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s", dir);
    int stale = unix_listen(path);
    close(stale); /* the file stays, nobody serves */
    struct vsock_uds *u, *u2;
    assert_int_equal(vsock_uds_open(path, &u), 0);
    assert_int_equal(vsock_uds_open(path, &u2), -EADDRINUSE);
    vsock_uds_destroy(u);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    close(f);
    assert_int_equal(vsock_uds_open(path, &u2), -EEXIST);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guest_to_host),
        cmocka_unit_test(test_guest_to_missing_listener),
        cmocka_unit_test(test_host_to_guest),
        cmocka_unit_test(test_connect_line_parser),
        cmocka_unit_test(test_host_protocol_errors),
        cmocka_unit_test(test_host_pending_limit),
        cmocka_unit_test(test_credit_host_to_guest),
        cmocka_unit_test(test_credit_guest_to_host),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_local_init_timeouts),
        cmocka_unit_test(test_hostile_packets),
        cmocka_unit_test(test_hostile_rings),
        cmocka_unit_test(test_rst_flood),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_snapshot_reset_event),
        cmocka_unit_test(test_config_and_counters),
        cmocka_unit_test(test_listener_file),
    };
    return cmocka_run_group_tests_name("vsock", tests, NULL, NULL);
}

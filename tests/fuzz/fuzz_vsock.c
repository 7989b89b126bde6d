/* libFuzzer target: virtio-vsock's packet parser and connection state
 * machine. The input is a program of steps — guest packets (header fields,
 * payload, chain layout), receive buffers of any size, host programs that
 * connect, write, send CONNECT lines or garbage, or hang up, polls, clock
 * jumps, device resets, snapshot loads — run against the real device and
 * real Unix sockets, with the device's invariants checked after each step:
 * connections and owed resets within their limits, no connection holding
 * more than VSOCK_CONN_BUF, the rings broken only by the guest.
 *
 *   make fuzz && build/fuzz/fuzz_vsock -max_total_time=60 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/attach.h"
#include "virtio/vsock.h"

#define QSIZE 16
#define CID 3
#define DATA 0x20000u /* buffers from here */
#define SLOT 0x4000u
#define TX_SLOTS 56   /* packets' buffers: DATA + SLOT * (0..55) */
#define RX_SLOTS 8    /* receive buffers: the next eight slots */
#define MEM (DATA + SLOT * (TX_SLOTS + RX_SLOTS))
#define HOSTS 8
#define PAYLOAD_MAX 0x3000u /* below the indirect table at +0x3f00 */

/* The board is not part of this target (board setup is never called). */
int virtio_attach(struct board *b, struct virtio_dev *vdev, const char *metrics)
{
    (void)b, (void)vdev, (void)metrics;
    abort();
}

static char dir[64], path[128];
static int listener[2];
static uint8_t *mem;

struct ring {
    uint64_t desc, avail, used;
    uint16_t avail_idx;
};

struct input {
    const uint8_t *p;
    size_t left;
};

static unsigned take(struct input *in, unsigned bytes)
{
    unsigned v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v = v << 8 | (in->left ? *in->p : 0);
        if (in->left)
            in->p++, in->left--;
    }
    return v;
}

static void desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    uint8_t *d = mem + r->desc + 16u * (i % QSIZE);
    le64_store(d, addr);
    le32_store(d + 8, len);
    le16_store(d + 12, flags);
    le16_store(d + 14, next);
}

static void publish(struct ring *r, uint16_t head)
{
    le16_store(mem + r->avail + 4 + 2u * (r->avail_idx % QSIZE), head);
    r->avail_idx++;
    le16_store(mem + r->avail + 2, r->avail_idx);
}

static void t_queue(struct virtio_dev *v, unsigned q) { (void)v; (void)q; }
static void t_config(struct virtio_dev *v) { (void)v; }
static const struct virtio_transport_ops t_ops = {
    .notify_queue = t_queue, .notify_config = t_config};

static void setup_once(void)
{
    if (dir[0])
        return;
    log_set_level(LOG_ERROR);
    /* Each input binds the device's socket anew: on tmpfs that costs a few
     * microseconds, on ext4 (/tmp here) it searched for a free inode and
     * took most of an input's time. */
    snprintf(dir, sizeof(dir), "/dev/shm/ember-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/ember-fuzz-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    snprintf(path, sizeof(path), "%s/v.sock", dir);
    for (int i = 0; i < 2; i++) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s_%d", path, i + 1);
        listener[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (bind(listener[i], (struct sockaddr *)&a, sizeof(a)) || listen(listener[i], 64))
            abort();
    }
    mem = calloc(1, MEM);
    /* Every packet's payload is the same counting pattern: written once
     * here (the device only reads these slots) rather than per packet,
     * which took most of an input's time under ASan. */
    for (unsigned s = 0; s < TX_SLOTS; s++)
        for (uint32_t i = 0; i < PAYLOAD_MAX; i++)
            mem[DATA + (size_t)SLOT * s + VSOCK_HDR_SIZE + i] = (uint8_t)i;
}

static void start(struct virtio_vsock *vs, struct ring *rings)
{
    struct virtio_dev *vdev = &vs->vdev;
    for (int i = 0; i < 3; i++) {
        rings[i] = (struct ring){0x1000u + 0x3000u * i, 0x2000u + 0x3000u * i,
                                 0x2800u + 0x3000u * i, 0};
        memset(mem + rings[i].desc, 0, 0x3000);
        struct virtq *q = &vdev->queues[i];
        q->size = QSIZE;
        q->desc_gpa = rings[i].desc;
        q->avail_gpa = rings[i].avail;
        q->used_gpa = rings[i].used;
        q->ready = true;
    }
    vdev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
                            (1ull << VIRTIO_F_EVENT_IDX);
    virtio_dev_set_status(vdev, 0x0f);
}

/* 'all': also walk the whole table when the device counts no connection
 * (1024 empty buckets after every step cost more than the step). */
static void check(struct virtio_vsock *vs, bool all)
{
    if (vs->nr_conns > VSOCK_MAX_CONNS || vs->rst_len > VSOCK_RST_RING)
        abort();
    if (!all && vs->nr_conns == 0)
        return;
    unsigned n = 0;
    for (unsigned i = 0; i < VSOCK_HASH; i++)
        for (struct vsock_conn *c = vs->table[i]; c; c = c->hash_next, n++)
            if (c->buf_len > VSOCK_CONN_BUF || c->buf_cap > VSOCK_CONN_BUF ||
                (c->state == VSOCK_DEAD && c->fd >= 0))
                abort();
    if (n != vs->nr_conns)
        abort();
}

static void notify(struct virtio_vsock *vs, unsigned q)
{
    pthread_mutex_lock(&vs->vdev.lock);
    vs->vdev.ops->queue_notify(&vs->vdev, q);
    pthread_mutex_unlock(&vs->vdev.lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    struct input in = {data, size};
    struct guest_mem gm = {0};
    if (gm_add_region(&gm, 0, MEM, mem))
        abort();
    struct vsock_uds *uds;
    unlink(path);
    if (vsock_uds_open(path, &uds))
        abort();
    struct virtio_vsock *vs = calloc(1, sizeof(*vs));
    if (virtio_vsock_init(vs, &gm, CID, uds, NULL))
        abort();
    vs->vdev.transport = &t_ops;
    struct ring rings[3];
    start(vs, rings);
    int hosts[HOSTS];
    unsigned nhosts = 0;
    uint16_t slot = 0;
    bool rx_used = false;
    for (unsigned step = 0; step < 256 && in.left; step++) {
        unsigned op = take(&in, 1) % 10;
        uint64_t buf = DATA + (uint64_t)SLOT * (slot++ % TX_SLOTS);
        switch (op) {
        case 0:
        case 1: { /* a guest packet */
            struct vsock_hdr h = {
                .src_cid = take(&in, 1) < 240 ? CID : take(&in, 1),
                .dst_cid = take(&in, 1) < 240 ? VSOCK_HOST_CID : take(&in, 1),
                .src_port = take(&in, 1) % 4,
                .dst_port = take(&in, 1) < 200 ? 1 + take(&in, 1) % 2 : take(&in, 4),
                .type = take(&in, 1) < 240 ? VSOCK_TYPE_STREAM : take(&in, 2),
                .op = take(&in, 1) % 9,
                .flags = take(&in, 1) % 4,
                .buf_alloc = take(&in, 1) < 128 ? 262144 : take(&in, 4),
                .fwd_cnt = take(&in, 4),
            };
            uint32_t plen = take(&in, 2) % PAYLOAD_MAX;
            h.len = take(&in, 1) < 230 ? plen : take(&in, 4);
            if (h.op == VSOCK_OP_RW && take(&in, 1) & 1)
                h.dst_port = 1 + (h.dst_port & 1);
            vsock_hdr_store(&h, mem + buf);
            unsigned hlen = take(&in, 1) < 240 ? VSOCK_HDR_SIZE : take(&in, 1) % 64;
            uint16_t d = (uint16_t)(rings[1].avail_idx % QSIZE);
            if (op == 0 || plen == 0) {
                desc(&rings[1], d, buf, hlen + plen, 0, 0);
            } else { /* header and payload in two buffers, through an indirect table */
                uint64_t tab = buf + 0x3f00;
                uint8_t *t = mem + tab;
                le64_store(t, buf);
                le32_store(t + 8, hlen);
                le16_store(t + 12, VIRTQ_DESC_F_NEXT);
                le16_store(t + 14, 1);
                le64_store(t + 16, buf + VSOCK_HDR_SIZE);
                le32_store(t + 24, plen);
                le16_store(t + 28, 0);
                desc(&rings[1], d, tab, 32, VIRTQ_DESC_F_INDIRECT, 0);
            }
            publish(&rings[1], d);
            notify(vs, VSOCK_TX);
            break;
        }
        case 2: { /* receive buffers */
            unsigned n = 1 + take(&in, 1) % 8;
            for (unsigned i = 0; i < n; i++) {
                uint16_t d = (uint16_t)(rings[0].avail_idx % QSIZE);
                uint32_t len = take(&in, 1) < 250 ? VSOCK_HDR_SIZE + 4096 : take(&in, 1);
                desc(&rings[0], d, DATA + (uint64_t)SLOT * (TX_SLOTS + d % RX_SLOTS), len,
                     VIRTQ_DESC_F_WRITE, 0);
                rx_used = true;
                publish(&rings[0], d);
            }
            notify(vs, VSOCK_RX);
            break;
        }
        case 3: { /* a host program connects: CONNECT, garbage, or nothing */
            if (nhosts == HOSTS)
                break;
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
            if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
                close(fd);
                break;
            }
            char line[40];
            unsigned kind = take(&in, 1) % 4;
            int n = kind == 0 ? snprintf(line, sizeof(line), "CONNECT %u\n", take(&in, 1))
                  : kind == 1 ? snprintf(line, sizeof(line), "CONNECT %u\nxyz", take(&in, 4))
                  : kind == 2 ? (int)take(&in, 1) % 33 : 0;
            for (int i = kind == 2 ? 0 : n; i < n; i++)
                line[i] = (char)take(&in, 1);
            if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0) {
                close(fd);
                break;
            }
            hosts[nhosts++] = fd;
            break;
        }
        case 4: /* a host program accepted on a port listener */
            for (int i = 0; i < 2 && nhosts < HOSTS; i++) {
                int fd = accept4(listener[i], NULL, NULL, SOCK_NONBLOCK);
                if (fd >= 0)
                    hosts[nhosts++] = fd;
            }
            break;
        case 5: /* a host program writes */
            if (nhosts) {
                static uint8_t junk[131072];
                size_t n = take(&in, 2) * 2u;
                if (send(hosts[take(&in, 1) % nhosts], junk, n, MSG_NOSIGNAL | MSG_DONTWAIT))
                    (void)0;
            }
            break;
        case 6: /* a host program reads, or hangs up halfway or completely */
            if (nhosts) {
                unsigned i = take(&in, 1) % nhosts, how = take(&in, 1) % 4;
                static uint8_t sink[65536];
                if (how == 0) {
                    if (recv(hosts[i], sink, sizeof(sink), MSG_DONTWAIT))
                        (void)0;
                } else if (how == 1) {
                    shutdown(hosts[i], SHUT_WR);
                } else {
                    close(hosts[i]);
                    hosts[i] = hosts[--nhosts];
                }
            }
            break;
        case 7:
            virtio_vsock_poll(vs);
            break;
        case 8: /* time passes */
            pthread_mutex_lock(&vs->vdev.lock);
            virtio_vsock_tick(vs, vsock_uds_now_ns() + take(&in, 1) * 100000000ull);
            vsock_uds_expire(uds, vsock_uds_now_ns() + take(&in, 1) * 100000000ull);
            pthread_mutex_unlock(&vs->vdev.lock);
            break;
        case 9: /* the driver resets the device, or a snapshot is loaded */
            pthread_mutex_lock(&vs->vdev.lock);
            if (take(&in, 1) & 1) {
                virtio_dev_set_status(&vs->vdev, 0);
                start(vs, rings);
            } else {
                struct rec r = rec_new();
                vs->vdev.ops->save(&vs->vdev, r);
                if (vs->vdev.ops->load(&vs->vdev, r))
                    abort();
                rec_free(r);
            }
            pthread_mutex_unlock(&vs->vdev.lock);
            break;
        }
        check(vs, false);
    }
    virtio_vsock_poll(vs);
    check(vs, true);
    /* The next input starts from zeroed receive buffers. The packets' slots
     * keep their payload pattern; their header and table are written
     * before each use. */
    if (rx_used)
        memset(mem + DATA + (size_t)SLOT * TX_SLOTS, 0, (size_t)SLOT * RX_SLOTS);
    virtio_vsock_destroy(vs);
    free(vs);
    for (unsigned i = 0; i < nhosts; i++)
        close(hosts[i]);
    /* Connections the port listeners still hold for nobody. */
    for (int i = 0; i < 2; i++) {
        int fd;
        while ((fd = accept(listener[i], NULL, NULL)) >= 0)
            close(fd);
    }
    return 0;
}

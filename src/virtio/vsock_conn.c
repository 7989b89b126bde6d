#include "virtio/vsock_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define BUF_MIN (16u * 1024)

/* --- headers ----------------------------------------------------------------------- */

void vsock_hdr_load(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_SIZE])
{
    h->src_cid = le64_load(raw);
    h->dst_cid = le64_load(raw + 8);
    h->src_port = le32_load(raw + 16);
    h->dst_port = le32_load(raw + 20);
    h->len = le32_load(raw + 24);
    h->type = le16_load(raw + 28);
    h->op = le16_load(raw + 30);
    h->flags = le32_load(raw + 32);
    h->buf_alloc = le32_load(raw + 36);
    h->fwd_cnt = le32_load(raw + 40);
}

void vsock_hdr_store(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE])
{
    le64_store(raw, h->src_cid);
    le64_store(raw + 8, h->dst_cid);
    le32_store(raw + 16, h->src_port);
    le32_store(raw + 20, h->dst_port);
    le32_store(raw + 24, h->len);
    le16_store(raw + 28, h->type);
    le16_store(raw + 30, h->op);
    le32_store(raw + 32, h->flags);
    le32_store(raw + 36, h->buf_alloc);
    le32_store(raw + 40, h->fwd_cnt);
}

/* --- the table and the queue --------------------------------------------------- */

static unsigned bucket(uint32_t local_port, uint32_t peer_port)
{
    uint32_t h = local_port * 0x9e3779b1u ^ peer_port * 0x85ebca77u;
    return (h ^ (h >> 16)) & (VSOCK_HASH - 1);
}

struct vsock_conn *virtio_vsock_find(struct virtio_vsock *vs, uint32_t local_port,
                                     uint32_t peer_port)
{
    for (struct vsock_conn *c = vs->table[bucket(local_port, peer_port)]; c; c = c->hash_next)
        if (c->local_port == local_port && c->peer_port == peer_port)
            return c;
    return NULL;
}

void conn_rxq_add(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->in_rxq)
        return;
    c->in_rxq = true;
    c->rx_next = NULL;
    c->rx_prev = vs->rxq_tail;
    if (vs->rxq_tail)
        vs->rxq_tail->rx_next = c;
    else
        vs->rxq_head = c;
    vs->rxq_tail = c;
}

void conn_rxq_remove(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (!c->in_rxq)
        return;
    if (c->rx_prev)
        c->rx_prev->rx_next = c->rx_next;
    else
        vs->rxq_head = c->rx_next;
    if (c->rx_next)
        c->rx_next->rx_prev = c->rx_prev;
    else
        vs->rxq_tail = c->rx_prev;
    c->rx_next = c->rx_prev = NULL;
    c->in_rxq = false;
}

/* --- deadlines -------------------------------------------------------------------- */

static void set_deadline(struct virtio_vsock *vs, struct vsock_conn *c, unsigned ms)
{
    if (!c->deadline_ns && vs->nr_deadlines++ == 0)
        vsock_uds_want_ticks(vs->uds, true);
    c->deadline_ns = vsock_uds_now_ns() + ms * 1000000ull;
}

static void clear_deadline(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->deadline_ns && --vs->nr_deadlines == 0)
        vsock_uds_want_ticks(vs->uds, false);
    c->deadline_ns = 0;
}

void virtio_vsock_tick(struct virtio_vsock *vs, uint64_t now_ns)
{
    for (unsigned i = 0; i < VSOCK_HASH && vs->nr_deadlines; i++) {
        for (struct vsock_conn *c = vs->table[i]; c; c = c->hash_next) {
            if (!c->deadline_ns || now_ns < c->deadline_ns)
                continue;
            clear_deadline(vs, c);
            if (c->state == VSOCK_LOCAL_INIT)
                log_info("vsock: the guest did not answer a connection to its port %u within "
                         "%u ms", c->peer_port, VSOCK_REQUEST_TIMEOUT_MS);
            conn_kill(vs, c);
            conn_update(vs, c);
        }
    }
}

/* --- life and death ------------------------------------------------------------------ */

struct vsock_conn *conn_new(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port,
                            int fd, enum vsock_conn_state state)
{
    struct vsock_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->local_port = local_port;
    c->peer_port = peer_port;
    c->fd = fd;
    c->state = state;
    unsigned b = bucket(local_port, peer_port);
    c->hash_next = vs->table[b];
    vs->table[b] = c;
    vs->nr_conns++;
    vs->stats.conns_added++;
    return c;
}

static void close_host(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->fd >= 0) {
        if (c->registered)
            vsock_uds_disarm(vs->uds, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->registered = false;
    c->armed = false;
    free(c->buf);
    c->buf = NULL;
    c->buf_cap = c->buf_head = c->buf_len = 0;
    c->readable = false;
}

void conn_free(struct virtio_vsock *vs, struct vsock_conn *c)
{
    conn_rxq_remove(vs, c);
    for (struct vsock_conn **p = &vs->table[bucket(c->local_port, c->peer_port)]; *p;
         p = &(*p)->hash_next) {
        if (*p == c) {
            *p = c->hash_next;
            break;
        }
    }
    close_host(vs, c);
    clear_deadline(vs, c);
    vs->nr_conns--;
    vs->stats.conns_removed++;
    free(c);
}

void conn_free_all(struct virtio_vsock *vs)
{
    for (unsigned i = 0; i < VSOCK_HASH; i++)
        while (vs->table[i])
            conn_free(vs, vs->table[i]);
}

uint32_t conn_alloc_local_port(struct virtio_vsock *vs, uint32_t peer_port)
{
    for (;;) {
        uint32_t port = vs->next_local_port;
        vs->next_local_port = port + 1 >= (1u << 31) ? VSOCK_LOCAL_PORT_BASE : port + 1;
        if (!virtio_vsock_find(vs, port, peer_port))
            return port;
    }
}

static void end_conn(struct virtio_vsock *vs, struct vsock_conn *c)
{
    close_host(vs, c);
    clear_deadline(vs, c);
    c->state = VSOCK_DEAD;
    c->pending = VSOCK_PEND_RST;
}

void conn_kill(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->state == VSOCK_DEAD)
        return;
    end_conn(vs, c);
    vs->stats.conns_killed++;
}

void conn_violation(struct virtio_vsock *vs, struct vsock_conn *c, const char *what)
{
    log_guest("vsock: %s from guest port %u to host port %u; resetting it", what, c->peer_port,
              c->local_port);
    vs->stats.tx_dropped++;
    conn_kill(vs, c);
}

/* Both directions are finished: the guest sends nothing more and all it
 * sent reached the host, and the host sends nothing more (or the guest
 * takes nothing more). The vsock way to end is an RST. */
static void check_done(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->state != VSOCK_ESTABLISHED)
        return;
    bool guest_done = (c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && !c->buf_len;
    bool host_done = c->host_eof || (c->peer_shutdown & VSOCK_SHUTDOWN_RCV);
    if (guest_done && host_done)
        end_conn(vs, c);
}

/* --- interest ------------------------------------------------------------------------- */

static bool can_read(const struct vsock_conn *c)
{
    return c->state == VSOCK_ESTABLISHED && !c->host_eof &&
           !(c->peer_shutdown & VSOCK_SHUTDOWN_RCV);
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

bool conn_has_work(const struct vsock_conn *c)
{
    if (c->pending)
        return true;
    if (!c->readable || !can_read(c))
        return false;
    return peer_credit(c) > 0 || !c->credit_requested;
}

void conn_rearm(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->fd < 0)
        return;
    uint32_t want = 0;
    bool arm = c->state == VSOCK_LOCAL_INIT; /* hang-ups only: the host may give up */
    if (c->state == VSOCK_ESTABLISHED) {
        if (!c->readable && can_read(c))
            want |= EPOLLIN | EPOLLRDHUP;
        if (c->buf_len)
            want |= EPOLLOUT;
        arm = want != 0;
    }
    if (!arm || (c->armed && c->armed_events == want))
        return;
    int ret = vsock_uds_arm(vs->uds, c->fd, want, c, !c->registered);
    if (ret) {
        log_warn("vsock: cannot watch a host stream: %s", strerror(-ret));
        conn_kill(vs, c);
        conn_rxq_add(vs, c);
        return;
    }
    c->registered = c->armed = true;
    c->armed_events = want;
}

void conn_update(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (conn_has_work(c))
        conn_rxq_add(vs, c);
    conn_rearm(vs, c);
}

/* --- guest -> host ---------------------------------------------------------------------- */

/* iovecs for 'len' bytes of the chain's readable (or writable) buffers
 * from 'offset'; the count, or -1 if a buffer left guest memory. */
static int chain_iov(const struct virtq *q, const struct virtq_chain *chain, bool writable,
                     uint64_t offset, size_t len, struct iovec *iov)
{
    unsigned first = writable ? chain->nr_readable : 0;
    unsigned end = writable ? chain->nr : chain->nr_readable;
    int n = 0;
    for (unsigned i = first; i < end && len; i++) {
        const struct virtq_buf *b = &chain->bufs[i];
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        size_t piece = (size_t)MIN((uint64_t)len, b->len - offset);
        void *p = writable ? gm_ptr_for_write(q->gm, b->gpa + offset, piece)
                           : gm_ptr(q->gm, b->gpa + offset, piece);
        if (!p)
            return -1;
        iov[n++] = (struct iovec){p, piece};
        len -= piece;
        offset = 0;
    }
    return n;
}

static ssize_t send_iov(int fd, struct iovec *iov, int n)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return r < 0 ? -errno : r;
}

/* Room for buf_len + more bytes (never beyond VSOCK_CONN_BUF, which the
 * credit check guarantees); the ring is laid out again from 0. */
static int buf_reserve(struct vsock_conn *c, uint32_t more)
{
    uint32_t need = c->buf_len + more;
    if (need <= c->buf_cap)
        return 0;
    uint32_t cap = c->buf_cap ? c->buf_cap : BUF_MIN;
    while (cap < need)
        cap *= 2;
    cap = MIN(cap, VSOCK_CONN_BUF);
    uint8_t *nb = malloc(cap);
    if (!nb)
        return -ENOMEM;
    uint32_t first = MIN(c->buf_len, c->buf_cap - c->buf_head);
    if (c->buf_len) {
        memcpy(nb, c->buf + c->buf_head, first);
        memcpy(nb + first, c->buf, c->buf_len - first);
    }
    free(c->buf);
    c->buf = nb;
    c->buf_cap = cap;
    c->buf_head = 0;
    return 0;
}

static int buf_append(struct vsock_conn *c, const struct virtq *q,
                      const struct virtq_chain *chain, uint64_t offset, uint32_t len)
{
    if (buf_reserve(c, len))
        return -ENOMEM;
    uint32_t tail = (c->buf_head + c->buf_len) % c->buf_cap;
    uint32_t first = MIN(len, c->buf_cap - tail);
    size_t got = virtq_chain_read(q, chain, offset, c->buf + tail, first);
    if (first < len)
        got += virtq_chain_read(q, chain, offset + first, c->buf, len - first);
    c->buf_len += (uint32_t)got;
    return got == len ? 0 : -EFAULT;
}

static void maybe_credit_update(struct vsock_conn *c)
{
    if (c->state == VSOCK_ESTABLISHED && c->fwd_cnt - c->last_fwd_cnt >= VSOCK_CREDIT_THRESHOLD)
        c->pending |= VSOCK_PEND_CREDIT_UPDATE;
}

static void shut_host_writes(struct vsock_conn *c)
{
    if (!c->host_wr_shut && c->fd >= 0 && !c->buf_len &&
        (c->peer_shutdown & VSOCK_SHUTDOWN_SEND)) {
        shutdown(c->fd, SHUT_WR); /* the host program reads EOF */
        c->host_wr_shut = true;
    }
}

void conn_from_guest(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq *q,
                     const struct virtq_chain *chain, uint32_t len)
{
    /* In flight from the guest: what it sent and the host did not take
     * yet. Its credit allowed VSOCK_CONN_BUF. */
    if ((uint64_t)c->buf_len + len > VSOCK_CONN_BUF) {
        conn_violation(vs, c, "data beyond the credit given");
        return;
    }
    c->rx_cnt += len;
    vs->stats.tx_bytes += len;
    uint32_t sent = 0;
    if (!c->buf_len) {
        struct iovec iov[VIRTQ_MAX_CHAIN];
        int n = chain_iov(q, chain, false, VSOCK_HDR_SIZE, len, iov);
        ssize_t r = n < 0 ? -EFAULT : send_iov(c->fd, iov, n);
        if (r < 0) {
            vs->stats.tx_write_fails++;
            log_debug("vsock: host port %u: %s", c->local_port, strerror((int)-r));
            conn_kill(vs, c); /* the host program is gone */
            return;
        }
        sent = (uint32_t)r;
        c->fwd_cnt += sent;
    }
    if (sent < len && buf_append(c, q, chain, VSOCK_HDR_SIZE + sent, len - sent)) {
        vs->stats.tx_write_fails++;
        conn_kill(vs, c);
        return;
    }
    maybe_credit_update(c);
}

/* The host stream can take more: write out what waits. */
static void flush_buf(struct virtio_vsock *vs, struct vsock_conn *c)
{
    while (c->buf_len) {
        uint32_t first = MIN(c->buf_len, c->buf_cap - c->buf_head);
        struct iovec iov[2] = {{c->buf + c->buf_head, first}, {c->buf, c->buf_len - first}};
        ssize_t r = send_iov(c->fd, iov, c->buf_len > first ? 2 : 1);
        if (r < 0) {
            vs->stats.tx_flush_fails++;
            conn_kill(vs, c);
            return;
        }
        if (r == 0)
            break;
        c->buf_head = (uint32_t)((c->buf_head + (uint64_t)r) % c->buf_cap);
        c->buf_len -= (uint32_t)r;
        c->fwd_cnt += (uint32_t)r;
    }
    if (!c->buf_len) {
        free(c->buf);
        c->buf = NULL;
        c->buf_cap = c->buf_head = 0;
        shut_host_writes(c);
    }
    maybe_credit_update(c);
    check_done(vs, c);
}

void conn_peer_credit(struct vsock_conn *c, uint32_t buf_alloc, uint32_t fwd_cnt)
{
    c->peer_buf_alloc = buf_alloc;
    c->peer_fwd_cnt = fwd_cnt;
    if (peer_credit(c))
        c->credit_requested = false;
}

void conn_establish_local(struct virtio_vsock *vs, struct vsock_conn *c)
{
    clear_deadline(vs, c);
    c->state = VSOCK_ESTABLISHED;
    int ret = vsock_uds_ack(c->fd, c->local_port);
    if (ret) {
        log_info("vsock: cannot tell the host program its connection to port %u is open: %s",
                 c->peer_port, strerror(-ret));
        conn_kill(vs, c);
        return;
    }
    c->readable = c->early_off < c->early_len; /* else the stream is watched */
}

void conn_peer_shutdown(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t flags)
{
    uint8_t added = (uint8_t)(flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) &
                    (uint8_t)~c->peer_shutdown;
    c->peer_shutdown |= added;
    if ((added & VSOCK_SHUTDOWN_RCV) && c->fd >= 0)
        shutdown(c->fd, SHUT_RD); /* the host program's writes now fail */
    shut_host_writes(c);
    if (c->peer_shutdown == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) && c->buf_len &&
        !c->deadline_ns)
        set_deadline(vs, c, VSOCK_CLOSE_TIMEOUT_MS); /* a host that never reads */
    check_done(vs, c);
}

/* --- host -> guest ---------------------------------------------------------------------- */

/* Up to 'max' bytes of the stream into the chain at 'offset': the bytes
 * read, 0 at the stream's end, or a negative errno (-EAGAIN: none now). */
static ssize_t read_stream(struct vsock_conn *c, const struct virtq *q,
                           const struct virtq_chain *chain, uint64_t offset, size_t max)
{
    size_t done = 0;
    if (c->early_off < c->early_len) {
        done = MIN(max, (size_t)(c->early_len - c->early_off));
        done = virtq_chain_write(q, chain, offset, c->early + c->early_off, done);
        c->early_off = (uint8_t)(c->early_off + done);
        if (done == max)
            return (ssize_t)done;
    }
    struct iovec iov[VIRTQ_MAX_CHAIN];
    int n = chain_iov(q, chain, true, offset + done, max - done, iov);
    ssize_t r = n < 0 ? -EFAULT : readv(c->fd, iov, n);
    if (r < 0 && n >= 0)
        r = -errno;
    if (done)
        return (ssize_t)done + (r > 0 ? r : 0);
    if (r == -EINTR)
        r = -EAGAIN;
    return r;
}

uint32_t conn_fill(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq *q,
                   const struct virtq_chain *chain)
{
    struct vsock_hdr h = {
        .src_cid = VSOCK_HOST_CID, .dst_cid = vs->cid,
        .src_port = c->local_port, .dst_port = c->peer_port,
        .type = VSOCK_TYPE_STREAM,
    };
    uint64_t room = chain->writable_bytes - VSOCK_HDR_SIZE;
    if (c->pending & VSOCK_PEND_RST) {
        h.op = VSOCK_OP_RST;
        c->pending = 0;
    } else if (c->pending & VSOCK_PEND_RESPONSE) {
        h.op = VSOCK_OP_RESPONSE;
        c->pending &= (uint8_t)~VSOCK_PEND_RESPONSE;
        c->state = VSOCK_ESTABLISHED; /* its stream is watched from now on */
    } else if (c->pending & VSOCK_PEND_REQUEST) {
        h.op = VSOCK_OP_REQUEST;
        c->pending &= (uint8_t)~VSOCK_PEND_REQUEST;
        set_deadline(vs, c, VSOCK_REQUEST_TIMEOUT_MS);
    } else if (c->readable && can_read(c) && peer_credit(c) && room) {
        ssize_t n = read_stream(c, q, chain, VSOCK_HDR_SIZE, (size_t)MIN(room, peer_credit(c)));
        if (n > 0) {
            h.op = VSOCK_OP_RW;
            h.len = (uint32_t)n;
            c->tx_cnt += (uint32_t)n;
            vs->stats.rx_bytes += (uint64_t)n;
        } else if (n == 0) {
            /* The host program sends no more; if it closed completely it
             * takes nothing more either, and the guest's RST is expected. */
            c->readable = false;
            c->host_eof = true;
            h.op = VSOCK_OP_SHUTDOWN;
            h.flags = VSOCK_SHUTDOWN_SEND | (c->host_hup ? VSOCK_SHUTDOWN_RCV : 0);
            if (c->host_hup)
                set_deadline(vs, c, VSOCK_CLOSE_TIMEOUT_MS);
            check_done(vs, c);
            if (c->state == VSOCK_DEAD) {
                h.op = VSOCK_OP_RST; /* both directions ended: that is the last word */
                h.flags = 0;
                c->pending = 0;
            }
        } else if (n == -EAGAIN) {
            c->readable = false;
        } else {
            vs->stats.rx_read_fails++;
            log_debug("vsock: host port %u: read failed: %s", c->local_port,
                      strerror((int)-n));
            conn_kill(vs, c);
            h.op = VSOCK_OP_RST;
            c->pending = 0;
        }
    }
    if (!h.op && c->readable && can_read(c) && !peer_credit(c) && !c->credit_requested) {
        h.op = VSOCK_OP_CREDIT_REQUEST; /* the guest's buffer is full: ask when it drains */
        c->credit_requested = true;
    }
    if (!h.op && ((c->pending & VSOCK_PEND_CREDIT_UPDATE) ||
                  (c->readable && can_read(c) && !room)))
        h.op = VSOCK_OP_CREDIT_UPDATE; /* (a header-only buffer cannot carry data) */
    if (!h.op)
        return 0;
    /* Every packet tells the guest our credit. */
    c->pending &= (uint8_t)~VSOCK_PEND_CREDIT_UPDATE;
    h.buf_alloc = VSOCK_CONN_BUF;
    h.fwd_cnt = c->fwd_cnt;
    c->last_fwd_cnt = c->fwd_cnt;
    uint8_t raw[VSOCK_HDR_SIZE];
    vsock_hdr_store(&h, raw);
    virtq_chain_write(q, chain, 0, raw, sizeof(raw));
    vs->stats.rx_packets++;
    if (h.op == VSOCK_OP_RST)
        vs->stats.resets++;
    return VSOCK_HDR_SIZE + h.len;
}

void conn_stream_event(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t events)
{
    c->armed = false; /* one-shot: silent until armed again */
    if (events & EPOLLHUP)
        c->host_hup = true;
    if (c->state == VSOCK_LOCAL_INIT) {
        if (events & (EPOLLHUP | EPOLLERR)) {
            /* The host program gave up before the guest answered. */
            conn_kill(vs, c);
        }
    } else if (c->state == VSOCK_ESTABLISHED) {
        if ((events & EPOLLOUT) && c->buf_len)
            flush_buf(vs, c);
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            c->readable = c->fd >= 0;
    }
    conn_update(vs, c);
}

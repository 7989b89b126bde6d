/* virtio-vsock's model, below the device (vsock.h): the protocol's
 * definitions, the device and connection structures, and the connections —
 * the table, the queue of connections that owe the guest a packet, each
 * connection's state, credit and deadlines, and the bytes between its host
 * stream and the guest's buffers. All with the device's lock held; nothing
 * here frees a connection while the backend is dispatching events
 * (conn_free is only called from the queue paths and teardown). */
#ifndef EMBER_VIRTIO_VSOCK_CONN_H
#define EMBER_VIRTIO_VSOCK_CONN_H

#include "util/evloop.h"
#include "virtio/backends/vsock_uds.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_VSOCK 19

#define VSOCK_RX 0
#define VSOCK_TX 1
#define VSOCK_EVENT 2
#define VSOCK_QUEUE_SIZE 256

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_SIZE 44
#define VSOCK_TYPE_STREAM 1
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2
#define VSOCK_EVENT_TRANSPORT_RESET 0

enum vsock_op {
    VSOCK_OP_INVALID,
    VSOCK_OP_REQUEST,
    VSOCK_OP_RESPONSE,
    VSOCK_OP_RST,
    VSOCK_OP_SHUTDOWN,
    VSOCK_OP_RW,
    VSOCK_OP_CREDIT_UPDATE,
    VSOCK_OP_CREDIT_REQUEST,
};

#define VSOCK_MAX_CONNS 1024
#define VSOCK_CONN_BUF (256u * 1024)      /* the guest's credit per connection */
#define VSOCK_CREDIT_THRESHOLD (VSOCK_CONN_BUF / 2) /* forwarded bytes before an update */
#define VSOCK_MAX_PKT (64u * 1024)        /* largest payload taken from the guest */
#define VSOCK_RST_RING 256                /* resets owed for packets without a connection */
#define VSOCK_RX_BURST 256                /* packets to the guest per round */
#define VSOCK_REQUEST_TIMEOUT_MS 3000     /* the guest's answer to a host's CONNECT */
#define VSOCK_CLOSE_TIMEOUT_MS 2000       /* a closing connection's last word */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)  /* host ports of host-initiated connections */

/* A packet header, in host byte order. */
struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};
void vsock_hdr_load(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_SIZE]);
void vsock_hdr_store(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE]);

enum vsock_conn_state {
    VSOCK_LOCAL_INIT,  /* a host program asked; REQUEST for the guest, then its answer */
    VSOCK_PEER_INIT,   /* the guest asked and the host stream is connected: RESPONSE due */
    VSOCK_ESTABLISHED,
    VSOCK_DEAD,        /* the host stream is closed; an RST for the guest is due */
};

/* Packets a connection owes the guest, besides stream data (and the
 * SHUTDOWN or CREDIT_REQUEST that reading the stream may turn into). */
#define VSOCK_PEND_RST 1
#define VSOCK_PEND_RESPONSE 2
#define VSOCK_PEND_REQUEST 4
#define VSOCK_PEND_CREDIT_UPDATE 8

struct vsock_conn {
    uint32_t local_port, peer_port; /* the host's port, the guest's port */
    int fd;                         /* the host stream; -1 once closed */
    enum vsock_conn_state state;
    uint8_t pending;                /* VSOCK_PEND_* */
    uint8_t peer_shutdown;          /* VSOCK_SHUTDOWN_* the guest sent */
    bool readable;                  /* the host stream has data (or EOF) not read yet */
    bool host_eof;                  /* it ended: the guest was (or will be) told */
    bool host_hup;                  /* the host program closed its end completely */
    bool host_wr_shut;              /* we shut down writing to the host stream */
    bool credit_requested;          /* a CREDIT_REQUEST is out and unanswered */
    bool registered;                /* fd is in the backend's epoll set */
    bool armed;                     /* watched (one-shot) for armed_events */
    uint32_t armed_events;
    /* Guest -> host: bytes received from the guest, and forwarded to the
     * host stream (fwd_cnt, as the guest knows it up to last_fwd_cnt). */
    uint32_t rx_cnt, fwd_cnt, last_fwd_cnt;
    /* Host -> guest: the guest's buffer and how far it has read; bytes sent. */
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
    /* Guest data the host stream did not take yet: a ring of buf_cap bytes. */
    uint8_t *buf;
    uint32_t buf_cap, buf_head, buf_len;
    /* Host bytes that followed the CONNECT line, for the guest first. */
    uint8_t early[VSOCK_UDS_LINE_MAX];
    uint8_t early_len, early_off;
    uint64_t deadline_ns;           /* 0: none */
    struct vsock_conn *hash_next;
    struct vsock_conn *rx_next, *rx_prev; /* the queue of connections owing packets */
    bool in_rxq;
};

struct virtio_vsock_stats {
    uint64_t rx_packets, rx_bytes;  /* to the guest */
    uint64_t tx_packets, tx_bytes;  /* from the guest */
    uint64_t conns_added, conns_removed, conns_killed;
    uint64_t conns_refused;         /* guest connections nobody on the host took */
    uint64_t resets;                /* RST packets sent to the guest */
    uint64_t tx_dropped;            /* malformed, spoofed or misdirected packets */
    uint64_t rx_read_fails, tx_write_fails, tx_flush_fails;
};

#define VSOCK_HASH 1024

struct virtio_vsock {
    struct virtio_dev vdev;
    struct vsock_uds *uds;
    struct evloop *loop;        /* NULL in unit tests, which call virtio_vsock_poll */
    pthread_t loop_thread;      /* queue work happens here; other threads kick */
    bool watching;              /* the loop watches the backend's poll fd */
    uint64_t cid;
    struct vsock_conn *table[VSOCK_HASH];
    unsigned nr_conns;
    struct vsock_conn *rxq_head, *rxq_tail;
    struct {
        uint32_t local_port, peer_port;
    } rst[VSOCK_RST_RING];
    unsigned rst_head, rst_len;
    uint32_t next_local_port;
    unsigned nr_deadlines;
    bool tx_blocked;            /* tx waits for room in rst[] */
    bool reset_event;           /* TRANSPORT_RESET owed to the driver */
    struct virtio_vsock_stats stats;
};

/* The connection (local_port, peer_port), or NULL (lock held). */
struct vsock_conn *virtio_vsock_find(struct virtio_vsock *vs, uint32_t local_port,
                                     uint32_t peer_port);
/* Check deadlines as of 'now_ns' (the backend's tick; exposed for tests). */
void virtio_vsock_tick(struct virtio_vsock *vs, uint64_t now_ns);

/* --- between vsock.c and vsock_conn.c ------------------------------------------ */

struct vsock_conn *conn_new(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port,
                            int fd, enum vsock_conn_state state);
void conn_free(struct virtio_vsock *vs, struct vsock_conn *c);
void conn_free_all(struct virtio_vsock *vs);
/* A free host port for a host-initiated connection to guest port 'peer'. */
uint32_t conn_alloc_local_port(struct virtio_vsock *vs, uint32_t peer_port);

/* Close the host stream and owe the guest an RST (then the connection goes). */
void conn_kill(struct virtio_vsock *vs, struct vsock_conn *c);
/* The guest broke the protocol on this connection: log and kill. */
void conn_violation(struct virtio_vsock *vs, struct vsock_conn *c, const char *what);

/* After a change: queue it if it owes the guest something, watch its stream
 * for what it needs. */
void conn_update(struct virtio_vsock *vs, struct vsock_conn *c);
void conn_rearm(struct virtio_vsock *vs, struct vsock_conn *c);
bool conn_has_work(const struct vsock_conn *c);
void conn_rxq_add(struct virtio_vsock *vs, struct vsock_conn *c);
void conn_rxq_remove(struct virtio_vsock *vs, struct vsock_conn *c);

/* From the guest's packets. */
void conn_peer_credit(struct vsock_conn *c, uint32_t buf_alloc, uint32_t fwd_cnt);
void conn_establish_local(struct virtio_vsock *vs, struct vsock_conn *c);
void conn_from_guest(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq *q,
                     const struct virtq_chain *chain, uint32_t len);
void conn_peer_shutdown(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t flags);

/* The next packet this connection owes the guest, written into 'chain'
 * (at least a header's worth of writable bytes): the bytes used, or 0 if
 * it had nothing after all. */
uint32_t conn_fill(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq *q,
                   const struct virtq_chain *chain);

/* Epoll events on its host stream (from the backend's dispatch). */
void conn_stream_event(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t events);

#endif

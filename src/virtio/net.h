/* virtio-net: one receive and one transmit queue, MAC and link status,
 * mergeable receive buffers, and checksum/TSO offloads when the backend
 * carries virtio-net headers (TAP). Both directions run on the event loop;
 * while the guest posts no receive buffers at most one frame waits in ember
 * (a TAP then queues in the kernel, user mode drops beyond a bounded queue). */
#ifndef EMBER_VIRTIO_NET_H
#define EMBER_VIRTIO_NET_H

#include "virtio/backends/net_backend.h"
#include "util/evloop.h"
#include "util/rate_limiter.h"
#include "virtio/virtio.h"

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_MAX_MERGE 64 /* receive chains one frame may use */

struct virtio_net_stats {
    uint64_t rx_packets, rx_bytes, rx_dropped, tx_packets, tx_bytes, tx_errors;
};

struct virtio_net {
    struct virtio_dev vdev;
    struct net_backend *be;
    struct evloop *loop;
    uint8_t mac[6];
    uint32_t wanted_events; /* interest in be->poll_fd the device needs now */
    uint32_t poll_events;   /* interest registered with the loop */
    bool tx_waiting;        /* the backend is full: resume when writable */
    bool frame_pending;     /* frame[] holds a frame the guest had no room for */
    size_t frame_len;
    bool frame_paid;        /* the pending frame's tokens are taken already */
    struct virtio_net_stats stats;
    /* Firecracker's rx_rate_limiter and tx_rate_limiter: a throttled
     * direction stops reading its side until the limiter's timer. */
    struct rate_limiter rx_limiter, tx_limiter;
    /* The metadata service (be->mmds): its interest registered, the frame
     * being diverted to it, and the guest (MAC, IPv4) it was last told of. */
    uint32_t mmds_events;
    uint8_t *mmds_tx;
    uint8_t mmds_peer[10];
    uint64_t mmds_dropped;
    uint8_t frame[NET_MAX_FRAME];
};

/* Takes over 'be'; registers it with 'loop'. */
int virtio_net_init(struct virtio_net *vn, const struct guest_mem *gm, struct net_backend *be,
                    const uint8_t mac[6], struct evloop *loop) EMBER_MUST_CHECK;
void virtio_net_destroy(struct virtio_net *vn);
/* Set (at setup) or change (PATCH /network-interfaces, VM running) the
 * limiters; an update names the buckets it changes. Takes the lock. */
int virtio_net_set_rate_limits(struct virtio_net *vn, const struct rate_limit_config *rx,
                               const struct rate_limit_config *tx) EMBER_MUST_CHECK;
/* Backend events (exposed for unit tests, which drive the device without a
 * loop): receive what is waiting / resume blocked transmission. */
void virtio_net_backend_ready(struct virtio_net *vn, uint32_t events);

/* One NIC per configured interface, each taking over its opened backend
 * (b->backends). */
int virtio_net_board_setup(struct board *b) EMBER_MUST_CHECK;
/* The board's index-th NIC, or NULL. */
struct virtio_net *virtio_net_on_board(const struct board *b, unsigned index);

#endif

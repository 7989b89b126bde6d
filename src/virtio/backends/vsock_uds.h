/* virtio-vsock's host side as Firecracker's "hybrid" vsock has it: Unix
 * sockets instead of a vhost module.
 *
 * - Host -> guest: a host program connects to the socket at 'uds_path' and
 *   writes "CONNECT <port>\n"; the device then opens a stream to that guest
 *   port and, once the guest accepts, answers "OK <host_port>\n" on the same
 *   socket, which from then on carries the stream's bytes both ways. A
 *   client that sends anything else, or nothing within
 *   VSOCK_UDS_CONNECT_DEADLINE_MS, is disconnected.
 * - Guest -> host: a guest connecting to CID 2, port P reaches whoever
 *   listens on "<uds_path>_P".
 *
 * Everything here runs on ember's event loop: one nested epoll set
 * (vsock_uds_poll_fd) holds the listening socket, clients that have not yet
 * sent CONNECT, a timer, a wake-up eventfd and the device's connected
 * streams; vsock_uds_process handles what it reports and hands stream
 * events and new host connections to the device (the "client"). */
#ifndef EMBER_VIRTIO_BACKENDS_VSOCK_UDS_H
#define EMBER_VIRTIO_BACKENDS_VSOCK_UDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/usock.h"

#define VSOCK_UDS_LINE_MAX 32             /* "CONNECT 4294967295\n" fits with room */
#define VSOCK_UDS_MAX_PENDING 64          /* clients that have not sent CONNECT yet */
#define VSOCK_UDS_CONNECT_DEADLINE_MS 5000
#define VSOCK_UDS_TICK_MS 200
#define VSOCK_UDS_PATH_MAX 108            /* sun_path */

/* What the backend tells the device; called from vsock_uds_process (and
 * vsock_uds_expire), with whatever lock the caller of those holds. */
struct vsock_uds_client {
    /* A host program asked for guest port 'port' on the connected,
     * non-blocking stream 'fd'; 'early' holds bytes it sent after its
     * CONNECT line (stream data for the guest). 0: the device owns fd from
     * now on; negative: refused, the backend closes fd. */
    int (*host_connect)(void *ctx, int fd, uint32_t port, const uint8_t *early, size_t n);
    /* Epoll events on a stream the device armed with vsock_uds_arm. */
    void (*stream_event)(void *ctx, void *tag, uint32_t events);
    /* Every VSOCK_UDS_TICK_MS while the device asked for ticks. */
    void (*tick)(void *ctx, uint64_t now_ns);
};

struct vsock_uds_pending {
    int fd; /* -1: a free slot */
    uint64_t deadline_ns;
    uint8_t line[VSOCK_UDS_LINE_MAX];
    uint8_t len;
};

struct vsock_uds_stats {
    uint64_t host_accepted;   /* host clients accepted on uds_path */
    uint64_t host_refused;    /* dropped: garbage, no CONNECT in time, too many, refused */
};

struct vsock_uds {
    char path[VSOCK_UDS_PATH_MAX];
    struct usock_listener listener;
    int epfd, timer_fd, kick_fd;
    const struct vsock_uds_client *client;
    void *ctx;
    struct vsock_uds_pending pending[VSOCK_UDS_MAX_PENDING];
    unsigned nr_pending;
    bool client_ticks;  /* the device wants ticks */
    bool timer_on;
    bool listen_paused; /* out of file descriptors: accept again at the next tick */
    uint8_t listen_tag, timer_tag, kick_tag; /* epoll tags: their addresses */
    struct vsock_uds_stats stats;
};

/* Bind the listening socket at 'path' (a stale socket file is replaced, a
 * live one refused) and set up the epoll set: everything that can fail
 * about the host side fails here, before a VM exists. */
int vsock_uds_open(const char *path, struct vsock_uds **out) EMBER_MUST_CHECK;
/* Close every socket (the listener's file is removed) and free. */
void vsock_uds_destroy(struct vsock_uds *u);
void vsock_uds_attach(struct vsock_uds *u, const struct vsock_uds_client *client, void *ctx);

/* Readable when vsock_uds_process has something to do. */
int vsock_uds_poll_fd(const struct vsock_uds *u);
/* Handle one batch of events (bounded work; the poll fd stays readable if
 * more are waiting). */
void vsock_uds_process(struct vsock_uds *u);
/* Make the poll fd readable soon (the device has work left over). */
void vsock_uds_kick(struct vsock_uds *u);
/* Ticks for the device's own deadlines, on or off. */
void vsock_uds_want_ticks(struct vsock_uds *u, bool on);
/* Drop clients whose CONNECT deadline passed at 'now_ns' (also done at
 * every tick; exposed for tests). */
void vsock_uds_expire(struct vsock_uds *u, uint64_t now_ns);

/* Guest -> host: connect to "<path>_<port>". A non-blocking stream, or a
 * negative errno (no listener, a full backlog ...). */
int vsock_uds_connect(struct vsock_uds *u, uint32_t port);
/* Host -> guest: the guest accepted; tell the host program "OK <local_port>\n". */
int vsock_uds_ack(int fd, uint32_t local_port) EMBER_MUST_CHECK;
/* Watch a device stream for 'events' once (EPOLLONESHOT: after an event is
 * reported the stream is silent until armed again). 'tag' comes back in
 * stream_event; 'first': the stream is not in the set yet. */
int vsock_uds_arm(struct vsock_uds *u, int fd, uint32_t events, void *tag, bool first)
    EMBER_MUST_CHECK;
/* Stop watching a device stream (before closing it). */
void vsock_uds_disarm(struct vsock_uds *u, int fd);

/* Parse a host's command line: "CONNECT <port>\n" (the word in any case,
 * as Firecracker takes it). 1 and *port: complete and valid; 0: not
 * complete yet (no newline in 'len' bytes and room for more); -1: garbage.
 * *line_len is the length of the line with its newline. */
int vsock_uds_parse_connect(const uint8_t *buf, size_t len, uint32_t *port, size_t *line_len);

uint64_t vsock_uds_now_ns(void);

#endif

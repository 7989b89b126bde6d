/* Where a virtio-net device's frames go: a TAP device or the user-mode
 * (libslirp) stack. Frames cross this interface with a 12-byte
 * virtio_net_hdr_v1 in front, so a TAP with IFF_VNET_HDR needs no copy. */
#ifndef EMBER_VIRTIO_BACKENDS_NET_BACKEND_H
#define EMBER_VIRTIO_BACKENDS_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/err.h"

#define NET_HDR_SIZE 12
#define NET_MAX_FRAME (65536 + NET_HDR_SIZE + 64) /* a 64 KiB GSO frame and headers */

#define NET_HDR_F_NEEDS_CSUM 1
#define NET_HDR_GSO_NONE 0

struct net_backend;

struct net_backend_ops {
    /* One frame (header first). 0, -EAGAIN when it cannot take it now (wait
     * for poll_fd to be writable), or another negative errno. */
    int (*send)(struct net_backend *be, const struct iovec *iov, int iovcnt);
    /* One frame into buf (header first): its length, 0 if none is waiting,
     * or a negative errno. */
    ssize_t (*recv)(struct net_backend *be, uint8_t *buf, size_t len);
    /* The checksum/segmentation offloads the guest accepted (TUN_F_*). */
    int (*set_offloads)(struct net_backend *be, unsigned tun_flags);
    void (*destroy)(struct net_backend *be);
};

struct net_backend {
    const struct net_backend_ops *ops;
    int poll_fd;     /* readable: frames to receive; writable: room to send */
    bool vnet_hdr;   /* carries checksum and GSO offloads */
    bool can_block_tx; /* send may return -EAGAIN */
    char desc[48];
    uint64_t dropped_rx; /* frames the backend dropped on the way to the guest */
    /* The metadata service on this NIC: frames for mmds_ip (IPv4 and ARP)
     * go to this backend instead, and its frames reach the guest too. */
    struct net_backend *mmds;
    uint32_t mmds_ip; /* network byte order */
};

/* Destroy a backend and its metadata-service side backend. */
void net_backend_destroy(struct net_backend *be);

/* --net tap=NAME: open (or, with CAP_NET_ADMIN, create) a TAP device. */
int net_tap_open(const char *name, struct net_backend **out) EMBER_MUST_CHECK;

/* --net user: libslirp with DHCP and DNS; hostfwd rules such as
 * "tcp::8080-:80" or "udp:127.0.0.1:5353-:53". */
#define NET_MAX_HOSTFWD 16
int net_slirp_open(const char *const *hostfwd, unsigned nr_hostfwd, struct net_backend **out)
    EMBER_MUST_CHECK;

/* The metadata service's private user-mode stack for one NIC: it answers
 * ARP for 'ip' (network byte order) and terminates the guest's TCP
 * connections to ip:80, each becoming a connection to the Unix socket
 * 'sock_path' (the MMDS HTTP server); nothing else reaches the host. */
int net_mmds_open(uint32_t ip, const char *sock_path, struct net_backend **out)
    EMBER_MUST_CHECK;

/* A guest's frame (header first) for the service at 'ip': ARP asking for
 * it (or answering its stack), or IPv4 to it. */
bool net_mmds_wants(uint32_t ip, const uint8_t *frame, size_t len);
/* The stack's own address beside 'ip' (the sender of its ARP requests). */
uint32_t net_mmds_stack_addr(uint32_t ip);
/* Finish a diverted frame in place: its partial checksum computed and its
 * header cleared. -EMSGSIZE for a GSO frame, -EINVAL for a bad header. */
int net_mmds_complete_frame(uint8_t *frame, size_t len) EMBER_MUST_CHECK;
/* A gratuitous ARP from an IPv4 frame's sender (header first, into 'out'
 * of NET_MMDS_ARP_FRAME bytes), so the stack knows where to answer
 * without asking first; 0 if 'frame' is not IPv4. */
#define NET_MMDS_ARP_FRAME (NET_HDR_SIZE + 14 + 28)
size_t net_mmds_gratuitous_arp(const uint8_t *frame, size_t len, uint8_t *out);

#endif

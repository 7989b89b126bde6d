/* virtio-vsock (device ID 19): stream sockets between the guest and host
 * programs, with Firecracker's Unix-socket host side (backends/vsock_uds.h).
 *
 * Three queues: rx (packets for the guest), tx (packets from the guest) and
 * event (TRANSPORT_RESET after a snapshot is restored). Each connection
 * pairs a guest port with a host Unix stream; data crosses between the
 * stream and the guest's buffers directly. Flow control is the vsock
 * protocol's credit both ways: ember offers the guest VSOCK_CONN_BUF bytes
 * per connection and never reads more from a host stream than the guest
 * has room for, so a peer that stops reading stops its sender, and ember
 * holds at most VSOCK_CONN_BUF bytes per connection (for a host program
 * slower than the guest) in at most VSOCK_MAX_CONNS connections. A guest
 * that breaks the protocol on a connection gets it reset; one that breaks
 * the rings gets DEVICE_NEEDS_RESET. All of it runs on the event loop. */
#ifndef EMBER_VIRTIO_VSOCK_H
#define EMBER_VIRTIO_VSOCK_H

#include "virtio/vsock_conn.h"

/* Takes over 'uds'; watches it on 'loop' (NULL: the caller polls). */
int virtio_vsock_init(struct virtio_vsock *vs, const struct guest_mem *gm, uint64_t cid,
                      struct vsock_uds *uds, struct evloop *loop) EMBER_MUST_CHECK;
void virtio_vsock_destroy(struct virtio_vsock *vs);
/* Handle the host side's events and deliver what is owed to the guest
 * (what the loop runs when the backend's poll fd is readable). */
void virtio_vsock_poll(struct virtio_vsock *vs);

/* The vsock device if the configuration has one (taking over the opened
 * backend in b->backends). */
int virtio_vsock_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

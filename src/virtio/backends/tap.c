/* TAP backend: frames go to and from a Linux TAP device with virtio-net
 * headers (IFF_VNET_HDR), so offloads pass straight through. */
#include "virtio/backends/net_backend.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct tap_backend {
    struct net_backend be;
    int fd;
};

static int tap_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
    struct tap_backend *t = (struct tap_backend *)be;
    for (;;) {
        ssize_t n = writev(t->fd, iov, iovcnt);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static ssize_t tap_recv(struct net_backend *be, uint8_t *buf, size_t len)
{
    struct tap_backend *t = (struct tap_backend *)be;
    for (;;) {
        ssize_t n = read(t->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
}

static int tap_set_offloads(struct net_backend *be, unsigned flags)
{
    struct tap_backend *t = (struct tap_backend *)be;
    if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
        return err_errno(-errno, "%s: TUNSETOFFLOAD", be->desc);
    return 0;
}

static void tap_destroy(struct net_backend *be)
{
    struct tap_backend *t = (struct tap_backend *)be;
    close(t->fd);
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .send = tap_send,
    .recv = tap_recv,
    .set_offloads = tap_set_offloads,
    .destroy = tap_destroy,
};

int net_tap_open(const char *name, struct net_backend **out)
{
    if (!name || !*name || strlen(name) >= IFNAMSIZ)
        return err_set(-EINVAL, "--net tap=NAME: bad interface name '%s'", name ? name : "");
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return err_errno(-errno, "tap %s: cannot open /dev/net/tun", name);
    unsigned features = 0;
    if (ioctl(fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)) {
        close(fd);
        return err_set(-ENOTSUP, "tap %s: the kernel's TAP lacks virtio-net headers", name);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        if (e == EPERM)
            return err_set(-EPERM, "tap %s: no permission: it does not exist and creating it "
                                   "needs CAP_NET_ADMIN, or it belongs to another user", name);
        if (e == EBUSY)
            return err_set(-EBUSY, "tap %s: already in use by another process", name);
        return err_errno(-e, "tap %s: TUNSETIFF", name);
    }
    int hdr = NET_HDR_SIZE;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int e = errno;
        close(fd);
        return err_errno(-e, "tap %s: TUNSETVNETHDRSZ", name);
    }
    struct tap_backend *t = calloc(1, sizeof(*t));
    if (!t) {
        close(fd);
        return err_set(-ENOMEM, "out of memory");
    }
    t->fd = fd;
    t->be = (struct net_backend){.ops = &tap_ops, .poll_fd = fd, .vnet_hdr = true,
                                 .can_block_tx = true};
    snprintf(t->be.desc, sizeof(t->be.desc), "tap %s", ifr.ifr_name);
    *out = &t->be;
    return 0;
}

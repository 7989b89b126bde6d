/* User-mode networking with libslirp: NAT to the host's network, DHCP and
 * DNS for the guest, port forwards from the host; no privileges needed.
 * libslirp is not thread-safe: one lock covers every call into it. It runs
 * on its own thread (poll() over the sockets slirp asks for, and its timers);
 * frames for the guest wait in a bounded queue that the device drains. */
#include "virtio/backends/net_backend.h"
#include "virtio/backends/slirp_lib.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/util.h"
#include "util/evloop.h"

#define RX_QUEUE_FRAMES 256
#define RX_QUEUE_BYTES (1u << 20) /* a guest that stops reading loses frames beyond this */
#define MAX_POLLFDS 256

struct slirp_timer {
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms; /* -1: not armed */
    struct slirp_timer *next;
};

struct frame {
    size_t len;
    uint8_t data[];
};

struct slirp_backend {
    struct net_backend be;
    const struct slirp_lib *lib;
    Slirp *slirp;
    pthread_mutex_t lock; /* every call into libslirp */
    pthread_t thread;
    bool thread_started;
    volatile bool stop;
    int wake_fd;          /* kicks the poll loop */
    struct slirp_timer *timers;
    struct pollfd pfds[MAX_POLLFDS];
    int npfds;
    pthread_mutex_t q_lock; /* the frames queued for the guest */
    struct frame *queue[RX_QUEUE_FRAMES];
    unsigned q_head, q_count;
    size_t q_bytes;
    uint8_t tx_buf[NET_MAX_FRAME];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- slirp callbacks (called with s->lock held) ------------------------ */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct slirp_backend *s = opaque;
    if (len + NET_HDR_SIZE > NET_MAX_FRAME)
        return (ssize_t)len;
    pthread_mutex_lock(&s->q_lock);
    if (s->q_count == RX_QUEUE_FRAMES || s->q_bytes + len > RX_QUEUE_BYTES) {
        s->be.dropped_rx++;
        pthread_mutex_unlock(&s->q_lock);
        return (ssize_t)len; /* as a NIC would: TCP retransmits */
    }
    struct frame *f = malloc(sizeof(*f) + NET_HDR_SIZE + len);
    if (f) {
        f->len = NET_HDR_SIZE + len;
        memset(f->data, 0, NET_HDR_SIZE); /* no offloads: a plain frame */
        memcpy(f->data + NET_HDR_SIZE, buf, len);
        s->queue[(s->q_head + s->q_count) % RX_QUEUE_FRAMES] = f;
        s->q_count++;
        s->q_bytes += len;
    }
    pthread_mutex_unlock(&s->q_lock);
    eventfd_signal(s->be.poll_fd);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    log_guest("user network: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct slirp_backend *s = opaque;
    struct slirp_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    t->expire_ms = -1;
    t->next = s->timers;
    s->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct slirp_backend *s = opaque;
    for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = ((struct slirp_timer *)timer)->next;
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    ((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque; /* pollfds are filled afresh each round */
}

static void cb_notify(void *opaque)
{
    struct slirp_backend *s = opaque;
    eventfd_signal(s->wake_fd);
}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_register_poll_fd,
    .notify = cb_notify,
};

/* --- the poll thread ---------------------------------------------------- */

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct slirp_backend *s = opaque;
    if (s->npfds == MAX_POLLFDS)
        return -1;
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    s->pfds[s->npfds] = (struct pollfd){.fd = fd, .events = ev};
    return s->npfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct slirp_backend *s = opaque;
    if (idx < 0 || idx >= s->npfds)
        return 0;
    short rev = s->pfds[idx].revents;
    int out = 0;
    if (rev & POLLIN) out |= SLIRP_POLL_IN;
    if (rev & POLLOUT) out |= SLIRP_POLL_OUT;
    if (rev & POLLPRI) out |= SLIRP_POLL_PRI;
    if (rev & POLLERR) out |= SLIRP_POLL_ERR;
    if (rev & POLLHUP) out |= SLIRP_POLL_HUP;
    return out;
}

/* Milliseconds until the next timer, capped by 'timeout'. */
static uint32_t next_timer(struct slirp_backend *s, uint32_t timeout)
{
    int64_t now = now_ns() / 1000000;
    for (struct slirp_timer *t = s->timers; t; t = t->next) {
        if (t->expire_ms < 0)
            continue;
        int64_t wait = t->expire_ms - now;
        timeout = (uint32_t)MIN((int64_t)timeout, MAX(wait, 0));
    }
    return timeout;
}

static void run_timers(struct slirp_backend *s)
{
    int64_t now = now_ns() / 1000000;
    /* A callback may free or add timers: restart the scan after each. */
    for (bool fired = true; fired;) {
        fired = false;
        for (struct slirp_timer *t = s->timers; t; t = t->next) {
            if (t->expire_ms >= 0 && t->expire_ms <= now) {
                t->expire_ms = -1;
                t->cb(t->cb_opaque);
                fired = true;
                break;
            }
        }
    }
}

static void *slirp_thread(void *arg)
{
    struct slirp_backend *s = arg;
    seccomp_enter_or_exit(SECCOMP_SLIRP); /* before the guest's first packet */
    while (!s->stop) {
        pthread_mutex_lock(&s->lock);
        s->npfds = 0;
        cb_add_poll(s->wake_fd, SLIRP_POLL_IN, s);
        uint32_t timeout = 1000;
        s->lib->pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
        timeout = next_timer(s, timeout);
        pthread_mutex_unlock(&s->lock);
        int ret = poll(s->pfds, (nfds_t)s->npfds, (int)timeout);
        if (s->pfds[0].revents & POLLIN)
            eventfd_drain(s->wake_fd);
        pthread_mutex_lock(&s->lock);
        s->lib->pollfds_poll(s->slirp, ret < 0, cb_get_revents, s);
        run_timers(s);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* --- the backend interface ---------------------------------------------- */

static int slirp_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
    struct slirp_backend *s = (struct slirp_backend *)be;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > sizeof(s->tx_buf) - len)
            return -EMSGSIZE;
        memcpy(s->tx_buf + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    if (len <= NET_HDR_SIZE)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->lib->input(s->slirp, s->tx_buf + NET_HDR_SIZE, (int)(len - NET_HDR_SIZE));
    pthread_mutex_unlock(&s->lock);
    eventfd_signal(s->wake_fd); /* slirp may have new sockets to poll */
    return 0;
}

static ssize_t slirp_recv(struct net_backend *be, uint8_t *buf, size_t len)
{
    struct slirp_backend *s = (struct slirp_backend *)be;
    pthread_mutex_lock(&s->q_lock);
    if (s->q_count == 0) {
        eventfd_drain(s->be.poll_fd);
        pthread_mutex_unlock(&s->q_lock);
        return 0;
    }
    struct frame *f = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % RX_QUEUE_FRAMES;
    s->q_count--;
    s->q_bytes -= f->len - NET_HDR_SIZE;
    pthread_mutex_unlock(&s->q_lock);
    ssize_t n = f->len <= len ? (ssize_t)f->len : -EMSGSIZE;
    if (n > 0)
        memcpy(buf, f->data, f->len);
    free(f);
    return n;
}

static int slirp_set_offloads(struct net_backend *be, unsigned flags)
{
    (void)be;
    (void)flags;
    return 0; /* none are offered */
}

void net_backend_destroy(struct net_backend *be)
{
    if (!be)
        return;
    if (be->mmds)
        be->mmds->ops->destroy(be->mmds);
    be->mmds = NULL;
    be->ops->destroy(be);
}

static void slirp_destroy(struct net_backend *be)
{
    struct slirp_backend *s = (struct slirp_backend *)be;
    if (s->thread_started) {
        s->stop = true;
        eventfd_signal(s->wake_fd);
        pthread_join(s->thread, NULL);
    }
    if (s->slirp)
        s->lib->cleanup(s->slirp);
    while (s->timers)
        cb_timer_free(s->timers, s);
    while (s->q_count) {
        free(s->queue[s->q_head]);
        s->q_head = (s->q_head + 1) % RX_QUEUE_FRAMES;
        s->q_count--;
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->be.poll_fd >= 0)
        close(s->be.poll_fd);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->q_lock);
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .send = slirp_send,
    .recv = slirp_recv,
    .set_offloads = slirp_set_offloads,
    .destroy = slirp_destroy,
};

/* [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
static int add_hostfwd(struct slirp_backend *s, const char *rule)
{
    char proto[8], haddr[64] = "", gaddr[64] = "";
    unsigned hport, gport;
    int end = 0;
    if (sscanf(rule, "%7[a-z]:%63[0-9.]:%u-%63[0-9.]:%u%n", proto, haddr, &hport, gaddr,
               &gport, &end) != 5 &&
        sscanf(rule, "%7[a-z]::%u-%63[0-9.]:%u%n", proto, &hport, gaddr, &gport, &end) != 4 &&
        sscanf(rule, "%7[a-z]:%63[0-9.]:%u-:%u%n", proto, haddr, &hport, &gport, &end) != 4 &&
        sscanf(rule, "%7[a-z]::%u-:%u%n", proto, &hport, &gport, &end) != 3)
        return err_set(-EINVAL, "hostfwd '%s': expected tcp::HOSTPORT-:GUESTPORT", rule);
    bool udp = !strcmp(proto, "udp");
    if ((!udp && strcmp(proto, "tcp")) || rule[end] || !hport || hport > 65535 || !gport ||
        gport > 65535)
        return err_set(-EINVAL, "hostfwd '%s': expected tcp::HOSTPORT-:GUESTPORT", rule);
    struct in_addr host = {.s_addr = htonl(INADDR_ANY)}, guest;
    inet_pton(AF_INET, "10.0.2.15", &guest);
    if ((*haddr && inet_pton(AF_INET, haddr, &host) != 1) ||
        (*gaddr && inet_pton(AF_INET, gaddr, &guest) != 1))
        return err_set(-EINVAL, "hostfwd '%s': bad address", rule);
    if (s->lib->add_hostfwd(s->slirp, udp, host, (int)hport, guest, (int)gport) < 0)
        return err_set(-EADDRINUSE, "hostfwd '%s': cannot listen on host port %u (in use?)",
                       rule, hport);
    return 0;
}

static int start_thread(struct slirp_backend *s)
{
    /* The thread starts with every signal blocked: signals are for the
     * event loop (signalfd) and vCPU kicks only. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = thread_create(&s->thread, slirp_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return err_errno(-e, "%s: cannot start its thread", s->be.desc);
    s->thread_started = true;
    return 0;
}

/* A stack on 'cfg' (not yet running: rules may be added before the thread). */
static int slirp_backend_new(const SlirpConfig *cfg, const char *desc,
                             struct slirp_backend **out)
{
    const struct slirp_lib *lib = slirp_lib_get();
    if (!lib)
        return -ENOENT;
    struct slirp_backend *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(-ENOMEM, "out of memory");
    s->lib = lib;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->q_lock, NULL);
    s->be = (struct net_backend){.ops = &slirp_ops, .poll_fd = -1};
    snprintf(s->be.desc, sizeof(s->be.desc), "%s", desc);
    s->wake_fd = eventfd_create();
    s->be.poll_fd = eventfd_create();
    int ret = s->wake_fd < 0 ? s->wake_fd : s->be.poll_fd < 0 ? s->be.poll_fd : 0;
    if (!ret && !(s->slirp = s->lib->new_stack(cfg, &slirp_callbacks, s)))
        ret = err_set(-ENOMEM, "%s: libslirp failed to start", desc);
    if (ret) {
        slirp_destroy(&s->be);
        return ret;
    }
    *out = s;
    return 0;
}

int net_slirp_open(const char *const *hostfwd, unsigned nr_hostfwd, struct net_backend **out)
{
    SlirpConfig cfg = {.version = 4, .in_enabled = true};
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.vhostname = "ember";
    struct slirp_backend *s;
    int ret = slirp_backend_new(&cfg, "user network", &s);
    if (ret)
        return ret;
    for (unsigned i = 0; !ret && i < nr_hostfwd; i++)
        ret = add_hostfwd(s, hostfwd[i]);
    if (!ret)
        ret = start_thread(s);
    if (ret) {
        slirp_destroy(&s->be);
        return ret;
    }
    *out = &s->be;
    return 0;
}

/* The metadata service's stack. libslirp answers ARP, and forwards a TCP
 * connection to a guestfwd rule, only for addresses inside its virtual
 * network (arp_input, tcp_input), and learns the guest's MAC from ARP only
 * for senders inside it: a network of 0.0.0.0/0 takes in whatever address
 * the guest has on its TAP or user network. 'restricted' keeps everything
 * else inside (no NAT to the host), with no DHCP and no IPv6. The stack's
 * own address (vhost, the source of ARP requests it sends when it has not
 * learned the guest's MAC yet) is ip's neighbour .1 (or .2): never ip
 * itself, which the guestfwd rule must own. */
int net_mmds_open(uint32_t ip, const char *sock_path, struct net_backend **out)
{
    SlirpConfig cfg = {.version = 4, .restricted = 1, .in_enabled = true,
                       .disable_dhcp = true};
    uint32_t host = ntohl(ip);
    uint32_t dns = (host & ~0xffu) | ((host & 0xff) == 3 ? 4 : 3);
    cfg.vnetwork.s_addr = 0;
    cfg.vnetmask.s_addr = 0;
    cfg.vhost.s_addr = net_mmds_stack_addr(ip);
    cfg.vnameserver.s_addr = htonl(dns);
    cfg.vdhcp_start.s_addr = htonl(dns + 1);
    cfg.vhostname = "ember-mmds";
    struct slirp_backend *s;
    int ret = slirp_backend_new(&cfg, "metadata service", &s);
    if (ret)
        return ret;
    struct in_addr addr = {.s_addr = ip};
    if (s->lib->add_unix(s->slirp, sock_path, &addr, 80) < 0)
        ret = err_set(-EINVAL, "metadata service: libslirp refused to forward port 80");
    if (!ret)
        ret = start_thread(s);
    if (ret) {
        slirp_destroy(&s->be);
        return ret;
    }
    s->be.mmds_ip = ip;
    *out = &s->be;
    return 0;
}

#include "virtio/backends/vsock_uds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"

#define BATCH 64 /* events handled per vsock_uds_process */

uint64_t vsock_uds_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- the CONNECT line ------------------------------------------------------ */

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int vsock_uds_parse_connect(const uint8_t *buf, size_t len, uint32_t *port, size_t *line_len)
{
    static const char word[] = "connect";
    const uint8_t *nl = memchr(buf, '\n', len);
    size_t end = nl ? (size_t)(nl - buf) : len;
    size_t i = 0;
    while (i < end && is_blank(buf[i]))
        i++;
    /* The word, as far as it has arrived. */
    size_t w = 0;
    while (i < end && w < sizeof(word) - 1 && (buf[i] | 0x20) == word[w])
        i++, w++;
    if (i < end && w < sizeof(word) - 1)
        return -1; /* something other than "connect" */
    if (!nl)
        return len < VSOCK_UDS_LINE_MAX ? 0 : -1;
    if (w < sizeof(word) - 1 || i == end || !is_blank(buf[i]))
        return -1;
    while (i < end && is_blank(buf[i]))
        i++;
    uint64_t v = 0;
    size_t digits = 0;
    while (i < end && buf[i] >= '0' && buf[i] <= '9' && v <= UINT32_MAX) {
        v = v * 10 + (uint64_t)(buf[i++] - '0');
        digits++;
    }
    while (i < end && is_blank(buf[i]))
        i++;
    if (!digits || v > UINT32_MAX || i != end)
        return -1;
    *port = (uint32_t)v;
    *line_len = end + 1;
    return 1;
}

/* --- set-up ---------------------------------------------------------------- */

static int watch(struct vsock_uds *u, int op, int fd, uint32_t events, void *tag)
{
    struct epoll_event e = {.events = events, .data.ptr = tag};
    return epoll_ctl(u->epfd, op, fd, &e) < 0 ? -errno : 0;
}

int vsock_uds_open(const char *path, struct vsock_uds **out)
{
    struct vsock_uds *u = calloc(1, sizeof(*u));
    if (!u)
        return err_set(-ENOMEM, "out of memory");
    u->listener.fd = u->epfd = u->timer_fd = u->kick_fd = -1;
    for (unsigned i = 0; i < VSOCK_UDS_MAX_PENDING; i++)
        u->pending[i].fd = -1;
    /* "<path>_<port>" must fit too: a guest connecting to a port whose
     * path does not fit is refused, as one with no listener. */
    int ret = usock_listen(path, "vsock socket", 128, 0, &u->listener);
    if (!ret)
        snprintf(u->path, sizeof(u->path), "%s", path);
    if (!ret && (u->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        ret = err_errno(-errno, "epoll_create1 failed");
    if (!ret && (u->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
        ret = err_errno(-errno, "timerfd_create failed");
    if (!ret && (u->kick_fd = eventfd_create()) < 0) {
        ret = u->kick_fd;
        u->kick_fd = -1;
    }
    if (!ret && (watch(u, EPOLL_CTL_ADD, u->listener.fd, EPOLLIN, &u->listen_tag) ||
                 watch(u, EPOLL_CTL_ADD, u->timer_fd, EPOLLIN, &u->timer_tag) ||
                 watch(u, EPOLL_CTL_ADD, u->kick_fd, EPOLLIN, &u->kick_tag)))
        ret = err_errno(-errno, "epoll_ctl failed");
    if (ret) {
        vsock_uds_destroy(u);
        return ret;
    }
    *out = u;
    return 0;
}

void vsock_uds_destroy(struct vsock_uds *u)
{
    if (!u)
        return;
    for (unsigned i = 0; i < VSOCK_UDS_MAX_PENDING; i++)
        if (u->pending[i].fd >= 0)
            close(u->pending[i].fd);
    usock_close(&u->listener, u->path);
    if (u->epfd >= 0)
        close(u->epfd);
    if (u->timer_fd >= 0)
        close(u->timer_fd);
    if (u->kick_fd >= 0)
        close(u->kick_fd);
    free(u);
}

void vsock_uds_attach(struct vsock_uds *u, const struct vsock_uds_client *client, void *ctx)
{
    u->client = client;
    u->ctx = ctx;
}

int vsock_uds_poll_fd(const struct vsock_uds *u)
{
    return u->epfd;
}

void vsock_uds_kick(struct vsock_uds *u)
{
    eventfd_signal(u->kick_fd);
}

/* The timer runs while anybody has a deadline: pending clients, the
 * device, or a listener waiting for file descriptors. It is started at
 * once and stopped at a tick that finds nothing to wait for (connections
 * come and go faster than a tick: no timer call for each). */
static void update_timer(struct vsock_uds *u, bool at_tick)
{
    bool on = u->client_ticks || u->nr_pending || u->listen_paused;
    if (on == u->timer_on || (!on && !at_tick))
        return;
    long ns = VSOCK_UDS_TICK_MS * 1000000l;
    struct itimerspec t = {0};
    if (on)
        t.it_interval = t.it_value = (struct timespec){ns / 1000000000l, ns % 1000000000l};
    if (timerfd_settime(u->timer_fd, 0, &t, NULL) == 0)
        u->timer_on = on;
}

void vsock_uds_want_ticks(struct vsock_uds *u, bool on)
{
    u->client_ticks = on;
    update_timer(u, false);
}

/* --- clients before CONNECT ------------------------------------------------- */

static void drop_pending(struct vsock_uds *u, struct vsock_uds_pending *p, bool refused)
{
    epoll_ctl(u->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    p->fd = -1;
    u->nr_pending--;
    if (refused)
        u->stats.host_refused++;
}

void vsock_uds_expire(struct vsock_uds *u, uint64_t now_ns)
{
    for (unsigned i = 0; i < VSOCK_UDS_MAX_PENDING && u->nr_pending; i++) {
        struct vsock_uds_pending *p = &u->pending[i];
        if (p->fd >= 0 && now_ns >= p->deadline_ns) {
            log_info("vsock: a host client sent no CONNECT within %u ms; disconnected",
                     VSOCK_UDS_CONNECT_DEADLINE_MS);
            drop_pending(u, p, true);
        }
    }
    update_timer(u, false);
}

static void read_line(struct vsock_uds *u, struct vsock_uds_pending *p);

static void accept_clients(struct vsock_uds *u)
{
    for (unsigned n = 0; n < VSOCK_UDS_MAX_PENDING; n++) {
        int fd = accept4(u->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listener would stay readable: stop watching it until
                 * the next tick instead of spinning. */
                log_warn("vsock: cannot accept a host connection: %s", strerror(errno));
                if (watch(u, EPOLL_CTL_MOD, u->listener.fd, 0, &u->listen_tag) == 0)
                    u->listen_paused = true;
            }
            break;
        }
        u->stats.host_accepted++;
        /* A free slot, or the oldest client's (it had the longest to speak). */
        struct vsock_uds_pending *slot = NULL, *oldest = NULL;
        for (unsigned i = 0; i < VSOCK_UDS_MAX_PENDING && !slot; i++) {
            struct vsock_uds_pending *p = &u->pending[i];
            if (p->fd < 0)
                slot = p;
            else if (!oldest || p->deadline_ns < oldest->deadline_ns)
                oldest = p;
        }
        if (!slot) {
            drop_pending(u, oldest, true);
            slot = oldest;
        }
        *slot = (struct vsock_uds_pending){
            .fd = fd,
            .deadline_ns = vsock_uds_now_ns() + VSOCK_UDS_CONNECT_DEADLINE_MS * 1000000ull};
        if (watch(u, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, slot)) {
            close(fd);
            slot->fd = -1;
            u->stats.host_refused++;
            continue;
        }
        u->nr_pending++;
        read_line(u, slot); /* clients write their line at once: save a round */
    }
    update_timer(u, false);
}

/* Bytes from a client that has not sent its CONNECT line yet. The line is
 * read as it arrives (never blocking); what follows it in the same read is
 * the first stream data for the guest. */
static void read_line(struct vsock_uds *u, struct vsock_uds_pending *p)
{
    ssize_t n = recv(p->fd, p->line + p->len, sizeof(p->line) - p->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop_pending(u, p, true); /* gone before asking for anything */
        update_timer(u, false);
        return;
    }
    p->len = (uint8_t)(p->len + n);
    uint32_t port;
    size_t line_len;
    int r = vsock_uds_parse_connect(p->line, p->len, &port, &line_len);
    if (r == 0)
        return;
    if (r < 0) {
        log_info("vsock: a host client sent something other than \"CONNECT <port>\\n\"; "
                 "disconnected");
        drop_pending(u, p, true);
        update_timer(u, false);
        return;
    }
    int fd = p->fd;
    uint8_t early[VSOCK_UDS_LINE_MAX];
    size_t nearly = p->len - line_len;
    memcpy(early, p->line + line_len, nearly);
    epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
    p->fd = -1;
    u->nr_pending--;
    update_timer(u, false);
    if (!u->client || u->client->host_connect(u->ctx, fd, port, early, nearly) < 0) {
        close(fd);
        u->stats.host_refused++;
    }
}

/* --- the event batch ------------------------------------------------------- */

void vsock_uds_process(struct vsock_uds *u)
{
    struct epoll_event ev[BATCH];
    int n = epoll_wait(u->epfd, ev, BATCH, 0);
    for (int i = 0; i < n; i++) {
        void *tag = ev[i].data.ptr;
        if (tag == &u->kick_tag) {
            eventfd_drain(u->kick_fd);
        } else if (tag == &u->listen_tag) {
            accept_clients(u);
        } else if (tag == &u->timer_tag) {
            uint64_t expirations;
            if (read(u->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                log_warn("vsock: timer: %s", strerror(errno));
            uint64_t now = vsock_uds_now_ns();
            if (u->listen_paused &&
                watch(u, EPOLL_CTL_MOD, u->listener.fd, EPOLLIN, &u->listen_tag) == 0)
                u->listen_paused = false;
            vsock_uds_expire(u, now);
            if (u->client_ticks && u->client)
                u->client->tick(u->ctx, now);
            update_timer(u, true);
        } else if ((uint8_t *)tag >= (uint8_t *)u->pending &&
                   (uint8_t *)tag < (uint8_t *)(u->pending + VSOCK_UDS_MAX_PENDING)) {
            struct vsock_uds_pending *p = tag;
            if (p->fd >= 0)
                read_line(u, p);
        } else if (u->client) {
            u->client->stream_event(u->ctx, tag, ev[i].events);
        }
    }
}

/* --- device streams ------------------------------------------------------------ */

int vsock_uds_connect(struct vsock_uds *u, uint32_t port)
{
    char path[VSOCK_UDS_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s_%u", u->path, port);
    return usock_connect(path);
}

int vsock_uds_ack(int fd, uint32_t local_port)
{
    char msg[24];
    int len = snprintf(msg, sizeof(msg), "OK %u\n", local_port);
    ssize_t n = send(fd, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == len)
        return 0;
    return n < 0 ? -errno : -EAGAIN; /* a fresh socket that cannot take a dozen bytes */
}

int vsock_uds_arm(struct vsock_uds *u, int fd, uint32_t events, void *tag, bool first)
{
    return watch(u, first ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, events | EPOLLONESHOT, tag);
}

void vsock_uds_disarm(struct vsock_uds *u, int fd)
{
    epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* The stub's sockets: one listening socket, at most one client. A client
 * that sends garbage gets nacks; one that vanishes (or stops reading) is
 * treated as a detach; neither ever stops the VM or ember. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "debug/gdb_internal.h"
#include "util/log.h"
#include "util/usock.h"

/* A client that does not read its replies: beyond this it is dropped. */
#define GDB_OUT_MAX (256 * 1024)

static void on_client(void *ctx, uint32_t events);

static void drop_out(struct buf *b)
{
    b->len = 0;
    b->failed = false;
}

void gdb_conn_flush(struct gdbstub *s)
{
    size_t done = 0;
    while (s->fd >= 0 && done < s->out.len) {
        ssize_t n = send(s->fd, s->out.data + done, s->out.len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (done) {
        memmove(s->out.data, s->out.data + done, s->out.len - done);
        s->out.len -= done;
    }
    if (s->fd >= 0 && evloop_modify(s->loop, s->fd, EPOLLIN | (s->out.len ? EPOLLOUT : 0)))
        log_debug("gdb: cannot watch the client: %s", err_msg());
}

void gdb_conn_send_packet(struct gdbstub *s, const void *payload, size_t len)
{
    if (s->fd < 0)
        return;
    drop_out(&s->last);
    gdb_encode(&s->last, payload, len);
    if (s->out.len + s->last.len > GDB_OUT_MAX || s->last.failed) {
        log_warn("gdb: the client does not read its replies: dropping it");
        gdb_detach(s);
        gdb_conn_close(s);
        return;
    }
    buf_put(&s->out, s->last.data, s->last.len);
    gdb_conn_flush(s);
}

static void send_raw(struct gdbstub *s, const char *bytes)
{
    if (s->fd < 0)
        return;
    buf_put(&s->out, bytes, strlen(bytes));
    gdb_conn_flush(s);
}

void gdb_conn_close(struct gdbstub *s)
{
    if (s->fd < 0)
        return;
    evloop_remove(s->loop, s->fd);
    close(s->fd);
    s->fd = -1;
    drop_out(&s->out);
    drop_out(&s->last);
    log_info("gdb: the debugger left; the guest runs on");
}

/* Ctrl-C: stop the guest and say so. */
static void interrupt(struct gdbstub *s)
{
    if (!s->running)
        return;
    s->target.ops->stop(s->target.ctx);
    gdbstub_stopped(s, s->g_cpu, GDB_STOP_INTERRUPT, NULL);
}

void gdbstub_feed(struct gdbstub *s, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && s->fd >= 0; i++) {
        switch (gdb_rx_byte(&s->rx, data[i])) {
        case GDB_RX_PACKET:
            if (!s->no_ack)
                send_raw(s, "+");
            gdbstub_handle_packet(s, s->rx.data, s->rx.len);
            break;
        case GDB_RX_BAD:
            log_debug("gdb: a malformed packet (checksum, encoding or length): nack");
            if (!s->no_ack)
                send_raw(s, "-");
            break;
        case GDB_RX_NACK:
            if (!s->no_ack && s->last.len) {
                buf_put(&s->out, s->last.data, s->last.len);
                gdb_conn_flush(s);
            }
            break;
        case GDB_RX_INTERRUPT:
            interrupt(s);
            break;
        case GDB_RX_ACK:
        case GDB_RX_NONE:
            break;
        }
    }
}

static void on_client(void *ctx, uint32_t events)
{
    struct gdbstub *s = ctx;
    if (events & EPOLLOUT)
        gdb_conn_flush(s);
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    uint8_t data[4096];
    ssize_t n = recv(s->fd, data, sizeof(data), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        gdb_detach(s);
        gdb_conn_close(s);
        return;
    }
    gdbstub_feed(s, data, (size_t)n);
}

/* A new client stops the guest (GDB expects a stopped target). */
static void on_accept(void *ctx, uint32_t events)
{
    struct gdbstub *s = ctx;
    (void)events;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (s->fd >= 0) {
        log_warn("gdb: a second debugger was turned away (one at a time)");
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on Unix sockets */
    if (evloop_add(s->loop, fd, EPOLLIN, on_client, s)) {
        log_warn("gdb: cannot serve the debugger: %s", err_msg());
        close(fd);
        return;
    }
    s->fd = fd;
    gdb_rx_init(&s->rx);
    s->no_ack = false;
    s->c_cpu = -1;
    log_info("gdb: a debugger connected");
    if (!s->stopped_once) {
        /* the stop reply waits for the client's '?' */
        s->running = false;
        s->target.ops->stop(s->target.ctx);
        gdbstub_stopped(s, s->g_cpu, GDB_STOP_INTERRUPT, NULL);
    }
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

static int listen_tcp(struct gdbstub *s, const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1])
        return err_set(-EINVAL, "--gdb tcp:HOST:PORT expected, got 'tcp:%s'", spec);
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai))
        return err_set(-EINVAL, "--gdb: cannot resolve '%s' port '%s'", host, colon + 1);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    int ret = fd < 0 ? -errno : 0;
    if (!ret)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!ret && (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1)))
        ret = -errno;
    bool loopback = is_loopback(ai->ai_addr);
    freeaddrinfo(ai);
    if (ret) {
        if (fd >= 0)
            close(fd);
        return err_errno(ret, "--gdb: cannot listen on %s", spec);
    }
    s->listen_fd = fd;
    log_forced(LOG_INFO, "gdb: listening on %s (gdb: target remote %s)%s", spec, spec,
               loopback ? "" : "; not a loopback address: whoever reaches it controls the guest");
    return 0;
}

static int listen_unix(struct gdbstub *s, const char *path)
{
    struct usock_listener l;
    int ret = usock_listen(path, "--gdb", 1, 0600, &l);
    if (ret)
        return ret;
    s->unix_listener = l;
    s->listen_fd = l.fd;
    if (!(s->unix_path = strdup(path))) {
        usock_close(&s->unix_listener, path);
        s->listen_fd = -1;
        return err_set(-ENOMEM, "out of memory");
    }
    log_forced(LOG_INFO, "gdb: listening on Unix socket %s (gdb: target remote %s)", path, path);
    return 0;
}

int gdbstub_init(struct gdbstub *s, const char *address, struct evloop *loop,
                 const struct gdb_target *target, bool held)
{
    memset(s, 0, sizeof(*s));
    s->target = *target;
    s->loop = loop;
    s->fd = -1;
    s->listen_fd = -1;
    s->c_cpu = -1;
    s->stopped_once = held;
    snprintf(s->stop_reply, sizeof(s->stop_reply), "T05thread:1;");
    int ret;
    if (!strncmp(address, "tcp:", 4))
        ret = listen_tcp(s, address + 4);
    else if (!strncmp(address, "unix:", 5) && address[5])
        ret = listen_unix(s, address + 5);
    else
        ret = err_set(-EINVAL, "--gdb: expected tcp:HOST:PORT or unix:PATH, got '%s'", address);
    if (!ret && (ret = evloop_add(loop, s->listen_fd, EPOLLIN, on_accept, s)))
        gdbstub_destroy(s);
    return ret;
}

void gdbstub_destroy(struct gdbstub *s)
{
    if (s->fd >= 0) {
        evloop_remove(s->loop, s->fd);
        close(s->fd);
        s->fd = -1;
    }
    if (s->listen_fd >= 0) {
        evloop_remove(s->loop, s->listen_fd);
        if (s->unix_path)
            usock_close(&s->unix_listener, s->unix_path);
        else
            close(s->listen_fd);
        s->listen_fd = -1;
    }
    free(s->unix_path);
    s->unix_path = NULL;
    buf_free(&s->out);
    buf_free(&s->last);
}

#include "api/http_server.h"

#include <http_parser.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/usock.h"
#include "util/util.h"

#define CONN_IN_BUF 16384

struct conn {
    struct http_server *srv;
    int fd;
    struct conn *next;
    bool dead;
    http_parser parser;

    char in[CONN_IN_BUF];
    size_t in_len, in_off;
    bool peer_closed;

    /* The request being parsed. */
    bool started;
    char url[HTTP_MAX_URL + 1];
    size_t url_len;
    char *body;
    size_t body_len, body_cap;
    size_t header_bytes;
    char hname[16];
    size_t hname_len;
    bool hname_done;
    /* Headers kept for the handler: NUL-terminated names and values in hbuf. */
    char hbuf[HTTP_MAX_HEADER_BYTES + 2 * HTTP_MAX_KEPT_HEADERS + 2];
    size_t hbuf_len;
    size_t hoff[HTTP_MAX_KEPT_HEADERS][2]; /* offsets of name and value */
    unsigned nr_kept;
    bool keeping; /* the current header is being kept */
    bool header_is_expect;
    bool expect_continue;
    int fail_status;
    char fail_msg[200];

    char *out;
    size_t out_len, out_off, out_cap;
    bool close_after_write;
    /* Answered and shut for writing: input is read and dropped until the
     * client closes or the deadline, so that a client still sending (a
     * body refused halfway) reads the answer instead of a reset. */
    bool lingering;
    uint64_t linger_deadline;

    uint64_t request_deadline, write_deadline, last_active;
    uint32_t events;
};

struct http_server {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd, timer_fd, epfd;
    char listen_tag, timer_tag; /* epoll data for the two non-connection fds */
    struct evloop *loop;
    size_t max_body;
    http_handler_fn handler;
    void *ctx;
    struct conn *conns;
    unsigned nr_conns;
    bool timer_armed;
    bool listen_paused; /* out of file descriptors: retried on the tick */
    struct http_stats stats;
    const char *name;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *http_fault_body(const char *msg)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "fault_message", json_object_new_string(msg));
    char *text = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return text;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    default: return "Unknown";
    }
}

/* --- output ------------------------------------------------------------- */

static bool out_append(struct conn *c, const char *data, size_t len)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + len > c->out_cap) {
        size_t cap = MAX(c->out_cap * 2, c->out_len + len + 256);
        char *grown = realloc(c->out, cap);
        if (!grown)
            return false;
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return true;
}

static void conn_respond_typed(struct conn *c, int status, const char *body,
                               const char *content_type, const char *extra)
{
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: ember\r\n%s", status,
                     reason_phrase(status), extra ? extra : "");
    if (body)
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      content_type ? content_type : "application/json", blen);
    else if (status != 204 && status != 100)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: 0\r\n");
    if (c->close_after_write && status != 100)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: close\r\n");
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (!out_append(c, head, (size_t)n) || (body && !out_append(c, body, blen)))
        c->dead = true; /* out of memory: drop the client rather than the VMM */
    c->write_deadline = now_ms() + HTTP_WRITE_TIMEOUT_MS;
}

static void conn_respond(struct conn *c, int status, const char *body)
{
    conn_respond_typed(c, status, body, NULL, NULL);
}

static void conn_respond_fault(struct conn *c, int status, const char *msg)
{
    char *body = http_fault_body(msg);
    conn_respond(c, status, body);
    free(body);
}

/* --- the parser's callbacks ---------------------------------------------- */

static int fail(struct conn *c, int status, const char *fmt, ...) EMBER_PRINTF(3, 4);
static int fail(struct conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof(c->fail_msg), fmt, ap);
    va_end(ap);
    c->fail_status = status;
    return -1; /* stops the parser */
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->started = true;
    c->url_len = 0;
    c->body_len = 0;
    c->header_bytes = 0;
    c->hname_len = 0;
    c->hname_done = false;
    c->hbuf_len = 0;
    c->nr_kept = 0;
    c->keeping = false;
    c->expect_continue = false;
    c->request_deadline = now_ms() + HTTP_REQUEST_TIMEOUT_MS;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->url_len + len > HTTP_MAX_URL)
        return fail(c, 400, "the request path is longer than %d bytes", HTTP_MAX_URL);
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int count_header_bytes(struct conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > HTTP_MAX_HEADER_BYTES)
        return fail(c, 400, "the request headers are longer than %d bytes",
                    HTTP_MAX_HEADER_BYTES);
    return 0;
}

/* Kept headers: each name and value is NUL-terminated in hbuf; one that
 * does not fit (header_bytes bounds the total anyway) is not kept. */
static void keep_drop(struct conn *c)
{
    if (!c->keeping)
        return;
    c->keeping = false;
    c->nr_kept--;
    c->hbuf_len = c->hoff[c->nr_kept][0];
}

static void keep_bytes(struct conn *c, const char *at, size_t len)
{
    if (!c->keeping)
        return;
    if (c->hbuf_len + len + 1 > sizeof(c->hbuf)) {
        keep_drop(c);
        return;
    }
    memcpy(c->hbuf + c->hbuf_len, at, len);
    c->hbuf_len += len;
    c->hbuf[c->hbuf_len] = '\0';
}

/* A new string (0: a name, 1: its value) starts past the last one's NUL. */
static void keep_start(struct conn *c, int which)
{
    if (which == 0) {
        c->keeping = c->nr_kept < HTTP_MAX_KEPT_HEADERS;
        if (!c->keeping)
            return;
        c->nr_kept++;
        c->hoff[c->nr_kept - 1][0] = c->hbuf_len;
    }
    if (!c->keeping)
        return;
    if (which == 1 && c->hbuf_len + 1 >= sizeof(c->hbuf)) {
        keep_drop(c);
        return;
    }
    if (which == 1)
        c->hbuf_len++; /* past the name's NUL */
    c->hoff[c->nr_kept - 1][which] = c->hbuf_len;
    if (c->hbuf_len < sizeof(c->hbuf))
        c->hbuf[c->hbuf_len] = '\0';
}

static void keep_end(struct conn *c)
{
    if (c->keeping && c->hbuf_len + 1 < sizeof(c->hbuf))
        c->hbuf_len++; /* past the value's NUL */
    else
        keep_drop(c);
    c->keeping = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->hname_done || c->hname_len == 0) { /* a new header starts */
        if (c->hname_done)
            keep_end(c);
        c->hname_len = 0;
        c->hname_done = false;
        keep_start(c, 0);
    }
    keep_bytes(c, at, len);
    size_t room = sizeof(c->hname) - 1 - c->hname_len;
    memcpy(c->hname + c->hname_len, at, MIN(len, room));
    c->hname_len += MIN(len, room);
    c->hname[c->hname_len] = '\0';
    return count_header_bytes(c, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (!c->hname_done) {
        c->hname_done = true;
        c->header_is_expect = !strcasecmp(c->hname, "expect");
        keep_start(c, 1);
    }
    keep_bytes(c, at, len);
    if (c->header_is_expect && len >= 12 && !strncasecmp(at, "100-continue", 12))
        c->expect_continue = true;
    return count_header_bytes(c, len);
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (c->hname_done)
        keep_end(c);
    else if (c->keeping) /* a name without a value */
        keep_drop(c);
    size_t max = c->srv->max_body;
    /* content_length is ULLONG_MAX when the header is absent. */
    if (p->content_length != ULLONG_MAX && p->content_length > max)
        return fail(c, 400, "the request body of %llu bytes is larger than the limit of %zu "
                            "bytes", (unsigned long long)p->content_length, max);
    if (c->expect_continue)
        conn_respond(c, 100, NULL);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->body_len + len > c->srv->max_body)
        return fail(c, 400, "the request body is larger than the limit of %zu bytes",
                    c->srv->max_body);
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = MAX(c->body_cap * 2, c->body_len + len + 1);
        char *grown = realloc(c->body, cap);
        if (!grown)
            return fail(c, 500, "out of memory");
        c->body = grown;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1); /* answer this request before parsing the next */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- requests ------------------------------------------------------------ */

static void conn_dispatch(struct conn *c)
{
    struct http_server *srv = c->srv;
    srv->stats.requests++;
    if (!http_should_keep_alive(&c->parser))
        c->close_after_write = true;
    struct http_parser_url u;
    http_parser_url_init(&u);
    char path[HTTP_MAX_URL + 1];
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH))) {
        srv->stats.bad_requests++;
        conn_respond_fault(c, 400, "the request target is not a valid path");
    } else {
        memcpy(path, c->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
        path[u.field_data[UF_PATH].len] = '\0';
        if (c->body)
            c->body[c->body_len] = '\0';
        struct http_header headers[HTTP_MAX_KEPT_HEADERS];
        for (unsigned i = 0; i < c->nr_kept; i++)
            headers[i] = (struct http_header){c->hbuf + c->hoff[i][0], c->hbuf + c->hoff[i][1]};
        struct http_request req = {
            .method = http_method_str((enum http_method)c->parser.method),
            .path = path,
            .body = c->body ? c->body : "",
            .body_len = c->body_len,
            .headers = headers,
            .nr_headers = c->nr_kept,
        };
        struct http_response resp = {.status = 500};
        srv->handler(srv->ctx, &req, &resp);
        if (resp.status >= 400)
            srv->stats.bad_requests++;
        conn_respond_typed(c, resp.status, resp.body, resp.content_type, resp.extra_headers);
        free(resp.body);
    }
    c->started = false;
    c->request_deadline = 0;
    if (c->body_cap > 4 * HTTP_DEFAULT_MAX_BODY) { /* keep idle connections small */
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (unsigned i = 0; i < req->nr_headers; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

static void conn_parse_error(struct conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    c->srv->stats.bad_requests++;
    c->close_after_write = true; /* the stream cannot be resynchronised */
    if (c->fail_status)
        conn_respond_fault(c, c->fail_status, c->fail_msg);
    else {
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
        conn_respond_fault(c, 400, msg);
    }
}

static size_t out_pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

/* Parse what has arrived, answering each complete request, but only while
 * earlier answers have been taken by the client. */
static void conn_parse(struct conn *c)
{
    while (!c->dead && !c->close_after_write && out_pending(c) == 0 && c->in_off < c->in_len) {
        size_t avail = c->in_len - c->in_off;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_off, avail);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
        } else if (e != HPE_OK) {
            conn_parse_error(c);
        }
    }
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    } else if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
}

/* --- connections --------------------------------------------------------- */

#define LINGER_MS 2000 /* the longest a lingering close waits for the client */

static void conn_kill(struct conn *c)
{
    c->dead = true;
}

static void conn_flush(struct conn *c)
{
    while (out_pending(c)) {
        ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_kill(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->close_after_write && !c->lingering) {
        c->lingering = shutdown(c->fd, SHUT_WR) == 0;
        c->linger_deadline = now_ms() + LINGER_MS;
        c->in_len = 0;
        if (!c->lingering || c->peer_closed)
            conn_kill(c);
    }
}

static void conn_update_interest(struct conn *c)
{
    if (c->dead)
        return;
    uint32_t ev = c->lingering ? EPOLLIN : 0;
    if (!c->peer_closed && !c->close_after_write && c->in_len < CONN_IN_BUF)
        ev |= EPOLLIN;
    if (out_pending(c))
        ev |= EPOLLOUT;
    if (ev != c->events) {
        struct epoll_event e = {.events = ev, .data.ptr = c};
        if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
            conn_kill(c);
        c->events = ev;
    }
}

static void conn_read(struct conn *c)
{
    while (!c->peer_closed && c->in_len < CONN_IN_BUF) {
        ssize_t n = recv(c->fd, c->in + c->in_len, CONN_IN_BUF - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            /* EOF: requests already received are still answered (a client
             * may shut down its sending side after the request). */
            c->peer_closed = true;
            break;
        }
        c->in_len += (size_t)n;
        c->last_active = now_ms();
    }
}

/* Lingering: what the client still sends is read and dropped; its close
 * (or an error) ends the connection. */
static void conn_drain(struct conn *c)
{
    do {
        c->in_len = 0;
        conn_read(c);
    } while (c->in_len == CONN_IN_BUF);
    c->in_len = 0;
    if (c->peer_closed)
        conn_kill(c);
}

static void conn_on_event(struct conn *c, uint32_t events)
{
    if (c->lingering) {
        conn_drain(c);
        conn_update_interest(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_read(c);
    /* Each round answers at least one request; requests held back behind
     * an answer the client had not taken yet follow once it is sent. */
    do {
        conn_parse(c);
        conn_flush(c);
    } while (!c->dead && !c->close_after_write && !out_pending(c) && c->in_len);
    /* The client is gone and nothing more can be answered. */
    if (c->peer_closed && !out_pending(c))
        conn_kill(c);
    if ((events & EPOLLERR) && !c->dead)
        conn_kill(c);
    conn_update_interest(c);
}

static void conn_free(struct conn *c)
{
    epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->body);
    free(c->out);
    free(c);
}

static void reap_dead(struct http_server *srv)
{
    struct conn **pp = &srv->conns;
    while (*pp) {
        struct conn *c = *pp;
        if (c->dead) {
            *pp = c->next;
            srv->nr_conns--;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void arm_timer(struct http_server *srv, bool on)
{
    if (on == srv->timer_armed)
        return;
    struct itimerspec its = {0};
    if (on)
        its.it_interval.tv_sec = its.it_value.tv_sec = 1;
    timerfd_settime(srv->timer_fd, 0, &its, NULL);
    srv->timer_armed = on;
}

/* At the cap, the connection idle the longest makes room for a new one. It
 * is only marked dead: later events of this batch may still name it, and
 * it is freed after the batch. */
static bool make_room(struct http_server *srv)
{
    unsigned live = 0;
    struct conn *victim = NULL;
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (c->dead)
            continue;
        live++;
        if (!c->started && !out_pending(c) && !c->in_len &&
            (!victim || c->last_active < victim->last_active))
            victim = c;
    }
    if (live < HTTP_MAX_CONNECTIONS)
        return true;
    if (!victim)
        return false;
    conn_kill(victim);
    return true;
}

static void accept_one(struct http_server *srv, int fd)
{
    if (!make_room(srv)) {
        srv->stats.connections_refused++;
        log_guest("%s: %d connections are busy; refusing another", srv->name,
                  HTTP_MAX_CONNECTIONS);
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (!c || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        free(c);
        close(fd);
        srv->stats.connections_refused++;
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->events = EPOLLIN;
    c->last_active = now_ms();
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = srv->conns;
    srv->conns = c;
    srv->nr_conns++;
    srv->stats.connections++;
    arm_timer(srv, true);
}

static void watch_listener(struct http_server *srv, bool on)
{
    struct epoll_event e = {.events = on ? EPOLLIN : 0, .data.ptr = &srv->listen_tag};
    epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->listen_fd, &e);
    srv->listen_paused = !on;
}

static void on_listen(struct http_server *srv)
{
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(srv, fd);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: the pending connection stays queued and
             * the socket readable, so stop watching it until the next tick
             * instead of spinning. */
            log_guest("%s: accept failed: %s; retrying in a second", srv->name,
                      strerror(errno));
            watch_listener(srv, false);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_guest("%s: accept failed: %s", srv->name, strerror(errno));
        }
        return;
    }
}

static void on_tick(struct http_server *srv)
{
    uint64_t expirations;
    if (read(srv->timer_fd, &expirations, sizeof(expirations)) < 0)
        return;
    if (srv->listen_paused)
        watch_listener(srv, true);
    uint64_t now = now_ms();
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (c->lingering && now > c->linger_deadline) {
            conn_kill(c);
        } else if (c->started && c->request_deadline && now > c->request_deadline) {
            log_debug("%s: dropping a client that left a request unfinished", srv->name);
            conn_kill(c);
        } else if (out_pending(c) && now > c->write_deadline) {
            log_debug("%s: dropping a client that does not read its responses", srv->name);
            conn_kill(c);
        }
    }
}

static void srv_on_events(void *ctx, uint32_t events)
{
    struct http_server *srv = ctx;
    (void)events;
    struct epoll_event evs[32];
    int n = epoll_wait(srv->epfd, evs, 32, 0);
    for (int i = 0; i < n; i++) {
        void *tag = evs[i].data.ptr;
        if (tag == &srv->listen_tag)
            on_listen(srv);
        else if (tag == &srv->timer_tag)
            on_tick(srv);
        else if (!((struct conn *)tag)->dead)
            conn_on_event(tag, evs[i].events);
    }
    reap_dead(srv);
    arm_timer(srv, srv->nr_conns > 0 || srv->listen_paused);
}

/* --- the listening socket ------------------------------------------------ */

/* A socket file left behind by a dead VMM is reused; a live one is not. */
static int srv_listen(struct http_server *srv, const char *path, mode_t mode)
{
    struct usock_listener l;
    int ret = usock_listen(path, "API socket", 64, mode, &l);
    if (ret)
        return ret;
    srv->listen_fd = l.fd;
    strcpy(srv->path, path); /* usock_listen checked it fits sun_path */
    return 0;
}

static int srv_watch(struct http_server *srv, int fd, void *tag)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = tag};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        return err_errno(-errno, "epoll_ctl failed");
    return 0;
}

int http_server_create(const char *path, mode_t mode, size_t max_body, struct evloop *loop,
                       http_handler_fn handler, void *ctx, struct http_server **out)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return err_set(-ENOMEM, "out of memory");
    srv->listen_fd = srv->timer_fd = srv->epfd = -1;
    srv->loop = loop;
    srv->max_body = max_body;
    srv->handler = handler;
    srv->ctx = ctx;
    srv->name = "control API";
    int ret = path ? srv_listen(srv, path, mode) : 0;
    if (!ret && (srv->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        ret = err_errno(-errno, "epoll_create1 failed");
    if (!ret && (srv->timer_fd = timerfd_create(CLOCK_MONOTONIC,
                                                TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
        ret = err_errno(-errno, "timerfd_create failed");
    if (!ret && path)
        ret = srv_watch(srv, srv->listen_fd, &srv->listen_tag);
    if (!ret)
        ret = srv_watch(srv, srv->timer_fd, &srv->timer_tag);
    if (!ret)
        ret = evloop_add(loop, srv->epfd, EPOLLIN, srv_on_events, srv);
    if (ret) {
        http_server_destroy(srv);
        return ret;
    }
    *out = srv;
    return 0;
}

void http_server_destroy(struct http_server *srv)
{
    if (!srv)
        return;
    for (struct conn *c = srv->conns; c; c = c->next)
        c->dead = true;
    reap_dead(srv);
    if (srv->epfd >= 0) {
        evloop_remove(srv->loop, srv->epfd);
        close(srv->epfd);
    }
    if (srv->timer_fd >= 0)
        close(srv->timer_fd);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->path[0])
        unlink(srv->path);
    free(srv);
}

void http_server_set_name(struct http_server *srv, const char *name)
{
    srv->name = name;
}

void http_server_adopt(struct http_server *srv, int fd)
{
    accept_one(srv, fd);
    arm_timer(srv, srv->nr_conns > 0);
}

const struct http_stats *http_server_stats(const struct http_server *srv)
{
    return &srv->stats;
}

unsigned http_server_connections(const struct http_server *srv)
{
    return srv->nr_conns;
}

#include "vmm/console.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/util.h"

/* One saved terminal state per process: the terminal is process-wide. */
static struct termios saved_termios;
static volatile sig_atomic_t terminal_saved;
static int terminal_fd = -1;

void console_restore_terminal(void)
{
    if (terminal_saved) {
        tcsetattr(terminal_fd, TCSAFLUSH, &saved_termios);
        terminal_saved = 0;
        log_set_raw_terminal(false);
    }
}

int console_enter_raw_mode(struct console *con)
{
    if (!con->in_is_tty || terminal_saved)
        return 0;
    struct termios raw;
    if (tcgetattr(con->in_fd, &saved_termios) < 0)
        return err_errno(-errno, "cannot read terminal settings");
    raw = saved_termios;
    cfmakeraw(&raw);
    terminal_fd = con->in_fd;
    terminal_saved = 1;
    if (tcsetattr(con->in_fd, TCSAFLUSH, &raw) < 0) {
        terminal_saved = 0;
        return err_errno(-errno, "cannot put the terminal in raw mode");
    }
    log_set_raw_terminal(true);
    return 0;
}

size_t console_filter_escapes(bool *escape_seen, const uint8_t *in, size_t len,
                              uint8_t *out, bool *quit)
{
    size_t n = 0;
    *quit = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];
        if (!*escape_seen) {
            if (c == CONSOLE_ESCAPE)
                *escape_seen = true;
            else
                out[n++] = c;
            continue;
        }
        *escape_seen = false;
        if (c == 'x' || c == 'X') {
            *quit = true;
            return n;
        }
        if (c != CONSOLE_ESCAPE)
            out[n++] = CONSOLE_ESCAPE; /* not a command: pass both through */
        out[n++] = c;
    }
    return n;
}

/* --- output ---------------------------------------------------------------- */

/* Some bytes to fd: how many, or -1 when it cannot take more ever. A
 * descriptor someone else made non-blocking is waited for, not spun on. */
static ssize_t out_write_some(int fd, const uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t w = write(fd, p, n);
        if (w > 0)
            return w;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        return -1;
    }
}

static void out_room_check(struct console_out *o)
{
    if (o->nr_waiters && (o->failed || CONSOLE_OUT_BUF - o->len >= CONSOLE_OUT_BUF / 2))
        eventfd_signal(o->wake_fd);
}

static void *console_writer(void *arg)
{
    struct console *con = arg;
    struct console_out *o = &con->out;
    prctl(PR_SET_NAME, "ember-console");
    seccomp_enter_or_exit(SECCOMP_CONSOLE);
    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->len && !o->stop)
            pthread_cond_wait(&o->cond, &o->lock);
        if (!o->len)
            break;
        size_t n = MIN(o->len, CONSOLE_OUT_BUF - o->head);
        const uint8_t *p = o->buf + o->head;
        bool failed = o->failed;
        o->writing = true;
        pthread_mutex_unlock(&o->lock);
        ssize_t w = failed ? (ssize_t)n : out_write_some(con->out_fd, p, n);
        pthread_mutex_lock(&o->lock);
        o->writing = false;
        if (w < 0) { /* a closed stdout drops output; the guest runs on */
            o->failed = true;
            w = (ssize_t)n;
        }
        if (o->failed)
            o->dropped += (uint64_t)w;
        o->head = (o->head + (size_t)w) % CONSOLE_OUT_BUF;
        o->len -= (size_t)w;
        if (!o->len)
            pthread_cond_broadcast(&o->idle);
        out_room_check(o);
    }
    pthread_cond_broadcast(&o->idle);
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

static size_t console_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct console *con = ctx;
    struct console_out *o = &con->out;
    pthread_mutex_lock(&o->lock);
    if (o->failed || !o->started) { /* nowhere to go: dropped, never held */
        o->dropped += len;
        pthread_mutex_unlock(&o->lock);
        return len;
    }
    size_t n = MIN(len, CONSOLE_OUT_BUF - o->len);
    for (size_t done = 0; done < n;) {
        size_t at = (o->head + o->len) % CONSOLE_OUT_BUF;
        size_t chunk = MIN(n - done, CONSOLE_OUT_BUF - at);
        memcpy(o->buf + at, buf + done, chunk);
        o->len += chunk;
        done += chunk;
    }
    if (n)
        pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
    return n;
}

static void console_wait_writable(void *ctx, void (*fn)(void *arg), void *arg)
{
    struct console *con = ctx;
    struct console_out *o = &con->out;
    pthread_mutex_lock(&o->lock);
    bool known = false;
    for (unsigned i = 0; i < o->nr_waiters; i++)
        known |= o->waiters[i].fn == fn && o->waiters[i].arg == arg;
    if (!known && o->nr_waiters < CONSOLE_OUT_WAITERS)
        o->waiters[o->nr_waiters++] = (struct console_waiter){fn, arg};
    else if (!known) /* more writers than slots: let them all try again */
        eventfd_signal(o->wake_fd);
    out_room_check(o); /* room may have appeared since the short write */
    pthread_mutex_unlock(&o->lock);
}

/* On the loop: the buffer has room; each waiting device tries again. */
static void console_on_out_wake(void *ctx, uint32_t events)
{
    struct console *con = ctx;
    struct console_out *o = &con->out;
    (void)events;
    eventfd_drain(o->wake_fd);
    struct console_waiter w[CONSOLE_OUT_WAITERS];
    pthread_mutex_lock(&o->lock);
    unsigned n = o->nr_waiters;
    memcpy(w, o->waiters, sizeof(w));
    o->nr_waiters = 0;
    pthread_mutex_unlock(&o->lock);
    for (unsigned i = 0; i < n; i++)
        w[i].fn(w[i].arg);
}

/* Wait until the buffer is empty, as long as the writer makes progress. */
static void out_flush(struct console_out *o, int stall_ms)
{
    pthread_mutex_lock(&o->lock);
    size_t last = o->len;
    while (o->started && o->len) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += stall_ms / 1000;
        until.tv_nsec += (long)(stall_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&o->idle, &o->lock, &until) == ETIMEDOUT) {
            if (o->len == last)
                break; /* nobody reads stdout: do not wait for ever */
            last = o->len;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

void console_flush(struct console *con)
{
    if (con->initialized)
        out_flush(&con->out, 2000);
}

static int out_init(struct console *con)
{
    struct console_out *o = &con->out;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    pthread_cond_init(&o->idle, NULL);
    o->wake_fd = eventfd_create();
    if (o->wake_fd < 0)
        return o->wake_fd;
    if (!(o->buf = malloc(CONSOLE_OUT_BUF)))
        return err_set(-ENOMEM, "out of memory");
    int ret = thread_create(&o->thread, console_writer, con);
    if (ret)
        return err_set(-ret, "cannot start the console's writer thread");
    o->started = true;
    return 0;
}

static void out_destroy(struct console_out *o)
{
    if (o->started) {
        out_flush(o, 2000);
        pthread_mutex_lock(&o->lock);
        o->stop = true;
        bool stuck = o->writing;
        pthread_cond_signal(&o->cond);
        pthread_mutex_unlock(&o->lock);
        if (stuck) {
            /* Blocked in a write nobody will take: leave it (its buffer
             * and lock included) to the process's exit. */
            pthread_detach(o->thread);
            o->abandoned = true;
            o->buf = NULL;
        } else {
            pthread_join(o->thread, NULL);
        }
        o->started = false;
    }
    free(o->buf);
    o->buf = NULL;
    if (o->wake_fd >= 0)
        close(o->wake_fd);
    o->wake_fd = -1;
}

static void console_input_ready(void *ctx)
{
    struct console *con = ctx;
    eventfd_signal(con->wake_fd);
}

/* A serial output file (Firecracker's PUT /serial) drops what it cannot
 * take at once, as Firecracker does: it always reports all bytes taken. */
static size_t file_out_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct console_file_out *o = ctx;
    size_t all = len;
    while (len) {
        ssize_t w = write(o->fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->dropped += len; /* a full FIFO (EAGAIN) or a failing file */
            return all;
        }
        buf += w;
        len -= (size_t)w;
    }
    return all;
}

static void file_out_input_ready(void *ctx)
{
    struct console_file_out *o = ctx;
    console_input_ready(o->con);
}

const struct chardev_host_ops console_file_out_ops = {
    .write = file_out_write,
    .input_ready = file_out_input_ready,
};

const struct chardev_host_ops console_chardev_ops = {
    .write = console_write,
    .input_ready = console_input_ready,
    .wait_writable = console_wait_writable,
};

static void console_watch_input(struct console *con, bool on)
{
    if (!con->in_pollable || con->in_eof || con->in_watching == on)
        return;
    if (evloop_modify(con->loop, con->in_fd, on ? EPOLLIN : 0) == 0)
        con->in_watching = on;
}

/* Hand pending bytes to the UART; stop reading stdin while some wait. */
static void console_feed(struct console *con)
{
    if (con->pending_len) {
        size_t taken = con->receive(con->receive_ctx, con->pending + con->pending_off,
                                    con->pending_len);
        con->pending_off += taken;
        con->pending_len -= taken;
    }
    console_watch_input(con, con->pending_len == 0);
}

static void console_read_input(struct console *con)
{
    if (con->in_eof || con->pending_len)
        return;
    uint8_t raw[sizeof(con->pending)];
    ssize_t n = read(con->in_fd, raw, sizeof(raw));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        con->in_eof = true;
        if (con->in_pollable && con->in_watching)
            evloop_remove(con->loop, con->in_fd);
        con->in_watching = false;
        return;
    }
    bool quit = false;
    if (con->in_is_tty)
        con->pending_len = console_filter_escapes(&con->escape_seen, raw, (size_t)n,
                                                  con->pending, &quit);
    else {
        memcpy(con->pending, raw, (size_t)n);
        con->pending_len = (size_t)n;
    }
    con->pending_off = 0;
    if (quit && con->quit)
        con->quit(con->quit_ctx);
}

static void console_on_input(void *ctx, uint32_t events)
{
    struct console *con = ctx;
    (void)events;
    console_read_input(con);
    console_feed(con);
}

static void console_on_wake(void *ctx, uint32_t events)
{
    struct console *con = ctx;
    (void)events;
    eventfd_drain(con->wake_fd);
    /* Input that cannot be polled (a file, /dev/null) is read on demand. */
    if (!con->in_pollable)
        console_read_input(con);
    console_feed(con);
}

int console_init(struct console *con, int in_fd, int out_fd)
{
    memset(con, 0, sizeof(*con));
    con->initialized = true;
    con->in_fd = in_fd;
    con->out_fd = out_fd;
    con->in_is_tty = isatty(in_fd);
    con->out.wake_fd = -1;
    con->wake_fd = eventfd_create();
    if (con->wake_fd < 0)
        return con->wake_fd;
    return out_init(con);
}

int console_attach(struct console *con, struct evloop *loop, console_receive_fn receive,
                   void *receive_ctx, void (*quit)(void *ctx), void *quit_ctx)
{
    con->loop = loop;
    con->receive = receive;
    con->receive_ctx = receive_ctx;
    con->quit = quit;
    con->quit_ctx = quit_ctx;
    int ret = evloop_add(loop, con->wake_fd, EPOLLIN, console_on_wake, con);
    if (!ret)
        ret = evloop_add(loop, con->out.wake_fd, EPOLLIN, console_on_out_wake, con);
    if (ret)
        return ret;
    ret = evloop_add(loop, con->in_fd, EPOLLIN, console_on_input, con);
    if (ret == 0) {
        con->in_pollable = true;
        con->in_watching = true;
    } else if (ret == -EPERM) {
        con->in_pollable = false;
        err_clear();
    } else if (ret == -EBADF) {
        con->in_eof = true; /* stdin closed */
        err_clear();
    } else {
        return ret;
    }
    return 0;
}

void console_detach(struct console *con)
{
    if (!con->loop)
        return;
    evloop_remove(con->loop, con->wake_fd);
    evloop_remove(con->loop, con->out.wake_fd);
    if (con->in_pollable && con->in_watching)
        evloop_remove(con->loop, con->in_fd);
    con->in_watching = false;
    con->loop = NULL;
    con->receive = NULL;
    /* The devices that waited are gone with their VM. */
    pthread_mutex_lock(&con->out.lock);
    con->out.nr_waiters = 0;
    pthread_mutex_unlock(&con->out.lock);
}

void console_destroy(struct console *con)
{
    if (!con->initialized)
        return;
    out_destroy(&con->out);
    if (con->wake_fd >= 0)
        close(con->wake_fd);
    con->wake_fd = -1;
    if (!con->out.abandoned) {
        pthread_mutex_destroy(&con->out.lock);
        pthread_cond_destroy(&con->out.cond);
        pthread_cond_destroy(&con->out.idle);
    }
    con->initialized = false;
}

#include "vmm/console.h"

#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"

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

static void console_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct console *con = ctx;
    while (len) {
        ssize_t w = write(con->out_fd, buf, len);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return; /* a closed stdout drops output; the guest runs on */
        buf += w;
        len -= (size_t)w;
    }
}

static void console_input_ready(void *ctx)
{
    struct console *con = ctx;
    eventfd_signal(con->wake_fd);
}

static void file_out_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct console_file_out *o = ctx;
    while (len) {
        ssize_t w = write(o->fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->dropped += len; /* a full FIFO (EAGAIN) or a failing file */
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
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
    con->in_fd = in_fd;
    con->out_fd = out_fd;
    con->in_is_tty = isatty(in_fd);
    con->wake_fd = eventfd_create();
    return con->wake_fd < 0 ? con->wake_fd : 0;
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
    if (con->in_pollable && con->in_watching)
        evloop_remove(con->loop, con->in_fd);
    con->in_watching = false;
    con->loop = NULL;
    con->receive = NULL;
}

void console_destroy(struct console *con)
{
    if (con->wake_fd >= 0)
        close(con->wake_fd);
    con->wake_fd = -1;
}

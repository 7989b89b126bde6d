#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_WARN;
static bool log_off;
static bool show_level = true;
static bool show_origin;
static int out_fd = 2; /* stderr until the control API names a log path */
static bool terminal_raw;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_set_raw_terminal(bool raw)
{
    terminal_raw = raw;
}

void log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level log_get_level(void)
{
    return current_level;
}

void log_configure(int fd, enum log_level level, bool off, bool with_level, bool with_origin)
{
    pthread_mutex_lock(&log_lock);
    if (out_fd != 2 && out_fd != fd)
        close(out_fd);
    out_fd = fd;
    current_level = level;
    log_off = off;
    show_level = with_level;
    show_origin = with_origin;
    pthread_mutex_unlock(&log_lock);
}

/* Messages go out in one write so that lines from several threads (and a
 * FIFO reader) never see them interleaved. */
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    if (level > current_level || log_off)
        return;
    char buf[1024];
    size_t n = 0;
    pthread_mutex_lock(&log_lock);
    /* A raw-mode terminal needs \r to return the cursor, and the guest's
     * output may have left it mid-line. */
    bool raw = terminal_raw && out_fd == 2;
    n += (size_t)snprintf(buf, sizeof(buf), "%sember", raw ? "\r\n" : "");
    if (show_level)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ": %s", level_names[level]);
    if (show_origin && file)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " [%s:%d]", file, line);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ": ");
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof(buf))
        n += (size_t)vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    const char *end = raw ? "\r\n" : "\n";
    if (n > sizeof(buf) - 3)
        n = sizeof(buf) - 3;
    memcpy(buf + n, end, strlen(end));
    n += strlen(end);
    ssize_t written = write(out_fd, buf, n);
    (void)written; /* nowhere left to report a failing log */
    pthread_mutex_unlock(&log_lock);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool log_ratelimit_allow(struct log_ratelimit *rl, unsigned burst)
{
    const uint64_t window_ns = 5ull * 1000000000ull;
    uint64_t now = monotonic_ns();
    bool allow;
    unsigned suppressed = 0;
    pthread_mutex_lock(&log_lock);
    if (now - rl->window_start_ns > window_ns) {
        if (rl->suppressed)
            suppressed = rl->suppressed;
        rl->window_start_ns = now;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    allow = rl->printed < burst;
    if (allow)
        rl->printed++;
    else
        rl->suppressed++;
    pthread_mutex_unlock(&log_lock);
    if (suppressed)
        log_msg(LOG_WARN, "%u similar messages suppressed", suppressed);
    return allow;
}

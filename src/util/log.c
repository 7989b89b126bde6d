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
static char module_filter[128]; /* "src/MODULE", empty for none */
static uint64_t missed_lines;
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

void log_configure(const struct log_config *cfg)
{
    pthread_mutex_lock(&log_lock);
    if (out_fd != 2 && out_fd != cfg->fd)
        close(out_fd);
    out_fd = cfg->fd;
    current_level = cfg->level;
    log_off = cfg->off;
    show_level = cfg->show_level;
    show_origin = cfg->show_origin;
    module_filter[0] = '\0';
    if (cfg->module && *cfg->module) {
        /* "virtio::blk" names src/virtio/blk like "virtio/blk" does. */
        size_t n = (size_t)snprintf(module_filter, sizeof(module_filter), "src/");
        for (const char *m = cfg->module; *m && n < sizeof(module_filter) - 1; m++) {
            if (m[0] == ':' && m[1] == ':') {
                module_filter[n++] = '/';
                m++;
            } else {
                module_filter[n++] = *m;
            }
        }
        module_filter[n] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

uint64_t log_missed_count(void)
{
    pthread_mutex_lock(&log_lock);
    uint64_t n = missed_lines;
    pthread_mutex_unlock(&log_lock);
    return n;
}

/* Does 'file' (as __FILE__ gives it: src/virtio/blk.c) belong to the module
 * filter: the same path, or a folder or file name that starts there? */
static bool module_matches(const char *file)
{
    if (!module_filter[0])
        return true;
    if (!file)
        return false;
    size_t n = strlen(module_filter);
    if (strncmp(file, module_filter, n))
        return false;
    return file[n] == '\0' || file[n] == '/' || file[n] == '.' || file[n] == '_';
}

/* Messages go out in one write so that lines from several threads (and a
 * FIFO reader) never see them interleaved. */
static void log_vmsg(enum log_level level, bool forced, const char *file, int line,
                     const char *fmt, va_list ap)
{
    if ((level > current_level && !forced) || log_off)
        return;
    char buf[1024];
    size_t n = 0;
    pthread_mutex_lock(&log_lock);
    if (!module_matches(file)) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    /* A raw-mode terminal needs \r to return the cursor, and the guest's
     * output may have left it mid-line. */
    bool raw = terminal_raw && out_fd == 2;
    n += (size_t)snprintf(buf, sizeof(buf), "%sember", raw ? "\r\n" : "");
    if (show_level)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ": %s", level_names[level]);
    if (show_origin && file)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " [%s:%d]", file, line);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ": ");
    if (n < sizeof(buf))
        n += (size_t)vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    const char *end = raw ? "\r\n" : "\n";
    if (n > sizeof(buf) - 3)
        n = sizeof(buf) - 3;
    memcpy(buf + n, end, strlen(end));
    n += strlen(end);
    ssize_t written = write(out_fd, buf, n);
    if (written != (ssize_t)n)
        missed_lines++; /* reported in the metrics (logger.missed_log_count) */
    pthread_mutex_unlock(&log_lock);
}

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, false, file, line, fmt, ap);
    va_end(ap);
}

void log_forced_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, true, file, line, fmt, ap);
    va_end(ap);
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

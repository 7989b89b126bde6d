#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level current_level = LOG_WARN;
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

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    /* A raw-mode terminal needs \r to return the cursor, and the guest's
     * output may have left it mid-line. */
    fprintf(stderr, "%sember: %s: ", terminal_raw ? "\r\n" : "", level_names[level]);
    vfprintf(stderr, fmt, ap);
    fputs(terminal_raw ? "\r\n" : "\n", stderr);
    pthread_mutex_unlock(&log_lock);
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
    pthread_mutex_lock(&log_lock);
    if (now - rl->window_start_ns > window_ns) {
        if (rl->suppressed)
            fprintf(stderr, "%sember: warning: %u similar messages suppressed%s",
                    terminal_raw ? "\r\n" : "", rl->suppressed, terminal_raw ? "\r\n" : "\n");
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
    return allow;
}

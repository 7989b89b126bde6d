/* Leveled logging to stderr, or to a file or FIFO set by the control API.
 * Guest-caused problems use log_ratelimited so a hostile guest cannot flood
 * the host's log. */
#ifndef EMBER_UTIL_LOG_H
#define EMBER_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include "err.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* Messages end in \r\n while the console has the terminal in raw mode. */
void log_set_raw_terminal(bool raw);
enum log_level log_get_level(void);
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
    EMBER_PRINTF(4, 5);
#define log_msg(level, ...) log_msg_at(level, __FILE__, __LINE__, __VA_ARGS__)
/* Labelled 'level' but written whatever the level filter says (unless the
 * log is off): a report the user asked for, such as --boot-timer's. */
void log_forced_at(enum log_level level, const char *file, int line, const char *fmt, ...)
    EMBER_PRINTF(4, 5);
#define log_forced(level, ...) log_forced_at(level, __FILE__, __LINE__, __VA_ARGS__)
/* Where and what to log (the control API's logger, Firecracker's --log-path
 * and friends): 'fd' replaces stderr (the previous non-stderr fd is closed);
 * 'off' silences everything; 'module', if set, keeps only messages from the
 * source files under src/MODULE ("api", "virtio/blk", or Rust-style
 * "virtio::blk"), copied here. */
struct log_config {
    int fd;
    enum log_level level;
    bool off;
    bool show_level;
    bool show_origin;
    const char *module;
};
void log_configure(const struct log_config *cfg);
/* Lines that could not be written whole (a full FIFO, a failing file). */
uint64_t log_missed_count(void);

/* Per call-site budget: at most 'burst' messages per 5 s window. */
struct log_ratelimit {
    uint64_t window_start_ns;
    unsigned printed;
    unsigned suppressed;
};
bool log_ratelimit_allow(struct log_ratelimit *rl, unsigned burst);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
    do {                                                                       \
        if (log_get_level() >= LOG_DEBUG)                                      \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                   \
    } while (0)

/* Rate-limited warning for guest-triggered events. */
#define log_guest(...)                                                         \
    do {                                                                       \
        static struct log_ratelimit rl__;                                      \
        if (log_ratelimit_allow(&rl__, 10))                                    \
            log_msg(LOG_WARN, __VA_ARGS__);                                    \
    } while (0)

#endif

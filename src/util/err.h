/* Errors carry context up to the edge (main), which reports them once.
 *
 * A failing function records a message with err_set() and returns a negative
 * errno; callers that add context wrap it with err_prefix(). The message lives
 * in thread-local storage, so each thread (vCPU, event loop) has its own. */
#ifndef EMBER_UTIL_ERR_H
#define EMBER_UTIL_ERR_H

#include <errno.h>

#define EMBER_MUST_CHECK __attribute__((warn_unused_result))
#define EMBER_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Record a message; returns 'code' (a negative errno) for 'return err_set(...)'. */
int err_set(int code, const char *fmt, ...) EMBER_PRINTF(2, 3);
/* Like err_set, with ": <strerror(-code)>" appended. */
int err_errno(int code, const char *fmt, ...) EMBER_PRINTF(2, 3);
/* Put "context: " in front of the current message; returns 'code'. */
int err_prefix(int code, const char *fmt, ...) EMBER_PRINTF(2, 3);
const char *err_msg(void);
void err_clear(void);

#endif

/* The event loop: one epoll set serviced by the main thread (console input,
 * signals, wake-ups from vCPU threads; later the API socket and backends). */
#ifndef EMBER_UTIL_EVLOOP_H
#define EMBER_UTIL_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define EVLOOP_MAX_HANDLERS 64

typedef void (*evloop_fn)(void *ctx, uint32_t events);

struct evloop_handler {
    int fd;
    evloop_fn fn;
    void *ctx;
    bool in_use;
};

struct evloop {
    int epfd;
    bool stop;
    struct evloop_handler handlers[EVLOOP_MAX_HANDLERS];
};

int evloop_init(struct evloop *loop) EMBER_MUST_CHECK;
void evloop_destroy(struct evloop *loop);
/* -EPERM when fd cannot be polled (a regular file, /dev/null). */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *ctx)
    EMBER_MUST_CHECK;
int evloop_modify(struct evloop *loop, int fd, uint32_t events);
void evloop_remove(struct evloop *loop, int fd);
/* Dispatch until evloop_stop(); 0, or a negative errno if epoll fails. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);
/* Wait up to timeout_ms (-1: forever) and dispatch one batch of events;
 * returns how many handlers ran. */
int evloop_run_once(struct evloop *loop, int timeout_ms);

/* eventfd helpers for cross-thread wake-ups. */
int eventfd_create(void);
void eventfd_signal(int fd);
void eventfd_drain(int fd);

#endif

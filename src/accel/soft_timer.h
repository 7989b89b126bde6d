/* The soft backend's timers: one thread that wakes each emulated timer (the
 * PIT, the IOAPIC's storm guard, every local APIC) when the guest clock
 * reaches its deadline. Devices arm and disarm through struct vtimer with
 * their own lock held; the thread calls their expiry function without
 * holding its own lock, so a device may re-arm from inside it. */
#ifndef EMBER_ACCEL_SOFT_TIMER_H
#define EMBER_ACCEL_SOFT_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/vclock.h"
#include "util/err.h"

#define SOFT_MAX_TIMERS 40

struct soft_timers;

struct soft_timer {
    struct soft_timers *owner;
    uint64_t deadline_ns; /* guest clock; 0: disarmed */
    void (*expired)(void *dev, uint64_t now_ns);
    void *dev;
};

struct soft_timers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop;
    const struct vclock *clock;
    /* Guest ns -> host CLOCK_MONOTONIC ns, to know how long to sleep. */
    uint64_t (*host_ns_at)(void *ctx, uint64_t guest_ns);
    void *host_ctx;
    struct soft_timer timers[SOFT_MAX_TIMERS];
    unsigned nr_timers;
    uint64_t fired; /* statistics */
};

int soft_timers_init(struct soft_timers *t, const struct vclock *clock,
                     uint64_t (*host_ns_at)(void *ctx, uint64_t guest_ns), void *host_ctx)
    EMBER_MUST_CHECK;
/* A timer for one device; its vtimer goes to the device's init. */
int soft_timers_add(struct soft_timers *t, void (*expired)(void *dev, uint64_t now_ns), void *dev,
                    struct vtimer *out) EMBER_MUST_CHECK;
int soft_timers_start(struct soft_timers *t) EMBER_MUST_CHECK;
/* The guest clock jumped (a resume, a restore): look at the deadlines again. */
void soft_timers_poke(struct soft_timers *t);
/* Ends the timer thread (waiting out a callback that runs); idempotent. */
void soft_timers_stop(struct soft_timers *t);
void soft_timers_destroy(struct soft_timers *t);

#endif

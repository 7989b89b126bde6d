/* Time for the emulated timers (LAPIC timer, 8254 PIT, the IOAPIC's storm
 * guard): a clock to read and a one-shot host timer to be woken by.
 *
 * The clock is the guest's: monotonic nanoseconds (it may stand still while
 * the VM is paused) and, for the TSC-deadline timer, the guest's TSC.
 *
 * Each device owns one timer. arm(deadline) replaces the previous deadline of
 * that timer; disarm() cancels it; a timer fires once per arm. Both are called with the device's lock
 * held, so they must only record the deadline and wake the timer thread,
 * never call back into a device. When the deadline has passed, the timer
 * thread calls the device's *_timer_expired(dev, now_ns) without holding any
 * lock that arm/disarm take (the device re-arms from inside that call).
 * Devices check the time themselves: an early, late, duplicate or stale
 * expiry call is harmless. */
#ifndef EMBER_DEVICES_VCLOCK_H
#define EMBER_DEVICES_VCLOCK_H

#include <stdint.h>

struct vclock_ops {
    uint64_t (*now_ns)(void *ctx);
    /* The guest's TSC now; NULL when the TSC is now_ns scaled by tsc_hz. */
    uint64_t (*now_tsc)(void *ctx);
};

struct vclock {
    const struct vclock_ops *ops;
    void *ctx;
    uint64_t tsc_hz; /* guest TSC frequency (TSC-deadline mode); 0: 1 GHz */
};

struct vtimer_ops {
    void (*arm)(void *ctx, uint64_t deadline_ns);
    void (*disarm)(void *ctx);
};

struct vtimer {
    const struct vtimer_ops *ops;
    void *ctx;
};

static inline uint64_t vclock_now_ns(const struct vclock *c)
{
    return c->ops && c->ops->now_ns ? c->ops->now_ns(c->ctx) : 0;
}

static inline uint64_t vclock_tsc_hz(const struct vclock *c)
{
    return c->tsc_hz ? c->tsc_hz : 1000000000ull;
}

static inline uint64_t vclock_now_tsc(const struct vclock *c)
{
    if (c->ops && c->ops->now_tsc)
        return c->ops->now_tsc(c->ctx);
    return (uint64_t)((unsigned __int128)vclock_now_ns(c) * vclock_tsc_hz(c) / 1000000000u);
}

static inline void vtimer_arm(const struct vtimer *t, uint64_t deadline_ns)
{
    if (t->ops && t->ops->arm)
        t->ops->arm(t->ctx, deadline_ns);
}

static inline void vtimer_disarm(const struct vtimer *t)
{
    if (t->ops && t->ops->disarm)
        t->ops->disarm(t->ctx);
}

#endif

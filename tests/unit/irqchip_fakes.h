/* Fakes for the interrupt controller and timer tests: a clock the test sets,
 * a timer that records its deadline, and byte/dword register helpers. */
#ifndef EMBER_TESTS_IRQCHIP_FAKES_H
#define EMBER_TESTS_IRQCHIP_FAKES_H

#include "unit.h"

#include <stdbool.h>

#include "bus/bus.h"
#include "devices/vclock.h"
#include "snapshot/record.h"
#include "util/util.h"

struct fake_clock {
    uint64_t ns;
    uint64_t tsc_offset; /* TSC = ns * tsc_hz / 1e9 + offset */
    uint64_t tsc_hz;
};

static uint64_t fake_clock_now_ns(void *ctx)
{
    return __atomic_load_n(&((struct fake_clock *)ctx)->ns, __ATOMIC_RELAXED);
}

static uint64_t fake_clock_now_tsc(void *ctx)
{
    struct fake_clock *c = ctx;
    uint64_t ns = __atomic_load_n(&c->ns, __ATOMIC_RELAXED);
    return (uint64_t)((unsigned __int128)ns * c->tsc_hz / 1000000000u) + c->tsc_offset;
}

static const struct vclock_ops fake_clock_ops = {fake_clock_now_ns, fake_clock_now_tsc};

static inline struct vclock fake_vclock(struct fake_clock *c, uint64_t tsc_hz)
{
    c->tsc_hz = tsc_hz;
    return (struct vclock){&fake_clock_ops, c, tsc_hz};
}

struct fake_timer {
    bool armed;
    uint64_t deadline;
    unsigned arms, disarms;
};

static void fake_timer_arm(void *ctx, uint64_t deadline)
{
    struct fake_timer *t = ctx;
    t->armed = true;
    t->deadline = deadline;
    t->arms++;
}

static void fake_timer_disarm(void *ctx)
{
    struct fake_timer *t = ctx;
    t->armed = false;
    t->disarms++;
}

static const struct vtimer_ops fake_timer_ops = {fake_timer_arm, fake_timer_disarm};

static inline struct vtimer fake_vtimer(struct fake_timer *t)
{
    memset(t, 0, sizeof(*t));
    return (struct vtimer){&fake_timer_ops, t};
}

static inline uint8_t io_rd8(const struct bus_ops *ops, void *dev, uint64_t off)
{
    uint8_t v;
    ops->read(dev, off, &v, 1);
    return v;
}

static inline void io_wr8(const struct bus_ops *ops, void *dev, uint64_t off, uint8_t v)
{
    ops->write(dev, off, &v, 1);
}

static inline uint32_t mmio_rd32(const struct bus_ops *ops, void *dev, uint64_t off)
{
    uint8_t b[4];
    ops->read(dev, off, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline void mmio_wr32(const struct bus_ops *ops, void *dev, uint64_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    ops->write(dev, off, b, 4);
}

/* Serialize and parse a record, as a snapshot file does. */
static inline struct rec rec_roundtrip(struct rec r)
{
    size_t len;
    const char *text = rec_text(r, &len);
    struct rec out;
    assert_int_equal(rec_parse(text, len, &out), 0);
    return out;
}

/* A small deterministic generator for the hostile tables. */
static inline uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

#endif

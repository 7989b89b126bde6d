/* The soft backend's timer thread: a device is woken once per arm when the
 * guest clock passes its deadline, not before; disarming cancels; a device
 * may re-arm from inside its expiry; the thread sleeps on the host clock as
 * the guest clock maps onto it (moved by a resume). */
#include "unit.h"

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "accel/soft_timer.h"

static uint64_t host_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The guest clock: host time minus an offset the test moves. */
static _Atomic uint64_t offset;

static uint64_t guest_now(void *ctx)
{
    (void)ctx;
    return host_now() - atomic_load(&offset);
}

static uint64_t host_at(void *ctx, uint64_t guest_ns)
{
    (void)ctx;
    return guest_ns + atomic_load(&offset);
}

static const struct vclock_ops clock_ops = {.now_ns = guest_now};
static const struct vclock guest_clock = {&clock_ops, NULL, 0};

struct fake_dev {
    _Atomic unsigned fired;
    _Atomic uint64_t fired_at;
    struct vtimer timer;
    uint64_t rearm_every; /* 0: once */
    unsigned rearms_left;
};

static void expired(void *dev, uint64_t now)
{
    struct fake_dev *d = dev;
    atomic_fetch_add(&d->fired, 1);
    atomic_store(&d->fired_at, now);
    if (d->rearm_every && d->rearms_left) {
        d->rearms_left--;
        vtimer_arm(&d->timer, now + d->rearm_every);
    }
}

static void wait_fired(struct fake_dev *d, unsigned n, unsigned max_ms)
{
    for (unsigned i = 0; i < max_ms && atomic_load(&d->fired) < n; i++)
        usleep(1000);
}

static void setup_timers(struct soft_timers *t, struct fake_dev *a, struct fake_dev *b)
{
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    atomic_store(&offset, host_now() - 1000000000ull); /* guest time starts at 1 s */
    assert_int_equal(soft_timers_init(t, &guest_clock, host_at, NULL), 0);
    assert_int_equal(soft_timers_add(t, expired, a, &a->timer), 0);
    assert_int_equal(soft_timers_add(t, expired, b, &b->timer), 0);
    assert_int_equal(soft_timers_start(t), 0);
}

static void test_fires_once_at_deadline(void **state)
{
    (void)state;
    struct soft_timers t;
    struct fake_dev a, b;
    setup_timers(&t, &a, &b);
    uint64_t deadline = guest_now(NULL) + 30000000ull; /* 30 ms */
    vtimer_arm(&a.timer, deadline);
    wait_fired(&a, 1, 2000);
    assert_int_equal(atomic_load(&a.fired), 1);
    assert_true(atomic_load(&a.fired_at) >= deadline);
    usleep(50000);
    assert_int_equal(atomic_load(&a.fired), 1); /* once per arm */
    assert_int_equal(atomic_load(&b.fired), 0);
    soft_timers_destroy(&t);
}

static void test_disarm_and_rearm_inside(void **state)
{
    (void)state;
    struct soft_timers t;
    struct fake_dev a, b;
    setup_timers(&t, &a, &b);
    vtimer_arm(&a.timer, guest_now(NULL) + 40000000ull);
    vtimer_disarm(&a.timer);
    b.rearm_every = 5000000ull; /* 5 ms, three more times */
    b.rearms_left = 3;
    vtimer_arm(&b.timer, guest_now(NULL) + 5000000ull);
    wait_fired(&b, 4, 3000);
    usleep(60000);
    assert_int_equal(atomic_load(&b.fired), 4);
    assert_int_equal(atomic_load(&a.fired), 0); /* disarmed before its time */
    /* A deadline already past fires at once. */
    vtimer_arm(&a.timer, 1);
    wait_fired(&a, 1, 2000);
    assert_int_equal(atomic_load(&a.fired), 1);
    soft_timers_destroy(&t);
}

static void test_guest_clock_jumps(void **state)
{
    (void)state;
    struct soft_timers t;
    struct fake_dev a, b;
    setup_timers(&t, &a, &b);
    /* Ten seconds of guest time away: the thread sleeps. */
    vtimer_arm(&a.timer, guest_now(NULL) + 10000000000ull);
    usleep(30000);
    assert_int_equal(atomic_load(&a.fired), 0);
    /* The guest clock moves forward past it (as a restore may): poked, the
     * thread looks again and fires. */
    atomic_fetch_sub(&offset, 11000000000ull);
    soft_timers_poke(&t);
    wait_fired(&a, 1, 2000);
    assert_int_equal(atomic_load(&a.fired), 1);
    soft_timers_destroy(&t);
}

static void test_limit(void **state)
{
    (void)state;
    struct soft_timers t;
    atomic_store(&offset, 0);
    assert_int_equal(soft_timers_init(&t, &guest_clock, host_at, NULL), 0);
    struct vtimer vt;
    struct fake_dev d;
    for (int i = 0; i < SOFT_MAX_TIMERS; i++)
        assert_int_equal(soft_timers_add(&t, expired, &d, &vt), 0);
    assert_int_equal(soft_timers_add(&t, expired, &d, &vt), -ENOSPC);
    soft_timers_destroy(&t); /* never started: nothing to join */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_once_at_deadline),
        cmocka_unit_test(test_disarm_and_rearm_inside),
        cmocka_unit_test(test_guest_clock_jumps),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests_name("soft_timer", tests, NULL, NULL);
}

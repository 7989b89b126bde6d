#include "accel/soft_timer.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/seccomp.h"
#include "util/thread.h"

static void arm(void *ctx, uint64_t deadline_ns)
{
    struct soft_timer *timer = ctx;
    struct soft_timers *t = timer->owner;
    pthread_mutex_lock(&t->lock);
    timer->deadline_ns = deadline_ns ? deadline_ns : 1; /* 0 means disarmed */
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void disarm(void *ctx)
{
    struct soft_timer *timer = ctx;
    pthread_mutex_lock(&timer->owner->lock);
    timer->deadline_ns = 0;
    pthread_mutex_unlock(&timer->owner->lock);
}

static const struct vtimer_ops soft_vtimer_ops = {.arm = arm, .disarm = disarm};

int soft_timers_init(struct soft_timers *t, const struct vclock *clock,
                     uint64_t (*host_ns_at)(void *ctx, uint64_t guest_ns), void *host_ctx)
{
    memset(t, 0, sizeof(*t));
    t->clock = clock;
    t->host_ns_at = host_ns_at;
    t->host_ctx = host_ctx;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ret = pthread_cond_init(&t->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (ret)
        return err_errno(-ret, "cannot create the timer thread's condition");
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

int soft_timers_add(struct soft_timers *t, void (*expired)(void *dev, uint64_t now_ns), void *dev,
                    struct vtimer *out)
{
    pthread_mutex_lock(&t->lock);
    int ret = t->nr_timers < SOFT_MAX_TIMERS ? 0 : -ENOSPC;
    if (!ret) {
        struct soft_timer *timer = &t->timers[t->nr_timers++];
        *timer = (struct soft_timer){t, 0, expired, dev};
        *out = (struct vtimer){&soft_vtimer_ops, timer};
    }
    pthread_mutex_unlock(&t->lock);
    return ret ? err_set(ret, "more than %d emulated timers", SOFT_MAX_TIMERS) : 0;
}

/* Lock held. The earliest deadline, or 0 if none is armed. */
static uint64_t earliest(const struct soft_timers *t)
{
    uint64_t first = 0;
    for (unsigned i = 0; i < t->nr_timers; i++) {
        uint64_t d = t->timers[i].deadline_ns;
        if (d && (!first || d < first))
            first = d;
    }
    return first;
}

static void *timer_thread(void *arg)
{
    struct soft_timers *t = arg;
    seccomp_enter_or_exit(SECCOMP_TIMER);
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        uint64_t now = vclock_now_ns(t->clock);
        unsigned due = 0;
        for (unsigned i = 0; i < t->nr_timers; i++) {
            struct soft_timer *timer = &t->timers[i];
            if (!timer->deadline_ns || timer->deadline_ns > now)
                continue;
            timer->deadline_ns = 0;
            due++;
            t->fired++;
            pthread_mutex_unlock(&t->lock);
            timer->expired(timer->dev, now);
            pthread_mutex_lock(&t->lock);
        }
        if (due)
            continue; /* expiry functions re-armed: look again */
        uint64_t next = earliest(t);
        if (!next) {
            pthread_cond_wait(&t->cond, &t->lock);
            continue;
        }
        uint64_t host = t->host_ns_at(t->host_ctx, next);
        struct timespec until = {(time_t)(host / 1000000000u), (long)(host % 1000000000u)};
        pthread_cond_timedwait(&t->cond, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int soft_timers_start(struct soft_timers *t)
{
    int ret = thread_create(&t->thread, timer_thread, t);
    if (ret)
        return err_errno(-ret, "cannot start the timer thread");
    pthread_setname_np(t->thread, "timers");
    t->running = true;
    return 0;
}

void soft_timers_poke(struct soft_timers *t)
{
    pthread_mutex_lock(&t->lock);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void soft_timers_stop(struct soft_timers *t)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    t->running = false;
}

void soft_timers_destroy(struct soft_timers *t)
{
    soft_timers_stop(t);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}

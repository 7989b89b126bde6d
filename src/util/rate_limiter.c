#include "util/rate_limiter.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull

uint64_t rate_limiter_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void token_bucket_init(struct token_bucket *b, const struct bucket_config *cfg, uint64_t now)
{
    memset(b, 0, sizeof(*b));
    if (!bucket_config_active(cfg))
        return;
    b->active = true;
    b->size = b->budget = cfg->size;
    b->one_time_burst = b->initial_burst = cfg->one_time_burst;
    b->refill_time_ms = cfg->refill_time_ms;
    b->last_ns = now;
    /* Tokens per ns as a reduced fraction, so refills stay exact. */
    uint64_t refill_ns = cfg->refill_time_ms * NS_PER_MS;
    uint64_t g = gcd(cfg->size, refill_ns);
    b->cap_unit = cfg->size / g;
    b->time_unit = refill_ns / g;
}

/* Bring the budget up to date: the tokens earned since last_ns, and last_ns
 * moved on by exactly the time they took (the remainder is kept). */
static void replenish_by_time(struct token_bucket *b, uint64_t now)
{
    uint64_t delta = now > b->last_ns ? now - b->last_ns : 0;
    if (delta >= b->refill_time_ms * NS_PER_MS) {
        b->budget = b->size;
        b->last_ns = now;
        return;
    }
    unsigned __int128 tokens = (unsigned __int128)delta * b->cap_unit / b->time_unit;
    unsigned __int128 spent = tokens * b->time_unit;
    uint64_t adjust = (uint64_t)(spent / b->cap_unit) + (spent % b->cap_unit != 0);
    b->last_ns += adjust;
    uint64_t t = (uint64_t)tokens;
    b->budget = b->budget + t > b->size || b->budget + t < b->budget ? b->size : b->budget + t;
}

/* How long until 'missing' tokens are earned, in ms rounded up, so a
 * throttled device wakes when it can go on. */
static uint64_t earn_ms(const struct token_bucket *b, uint64_t missing)
{
    unsigned __int128 ns = (unsigned __int128)missing * b->time_unit;
    ns = (ns + b->cap_unit - 1) / b->cap_unit;
    ns = (ns + NS_PER_MS - 1) / NS_PER_MS;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

int token_bucket_reduce(struct token_bucket *b, uint64_t tokens, uint64_t now, uint64_t *owed_ms)
{
    /* Always brought up to date: a budget taken long after the last refill
     * must not be refilled again later for the time before it. */
    replenish_by_time(b, now);
    uint64_t from_burst = tokens < b->one_time_burst ? tokens : b->one_time_burst;
    uint64_t rest = tokens - from_burst;
    if (rest > b->budget && rest <= b->size) {
        *owed_ms = earn_ms(b, rest - b->budget);
        return 0; /* nothing taken, the burst included */
    }
    b->one_time_burst -= from_burst;
    if (rest > b->budget) {
        /* Bigger than the whole bucket: let it through and owe the rest,
         * paid back by blocking for as long as it takes to earn it. */
        *owed_ms = earn_ms(b, rest - b->budget);
        b->budget = 0;
        return -1;
    }
    b->budget -= rest;
    return 1;
}

void token_bucket_replenish(struct token_bucket *b, uint64_t tokens)
{
    if (b->one_time_burst) {
        uint64_t n = b->one_time_burst + tokens;
        b->one_time_burst = n > b->initial_burst || n < tokens ? b->initial_burst : n;
        return;
    }
    uint64_t n = b->budget + tokens;
    b->budget = n > b->size || n < tokens ? b->size : n;
}

static void on_timer(void *ctx, uint32_t events)
{
    struct rate_limiter *rl = ctx;
    uint64_t expirations;
    (void)events;
    if (read(rl->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
        return; /* spurious */
    /* The device takes its lock, then calls rate_limiter_timer_done(). */
    rl->unblocked(rl->ctx);
}

static int ensure_timer(struct rate_limiter *rl)
{
    if (rl->timer_fd >= 0)
        return 0;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "rate limiter: timerfd_create");
    int ret = evloop_add(rl->loop, fd, EPOLLIN, on_timer, rl);
    if (ret) {
        close(fd);
        return ret;
    }
    rl->timer_fd = fd;
    return 0;
}

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limit_config *cfg,
                      struct evloop *loop, void (*unblocked)(void *ctx), void *ctx)
{
    memset(rl, 0, sizeof(*rl));
    rl->timer_fd = -1;
    rl->loop = loop;
    rl->unblocked = unblocked;
    rl->ctx = ctx;
    rl->clock = rate_limiter_now_ns;
    uint64_t now = rl->clock();
    token_bucket_init(&rl->bandwidth, &cfg->bandwidth, now);
    token_bucket_init(&rl->ops, &cfg->ops, now);
    return rate_limiter_active(rl) ? ensure_timer(rl) : 0;
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
    if (rl->timer_fd >= 0) {
        evloop_remove(rl->loop, rl->timer_fd);
        close(rl->timer_fd);
        rl->timer_fd = -1;
    }
}

void rate_limit_config_merge(struct rate_limit_config *cfg,
                             const struct rate_limit_config *update)
{
    if (update->bandwidth_set)
        cfg->bandwidth = update->bandwidth;
    if (update->ops_set)
        cfg->ops = update->ops;
    cfg->bandwidth_set |= update->bandwidth_set;
    cfg->ops_set |= update->ops_set;
}

bool rate_limiter_active(const struct rate_limiter *rl)
{
    return rl->bandwidth.active || rl->ops.active;
}

static void block_for(struct rate_limiter *rl, uint64_t ms)
{
    struct itimerspec t = {{0, 0}, {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L}};
    if (!ms)
        t.it_value.tv_nsec = 1000000L; /* 0 would disarm it */
    if (rl->timer_fd >= 0 && timerfd_settime(rl->timer_fd, 0, &t, NULL) == 0)
        rl->blocked = true;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t tokens, enum rate_kind kind)
{
    if (rl->blocked) {
        rl->throttled++;
        return false;
    }
    struct token_bucket *b = kind == RATE_BYTES ? &rl->bandwidth : &rl->ops;
    if (!b->active)
        return true;
    uint64_t owed_ms = 0;
    switch (token_bucket_reduce(b, tokens, rl->clock(), &owed_ms)) {
    case 1:
        return true;
    case -1:
        block_for(rl, owed_ms);
        return true;
    default:
        block_for(rl, owed_ms);
        rl->throttled++;
        return false;
    }
}

void rate_limiter_replenish(struct rate_limiter *rl, uint64_t tokens, enum rate_kind kind)
{
    struct token_bucket *b = kind == RATE_BYTES ? &rl->bandwidth : &rl->ops;
    if (b->active)
        token_bucket_replenish(b, tokens);
}

void rate_limiter_timer_done(struct rate_limiter *rl)
{
    rl->blocked = false;
    rl->events++;
}

int rate_limiter_update(struct rate_limiter *rl, const struct rate_limit_config *update)
{
    uint64_t now = rl->clock();
    if (update->bandwidth_set)
        token_bucket_init(&rl->bandwidth, &update->bandwidth, now);
    if (update->ops_set)
        token_bucket_init(&rl->ops, &update->ops, now);
    if (rl->blocked) {
        /* Whatever waited is looked at again under the new limits. */
        block_for(rl, 0);
    }
    return rate_limiter_active(rl) ? ensure_timer(rl) : 0;
}

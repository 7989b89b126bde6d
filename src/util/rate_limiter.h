/* Firecracker's rate limiter: two token buckets, one of bytes and one of
 * operations. A bucket holds 'size' tokens, refilled continuously so that an
 * empty one is full again after 'refill_time_ms'; an extra 'one_time_burst'
 * is spent first and never refilled. A device asks for tokens before it
 * does the work; when a bucket cannot give them the limiter blocks until
 * the bucket has earned what was asked (Firecracker waits a fixed 100 ms,
 * which undershoots small buckets), or for the time a request bigger than
 * the bucket needs to be paid back, and then calls the device back on the
 * event loop: the guest is throttled, never failed. Used under the
 * device's lock, from whichever thread runs its queues. */
#ifndef EMBER_UTIL_RATE_LIMITER_H
#define EMBER_UTIL_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/evloop.h"

/* A bucket as configured (the API's TokenBucket). Size or refill time 0:
 * no limit. */
struct bucket_config {
    uint64_t size;
    uint64_t one_time_burst;
    uint64_t refill_time_ms;
};

/* A device's limiter as configured (the API's RateLimiter). For an update,
 * only the buckets whose *_set flag is true change. */
struct rate_limit_config {
    struct bucket_config bandwidth, ops;
    bool bandwidth_set, ops_set;
};

static inline bool bucket_config_active(const struct bucket_config *b)
{
    return b->size && b->refill_time_ms;
}

static inline bool rate_limit_active(const struct rate_limit_config *r)
{
    return bucket_config_active(&r->bandwidth) || bucket_config_active(&r->ops);
}

struct token_bucket {
    bool active;
    uint64_t size, one_time_burst, initial_burst, refill_time_ms;
    uint64_t budget;
    uint64_t last_ns;              /* when the budget was last brought up to date */
    uint64_t cap_unit, time_unit;  /* size and refill ns divided by their gcd */
};

enum rate_kind { RATE_BYTES, RATE_OPS };

struct rate_limiter {
    struct token_bucket bandwidth, ops;
    bool blocked;            /* waiting for the timer: every consume fails */
    int timer_fd;            /* -1 until a bucket is active */
    struct evloop *loop;
    void (*unblocked)(void *ctx); /* the timer fired: try again */
    void *ctx;
    uint64_t throttled;      /* consumes refused (the metrics' ..._throttled) */
    uint64_t events;         /* timer expirations (..._event_count) */
    uint64_t (*clock)(void); /* monotonic ns; unit tests put a fake one here */
};

void token_bucket_init(struct token_bucket *b, const struct bucket_config *cfg, uint64_t now_ns);
/* Take 'tokens' at 'now_ns': 1 taken; 0 not enough (nothing taken; *owed_ms
 * says when there will be); or -1 taken beyond the bucket's size (the
 * budget is 0 and the bucket owes the rest; *owed_ms says how long it takes
 * to pay back). */
int token_bucket_reduce(struct token_bucket *b, uint64_t tokens, uint64_t now_ns,
                        uint64_t *owed_ms);
void token_bucket_replenish(struct token_bucket *b, uint64_t tokens);

/* 'unblocked' runs on 'loop' after a block; none of it is needed (and no
 * timer is made) while no bucket is active. */
int rate_limiter_init(struct rate_limiter *rl, const struct rate_limit_config *cfg,
                      struct evloop *loop, void (*unblocked)(void *ctx), void *ctx)
    EMBER_MUST_CHECK;
void rate_limiter_destroy(struct rate_limiter *rl);
/* Ask for tokens of one kind; false: not now (the limiter is blocked and
 * will call 'unblocked'). Always true without an active bucket of that kind. */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t tokens, enum rate_kind kind);
/* The device's 'unblocked' callback calls this under its lock, then tries
 * its work again. */
void rate_limiter_timer_done(struct rate_limiter *rl);
/* Give back tokens taken for work that did not happen (the other bucket
 * refused). */
void rate_limiter_replenish(struct rate_limiter *rl, uint64_t tokens, enum rate_kind kind);
/* The buckets the update names are replaced (size 0: removed), as
 * Firecracker's PATCH does; a block in progress ends. */
int rate_limiter_update(struct rate_limiter *rl, const struct rate_limit_config *update)
    EMBER_MUST_CHECK;
bool rate_limiter_active(const struct rate_limiter *rl);
/* What a configuration becomes after an update: the buckets it names. */
void rate_limit_config_merge(struct rate_limit_config *cfg,
                             const struct rate_limit_config *update);
/* The monotonic clock the limiter uses unless told otherwise. */
uint64_t rate_limiter_now_ns(void);

#endif

/* Token buckets and the rate limiter against a fake clock: refill,
 * one-time burst, zero sizes (no limit), requests bigger than the bucket,
 * huge values without overflow, updates, and the timer that unblocks. */
#include "unit.h"

#include "util/evloop.h"
#include "util/rate_limiter.h"

#define MS 1000000ull

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
    struct bucket_config cfg = {.size = size, .one_time_burst = burst,
                                .refill_time_ms = refill_ms};
    struct token_bucket b;
    token_bucket_init(&b, &cfg, 0);
    return b;
}

static void test_refill(void **state)
{
    (void)state;
    uint64_t owed = 0;
    struct token_bucket b = bucket(1000, 0, 100); /* 10 tokens per ms */
    assert_true(b.active);
    assert_int_equal(token_bucket_reduce(&b, 1000, 0, &owed), 1);
    assert_int_equal(token_bucket_reduce(&b, 1, 0, &owed), 0);      /* empty */
    assert_int_equal(token_bucket_reduce(&b, 100, 9 * MS, &owed), 0); /* 90 earned */
    assert_int_equal(token_bucket_reduce(&b, 100, 10 * MS, &owed), 1); /* 100 */
    assert_int_equal(b.budget, 0);
    /* Refill never goes above the size. */
    assert_int_equal(token_bucket_reduce(&b, 1, 10 * 1000 * MS, &owed), 1);
    assert_int_equal(b.budget, 999);
    /* A refusal says when the missing tokens will be there (rounded up). */
    struct token_bucket w = bucket(1000, 0, 1000);
    assert_int_equal(token_bucket_reduce(&w, 1000, 0, &owed), 1);
    assert_int_equal(token_bucket_reduce(&w, 500, 0, &owed), 0);
    assert_int_equal(owed, 500);
    assert_int_equal(token_bucket_reduce(&w, 500, 499 * MS + 1, &owed), 0);
    assert_int_equal(owed, 1);
    /* Fractions are kept: 1 token per 3 ms, 3 calls 1 ms apart give one. */
    struct token_bucket slow = bucket(1, 0, 3);
    assert_int_equal(token_bucket_reduce(&slow, 1, 0, &owed), 1);
    assert_int_equal(token_bucket_reduce(&slow, 1, 1 * MS, &owed), 0);
    assert_int_equal(token_bucket_reduce(&slow, 1, 2 * MS, &owed), 0);
    assert_int_equal(token_bucket_reduce(&slow, 1, 3 * MS, &owed), 1);
}

static void test_burst(void **state)
{
    (void)state;
    uint64_t owed = 0;
    struct token_bucket b = bucket(100, 500, 1000);
    assert_int_equal(token_bucket_reduce(&b, 400, 0, &owed), 1); /* from the burst */
    assert_int_equal(b.budget, 100);
    assert_int_equal(token_bucket_reduce(&b, 150, 0, &owed), 1); /* 100 burst + 50 */
    assert_int_equal(b.one_time_burst, 0);
    assert_int_equal(b.budget, 50);
    assert_int_equal(token_bucket_reduce(&b, 60, 0, &owed), 0);
    /* Given back: into the burst while it lasts, never above it. */
    struct token_bucket c = bucket(100, 500, 1000);
    assert_int_equal(token_bucket_reduce(&c, 10, 0, &owed), 1);
    token_bucket_replenish(&c, 1000);
    assert_int_equal(c.one_time_burst, 500);
}

static void test_zero_is_unlimited(void **state)
{
    (void)state;
    assert_false(bucket(0, 0, 100).active);
    assert_false(bucket(100, 0, 0).active);
    assert_false(bucket(0, 1000, 0).active);
    struct rate_limit_config cfg = {.bandwidth = {.size = 0, .refill_time_ms = 100}};
    struct rate_limiter rl;
    assert_int_equal(rate_limiter_init(&rl, &cfg, NULL, NULL, NULL), 0);
    assert_false(rate_limiter_active(&rl));
    assert_int_equal(rl.timer_fd, -1); /* no timer without a limit */
    assert_true(rate_limiter_consume(&rl, UINT64_MAX, RATE_BYTES));
    assert_true(rate_limiter_consume(&rl, UINT64_MAX, RATE_OPS));
    rate_limiter_destroy(&rl);
}

static void test_huge_values(void **state)
{
    (void)state;
    uint64_t owed = 0;
    /* The API's largest: 2^50 tokens, 2^32 ms. */
    struct token_bucket b = bucket(1ull << 50, 1ull << 50, 1ull << 32);
    assert_int_equal(token_bucket_reduce(&b, 1ull << 51, 0, &owed), 1);
    assert_int_equal(b.budget, 0);
    assert_int_equal(token_bucket_reduce(&b, 1ull << 40, UINT64_MAX / 2, &owed), 1);
    token_bucket_replenish(&b, UINT64_MAX); /* saturates at the size */
    assert_true(b.budget == 1ull << 50);
    /* Bigger than the bucket: taken, owed, and the time to pay it back. */
    struct token_bucket c = bucket(1000, 0, 1000);
    assert_int_equal(token_bucket_reduce(&c, 3000, 0, &owed), -1);
    assert_int_equal(c.budget, 0);
    assert_int_equal(owed, 2000);
    struct token_bucket d = bucket(1, 0, 1ull << 32);
    assert_int_equal(token_bucket_reduce(&d, UINT64_MAX, 0, &owed), -1);
    assert_true(owed == UINT64_MAX); /* saturates instead of wrapping to a short wait */
    /* A clock going backwards earns nothing. */
    struct token_bucket e = bucket(100, 0, 100);
    assert_int_equal(token_bucket_reduce(&e, 100, 0, &owed), 1);
    assert_int_equal(token_bucket_reduce(&e, 1, 50 * MS, &owed), 1); /* 50 earned */
    assert_int_equal(token_bucket_reduce(&e, 50, 10 * MS, &owed), 0);
    assert_int_equal(e.budget, 49);
}

static int unblocked_calls;

static void on_unblocked(void *ctx)
{
    struct rate_limiter *rl = ctx;
    unblocked_calls++;
    rate_limiter_timer_done(rl);
}

static void test_limiter_throttles_and_resumes(void **state)
{
    (void)state;
    struct evloop loop;
    assert_int_equal(evloop_init(&loop), 0);
    struct rate_limiter rl;
    struct rate_limit_config cfg = {.bandwidth = {.size = 4096, .refill_time_ms = 10},
                                    .ops = {.size = 2, .refill_time_ms = 10}};
    assert_int_equal(rate_limiter_init(&rl, &cfg, &loop, on_unblocked, &rl), 0);
    rl.clock = fake_clock;
    fake_now = 0;
    token_bucket_init(&rl.bandwidth, &cfg.bandwidth, 0);
    token_bucket_init(&rl.ops, &cfg.ops, 0);
    assert_true(rate_limiter_consume(&rl, 4096, RATE_BYTES));
    assert_false(rate_limiter_consume(&rl, 1, RATE_BYTES));
    assert_true(rl.blocked);
    assert_int_equal(rl.throttled, 1);
    /* While blocked every kind is refused, even with tokens. */
    assert_false(rate_limiter_consume(&rl, 1, RATE_OPS));
    assert_int_equal(rl.throttled, 2);
    /* The timer fires on the loop and the device tries again. */
    fake_now = 100 * MS;
    for (int i = 0; i < 50 && !unblocked_calls; i++)
        assert_true(evloop_run_once(&loop, 20) >= 0);
    assert_int_equal(unblocked_calls, 1);
    assert_false(rl.blocked);
    assert_int_equal(rl.events, 1);
    assert_true(rate_limiter_consume(&rl, 4096, RATE_BYTES));
    /* An update ends the block at once and replaces the named bucket only. */
    assert_false(rate_limiter_consume(&rl, 1, RATE_BYTES));
    struct rate_limit_config upd = {.bandwidth = {0}, .bandwidth_set = true};
    assert_int_equal(rate_limiter_update(&rl, &upd), 0);
    assert_false(rl.bandwidth.active);
    assert_true(rl.ops.active);
    for (int i = 0; i < 50 && unblocked_calls < 2; i++)
        assert_true(evloop_run_once(&loop, 20) >= 0);
    assert_int_equal(unblocked_calls, 2);
    assert_true(rate_limiter_consume(&rl, UINT64_MAX, RATE_BYTES));
    rate_limiter_destroy(&rl);
    evloop_destroy(&loop);
}

static void test_merge(void **state)
{
    (void)state;
    struct rate_limit_config cfg = {.bandwidth = {.size = 1, .refill_time_ms = 1},
                                    .ops = {.size = 2, .refill_time_ms = 2}};
    struct rate_limit_config upd = {.ops = {.size = 9, .refill_time_ms = 9}, .ops_set = true};
    rate_limit_config_merge(&cfg, &upd);
    assert_int_equal(cfg.bandwidth.size, 1);
    assert_int_equal(cfg.ops.size, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_zero_is_unlimited),
        cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_limiter_throttles_and_resumes),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests_name("rate_limiter", tests, NULL, NULL);
}

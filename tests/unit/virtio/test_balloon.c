/* virtio-balloon against fake rings in real anonymous guest memory (so the
 * discarded pages are really given back): features, the queue numbering
 * drivers use, inflate/deflate, free page reporting, statistics lent and
 * returned, the target and 'actual' in config space, snapshots, and hostile
 * page numbers, ranges and records. */
#include "fakes.h"

#include "rec_copy.h"

#include <json-c/json.h>
#include "util/util.h"
#include "virtio/balloon.h"

#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define MEM_SIZE (16ull << 20)
#define QSIZE 64
#define PAGE 4096ull
#define DATA 0x100000ull /* buffers from here; rings below */

struct ring {
    uint64_t desc, avail, used;
    uint16_t avail_idx;
};

static unsigned irqs, config_irqs;
static void t_queue(struct virtio_dev *v, unsigned q) { (void)v; (void)q; irqs++; }
static void t_config(struct virtio_dev *v) { (void)v; config_irqs++; }
static const struct virtio_transport_ops t_ops = {.notify_queue = t_queue, .notify_config = t_config};

struct fixture {
    struct guest_mem gm;
    uint8_t *mem;
    struct virtio_balloon b;
    struct ring rings[5];
};

static uint64_t all_features(void)
{
    return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ) |
           (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | (1ull << VIRTIO_BALLOON_F_REPORTING) |
           (1ull << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
}

static struct fixture *setup_with(const struct balloon_config *cfg, uint64_t features)
{
    struct fixture *x = calloc(1, sizeof(*x));
    assert_int_equal(gm_create_anon(&x->gm, MEM_SIZE, 1ull << 32), 0);
    x->mem = x->gm.regions[0].hva;
    assert_int_equal(virtio_balloon_init(&x->b, &x->gm, cfg, NULL), 0);
    struct virtio_dev *vdev = &x->b.vdev;
    vdev->transport = &t_ops;
    for (int i = 0; i < 5; i++) {
        x->rings[i] = (struct ring){0x1000 + 0x3000ull * i, 0x2000 + 0x3000ull * i,
                                    0x3000 + 0x3000ull * i, 0};
        struct virtq *q = &vdev->queues[i];
        q->size = QSIZE;
        q->desc_gpa = x->rings[i].desc;
        q->avail_gpa = x->rings[i].avail;
        q->used_gpa = x->rings[i].used;
        q->ready = true;
    }
    vdev->driver_features = features & (vdev->ops->features(vdev) | 1ull << VIRTIO_F_VERSION_1);
    virtio_dev_set_status(vdev, 0x0f);
    assert_true(virtio_dev_running(vdev));
    irqs = config_irqs = 0;
    return x;
}

static struct fixture *setup(void)
{
    struct balloon_config cfg = {true, 0, true, 5, true, false};
    return setup_with(&cfg, all_features());
}

static void teardown_fixture(struct fixture *x)
{
    virtio_balloon_cleanup(&x->b);
    gm_destroy(&x->gm);
    free(x);
}

static void desc(struct fixture *x, unsigned qi, uint16_t i, uint64_t addr, uint32_t len,
                 uint16_t flags, uint16_t next)
{
    uint8_t *d = x->mem + x->rings[qi].desc + 16u * i;
    le64_store(d, addr);
    le32_store(d + 8, len);
    le16_store(d + 12, flags);
    le16_store(d + 14, next);
}

static void publish(struct fixture *x, unsigned qi, uint16_t head)
{
    struct ring *r = &x->rings[qi];
    le16_store(x->mem + r->avail + 4 + 2u * (r->avail_idx % QSIZE), head);
    r->avail_idx++;
    le16_store(x->mem + r->avail + 2, r->avail_idx);
    pthread_mutex_lock(&x->b.vdev.lock);
    x->b.vdev.ops->queue_notify(&x->b.vdev, qi);
    pthread_mutex_unlock(&x->b.vdev.lock);
}

static uint16_t used_idx(struct fixture *x, unsigned qi)
{
    return le16_load(x->mem + x->rings[qi].used + 2);
}

static void fill_pages(struct fixture *x, uint64_t first, unsigned n, uint8_t byte)
{
    memset(x->mem + first * PAGE, byte, n * PAGE);
}

static bool page_is(struct fixture *x, uint64_t pfn, uint8_t byte)
{
    for (uint64_t i = 0; i < PAGE; i++)
        if (x->mem[pfn * PAGE + i] != byte)
            return false;
    return true;
}

static void put_pfns(struct fixture *x, uint64_t at, const uint32_t *pfns, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        le32_store(x->mem + at + 4u * i, pfns[i]);
}

static void test_features_and_queue_numbering(void **state)
{
    (void)state;
    struct balloon_config none = {true, 0, false, 0, false, false};
    struct fixture *x = setup_with(&none, all_features());
    assert_int_equal(x->b.vdev.ops->features(&x->b.vdev), 0);
    assert_int_equal(x->b.roles[2], BQ_NONE);
    /* A notify of a queue without a use is ignored. */
    publish(x, 2, 0);
    assert_int_equal(used_idx(x, 2), 0);
    teardown_fixture(x);

    struct balloon_config rep = {true, 0, false, 0, true, false};
    x = setup_with(&rep, all_features());
    assert_int_equal(x->b.roles[2], BQ_REPORTING); /* no statistics: reporting is queue 2 */
    teardown_fixture(x);

    x = setup();
    assert_int_equal(x->b.vdev.ops->features(&x->b.vdev),
                     (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
                         (1ull << VIRTIO_BALLOON_F_REPORTING));
    assert_int_equal(x->b.roles[2], BQ_STATS);
    assert_int_equal(x->b.roles[3], BQ_REPORTING);
    teardown_fixture(x);
}

static void test_inflate_discards_pages(void **state)
{
    (void)state;
    struct fixture *x = setup();
    fill_pages(x, 1024, 8, 0xaa);
    /* Two runs, one page outside guest RAM, one page twice. */
    uint32_t pfns[] = {1024, 1025, 1026, 1030, 0xfffff, 1030};
    put_pfns(x, DATA, pfns, ARRAY_SIZE(pfns));
    desc(x, 0, 0, DATA, sizeof(pfns), 0, 0);
    publish(x, 0, 0);
    assert_int_equal(used_idx(x, 0), 1);
    assert_int_equal(irqs, 1);
    assert_true(page_is(x, 1024, 0) && page_is(x, 1025, 0) && page_is(x, 1026, 0));
    assert_true(page_is(x, 1027, 0xaa) && page_is(x, 1029, 0xaa) && page_is(x, 1031, 0xaa));
    assert_true(page_is(x, 1030, 0));
    assert_int_equal(x->b.inflated, 6);
    assert_int_equal(x->b.discard_fails, 1);

    /* Deflate: counted, nothing touched. */
    fill_pages(x, 1024, 1, 0x55);
    put_pfns(x, DATA, pfns, 2);
    desc(x, 1, 0, DATA, 8, 0, 0);
    publish(x, 1, 0);
    assert_int_equal(used_idx(x, 1), 1);
    assert_int_equal(x->b.deflated, 2);
    assert_true(page_is(x, 1024, 0x55));
    teardown_fixture(x);
}

static void test_inflate_bounded_per_chain(void **state)
{
    (void)state;
    struct fixture *x = setup();
    /* 4096 page numbers in one chain: only the first 1024 are taken. */
    uint32_t *pfns = calloc(4096, sizeof(uint32_t));
    for (unsigned i = 0; i < 4096; i++)
        pfns[i] = 512 + i;
    put_pfns(x, DATA, pfns, 4096);
    free(pfns);
    fill_pages(x, 512 + 1024, 1, 0xaa);
    desc(x, 0, 0, DATA, 4096 * 4, 0, 0);
    publish(x, 0, 0);
    assert_int_equal(x->b.inflated, 1024);
    assert_true(page_is(x, 512 + 1024, 0xaa));
    teardown_fixture(x);
}

static void test_free_page_reporting(void **state)
{
    (void)state;
    struct fixture *x = setup();
    fill_pages(x, 2048, 16, 0xaa);
    /* Three whole pages; a range with no whole page in it. */
    desc(x, 3, 0, 2048 * PAGE, 3 * PAGE, WR | NEXT, 1);
    desc(x, 3, 1, 2056 * PAGE + 0x800, PAGE, WR, 0);
    publish(x, 3, 0);
    assert_int_equal(used_idx(x, 3), 1);
    assert_true(page_is(x, 2048, 0) && page_is(x, 2050, 0));
    assert_true(page_is(x, 2051, 0xaa) && page_is(x, 2056, 0xaa) && page_is(x, 2057, 0xaa));
    assert_int_equal(x->b.reported_bytes, 3 * PAGE);
    assert_int_equal(x->b.reports, 1);
    /* Ranges outside guest RAM, or wrapping: the ring is broken, nothing discarded. */
    static const uint64_t bad[] = {UINT64_MAX - 0x10, MEM_SIZE + 0x10000};
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        desc(x, 3, 2, 2058 * PAGE, PAGE, WR | NEXT, 3);
        desc(x, 3, 3, bad[i], 2 * PAGE, WR, 0);
        publish(x, 3, 2);
        assert_true(x->b.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
        assert_true(page_is(x, 2058, 0xaa));
        virtio_dev_reset(&x->b.vdev);
        teardown_fixture(x);
        x = setup();
        fill_pages(x, 2058, 1, 0xaa);
    }
    teardown_fixture(x);
}

static uint32_t config_cmd(struct fixture *x)
{
    uint8_t v[4];
    x->b.vdev.ops->config_read(&x->b.vdev, 8, v, 4);
    return le32_load(v);
}

/* The driver sends a command id: a readable 4-byte buffer. */
static void send_cmd(struct fixture *x, unsigned qi, uint16_t i, uint32_t cmd)
{
    le32_store(x->mem + DATA + 64u * i, cmd);
    desc(x, qi, i, DATA + 64u * i, 4, 0, 0);
    publish(x, qi, i);
}

/* Free page hinting: blocks are discarded only while they belong to the
 * host's current run; STOP from the driver ends it (DONE, with
 * acknowledge_on_stop); commands of the wrong size are ignored. */
static void test_free_page_hinting(void **state)
{
    (void)state;
    struct balloon_config cfg = {true, 0, false, 0, false, true};
    struct fixture *x = setup_with(&cfg, all_features());
    const unsigned hq = 2; /* no statistics queue: hinting is the third */
    assert_true(x->b.vdev.ops->features(&x->b.vdev) & (1ull << VIRTIO_BALLOON_F_FREE_PAGE_HINT));
    assert_int_equal(x->b.roles[hq], BQ_HINTING);
    assert_int_equal(config_cmd(x), BALLOON_HINT_CMD_STOP);
    fill_pages(x, 2048, 16, 0xaa);
    /* Before any run: a block is not discarded. */
    send_cmd(x, hq, 0, 2);
    desc(x, hq, 1, 2048 * PAGE, 2 * PAGE, WR, 0);
    publish(x, hq, 1);
    assert_true(page_is(x, 2048, 0xaa));
    virtio_balloon_start_hinting(&x->b, true);
    assert_int_equal(config_cmd(x), 2);
    assert_int_equal(config_irqs, 1);
    /* The run's id, then blocks: whole pages go. */
    send_cmd(x, hq, 2, 2);
    desc(x, hq, 3, 2048 * PAGE, 3 * PAGE + 0x800, WR, 0);
    publish(x, hq, 3);
    assert_true(page_is(x, 2048, 0) && page_is(x, 2050, 0) && page_is(x, 2051, 0xaa));
    assert_int_equal(x->b.hinting.hinted_bytes, 3 * PAGE);
    /* A stale run's id: its blocks are left alone. */
    send_cmd(x, hq, 4, 7);
    desc(x, hq, 5, 2052 * PAGE, PAGE, WR, 0);
    publish(x, hq, 5);
    assert_true(page_is(x, 2052, 0xaa));
    /* A command of the wrong size is ignored. */
    desc(x, hq, 6, DATA, 3, 0, 0);
    publish(x, hq, 6);
    struct balloon_hinting st;
    virtio_balloon_hinting_status(&x->b, &st);
    assert_true(st.has_guest_cmd);
    assert_int_equal(st.guest_cmd, 7);
    /* STOP from the driver: acknowledged with DONE. */
    send_cmd(x, hq, 7, BALLOON_HINT_CMD_STOP);
    assert_int_equal(config_cmd(x), BALLOON_HINT_CMD_DONE);
    assert_int_equal(config_irqs, 2);
    /* After DONE the guest uses its pages again: nothing is discarded. */
    send_cmd(x, hq, 8, 2);
    desc(x, hq, 9, 2053 * PAGE, PAGE, WR, 0);
    publish(x, hq, 9);
    assert_true(page_is(x, 2053, 0xaa));
    assert_int_equal(used_idx(x, hq), 10);
    /* The next run has a new id; stop says DONE without waiting. */
    virtio_balloon_start_hinting(&x->b, false);
    assert_int_equal(config_cmd(x), 3);
    send_cmd(x, hq, 10, BALLOON_HINT_CMD_STOP);
    assert_int_equal(config_cmd(x), 3); /* not acknowledged */
    virtio_balloon_stop_hinting(&x->b);
    assert_int_equal(config_cmd(x), BALLOON_HINT_CMD_DONE);
    /* Snapshots: the run's state comes back; a snapshot without it is refused. */
    struct virtio_dev *vdev = &x->b.vdev;
    struct rec r = rec_new();
    vdev->ops->save(vdev, r);
    r = rec_copy(r);
    x->b.hinting = (struct balloon_hinting){0};
    assert_int_equal(vdev->ops->load(vdev, r), 0);
    assert_int_equal(x->b.hinting.last_run, 3);
    assert_int_equal(x->b.hinting.host_cmd, BALLOON_HINT_CMD_DONE);
    json_object_object_del(r.obj, "hinting");
    assert_int_equal(vdev->ops->load(vdev, r), -EINVAL);
    rec_free(r);
    teardown_fixture(x);
}

static void put_stat(struct fixture *x, uint64_t at, uint16_t tag, uint64_t value)
{
    le16_store(x->mem + at, tag);
    le64_store(x->mem + at + 2, value);
}

static void test_statistics_lent_and_returned(void **state)
{
    (void)state;
    struct fixture *x = setup();
    put_stat(x, DATA, 4, 123 << 12);
    put_stat(x, DATA + 10, 5, 456 << 12);
    put_stat(x, DATA + 20, 99, 7); /* unknown tag: ignored */
    desc(x, 2, 0, DATA, 30, 0, 0);
    publish(x, 2, 0);
    assert_int_equal(used_idx(x, 2), 0); /* held until new figures are wanted */
    struct balloon_stats st;
    virtio_balloon_get_stats(&x->b, &st);
    assert_int_equal(st.present, (1u << 4) | (1u << 5));
    assert_int_equal(st.value[4], 123 << 12);
    assert_int_equal(st.value[5], 456 << 12);
    virtio_balloon_request_stats(&x->b);
    assert_int_equal(used_idx(x, 2), 1);
    assert_int_equal(irqs, 1);
    virtio_balloon_request_stats(&x->b); /* nothing lent: nothing to return */
    assert_int_equal(used_idx(x, 2), 1);
    /* Statistics cannot be turned off or on after the start. */
    assert_int_equal(virtio_balloon_set_stats_interval(&x->b, 0), -EINVAL);
    assert_int_equal(virtio_balloon_set_stats_interval(&x->b, 10), 0);
    teardown_fixture(x);
}

static void test_statistics_before_driver_ok(void **state)
{
    (void)state;
    struct balloon_config cfg = {true, 0, false, 5, false, false};
    struct fixture *x = calloc(1, sizeof(*x));
    assert_int_equal(gm_create_anon(&x->gm, MEM_SIZE, 1ull << 32), 0);
    x->mem = x->gm.regions[0].hva;
    assert_int_equal(virtio_balloon_init(&x->b, &x->gm, &cfg, NULL), 0);
    struct virtio_dev *vdev = &x->b.vdev;
    vdev->transport = &t_ops;
    for (int i = 0; i < 3; i++) {
        x->rings[i] = (struct ring){0x1000 + 0x3000ull * i, 0x2000 + 0x3000ull * i,
                                    0x3000 + 0x3000ull * i, 0};
        vdev->queues[i] = (struct virtq){.size = QSIZE, .desc_gpa = x->rings[i].desc,
                                         .avail_gpa = x->rings[i].avail,
                                         .used_gpa = x->rings[i].used, .ready = true};
    }
    vdev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ);
    virtio_dev_set_status(vdev, 0x0b); /* FEATURES_OK, not DRIVER_OK yet */
    put_stat(x, DATA, 5, 42);
    desc(x, 2, 0, DATA, 10, 0, 0);
    publish(x, 2, 0); /* the driver's kick: the device is not live yet */
    assert_false(x->b.stats_held);
    virtio_dev_set_status(vdev, 0x0f);
    assert_true(x->b.stats_held);
    struct balloon_stats st;
    virtio_balloon_get_stats(&x->b, &st);
    assert_int_equal(st.value[5], 42);
    teardown_fixture(x);
}

static void test_target_and_actual(void **state)
{
    (void)state;
    struct fixture *x = setup();
    struct virtio_dev *vdev = &x->b.vdev;
    assert_int_equal(virtio_balloon_set_target(&x->b, 8), 0);
    assert_int_equal(config_irqs, 1);
    uint8_t cfg[16];
    vdev->ops->config_read(vdev, 0, cfg, 4);
    assert_int_equal(le32_load(cfg), 8 * 256);
    uint8_t actual[4];
    le32_store(actual, 100);
    vdev->ops->config_write(vdev, 4, actual, 4);
    le32_store(actual, 77);
    vdev->ops->config_write(vdev, 0, actual, 4); /* num_pages is the device's */
    vdev->ops->config_read(vdev, 0, cfg, 8);
    assert_int_equal(le32_load(cfg), 8 * 256);
    assert_int_equal(le32_load(cfg + 4), 100);
    vdev->ops->config_read(vdev, 14, cfg, 4); /* past the end reads zeros */
    assert_int_equal(le32_load(cfg), 0);
    assert_int_equal(virtio_balloon_set_target(&x->b, 17), -EINVAL); /* > 16 MiB of RAM */
    struct balloon_stats st;
    virtio_balloon_get_stats(&x->b, &st);
    assert_int_equal(st.target_pages, 8 * 256);
    assert_int_equal(st.actual_pages, 100);
    teardown_fixture(x);
}

static void test_snapshot_round_trip_and_hostile(void **state)
{
    (void)state;
    struct fixture *x = setup();
    struct virtio_dev *vdev = &x->b.vdev;
    assert_int_equal(virtio_balloon_set_target(&x->b, 4), 0);
    put_stat(x, DATA, 4, 1);
    desc(x, 2, 5, DATA, 10, 0, 0);
    publish(x, 2, 5);
    struct rec r = rec_new();
    vdev->ops->save(vdev, r);
    r = rec_copy(r);
    x->b.target_pages = 0, x->b.stats_held = false;
    assert_int_equal(vdev->ops->load(vdev, r), 0);
    assert_int_equal(x->b.target_pages, 4 * 256);
    assert_true(x->b.stats_held);
    assert_int_equal(x->b.stats_head, 5);
    /* A held buffer outside the queue, and statistics switched on. */
    rec_put_u64(r, "stats_head", QSIZE);
    assert_int_equal(vdev->ops->load(vdev, r), -EINVAL);
    rec_put_u64(r, "stats_head", 5);
    rec_put_u64(r, "stats_interval_s", 0);
    assert_int_equal(vdev->ops->load(vdev, r), -EINVAL);
    rec_put_u64(r, "stats_interval_s", 5);
    rec_put_u64(r, "target_pages", 1ull << 40);
    assert_int_equal(vdev->ops->load(vdev, r), -EINVAL);
    rec_free(r);
    teardown_fixture(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_and_queue_numbering),
        cmocka_unit_test(test_inflate_discards_pages),
        cmocka_unit_test(test_inflate_bounded_per_chain),
        cmocka_unit_test(test_free_page_reporting),
        cmocka_unit_test(test_free_page_hinting),
        cmocka_unit_test(test_statistics_lent_and_returned),
        cmocka_unit_test(test_statistics_before_driver_ok),
        cmocka_unit_test(test_target_and_actual),
        cmocka_unit_test(test_snapshot_round_trip_and_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The virtqueue against well-formed chains and a table of hostile rings. */
#include "vq_fake.h"
#include "rec_copy.h"

#include <sys/mman.h>

#define RO 0
#define NEXT VIRTQ_DESC_F_NEXT
#define WR VIRTQ_DESC_F_WRITE
#define IND VIRTQ_DESC_F_INDIRECT

static struct virtq_chain chain;

static void test_simple_chains(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 16);
    vqf_start(&f);
    assert_int_equal(virtq_pop(&f.q, &chain), 0); /* nothing yet */
    /* 16 readable bytes, 512 writable, 1 writable: a block read. */
    vqf_desc(&f, 3, VQF_DATA, 16, NEXT, 7);
    vqf_desc(&f, 7, VQF_DATA + 0x100, 512, WR | NEXT, 9);
    vqf_desc(&f, 9, VQF_DATA + 0x400, 1, WR, 0);
    vqf_publish(&f, 3);
    assert_int_equal(virtq_pop(&f.q, &chain), 1);
    assert_int_equal(chain.head, 3);
    char line[256];
    virtq_describe(&f.q, line, sizeof(line));
    assert_non_null(strstr(line, "device: next avail 1, used 0"));
    assert_non_null(strstr(line, "guest: avail idx 1 flags 0, used idx 0"));
    assert_int_equal(chain.nr, 3);
    assert_int_equal(chain.nr_readable, 1);
    assert_true(chain.readable_bytes == 16 && chain.writable_bytes == 513);
    assert_true(chain.bufs[1].device_writes && !chain.bufs[0].device_writes);
    assert_int_equal(virtq_pop(&f.q, &chain), 0);
    assert_int_equal(virtq_push(&f.q, 3, 513), 0);
    uint32_t id, len;
    assert_int_equal(vqf_used_idx(&f), 1);
    vqf_used_elem(&f, 0, &id, &len);
    assert_int_equal(id, 3);
    assert_int_equal(len, 513);
    vqf_free(&f);
}

static void test_indirect_chain(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 8);
    vqf_start(&f);
    uint8_t *table = f.mem + VQF_DATA;
    vqf_put_desc(table, 0, VQF_DATA + 0x1000, 100, NEXT, 2);
    vqf_put_desc(table, 2, VQF_DATA + 0x2000, 200, WR, 0);
    vqf_desc(&f, 0, VQF_DATA, 3 * 16, IND, 0);
    vqf_publish(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &chain), 1);
    assert_int_equal(chain.nr, 2);
    assert_true(chain.readable_bytes == 100 && chain.writable_bytes == 200);
    vqf_free(&f);
}

static void test_avail_index_wraps(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 4);
    vqf_start(&f);
    f.q.last_avail = f.avail_idx = 0xfffe;
    f.q.used_idx = 0xfffe;
    for (int i = 0; i < 4; i++) {
        vqf_desc(&f, (uint16_t)i, VQF_DATA, 8, WR, 0);
        vqf_publish(&f, (uint16_t)i);
        assert_int_equal(virtq_pop(&f.q, &chain), 1);
        assert_int_equal(chain.head, i);
        assert_int_equal(virtq_push(&f.q, (uint16_t)i, 8), 0);
    }
    assert_int_equal(vqf_used_idx(&f), 2); /* 0xfffe + 4 */
    vqf_free(&f);
}

static void test_chain_copy_helpers(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 8);
    vqf_start(&f);
    memcpy(f.mem + VQF_DATA, "hello ", 6);
    memcpy(f.mem + VQF_DATA + 0x100, "world", 5);
    vqf_desc(&f, 0, VQF_DATA, 6, NEXT, 1);
    vqf_desc(&f, 1, VQF_DATA + 0x100, 5, NEXT, 2);
    vqf_desc(&f, 2, VQF_DATA + 0x200, 4, WR | NEXT, 3);
    vqf_desc(&f, 3, VQF_DATA + 0x300, 4, WR, 0);
    vqf_publish(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &chain), 1);
    char buf[16] = {0};
    assert_int_equal(virtq_chain_read(&f.q, &chain, 3, buf, sizeof(buf)), 8);
    assert_string_equal(buf, "lo world");
    assert_int_equal(virtq_chain_write(&f.q, &chain, 2, "abcdefgh", 8), 6);
    assert_memory_equal(f.mem + VQF_DATA + 0x202, "ab", 2);
    assert_memory_equal(f.mem + VQF_DATA + 0x300, "cdef", 4);
    vqf_free(&f);
}

/* --- hostile rings: each must fail cleanly and leave the queue broken --- */

struct hostile {
    const char *name;
    void (*build)(struct vq_fake *f);
    const char *error; /* expected in virtq_error() */
};

static void h_head_out_of_range(struct vq_fake *f) { vqf_publish(f, 16); }
static void h_next_out_of_range(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 8, NEXT, 16);
    vqf_publish(f, 0);
}
static void h_loop(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 8, NEXT, 1);
    vqf_desc(f, 1, VQF_DATA, 8, NEXT, 0);
    vqf_publish(f, 0);
}
static void h_self_loop(struct vq_fake *f)
{
    vqf_desc(f, 5, VQF_DATA, 8, WR | NEXT, 5);
    vqf_publish(f, 5);
}
static void h_avail_jump(struct vq_fake *f)
{
    le16_store(f->mem + VQF_AVAIL + 2, 17); /* 17 new entries in a 16-entry queue */
}
static void h_buffer_outside(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_MEM_SIZE, 8, RO, 0);
    vqf_publish(f, 0);
}
static void h_buffer_straddles_end(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_MEM_SIZE - 4, 8, RO, 0);
    vqf_publish(f, 0);
}
static void h_buffer_wraps(struct vq_fake *f)
{
    vqf_desc(f, 0, UINT64_MAX - 3, 0x100, RO, 0);
    vqf_publish(f, 0);
}
static void h_readable_after_writable(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 8, WR | NEXT, 1);
    vqf_desc(f, 1, VQF_DATA, 8, RO, 0);
    vqf_publish(f, 0);
}
static void h_indirect_not_negotiated(struct vq_fake *f)
{
    f->q.indirect = false;
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x1000, 8, RO, 0);
    vqf_desc(f, 0, VQF_DATA, 16, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_bad_length(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 20, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_empty(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 0, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_nested(struct vq_fake *f)
{
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x100, 16, IND, 0);
    vqf_desc(f, 0, VQF_DATA, 16, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_with_next(struct vq_fake *f)
{
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x1000, 8, RO, 0);
    vqf_desc(f, 0, VQF_DATA, 16, IND | NEXT, 1);
    vqf_desc(f, 1, VQF_DATA, 8, RO, 0);
    vqf_publish(f, 0);
}
static void h_indirect_outside(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_MEM_SIZE - 16, 32, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_next_out_of_table(struct vq_fake *f)
{
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x1000, 8, NEXT, 2);
    vqf_desc(f, 0, VQF_DATA, 32, IND, 0); /* two entries; next = 2 */
    vqf_publish(f, 0);
}
static void h_indirect_loop(struct vq_fake *f)
{
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x1000, 8, NEXT, 1);
    vqf_put_desc(f->mem + VQF_DATA, 1, VQF_DATA + 0x1000, 8, NEXT, 0);
    vqf_desc(f, 0, VQF_DATA, 32, IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_huge(struct vq_fake *f)
{
    vqf_desc(f, 0, VQF_DATA, 16 * (VIRTQ_MAX_CHAIN + 1), IND, 0);
    vqf_publish(f, 0);
}
static void h_indirect_mid_chain(struct vq_fake *f)
{
    vqf_put_desc(f->mem + VQF_DATA, 0, VQF_DATA + 0x1000, 8, RO, 0);
    vqf_desc(f, 0, VQF_DATA + 0x2000, 8, NEXT, 1);
    vqf_desc(f, 1, VQF_DATA, 16, IND, 0);
    vqf_publish(f, 0);
}

static const struct hostile hostile_rings[] = {
    {"head index out of range", h_head_out_of_range, "head index 16"},
    {"next index out of range", h_next_out_of_range, "next index 16"},
    {"two-descriptor loop", h_loop, "loop"},
    {"self loop", h_self_loop, "loop"},
    {"available index jumps past the queue size", h_avail_jump, "moved 17 entries"},
    {"buffer outside guest memory", h_buffer_outside, "outside guest memory"},
    {"buffer straddles the end of memory", h_buffer_straddles_end, "outside guest memory"},
    {"buffer address + length wraps", h_buffer_wraps, "outside guest memory"},
    {"readable after writable", h_readable_after_writable, "readable buffer after"},
    {"indirect without the feature", h_indirect_not_negotiated, "without VIRTIO_F_INDIRECT"},
    {"indirect table length not a multiple of 16", h_indirect_bad_length, "indirect table of 20"},
    {"empty indirect table", h_indirect_empty, "indirect table of 0"},
    {"nested indirect table", h_indirect_nested, "nested"},
    {"indirect with NEXT", h_indirect_with_next, "NEXT set"},
    {"indirect table outside memory", h_indirect_outside, "outside guest memory"},
    {"indirect next beyond the table", h_indirect_next_out_of_table, "beyond the table"},
    {"loop inside an indirect table", h_indirect_loop, "loop in an indirect"},
    {"indirect table over the chain limit", h_indirect_huge, "entries"},
    {"indirect descriptor mid-chain", h_indirect_mid_chain, "inside a chain"},
};

static void test_hostile_rings(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(hostile_rings); i++) {
        const struct hostile *h = &hostile_rings[i];
        struct vq_fake f;
        vqf_init(&f, 16);
        vqf_start(&f);
        h->build(&f);
        int ret = virtq_pop(&f.q, &chain);
        if (ret != -EINVAL || !f.q.broken || !strstr(virtq_error(&f.q), h->error))
            fail_msg("%s: pop returned %d, error '%s'", h->name, ret, virtq_error(&f.q));
        /* Broken stays broken: no further parsing, no pushes. */
        assert_int_equal(virtq_pop(&f.q, &chain), -EINVAL);
        assert_int_equal(virtq_push(&f.q, 0, 0), -EINVAL);
        assert_int_equal(vqf_used_idx(&f), 0);
        /* A reset and a fresh start make it usable again. */
        virtq_reset(&f.q);
        f.q.desc_gpa = VQF_DESC;
        f.q.avail_gpa = VQF_AVAIL;
        f.q.used_gpa = VQF_USED;
        memset(f.mem + VQF_AVAIL, 0, 0x100);
        f.avail_idx = 0;
        vqf_start(&f);
        vqf_desc(&f, 0, VQF_DATA, 8, RO, 0);
        vqf_publish(&f, 0);
        assert_int_equal(virtq_pop(&f.q, &chain), 1);
        vqf_free(&f);
    }
}

static void test_chain_length_limit(void **state)
{
    (void)state;
    /* 4 GiB + in two buffers, in a large sparse memory region. */
    struct vq_fake f;
    vqf_init(&f, 16);
    void *big = mmap(NULL, 6ull << 30, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(big != MAP_FAILED);
    assert_int_equal(gm_add_region(&f.gm, 1ull << 32, 6ull << 30, big), 0);
    vqf_start(&f);
    vqf_desc(&f, 0, 1ull << 32, 0xc0000000u, WR | NEXT, 1);
    vqf_desc(&f, 1, (1ull << 32) + 0xc0000000u, 0xc0000000u, WR, 0);
    vqf_publish(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &chain), -EINVAL);
    assert_non_null(strstr(virtq_error(&f.q), "4 GiB"));
    munmap(big, 6ull << 30);
    f.gm.nr_regions = 1;
    vqf_free(&f);
}

static void test_chain_longer_than_limit(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 512 < VIRTQ_MAX_SIZE ? 512 : VIRTQ_MAX_SIZE);
    vqf_start(&f);
    for (uint16_t i = 0; i <= VIRTQ_MAX_CHAIN; i++)
        vqf_desc(&f, i, VQF_DATA, 1, NEXT, (uint16_t)(i + 1));
    vqf_desc(&f, VIRTQ_MAX_CHAIN + 1, VQF_DATA, 1, RO, 0);
    vqf_publish(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &chain), -EINVAL);
    assert_non_null(strstr(virtq_error(&f.q), "longer than"));
    vqf_free(&f);
}

static void test_start_checks_rings(void **state)
{
    (void)state;
    static const struct {
        uint16_t size;
        uint64_t desc, avail, used;
        const char *error;
    } cases[] = {
        {0, VQF_DESC, VQF_AVAIL, VQF_USED, "power of two"},
        {12, VQF_DESC, VQF_AVAIL, VQF_USED, "power of two"},
        {2048, VQF_DESC, VQF_AVAIL, VQF_USED, "power of two"},
        {16, VQF_DESC + 8, VQF_AVAIL, VQF_USED, "misaligned"},
        {16, VQF_DESC, VQF_AVAIL + 1, VQF_USED, "misaligned"},
        {16, VQF_DESC, VQF_AVAIL, VQF_USED + 2, "misaligned"},
        {16, VQF_MEM_SIZE - 128, VQF_AVAIL, VQF_USED, "outside"},
        {16, VQF_DESC, VQF_MEM_SIZE - 8, VQF_USED, "outside"},
        {16, VQF_DESC, VQF_AVAIL, VQF_MEM_SIZE - 64, "outside"},
        {16, UINT64_MAX - 15, VQF_AVAIL, VQF_USED, "outside"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct vq_fake f;
        vqf_init(&f, cases[i].size);
        f.q.desc_gpa = cases[i].desc;
        f.q.avail_gpa = cases[i].avail;
        f.q.used_gpa = cases[i].used;
        assert_int_equal(virtq_start(&f.q, &f.gm), -EINVAL);
        if (!strstr(virtq_error(&f.q), cases[i].error))
            fail_msg("case %zu: '%s'", i, virtq_error(&f.q));
        assert_int_equal(virtq_pop(&f.q, &chain), -EINVAL);
        vqf_free(&f);
    }
}

static void test_notification_suppression(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 8);
    vqf_start(&f);
    /* Without EVENT_IDX: NO_INTERRUPT in avail->flags is honoured. */
    assert_true(virtq_needs_interrupt(&f.q));
    le16_store(f.mem + VQF_AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert_false(virtq_needs_interrupt(&f.q));
    virtq_suppress_notifications(&f.q, true);
    assert_int_equal(le16_load(f.mem + VQF_USED), VIRTQ_USED_F_NO_NOTIFY);
    assert_false(virtq_rearm(&f.q));
    assert_int_equal(le16_load(f.mem + VQF_USED), 0);
    vqf_free(&f);

    /* With EVENT_IDX: interrupt only when used passes used_event. */
    vqf_init(&f, 8);
    f.q.event_idx = true;
    vqf_start(&f);
    uint8_t *used_event = f.mem + VQF_AVAIL + 4 + 2 * 8;
    le16_store(used_event, 2);
    for (uint16_t i = 0; i < 4; i++) {
        vqf_desc(&f, i, VQF_DATA, 8, WR, 0);
        vqf_publish(&f, i);
    }
    bool irq[4];
    for (uint16_t i = 0; i < 4; i++) {
        assert_int_equal(virtq_pop(&f.q, &chain), 1);
        assert_int_equal(virtq_push(&f.q, i, 0), 0);
        irq[i] = virtq_needs_interrupt(&f.q);
    }
    /* The first check always interrupts; after that only crossing 2->3. */
    assert_true(irq[0]);
    assert_false(irq[1]);
    assert_true(irq[2]);
    assert_false(irq[3]);
    /* Re-arming publishes avail_event = the next entry we want to hear of. */
    assert_false(virtq_rearm(&f.q));
    assert_int_equal(le16_load(f.mem + VQF_USED + 4 + 8 * 8), 4);
    vqf_desc(&f, 4, VQF_DATA, 8, WR, 0);
    vqf_publish(&f, 4);
    assert_true(virtq_rearm(&f.q)); /* work arrived meanwhile */
    /* Entries seen but left waiting (popped, then given back): the next
     * notification must be for an entry beyond them, or the guest, adding
     * past them, would never notify. */
    assert_int_equal(virtq_pop(&f.q, &chain), 1);
    virtq_unpop(&f.q);
    virtq_rearm(&f.q);
    assert_int_equal(le16_load(f.mem + VQF_USED + 4 + 8 * 8), 5);
    vqf_free(&f);
}

/* Saved queue state, and queue state from a snapshot pointing outside guest
 * memory. */
static struct rec saved_queue(struct vq_fake *f)
{
    struct rec r = rec_new();
    virtq_save(&f->q, r);
    return rec_copy(r);
}

static void test_virtq_state(void **state)
{
    (void)state;
    struct vq_fake f;
    vqf_init(&f, 16);
    f.q.event_idx = true;
    vqf_start(&f);
    struct virtq_chain c;
    vqf_desc(&f, 0, VQF_DATA, 8, VIRTQ_DESC_F_WRITE, 0);
    vqf_publish(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &c), 1);
    assert_int_equal(virtq_push(&f.q, 0, 8), 0);
    struct rec r = saved_queue(&f);
    struct virtq q;
    assert_int_equal(virtq_load(&q, &f.gm, 16, r), 0);
    assert_true(q.ready && q.event_idx);
    assert_int_equal(q.last_avail, 1);
    assert_int_equal(q.used_idx, 1);
    /* The next request continues from there. */
    vqf_desc(&f, 1, VQF_DATA, 8, VIRTQ_DESC_F_WRITE, 0);
    vqf_publish(&f, 1);
    assert_int_equal(virtq_pop(&q, &c), 1);
    assert_int_equal(c.head, 1);
    assert_int_equal(virtq_load(&q, &f.gm, 8, r), -EINVAL); /* larger than the device's */
    rec_free(r);

    /* Rings outside guest memory, a size that is not a power of two. */
    static const struct {
        const char *key;
        uint64_t value;
    } bad[] = {
        {"desc", VQF_MEM_SIZE - 8},
        {"avail", UINT64_MAX - 1},
        {"used", VQF_MEM_SIZE},
        {"size", 12},
        {"last_avail", 70000},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rec m = saved_queue(&f);
        rec_put_u64(m, bad[i].key, bad[i].value);
        assert_int_equal(virtq_load(&q, &f.gm, 16, m), -EINVAL);
        rec_free(m);
    }
    vqf_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_chains),
        cmocka_unit_test(test_indirect_chain),
        cmocka_unit_test(test_avail_index_wraps),
        cmocka_unit_test(test_chain_copy_helpers),
        cmocka_unit_test(test_hostile_rings),
        cmocka_unit_test(test_chain_length_limit),
        cmocka_unit_test(test_chain_longer_than_limit),
        cmocka_unit_test(test_start_checks_rings),
        cmocka_unit_test(test_notification_suppression),
        cmocka_unit_test(test_virtq_state),
    };
    return cmocka_run_group_tests_name("virtq", tests, NULL, NULL);
}

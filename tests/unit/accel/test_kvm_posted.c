/* Delivering KVM's queue of posted port writes (kvm_posted_drain) without KVM:
 * the ring page is a plain buffer here, filled as KVM fills it. Order,
 * wrap-around, entries that are not ember's to deliver, and indexes that
 * do not fit the ring (nothing is read past it). */
#include "unit.h"


#include "accel/kvm_posted.h"

#define RING_PAGE 4096

struct delivered {
    uint16_t port[256];
    uint8_t data[256][8];
    unsigned len[256];
    unsigned n;
};

static void record(void *ctx, uint16_t port, const void *data, unsigned len)
{
    struct delivered *d = ctx;
    assert_true(d->n < 256 && len <= 8);
    d->port[d->n] = port;
    memcpy(d->data[d->n], data, len);
    d->len[d->n++] = len;
}

/* The ring as the backend holds it. */
struct ring_vm {
    struct kvm_coalesced_mmio_ring *posted_ring;
    uint32_t posted_max;
};

struct fixture {
    struct ring_vm vm;
    struct delivered got;
};

static unsigned drain(struct fixture *f)
{
    return kvm_posted_drain(f->vm.posted_ring, f->vm.posted_max, record, &f->got);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->vm.posted_ring = calloc(1, RING_PAGE);
    assert_non_null(f->vm.posted_ring);
    f->vm.posted_max = (RING_PAGE - sizeof(struct kvm_coalesced_mmio_ring)) /
                       sizeof(struct kvm_coalesced_mmio);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->vm.posted_ring);
    free(f);
    return 0;
}

/* What KVM does for one write: the entry at 'last', then 'last' moves. */
static void kvm_queues(struct ring_vm *vm, uint64_t port, uint32_t len, uint64_t value)
{
    struct kvm_coalesced_mmio_ring *ring = vm->posted_ring;
    struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[ring->last];
    e->phys_addr = port;
    e->len = len;
    e->pio = 1;
    memcpy(e->data, &value, sizeof(e->data));
    ring->last = (ring->last + 1) % vm->posted_max;
}

static void test_in_order_and_ring_left_empty(void **state)
{
    struct fixture *f = *state;
    kvm_queues(&f->vm, 0xcf8, 4, 0x80000008);
    kvm_queues(&f->vm, 0xcf8, 4, 0x80000000);
    kvm_queues(&f->vm, 0x3f8, 1, 'A');
    assert_int_equal(drain(f), 3);
    assert_int_equal(f->got.n, 3);
    assert_int_equal(f->got.port[0], 0xcf8);
    assert_int_equal(f->got.len[0], 4);
    assert_memory_equal(f->got.data[0], "\x08\x00\x00\x80", 4);
    assert_memory_equal(f->got.data[1], "\x00\x00\x00\x80", 4);
    assert_int_equal(f->got.port[2], 0x3f8);
    assert_int_equal(f->got.data[2][0], 'A');
    assert_int_equal(f->vm.posted_ring->first, f->vm.posted_ring->last);
    assert_int_equal(drain(f), 0); /* nothing twice */
    assert_int_equal(f->got.n, 3);
}

static void test_wraps_around_the_end(void **state)
{
    struct fixture *f = *state;
    uint32_t max = f->vm.posted_max;
    f->vm.posted_ring->first = f->vm.posted_ring->last = max - 2;
    for (unsigned i = 0; i < 5; i++)
        kvm_queues(&f->vm, 0x70, 1, 0x20 + i);
    assert_int_equal(f->vm.posted_ring->last, 3);
    assert_int_equal(drain(f), 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(f->got.data[i][0], 0x20 + i);
    assert_int_equal(f->vm.posted_ring->first, 3);
}

/* A length past the entry's 8 bytes is cut to them; an MMIO entry or a port
 * past 0xffff is not a port write: used up, not delivered. */
static void test_odd_entries_consumed_not_delivered(void **state)
{
    struct fixture *f = *state;
    kvm_queues(&f->vm, 0x3f8, 200, 0x1122334455667788ull);
    kvm_queues(&f->vm, 0x10000, 1, 1);
    kvm_queues(&f->vm, 0x3f8, 1, 'B');
    f->vm.posted_ring->coalesced_mmio[2].pio = 0;
    assert_int_equal(drain(f), 3);
    assert_int_equal(f->got.n, 1);
    assert_int_equal(f->got.len[0], 8);
    assert_int_equal(f->vm.posted_ring->first, 3);
}

static void test_indexes_outside_the_ring_read_nothing(void **state)
{
    struct fixture *f = *state;
    struct kvm_coalesced_mmio_ring *ring = f->vm.posted_ring;
    ring->first = 0;
    ring->last = f->vm.posted_max + 7;
    assert_int_equal(drain(f), 0);
    ring->first = 0xffffffffu;
    ring->last = 1;
    assert_int_equal(drain(f), 0);
    assert_int_equal(f->got.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order_and_ring_left_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraps_around_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_entries_consumed_not_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indexes_outside_the_ring_read_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

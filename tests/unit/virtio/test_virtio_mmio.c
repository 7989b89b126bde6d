/* The virtio-mmio transport with a fake platform: the registers a driver
 * sees, what reaches the platform (ioeventfds matched on the queue index,
 * interrupt edges), snapshots, and a table of hostile register sequences
 * (each must leave ember standing, process nothing it should not, and let
 * a proper setup work afterwards). */
#include "vq_fake.h"
#include "fake_irq.h"

#include <unistd.h>

#include "virtio/rng.h"
#include "virtio/transport_mmio.h"

#define BASE 0xc0001000ull
#define GSI 5

struct fake_platform {
    int binds, unbinds;
    uint64_t bound_addr[VIRTIO_MAX_QUEUES];
    uint64_t bound_match[VIRTIO_MAX_QUEUES];
    unsigned bound_len;
    bool with_irqfd;
    int irqfd;        /* the eventfd handed out */
    uint32_t irqfd_gsi;
    int released;
};

static int fp_ioeventfd(void *ctx, int fd, uint64_t addr, unsigned len, const uint64_t *datamatch,
                        bool assign)
{
    struct fake_platform *p = ctx;
    (void)fd;
    assert_non_null(datamatch); /* one register for every queue: matched on the value */
    assert_true(*datamatch < VIRTIO_MAX_QUEUES);
    if (assign) {
        p->binds++;
        p->bound_addr[*datamatch] = addr;
        p->bound_match[*datamatch] = *datamatch;
        p->bound_len = len;
    } else {
        p->unbinds++;
    }
    return 0;
}

static int fp_irqfd(void *ctx, uint32_t gsi, int *fd)
{
    struct fake_platform *p = ctx;
    if (!p->with_irqfd)
        return -ENOTSUP;
    p->irqfd = *fd = eventfd_create();
    p->irqfd_gsi = gsi;
    return 0;
}

static void fp_irqfd_release(void *ctx, uint32_t gsi, int fd)
{
    struct fake_platform *p = ctx;
    assert_int_equal(gsi, p->irqfd_gsi);
    close(fd);
    p->released++;
}

struct fixture {
    struct vq_fake f;
    struct fake_platform fp;
    struct fake_irq irq;
    struct irq_sink sink;
    struct bus mmio;
    struct evloop loop;
    struct pci_platform plat;
    struct virtio_rng rng;
    struct virtio_mmio vm;
};

static void make(struct fixture *x, bool with_irqfd)
{
    vqf_init(&x->f, 16);
    x->sink = fake_irq_sink(&x->irq);
    x->fp.with_irqfd = with_irqfd;
    x->fp.irqfd = -1;
    bus_init(&x->mmio, "mmio");
    assert_int_equal(evloop_init(&x->loop), 0);
    x->plat = (struct pci_platform){&x->mmio, &x->loop, NULL, NULL, fp_ioeventfd, &x->fp,
                                   fp_irqfd, fp_irqfd_release, &x->fp};
    assert_int_equal(virtio_rng_init(&x->rng, &x->f.gm, NULL, NULL), 0);
    assert_int_equal(virtio_mmio_init(&x->vm, &x->rng.vdev, &x->mmio, BASE,
                                      (struct irq_line){&x->sink, GSI}, &x->plat), 0);
}

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    make(x, false);
    *state = x;
    return 0;
}

static int setup_irqfd(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    make(x, true);
    *state = x;
    return 0;
}

static void unmake(struct fixture *x)
{
    virtio_mmio_destroy(&x->vm);
    virtio_dev_destroy(&x->rng.vdev);
    evloop_destroy(&x->loop);
    bus_destroy(&x->mmio);
    vqf_free(&x->f);
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    unmake(x);
    free(x);
    return 0;
}

static uint32_t rd(struct fixture *x, uint64_t off)
{
    uint8_t buf[4] = {0};
    assert_true(bus_read(&x->mmio, BASE + off, buf, 4));
    return le32_load(buf);
}

static void wr(struct fixture *x, uint64_t off, uint32_t v)
{
    uint8_t buf[4];
    le32_store(buf, v);
    assert_true(bus_write(&x->mmio, BASE + off, buf, 4));
}

static void wr_n(struct fixture *x, uint64_t off, unsigned len, uint64_t v)
{
    uint8_t buf[8];
    le_store_n(buf, len, v);
    assert_true(bus_write(&x->mmio, BASE + off, buf, len));
}

static uint64_t rd_n(struct fixture *x, uint64_t off, unsigned len)
{
    uint8_t buf[8] = {0};
    assert_true(bus_read(&x->mmio, BASE + off, buf, len));
    return le_load_n(buf, len);
}

#define S_ACK VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV VIRTIO_STATUS_DRIVER
#define S_FOK VIRTIO_STATUS_FEATURES_OK
#define S_DOK VIRTIO_STATUS_DRIVER_OK

static void negotiate(struct fixture *x, uint64_t features)
{
    wr(x, VMMIO_STATUS, S_ACK | S_DRV);
    wr(x, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(x, VMMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(x, VMMIO_DRIVER_FEATURES_SEL, 1);
    wr(x, VMMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_FOK);
}

static void setup_queue(struct fixture *x, uint64_t desc, uint64_t avail, uint64_t used)
{
    wr(x, VMMIO_QUEUE_SEL, 0);
    assert_int_equal(rd(x, VMMIO_QUEUE_NUM_MAX), 64);
    wr(x, VMMIO_QUEUE_NUM, 16);
    wr(x, VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    wr(x, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    wr(x, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    wr(x, VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    wr(x, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    wr(x, VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    wr(x, VMMIO_QUEUE_READY, 1);
}

/* The whole proper sequence (what Linux's virtio_mmio does). */
static void bring_up(struct fixture *x)
{
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    assert_true(rd(x, VMMIO_STATUS) & S_FOK);
    setup_queue(x, VQF_DESC, VQF_AVAIL, VQF_USED);
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_true(virtio_dev_live(&x->rng.vdev));
}

/* One 16-byte buffer for the device to fill; the driver notifies. */
static void request(struct fixture *x, uint16_t head)
{
    vqf_desc(&x->f, head, VQF_DATA + 64u * head, 16, VIRTQ_DESC_F_WRITE, 0);
    vqf_publish(&x->f, head);
    wr(x, VMMIO_QUEUE_NOTIFY, 0);
}

static void test_identity(void **state)
{
    struct fixture *x = *state;
    assert_int_equal(rd(x, VMMIO_MAGIC), 0x74726976);
    assert_int_equal(rd(x, VMMIO_VERSION), 2);
    assert_int_equal(rd(x, VMMIO_DEVICE_ID), VIRTIO_ID_RNG);
    assert_int_equal(rd(x, VMMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
    wr(x, VMMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(rd(x, VMMIO_DEVICE_FEATURES), 1); /* VERSION_1 is bit 32 */
    wr(x, VMMIO_DEVICE_FEATURES_SEL, 7);
    assert_int_equal(rd(x, VMMIO_DEVICE_FEATURES), 0);
    wr(x, VMMIO_SHM_SEL, 0);
    assert_int_equal(rd(x, VMMIO_SHM_LEN_LOW), 0xffffffffu); /* no shared memory */
    assert_int_equal(rd(x, VMMIO_SHM_LEN_HIGH), 0xffffffffu);
    /* One ioeventfd per queue on QueueNotify, 4 bytes, matched on its index. */
    assert_int_equal(x->fp.binds, 1);
    assert_int_equal(x->fp.bound_addr[0], BASE + VMMIO_QUEUE_NOTIFY);
    assert_int_equal(x->fp.bound_match[0], 0);
    assert_int_equal(x->fp.bound_len, 4);
    /* Nothing at all past the window. */
    uint8_t b[4];
    assert_false(bus_read(&x->mmio, BASE + VIRTIO_MMIO_SIZE, b, 4));
}

static void test_feature_negotiation(void **state)
{
    struct fixture *x = *state;
    negotiate(x, 1ull << VIRTIO_F_EVENT_IDX); /* no VERSION_1: a legacy driver */
    assert_false(rd(x, VMMIO_STATUS) & S_FOK);
    wr(x, VMMIO_STATUS, 0);
    negotiate(x, (1ull << VIRTIO_F_VERSION_1) | (1ull << 50)); /* not offered */
    assert_false(rd(x, VMMIO_STATUS) & S_FOK);
    wr(x, VMMIO_STATUS, 0);
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    assert_true(rd(x, VMMIO_STATUS) & S_FOK);
    /* Features are fixed once FEATURES_OK is set. */
    wr(x, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(x, VMMIO_DRIVER_FEATURES, 1u << VIRTIO_F_EVENT_IDX);
    assert_false(virtio_dev_has_feature(&x->rng.vdev, VIRTIO_F_EVENT_IDX));
}

static void test_request_and_interrupt(void **state)
{
    struct fixture *x = *state;
    bring_up(x);
    request(x, 0);
    assert_int_equal(vqf_used_idx(&x->f), 1);
    /* An edge on the pin: raised and lowered, the reason in the status. */
    assert_int_equal(x->irq.raises[GSI], 1);
    assert_false(x->irq.level[GSI]);
    assert_int_equal(rd(x, VMMIO_INTERRUPT_STATUS), VMMIO_INT_VRING);
    wr(x, VMMIO_INTERRUPT_ACK, VMMIO_INT_VRING);
    assert_int_equal(rd(x, VMMIO_INTERRUPT_STATUS), 0);
    request(x, 1);
    assert_int_equal(vqf_used_idx(&x->f), 2);
    assert_int_equal(x->irq.raises[GSI], 2);
    /* The configuration changes: bit 1, another edge. */
    virtio_dev_notify_config(&x->rng.vdev);
    assert_int_equal(rd(x, VMMIO_INTERRUPT_STATUS), VMMIO_INT_VRING | VMMIO_INT_CONFIG);
    assert_int_equal(x->irq.raises[GSI], 3);
    assert_int_equal(rd(x, VMMIO_CONFIG_GENERATION), 1);
}

static void test_irqfd(void **state)
{
    struct fixture *x = *state;
    assert_true(x->fp.irqfd >= 0);
    assert_int_equal(x->fp.irqfd_gsi, GSI);
    bring_up(x);
    request(x, 0);
    /* The edge went to the irqfd, not through the line. */
    uint64_t n = 0;
    assert_int_equal(read(x->fp.irqfd, &n, sizeof(n)), (ssize_t)sizeof(n));
    assert_int_equal(n, 1);
    assert_int_equal(x->irq.calls, 0);
}

static void test_pause_holds_notifications(void **state)
{
    struct fixture *x = *state;
    bring_up(x);
    virtio_mmio_set_paused(&x->vm, true);
    request(x, 0);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    virtio_mmio_set_paused(&x->vm, false); /* looks at every queue once */
    assert_int_equal(vqf_used_idx(&x->f), 1);
}

static void test_snapshot_round_trip(void **state)
{
    struct fixture *x = *state;
    bring_up(x);
    request(x, 0);
    wr(x, VMMIO_QUEUE_SEL, 0);
    struct rec r = rec_new();
    virtio_mmio_save(&x->vm, r);
    /* A fresh device at the same place takes the state back. */
    struct fixture *y = calloc(1, sizeof(*y));
    make(y, false);
    memcpy(y->f.mem, x->f.mem, VQF_MEM_SIZE);
    y->f.avail_idx = x->f.avail_idx;
    assert_int_equal(virtio_mmio_load(&y->vm, r), 0);
    assert_true(virtio_dev_live(&y->rng.vdev));
    assert_int_equal(rd(y, VMMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
    assert_int_equal(rd(y, VMMIO_QUEUE_READY), 1);
    assert_int_equal(y->irq.raises[GSI], 1);   /* an interrupt in case one was in flight */
    request(y, 1);
    assert_int_equal(vqf_used_idx(&y->f), 2);  /* the ring continues */
    unmake(y);
    /* Elsewhere, or on another pin, it does not fit. */
    memset(y, 0, sizeof(*y));
    vqf_init(&y->f, 16);
    y->sink = fake_irq_sink(&y->irq);
    bus_init(&y->mmio, "mmio");
    assert_int_equal(evloop_init(&y->loop), 0);
    assert_int_equal(virtio_rng_init(&y->rng, &y->f.gm, NULL, NULL), 0);
    assert_int_equal(virtio_mmio_init(&y->vm, &y->rng.vdev, &y->mmio, BASE + 0x1000,
                                      (struct irq_line){&y->sink, GSI}, NULL), 0);
    assert_int_equal(virtio_mmio_load(&y->vm, r), -EINVAL);
    assert_non_null(strstr(err_msg(), "at 0xc0001000"));
    unmake(y);
    free(y);
    rec_free(r);
}

/* A driver may write features the device does not offer (it then refuses
 * FEATURES_OK): the VM must still be restorable (found by fuzz_device_state,
 * its reproducer is in the seed corpus). With FEATURES_OK such bits can
 * only come from a crafted state, which is refused. */
static void load_into_fresh(struct fixture *x, struct rec r, int want)
{
    struct fixture *y = calloc(1, sizeof(*y));
    make(y, false);
    memcpy(y->f.mem, x->f.mem, VQF_MEM_SIZE);
    assert_int_equal(virtio_mmio_load(&y->vm, r), want);
    if (!want)
        assert_true(y->rng.vdev.driver_features == x->rng.vdev.driver_features);
    unmake(y);
    free(y);
}

static void test_unoffered_driver_features_restore(void **state)
{
    struct fixture *x = *state;
    negotiate(x, (1ull << VIRTIO_F_VERSION_1) | (1ull << 50));
    assert_false(rd(x, VMMIO_STATUS) & S_FOK);
    struct rec r = rec_new();
    virtio_mmio_save(&x->vm, r);
    load_into_fresh(x, r, 0);
    rec_free(r);
    wr(x, VMMIO_STATUS, 0);
    bring_up(x);
    x->rng.vdev.driver_features |= 1ull << 50;
    r = rec_new();
    virtio_mmio_save(&x->vm, r);
    load_into_fresh(x, r, -EINVAL);
    assert_non_null(strstr(err_msg(), "driver features beyond the device's"));
    rec_free(r);
}

/* A queue made ready before DRIVER_OK with rings outside guest memory (the
 * fuzzer's find): its snapshot must restore, the queue broken as the device
 * would find it at DRIVER_OK, which then asks for a reset as before. */
static void test_ready_queue_bad_rings_restores(void **state)
{
    struct fixture *x = *state;
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    setup_queue(x, 0xfffffffffffff000ull, VQF_AVAIL, VQF_USED);
    struct rec r = rec_new();
    virtio_mmio_save(&x->vm, r);
    load_into_fresh(x, r, 0);
    rec_free(r);
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_true(rd(x, VMMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* --- hostile register sequences ---------------------------------------------- */

static void h_driver_ok_without_features_ok(struct fixture *x)
{
    wr(x, VMMIO_STATUS, S_ACK | S_DRV);
    setup_queue(x, VQF_DESC, VQF_AVAIL, VQF_USED);
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_DOK);
    request(x, 0);
}

static void h_bad_queue_sizes(struct fixture *x)
{
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    wr(x, VMMIO_QUEUE_SEL, 0);
    static const uint32_t sizes[] = {0, 15, 128, 0x10000, 0xffffffff};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        wr(x, VMMIO_QUEUE_NUM, sizes[i]);
        assert_int_equal(x->rng.vdev.queues[0].size, 64); /* unchanged */
    }
}

static void h_queue_moved_while_ready(struct fixture *x)
{
    bring_up(x);
    wr(x, VMMIO_QUEUE_DESC_LOW, 0x7fff0000);
    wr(x, VMMIO_QUEUE_NUM, 2);
    assert_int_equal(x->rng.vdev.queues[0].desc_gpa, VQF_DESC);
    assert_int_equal(x->rng.vdev.queues[0].size, 16);
    wr(x, VMMIO_STATUS, 0); /* the check below brings it up again */
}

static void h_queue_out_of_range(struct fixture *x)
{
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    wr(x, VMMIO_QUEUE_SEL, 99);
    assert_int_equal(rd(x, VMMIO_QUEUE_NUM_MAX), 0);
    wr(x, VMMIO_QUEUE_NUM, 16);
    wr(x, VMMIO_QUEUE_DESC_LOW, 0x1000);
    wr(x, VMMIO_QUEUE_READY, 1);
    assert_int_equal(rd(x, VMMIO_QUEUE_READY), 0);
    wr(x, VMMIO_QUEUE_NOTIFY, 99);
    wr(x, VMMIO_QUEUE_NOTIFY, 0xffffffff);
}

static void h_rings_outside_memory(struct fixture *x)
{
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    setup_queue(x, 0xfffffffffffff000ull, VQF_AVAIL, VQF_USED);
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_true(rd(x, VMMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(rd(x, VMMIO_INTERRUPT_STATUS) & VMMIO_INT_CONFIG); /* told about it */
    request(x, 0);
}

static void h_odd_accesses(struct fixture *x)
{
    /* Registers take aligned 32-bit accesses only: others read 0 and do nothing. */
    assert_int_equal(rd_n(x, VMMIO_MAGIC, 1), 0);
    assert_int_equal(rd_n(x, VMMIO_MAGIC, 2), 0);
    assert_int_equal(rd_n(x, VMMIO_MAGIC + 1, 4), 0);
    assert_int_equal(rd_n(x, VMMIO_MAGIC, 8), 0);
    wr_n(x, VMMIO_STATUS, 1, S_ACK);
    wr_n(x, VMMIO_STATUS, 2, S_ACK);
    wr_n(x, VMMIO_STATUS, 8, S_ACK);
    wr_n(x, VMMIO_STATUS + 2, 4, S_ACK);
    assert_int_equal(rd(x, VMMIO_STATUS), 0);
    wr(x, VMMIO_MAGIC, 0);                 /* read-only */
    wr(x, VMMIO_DEVICE_ID, 9);
    assert_int_equal(rd(x, VMMIO_MAGIC), 0x74726976);
    /* Configuration space past the device's (rng has none). */
    assert_int_equal(rd_n(x, VMMIO_CONFIG, 4), 0);
    wr_n(x, VMMIO_CONFIG + 0xef0, 8, ~0ull);
    assert_int_equal(rd_n(x, 0xffc, 4), 0);
}

static void h_notify_other_widths(struct fixture *x)
{
    bring_up(x);
    vqf_desc(&x->f, 0, VQF_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
    vqf_publish(&x->f, 0);
    wr_n(x, VMMIO_QUEUE_NOTIFY, 2, 0); /* not a 32-bit write: not a notification */
    wr_n(x, VMMIO_QUEUE_NOTIFY + 1, 1, 0);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    wr(x, VMMIO_STATUS, 0);
}

static void h_status_games(struct fixture *x)
{
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    setup_queue(x, VQF_DESC, VQF_AVAIL, VQF_USED);
    wr(x, VMMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
    wr(x, VMMIO_STATUS, S_ACK);           /* clearing bits: the status only gains them */
    assert_true(rd(x, VMMIO_STATUS) & S_DOK);
    wr(x, VMMIO_INTERRUPT_ACK, 0xffffffff);
    wr(x, VMMIO_STATUS, 0);               /* reset: everything back */
    assert_int_equal(rd(x, VMMIO_STATUS), 0);
    assert_int_equal(rd(x, VMMIO_QUEUE_READY), 0);
    assert_int_equal(rd(x, VMMIO_INTERRUPT_STATUS), 0);
    request(x, 0);
}

static void h_queue_disabled_live(struct fixture *x)
{
    bring_up(x);
    wr(x, VMMIO_QUEUE_READY, 0);          /* the driver takes the queue back */
    assert_int_equal(rd(x, VMMIO_QUEUE_READY), 0);
    request(x, 0);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    wr(x, VMMIO_QUEUE_READY, 7);          /* neither 0 nor 1: ignored */
    assert_int_equal(rd(x, VMMIO_QUEUE_READY), 0);
    wr(x, VMMIO_STATUS, 0);
}

static void h_feature_select_far(struct fixture *x)
{
    wr(x, VMMIO_STATUS, S_ACK | S_DRV);
    wr(x, VMMIO_DRIVER_FEATURES_SEL, 0x80000000);
    wr(x, VMMIO_DRIVER_FEATURES, 0xffffffff);
    wr(x, VMMIO_DEVICE_FEATURES_SEL, 0xffffffff);
    assert_int_equal(rd(x, VMMIO_DEVICE_FEATURES), 0);
    assert_int_equal(x->rng.vdev.driver_features, 0);
    wr(x, VMMIO_STATUS, 0);
}

static const struct {
    const char *name;
    void (*run)(struct fixture *x);
    bool processes; /* whether the request made along the way may complete */
} hostile[] = {
    {"DRIVER_OK without FEATURES_OK", h_driver_ok_without_features_ok, false},
    {"queue sizes 0, 15, 128, 65536, ~0", h_bad_queue_sizes, false},
    {"a live queue moved or resized", h_queue_moved_while_ready, false},
    {"queue 99 selected and notified", h_queue_out_of_range, false},
    {"rings outside guest memory", h_rings_outside_memory, false},
    {"1-, 2-, 8-byte and unaligned register accesses", h_odd_accesses, false},
    {"notifications of other widths", h_notify_other_widths, false},
    {"status bits cleared, reset mid-way", h_status_games, false},
    {"a live queue disabled", h_queue_disabled_live, false},
    {"feature selectors far out", h_feature_select_far, false},
};

static void test_hostile_sequences(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
        struct fixture *x = calloc(1, sizeof(*x));
        make(x, false);
        hostile[i].run(x);
        if (!hostile[i].processes && vqf_used_idx(&x->f) != 0)
            fail_msg("%s: a request completed", hostile[i].name);
        /* Whatever happened, a reset and a proper setup work. */
        wr(x, VMMIO_STATUS, 0);
        memset(x->f.mem + VQF_AVAIL, 0, 0x2000);
        x->f.avail_idx = 0;
        bring_up(x);
        request(x, 0);
        if (vqf_used_idx(&x->f) != 1)
            fail_msg("%s: the device does not work after a reset", hostile[i].name);
        unmake(x);
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_and_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irqfd, setup_irqfd, teardown),
        cmocka_unit_test_setup_teardown(test_pause_holds_notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unoffered_driver_features_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_queue_bad_rings_restores, setup, teardown),
        cmocka_unit_test(test_hostile_sequences),
    };
    return cmocka_run_group_tests_name("virtio_mmio", tests, NULL, NULL);
}

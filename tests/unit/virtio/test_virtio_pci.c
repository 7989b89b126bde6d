/* The virtio-PCI transport with a fake platform: what the guest's driver sees
 * in configuration space and the BAR, and what reaches the platform. */
#include "vq_fake.h"
#include "fake_irq.h"

#include "bus/pci/msix.h"
#include "virtio/rng.h"
#include "virtio/transport_pci.h"

#define BAR_ADDR 0xc0010000ull
#define SLOT 1
#define INTX_GSI 17

struct fake_platform {
    unsigned fired[MSIX_MAX_VECTORS];
    bool enabled[MSIX_MAX_VECTORS];
    uint32_t data[MSIX_MAX_VECTORS];
    int next;
    uint64_t bound_addr;
    int binds, unbinds;
};

static int fp_alloc(void *ctx, int *h)
{
    *h = ((struct fake_platform *)ctx)->next++;
    return 0;
}

static int fp_set(void *ctx, int h, uint64_t addr, uint32_t data, bool enabled)
{
    struct fake_platform *p = ctx;
    (void)addr;
    p->enabled[h] = enabled;
    p->data[h] = data;
    return 0;
}

static void fp_fire(void *ctx, int h)
{
    ((struct fake_platform *)ctx)->fired[h]++;
}

static const struct msi_ops fp_msi = {fp_alloc, fp_set, fp_fire, NULL};

static int fp_ioeventfd(void *ctx, int fd, uint64_t addr, unsigned len, const uint64_t *datamatch,
                        bool assign)
{
    struct fake_platform *p = ctx;
    (void)fd;
    assert_int_equal(len, 2);
    assert_null(datamatch); /* any value written to a queue's own address */
    if (assign) {
        p->binds++;
        p->bound_addr = addr;
    } else {
        p->unbinds++;
        p->bound_addr = 0;
    }
    return 0;
}

struct fixture {
    struct vq_fake f;
    struct fake_platform fp;
    struct fake_irq irq;
    struct irq_sink sink;
    struct bus mmio;
    struct evloop loop;
    struct pci_bus pci;
    struct pci_platform plat;
    struct virtio_rng rng;
    struct virtio_pci vp;
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    vqf_init(&x->f, 16);
    x->sink = fake_irq_sink(&x->irq);
    bus_init(&x->mmio, "mmio");
    assert_int_equal(evloop_init(&x->loop), 0);
    pci_bus_init(&x->pci);
    x->plat = (struct pci_platform){&x->mmio, &x->loop, &fp_msi, &x->fp, fp_ioeventfd, &x->fp,
                                   NULL, NULL, NULL};
    assert_int_equal(virtio_rng_init(&x->rng, &x->f.gm, NULL, NULL), 0);
    assert_int_equal(virtio_pci_init(&x->vp, &x->rng.vdev, &x->pci, SLOT, BAR_ADDR,
                                     (struct irq_line){&x->sink, INTX_GSI}, &x->plat), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    virtio_pci_destroy(&x->vp);
    virtio_dev_destroy(&x->rng.vdev);
    pci_bus_destroy(&x->pci);
    evloop_destroy(&x->loop);
    bus_destroy(&x->mmio);
    vqf_free(&x->f);
    free(x);
    return 0;
}

static uint64_t bar_rd(struct fixture *x, uint64_t off, unsigned len)
{
    uint8_t buf[8] = {0};
    assert_true(bus_read(&x->mmio, x->vp.bar_addr + off, buf, len));
    return le_load_n(buf, len);
}

static void bar_wr(struct fixture *x, uint64_t off, unsigned len, uint64_t v)
{
    uint8_t buf[8];
    le_store_n(buf, len, v);
    assert_true(bus_write(&x->mmio, x->vp.bar_addr + off, buf, len));
}

static uint32_t cfg_rd(struct fixture *x, unsigned off, unsigned len)
{
    return pci_config_read(&x->pci, SLOT, 0, off, len);
}

static void cfg_wr(struct fixture *x, unsigned off, unsigned len, uint32_t v)
{
    pci_config_write(&x->pci, SLOT, 0, off, len, v);
}

/* Offset of the vendor capability of 'type' (or MSI-X with type 0). */
static unsigned find_cap(struct fixture *x, unsigned type)
{
    assert_true(cfg_rd(x, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    for (unsigned off = cfg_rd(x, PCI_CAPABILITY_LIST, 1), n = 0; off && n < 48;
         off = cfg_rd(x, off + 1, 1), n++) {
        unsigned id = cfg_rd(x, off, 1);
        if ((type == 0 && id == PCI_CAP_ID_MSIX) ||
            (type && id == PCI_CAP_ID_VENDOR && cfg_rd(x, off + 3, 1) == type))
            return off;
    }
    fail_msg("capability %u not found", type);
    return 0;
}

static void test_identity_and_capabilities(void **state)
{
    struct fixture *x = *state;
    assert_int_equal(cfg_rd(x, 0, 4), 0x10441af4); /* modern virtio-rng */
    assert_int_equal(cfg_rd(x, PCI_REVISION, 1), 1);
    assert_int_equal(cfg_rd(x, PCI_INTERRUPT_PIN, 1), 1);
    assert_int_equal(cfg_rd(x, PCI_BAR0, 4), (uint32_t)BAR_ADDR);
    static const struct { unsigned type, offset, len; } caps[] = {
        {1, 0x0000, 16}, {2, 0x3000, 20}, {3, 0x1000, 16}, {4, 0x2000, 16}, {5, 0, 20},
    };
    for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
        unsigned c = find_cap(x, caps[i].type);
        assert_int_equal(cfg_rd(x, c + 2, 1), caps[i].len); /* cap_len */
        assert_int_equal(cfg_rd(x, c + 4, 1), 0);           /* BAR 0 */
        if (caps[i].type != 5)
            assert_int_equal(cfg_rd(x, c + 8, 4), caps[i].offset);
    }
    assert_int_equal(cfg_rd(x, find_cap(x, 2) + 16, 4), 4); /* notify multiplier */
    unsigned msix = find_cap(x, 0);
    assert_int_equal(cfg_rd(x, msix + 2, 2) & 0x7ff, 1);    /* 2 vectors */
    assert_int_equal(cfg_rd(x, msix + 4, 4), 0x4000);       /* table in BAR 0 */
    assert_int_equal(cfg_rd(x, msix + 8, 4), 0x5000);
}

static void test_bar_live_at_boot(void **state)
{
    struct fixture *x = *state;
    assert_true(x->vp.bar_mapped);
    assert_int_equal(bar_rd(x, 0x12, 2), 1);                 /* num_queues */
    assert_int_equal(x->fp.bound_addr, BAR_ADDR + 0x3000);   /* queue 0 notify */
    /* Wrong-width accesses to the common configuration are ignored. */
    assert_int_equal(bar_rd(x, 0x12, 4), 0);
}

static void negotiate(struct fixture *x, uint64_t features)
{
    bar_wr(x, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    bar_wr(x, 0x08, 4, 0);
    bar_wr(x, 0x0c, 4, (uint32_t)features);
    bar_wr(x, 0x08, 4, 1);
    bar_wr(x, 0x0c, 4, (uint32_t)(features >> 32));
    bar_wr(x, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                           VIRTIO_STATUS_FEATURES_OK);
}

static void test_feature_negotiation(void **state)
{
    struct fixture *x = *state;
    bar_wr(x, 0x00, 4, 1);
    assert_int_equal(bar_rd(x, 0x04, 4), 1); /* VERSION_1 is bit 32 */
    negotiate(x, 1ull << VIRTIO_F_EVENT_IDX);   /* no VERSION_1: legacy driver */
    assert_false(bar_rd(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    bar_wr(x, 0x14, 1, 0); /* reset */
    assert_int_equal(bar_rd(x, 0x14, 1), 0);
    negotiate(x, (1ull << VIRTIO_F_VERSION_1) | (1ull << 50)); /* unoffered bit */
    assert_false(bar_rd(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    bar_wr(x, 0x14, 1, 0);
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    assert_true(bar_rd(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(struct fixture *x, uint64_t desc, uint64_t avail, uint64_t used)
{
    bar_wr(x, 0x16, 2, 0);
    assert_int_equal(bar_rd(x, 0x18, 2), 64);
    bar_wr(x, 0x18, 2, 16);
    bar_wr(x, 0x20, 4, (uint32_t)desc);
    bar_wr(x, 0x24, 4, (uint32_t)(desc >> 32));
    bar_wr(x, 0x28, 8, avail);
    bar_wr(x, 0x30, 8, used);
    bar_wr(x, 0x1c, 2, 1);
}

static void test_intx_and_bad_rings(void **state)
{
    struct fixture *x = *state;
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    setup_queue(x, 0x7ffff000ull, VQF_AVAIL, VQF_USED); /* outside guest memory */
    bar_wr(x, 0x14, 1, 0x0f);
    assert_true(bar_rd(x, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
    /* MSI-X is off, so the config change arrives as INTx with ISR bit 1. */
    assert_true(x->irq.level[INTX_GSI]);
    assert_true(cfg_rd(x, PCI_STATUS, 1) & PCI_STATUS_INTERRUPT);
    assert_int_equal(bar_rd(x, 0x1000, 1), 2);
    assert_false(x->irq.level[INTX_GSI]); /* reading ISR acknowledges */
    assert_int_equal(bar_rd(x, 0x1000, 1), 0);
    /* INTx disabled in the command register masks the line. */
    bar_wr(x, 0x14, 1, 0);
    assert_int_equal(bar_rd(x, 0x14, 1), 0);
}

/* A driver that sets DRIVER_OK without FEATURES_OK, enables a queue and
 * notifies it must get nothing (the device is not live), and ember must
 * not touch the queue; a proper setup afterwards works. */
static void test_driver_ok_without_features_ok(void **state)
{
    struct fixture *x = *state;
    bar_wr(x, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    setup_queue(x, VQF_DESC, VQF_AVAIL, VQF_USED);
    bar_wr(x, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                           VIRTIO_STATUS_DRIVER_OK);
    vqf_desc(&x->f, 0, VQF_DATA, 16, VIRTQ_DESC_F_WRITE, 0);
    vqf_publish(&x->f, 0);
    bar_wr(x, 0x3000, 2, 0); /* notify queue 0 */
    assert_false(virtio_dev_live(&x->rng.vdev));
    assert_int_equal(vqf_used_idx(&x->f), 0);
    bar_wr(x, 0x1c, 2, 1); /* enabling again changes nothing */
    bar_wr(x, 0x3000, 2, 0);
    assert_int_equal(vqf_used_idx(&x->f), 0);
    /* Reset and do it right. */
    bar_wr(x, 0x14, 1, 0);
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    setup_queue(x, VQF_DESC, VQF_AVAIL, VQF_USED);
    bar_wr(x, 0x14, 1, 0x0f);
    assert_true(virtio_dev_live(&x->rng.vdev));
    bar_wr(x, 0x3000, 2, 0);
    assert_int_equal(vqf_used_idx(&x->f), 1);
}

static void test_msix_masking(void **state)
{
    struct fixture *x = *state;
    unsigned msix = find_cap(x, 0);
    cfg_wr(x, msix + 2, 2, 0x8000);              /* enable */
    bar_wr(x, 0x4000, 4, 0xfee00000);            /* vector 0 address */
    bar_wr(x, 0x4008, 4, 0x41);                  /* data */
    bar_wr(x, 0x400c, 4, 0);                     /* unmask */
    assert_true(x->fp.enabled[0]);
    assert_int_equal(x->fp.data[0], 0x41);
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    bar_wr(x, 0x16, 2, 0);
    bar_wr(x, 0x1a, 2, 0);                       /* queue 0 -> vector 0 */
    assert_int_equal(bar_rd(x, 0x1a, 2), 0);
    bar_wr(x, 0x1a, 2, 7);                       /* no such vector */
    assert_int_equal(bar_rd(x, 0x1a, 2), MSIX_NO_VECTOR);
    bar_wr(x, 0x1a, 2, 0);
    x->rng.vdev.transport->notify_queue(&x->rng.vdev, 0);
    assert_int_equal(x->fp.fired[0], 1);
    assert_false(x->irq.level[INTX_GSI]);        /* no INTx with MSI-X on */
    bar_wr(x, 0x400c, 4, 1);                     /* mask the vector */
    assert_false(x->fp.enabled[0]);
    x->rng.vdev.transport->notify_queue(&x->rng.vdev, 0);
    assert_int_equal(x->fp.fired[0], 1);
    assert_int_equal(bar_rd(x, 0x5000, 8) & 1, 1); /* pending */
    bar_wr(x, 0x400c, 4, 0);                       /* unmask: delivered now */
    assert_int_equal(x->fp.fired[0], 2);
    assert_int_equal(bar_rd(x, 0x5000, 8) & 1, 0);
    cfg_wr(x, msix + 2, 2, 0xc000);                /* function mask */
    x->rng.vdev.transport->notify_queue(&x->rng.vdev, 0);
    assert_int_equal(x->fp.fired[0], 2);
    cfg_wr(x, msix + 2, 2, 0x8000);
    assert_int_equal(x->fp.fired[0], 3);
}

/* A virtio reset (status 0) is the device's, not a PCI function reset: the
 * MSI-X capability and table belong to the function (the PCI core
 * programmed them and Linux does not do it again after a virtio reset), so
 * they stay; only the virtio vectors chosen through the common
 * configuration go. ember has no PCI function reset (no FLR, no power
 * management capability, no bridge; a guest reboot ends the process). */
static void test_virtio_reset_keeps_msix(void **state)
{
    struct fixture *x = *state;
    unsigned msix = find_cap(x, 0);
    cfg_wr(x, msix + 2, 2, 0x8000);
    bar_wr(x, 0x4000, 4, 0xfee00000);
    bar_wr(x, 0x4008, 4, 0x41);
    bar_wr(x, 0x400c, 4, 0);
    negotiate(x, 1ull << VIRTIO_F_VERSION_1);
    bar_wr(x, 0x16, 2, 0);
    bar_wr(x, 0x1a, 2, 0);                       /* queue 0 -> vector 0 */
    bar_wr(x, 0x14, 1, 0);                       /* virtio reset */
    assert_int_equal(cfg_rd(x, msix + 2, 2) & 0xc000, 0x8000); /* still on, unmasked */
    assert_int_equal(bar_rd(x, 0x4000, 4), 0xfee00000);
    assert_int_equal(bar_rd(x, 0x4008, 4), 0x41);
    assert_int_equal(bar_rd(x, 0x400c, 4), 0);
    assert_true(x->fp.enabled[0]);
    assert_int_equal(bar_rd(x, 0x1a, 2), MSIX_NO_VECTOR); /* the driver chooses again */
}

static void test_bar_moves(void **state)
{
    struct fixture *x = *state;
    uint64_t moved = 0xc0800000ull;
    uint16_t cmd = (uint16_t)cfg_rd(x, PCI_COMMAND, 2);
    cfg_wr(x, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY); /* decoding off */
    assert_false(x->vp.bar_mapped);
    uint8_t buf[4];
    assert_false(bus_read(&x->mmio, BAR_ADDR + 0x12, buf, 2));
    assert_int_equal(x->fp.bound_addr, 0);
    cfg_wr(x, PCI_BAR0, 4, 0xffffffff);                     /* sizing */
    assert_int_equal(cfg_rd(x, PCI_BAR0, 4), ~(uint32_t)(VIRTIO_PCI_BAR_SIZE - 1));
    cfg_wr(x, PCI_BAR0, 4, (uint32_t)moved);
    cfg_wr(x, PCI_COMMAND, 2, cmd);
    assert_true(x->vp.bar_mapped && x->vp.bar_addr == moved);
    assert_false(bus_read(&x->mmio, BAR_ADDR + 0x12, buf, 2));
    assert_true(bus_read(&x->mmio, moved + 0x12, buf, 2));
    assert_int_equal(le16_load(buf), 1);
    assert_int_equal(x->fp.bound_addr, moved + 0x3000);
    assert_int_equal(x->fp.binds, 2);
    assert_int_equal(x->fp.unbinds, 1);
}

static void test_pci_cfg_window(void **state)
{
    struct fixture *x = *state;
    unsigned w = find_cap(x, 5);
    cfg_wr(x, w + 4, 1, 0);          /* BAR 0 */
    cfg_wr(x, w + 8, 4, 0x12);       /* num_queues */
    cfg_wr(x, w + 12, 4, 2);
    assert_int_equal(cfg_rd(x, w + 16, 2), 1);
    cfg_wr(x, w + 8, 4, 0x14);       /* device_status, through the window */
    cfg_wr(x, w + 12, 4, 1);
    cfg_wr(x, w + 16, 1, VIRTIO_STATUS_ACKNOWLEDGE);
    assert_int_equal(bar_rd(x, 0x14, 1), VIRTIO_STATUS_ACKNOWLEDGE);
    cfg_wr(x, w + 8, 4, 0x7ffe);     /* past the BAR: ignored */
    cfg_wr(x, w + 12, 4, 4);
    cfg_rd(x, w + 16, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_and_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_live_at_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_and_bad_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_driver_ok_without_features_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtio_reset_keeps_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
    };
    return cmocka_run_group_tests_name("virtio_pci", tests, NULL, NULL);
}

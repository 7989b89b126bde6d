/* The IOAPIC against the 82093AA datasheet and Linux 6.1's io_apic.c usage
 * (ioapic_write_entry writes the high dword first, masks around changes,
 * EOIs level pins through the EOI register or the edge/level toggle), the
 * storm guard, MSI decoding, hostile accesses and snapshots. */
#include "irqchip_fakes.h"

#include "irqchip/ioapic.h"

#define MAX_MSGS 64

struct fixture {
    struct ioapic io;
    struct fake_clock clock;
    struct fake_timer timer;
    struct apic_msg msgs[MAX_MSGS];
    unsigned nmsgs;
    int accept; /* what deliver returns */
};

static int deliver(void *ctx, const struct apic_msg *msg)
{
    struct fixture *f = ctx;
    if (f->nmsgs < MAX_MSGS)
        f->msgs[f->nmsgs] = *msg;
    f->nmsgs++;
    return f->accept;
}

static const struct ioapic_ops ops = {.deliver = deliver};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->accept = 1;
    ioapic_init(&f->io, &ops, f, fake_vclock(&f->clock, 0), fake_vtimer(&f->timer));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ioapic_destroy(&f->io);
    free(f);
    return 0;
}

static uint32_t ind_read(struct fixture *f, uint8_t reg)
{
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x00, reg);
    return mmio_rd32(&ioapic_bus_ops, &f->io, 0x10);
}

static void ind_write(struct fixture *f, uint8_t reg, uint32_t v)
{
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x00, reg);
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x10, v);
}

/* As Linux's __ioapic_write_entry: high dword, then low. */
static void write_entry(struct fixture *f, unsigned pin, uint64_t e)
{
    ind_write(f, (uint8_t)(0x11 + 2 * pin), (uint32_t)(e >> 32));
    ind_write(f, (uint8_t)(0x10 + 2 * pin), (uint32_t)e);
}

static uint64_t read_entry(struct fixture *f, unsigned pin)
{
    uint64_t lo = ind_read(f, (uint8_t)(0x10 + 2 * pin));
    uint64_t hi = ind_read(f, (uint8_t)(0x11 + 2 * pin));
    return hi << 32 | lo;
}

#define LEVEL IOAPIC_RTE_LEVEL
#define MASKED IOAPIC_RTE_MASKED
#define LOW IOAPIC_RTE_POLARITY
#define RIRR IOAPIC_RTE_REMOTE_IRR
#define DEST(d) ((uint64_t)(d) << 56)

static void test_reset_registers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ind_read(f, 0x01), 0x00170020);
    assert_int_equal(ind_read(f, 0x00), 0);
    for (unsigned pin = 0; pin < 24; pin++)
        assert_int_equal(read_entry(f, pin), MASKED);
    /* ID: 4 bits at 27:24; arbitration ID follows it; version read-only. */
    ind_write(f, 0x00, 0xff000000);
    assert_int_equal(ind_read(f, 0x00), 0x0f000000);
    assert_int_equal(ind_read(f, 0x02), 0x0f000000);
    ind_write(f, 0x01, 0);
    assert_int_equal(ind_read(f, 0x01), 0x00170020);
    ind_write(f, 0x02, 0);
    assert_int_equal(ind_read(f, 0x02), 0x0f000000);
    /* IOREGSEL reads back; undefined indices read all ones. */
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x00, 0x42);
    assert_int_equal(mmio_rd32(&ioapic_bus_ops, &f->io, 0x00), 0x42);
    assert_int_equal(ind_read(f, 0x03), 0xffffffff);
    assert_int_equal(ind_read(f, 0x40), 0xffffffff);
    assert_int_equal(ind_read(f, 0xff), 0xffffffff);
    /* The EOI register is write-only. */
    assert_int_equal(mmio_rd32(&ioapic_bus_ops, &f->io, 0x40), 0);
    ioapic_reset(&f->io);
    assert_int_equal(ind_read(f, 0x00), 0);
}

static void test_entry_bits(void **state)
{
    struct fixture *f = *state;
    /* Everything writable comes back; delivery status and remote IRR are
     * read-only; reserved bits read 0. */
    write_entry(f, 5, 0xffffffffffffffffull);
    assert_int_equal(read_entry(f, 5), 0xff0000000001afffull);
    write_entry(f, 5, MASKED);
    assert_int_equal(read_entry(f, 5), MASKED);
    /* Masked edge: dropped. */
    write_entry(f, 1, MASKED | 0x31);
    ioapic_set_irq(&f->io, 1, true);
    ioapic_set_irq(&f->io, 1, false);
    write_entry(f, 1, 0x31);
    assert_int_equal(f->nmsgs, 0);
}

static void test_edge_delivery(void **state)
{
    struct fixture *f = *state;
    write_entry(f, 2, DEST(3) | 0x30); /* IRQ0 via pin 2, physical APIC 3 */
    ioapic_set_irq(&f->io, 2, true);
    assert_int_equal(f->nmsgs, 1);
    assert_int_equal(f->msgs[0].vector, 0x30);
    assert_int_equal(f->msgs[0].dest, 3);
    assert_false(f->msgs[0].dest_logical);
    assert_int_equal(f->msgs[0].delivery_mode, APIC_DM_FIXED);
    assert_false(f->msgs[0].trigger_level);
    /* Held high: no more; each new rising edge: one more. */
    ioapic_set_irq(&f->io, 2, true);
    assert_int_equal(f->nmsgs, 1);
    ioapic_set_irq(&f->io, 2, false);
    ioapic_set_irq(&f->io, 2, true);
    ioapic_set_irq(&f->io, 2, false);
    assert_int_equal(f->nmsgs, 2);
    /* Edge entries ignore EOIs; remote IRR never set. */
    ioapic_eoi(&f->io, 0x30);
    assert_int_equal(read_entry(f, 2) & RIRR, 0);
    /* Logical destination, lowest priority. */
    write_entry(f, 4, DEST(0x0f) | IOAPIC_RTE_DESTMODE | (1u << 8) | 0x41);
    ioapic_set_irq(&f->io, 4, true);
    assert_int_equal(f->nmsgs, 3);
    assert_true(f->msgs[2].dest_logical);
    assert_int_equal(f->msgs[2].delivery_mode, APIC_DM_LOWEST);
    assert_int_equal(f->msgs[2].dest, 0x0f);
    /* Out-of-range pins are ignored. */
    ioapic_set_irq(&f->io, 24, true);
    ioapic_set_irq(&f->io, UINT32_MAX, true);
    assert_int_equal(f->nmsgs, 3);
}

static void test_level_remote_irr_and_eoi(void **state)
{
    struct fixture *f = *state;
    /* Active low as Linux programs PCI pins; the line is logical. */
    write_entry(f, 9, DEST(0) | LEVEL | LOW | 0x39);
    assert_int_equal(f->nmsgs, 0);
    ioapic_set_irq(&f->io, 9, true);                  /* asserted */
    assert_int_equal(f->nmsgs, 1);
    assert_true(f->msgs[0].trigger_level);
    assert_true(read_entry(f, 9) & RIRR);
    /* No re-delivery while remote IRR is set. */
    ioapic_set_irq(&f->io, 9, true);
    assert_int_equal(f->nmsgs, 1);
    /* An EOI for another vector does nothing. */
    ioapic_eoi(&f->io, 0x38);
    assert_true(read_entry(f, 9) & RIRR);
    /* EOI with the line still asserted: delivered again. */
    ioapic_eoi(&f->io, 0x39);
    assert_int_equal(f->nmsgs, 2);
    assert_true(read_entry(f, 9) & RIRR);
    /* Line released, then the EOI register: idle. */
    ioapic_set_irq(&f->io, 9, false);
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x40, 0x39);
    assert_int_equal(read_entry(f, 9) & RIRR, 0);
    assert_int_equal(f->nmsgs, 2);
    /* Writing the entry does not clear remote IRR... */
    ioapic_set_irq(&f->io, 9, true);
    assert_int_equal(f->nmsgs, 3);
    write_entry(f, 9, DEST(0) | LEVEL | LOW | 0x39);
    assert_true(read_entry(f, 9) & RIRR);
    assert_int_equal(f->nmsgs, 3);
    /* ...but switching to edge does (Linux's __eoi_ioapic_pin fallback), and
     * back to level with the line asserted delivers. */
    write_entry(f, 9, DEST(0) | LOW | MASKED | 0x39);
    assert_int_equal(read_entry(f, 9) & RIRR, 0);
    write_entry(f, 9, DEST(0) | LEVEL | LOW | 0x39);
    assert_int_equal(f->nmsgs, 4);
    assert_true(read_entry(f, 9) & RIRR);
}

static void test_level_masked_then_unmasked(void **state)
{
    struct fixture *f = *state;
    write_entry(f, 11, LEVEL | MASKED | 0x51);
    ioapic_set_irq(&f->io, 11, true);
    assert_int_equal(f->nmsgs, 0);
    assert_int_equal(read_entry(f, 11) & RIRR, 0);
    write_entry(f, 11, LEVEL | 0x51); /* unmask while asserted */
    assert_int_equal(f->nmsgs, 1);
    /* Masked at EOI with the line still up: held until unmasked. */
    write_entry(f, 11, LEVEL | MASKED | 0x51);
    ioapic_eoi(&f->io, 0x51);
    assert_int_equal(f->nmsgs, 1);
    write_entry(f, 11, LEVEL | 0x51);
    assert_int_equal(f->nmsgs, 2);
    /* Dropped before unmask: nothing. */
    ioapic_eoi(&f->io, 0x51);
    assert_int_equal(f->nmsgs, 3);
    write_entry(f, 11, LEVEL | MASKED | 0x51);
    ioapic_set_irq(&f->io, 11, false);
    ioapic_eoi(&f->io, 0x51);
    write_entry(f, 11, LEVEL | 0x51);
    assert_int_equal(f->nmsgs, 3);
}

static void test_nobody_accepts(void **state)
{
    struct fixture *f = *state;
    f->accept = 0;
    write_entry(f, 16, DEST(7) | LEVEL | 0x61);
    ioapic_set_irq(&f->io, 16, true);
    assert_int_equal(f->nmsgs, 1);
    /* Not accepted: no remote IRR, so the pin is not stuck. */
    assert_int_equal(read_entry(f, 16) & RIRR, 0);
    f->accept = 1;
    write_entry(f, 16, DEST(0) | LEVEL | 0x61);
    assert_int_equal(f->nmsgs, 2);
    assert_true(read_entry(f, 16) & RIRR);
}

static void test_eoi_shared_vector(void **state)
{
    struct fixture *f = *state;
    write_entry(f, 16, LEVEL | 0x70);
    write_entry(f, 17, LEVEL | 0x70);
    ioapic_set_irq(&f->io, 16, true);
    ioapic_set_irq(&f->io, 17, true);
    assert_int_equal(f->nmsgs, 2);
    ioapic_set_irq(&f->io, 16, false);
    ioapic_eoi(&f->io, 0x70);
    /* Both remote IRRs cleared; 17 still asserted: re-delivered. */
    assert_int_equal(f->nmsgs, 3);
    assert_int_equal(read_entry(f, 16) & RIRR, 0);
    assert_true(read_entry(f, 17) & RIRR);
}

static void test_storm_guard(void **state)
{
    struct fixture *f = *state;
    f->clock.ns = 1000;
    write_entry(f, 20, LEVEL | 0x80);
    ioapic_set_irq(&f->io, 20, true);
    unsigned i;
    for (i = 1; i < 3 * IOAPIC_STORM_EOIS; i++) {
        unsigned before = f->nmsgs;
        ioapic_eoi(&f->io, 0x80);
        if (f->nmsgs == before)
            break;
    }
    /* Held back at the threshold, and the timer is armed 10 ms out. */
    assert_int_equal(i, IOAPIC_STORM_EOIS);
    assert_true(f->timer.armed);
    assert_int_equal(f->timer.deadline, 1000 + IOAPIC_STORM_DELAY_NS);
    assert_int_equal(read_entry(f, 20) & RIRR, 0);
    /* Still held by further EOIs and set_irq calls. */
    unsigned n = f->nmsgs;
    ioapic_eoi(&f->io, 0x80);
    ioapic_set_irq(&f->io, 20, true);
    assert_int_equal(f->nmsgs, n);
    /* An early expiry re-arms; the due one delivers. */
    ioapic_timer_expired(&f->io, 5000);
    assert_int_equal(f->nmsgs, n);
    assert_int_equal(f->timer.deadline, 1000 + IOAPIC_STORM_DELAY_NS);
    f->clock.ns = 1000 + IOAPIC_STORM_DELAY_NS;
    ioapic_timer_expired(&f->io, f->clock.ns);
    assert_int_equal(f->nmsgs, n + 1);
    assert_true(read_entry(f, 20) & RIRR);
    /* The count restarted: the next EOIs deliver at once again. */
    ioapic_eoi(&f->io, 0x80);
    assert_int_equal(f->nmsgs, n + 2);
    /* A device that goes quiet resets the count. */
    ioapic_set_irq(&f->io, 20, false);
    ioapic_eoi(&f->io, 0x80);
    assert_int_equal(f->nmsgs, n + 2);
}

static void test_msi_decoding(void **state)
{
    (void)state;
    struct apic_msg m;
    /* Linux's MSI: physical dest 2, fixed, edge, vector 0x41. */
    assert_true(apic_msg_from_msi(0xfee02000, 0x0041, &m));
    assert_int_equal(m.dest, 2);
    assert_false(m.dest_logical);
    assert_false(m.redir_hint);
    assert_int_equal(m.delivery_mode, APIC_DM_FIXED);
    assert_int_equal(m.vector, 0x41);
    assert_false(m.trigger_level);
    assert_int_equal(m.shorthand, APIC_SH_NONE);
    assert_int_equal(m.source, -1);
    /* Logical, redirection hint, lowest priority, level assert. */
    assert_true(apic_msg_from_msi(0xfee0f00c, 0xc1a2, &m));
    assert_int_equal(m.dest, 0x0f);
    assert_true(m.dest_logical);
    assert_true(m.redir_hint);
    assert_int_equal(m.delivery_mode, APIC_DM_LOWEST);
    assert_int_equal(m.vector, 0xa2);
    assert_true(m.trigger_level);
    assert_false(m.deassert);
    /* NMI; INIT level de-assert. */
    assert_true(apic_msg_from_msi(0xfee00000, 0x0400, &m));
    assert_int_equal(m.delivery_mode, APIC_DM_NMI);
    assert_true(apic_msg_from_msi(0xfee00000, 0x8500, &m));
    assert_true(m.deassert);
    /* Not the interrupt window. */
    assert_false(apic_msg_from_msi(0xfed00000, 0x41, &m));
    assert_false(apic_msg_from_msi(0x1fee00000ull, 0x41, &m));
    assert_int_equal(m.vector, 0);
}

static void check_recovers(struct fixture *f)
{
    for (unsigned pin = 0; pin < 24; pin++) {
        write_entry(f, pin, MASKED);
        ioapic_set_irq(&f->io, pin, false);
    }
    ioapic_timer_expired(&f->io, UINT64_MAX);
    for (unsigned v = 0; v < 256; v++)
        ioapic_eoi(&f->io, (uint8_t)v);
    for (unsigned pin = 0; pin < 24; pin++) {
        uint64_t e = read_entry(f, pin);
        assert_int_equal(e, MASKED);
    }
    assert_int_equal(ind_read(f, 0x01), 0x00170020);
    f->nmsgs = 0;
    f->accept = 1;
    write_entry(f, 10, DEST(1) | LEVEL | 0x5a);
    ioapic_set_irq(&f->io, 10, true);
    assert_int_equal(f->nmsgs, 1);
    assert_int_equal(f->msgs[0].vector, 0x5a);
    assert_int_equal(f->msgs[0].dest, 1);
    ioapic_set_irq(&f->io, 10, false);
    ioapic_eoi(&f->io, 0x5a);
    assert_int_equal(f->nmsgs, 1);
    assert_int_equal(read_entry(f, 10) & RIRR, 0);
}

static void test_hostile_table(void **state)
{
    struct fixture *f = *state;
    static const unsigned lens[] = {1, 2, 4, 8};
    uint32_t seed = 777;
    /* Every index with patterns through the window. */
    for (unsigned sel = 0; sel < 256; sel++) {
        static const uint32_t pats[] = {0, 0xffffffff, 0xaaaaaaaa, 0x55555555, 0x0001a000};
        for (unsigned p = 0; p < ARRAY_SIZE(pats); p++) {
            ind_write(f, (uint8_t)sel, pats[p] ^ xorshift32(&seed));
            (void)ind_read(f, (uint8_t)sel);
            uint32_t r = xorshift32(&seed);
            f->accept = (int)(r & 1);
            ioapic_set_irq(&f->io, r % 26, (r >> 5) & 1);
            ioapic_eoi(&f->io, (uint8_t)(r >> 8));
        }
    }
    /* Every offset of the window (and past it), every length. */
    for (uint64_t off = 0; off < 0x110; off++)
        for (unsigned li = 0; li < 4; li++)
            for (unsigned v = 0; v < 256; v += 5) {
                uint8_t data[8];
                for (unsigned i = 0; i < 8; i++)
                    data[i] = (uint8_t)(v * 7 + i);
                ioapic_bus_ops.write(&f->io, off, data, lens[li]);
                ioapic_bus_ops.read(&f->io, off, data, lens[li]);
            }
    ioapic_bus_ops.read(&f->io, UINT64_MAX - 3, &seed, 4);
    ioapic_bus_ops.write(&f->io, UINT64_MAX - 3, &seed, 4);
    ioapic_bus_ops.write(&f->io, 0x10, &seed, 0);
    /* Entries never hold reserved or read-only garbage. */
    for (unsigned pin = 0; pin < 24; pin++) {
        uint64_t e = read_entry(f, pin);
        assert_int_equal(e & ~(0xff0000000001afffull | RIRR), 0);
        if (!(e & LEVEL))
            assert_int_equal(e & RIRR, 0);
    }
    check_recovers(f);
}

static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    ind_write(f, 0x00, 0x02000000);
    write_entry(f, 9, DEST(1) | LEVEL | LOW | 0x39);
    write_entry(f, 2, DEST(0) | 0x30);
    write_entry(f, 12, MASKED | LEVEL | 0x3c);
    ioapic_set_irq(&f->io, 9, true);    /* asserted: remote IRR */
    ioapic_set_irq(&f->io, 12, true);   /* masked, pending */
    mmio_wr32(&ioapic_bus_ops, &f->io, 0x00, 0x13);
    assert_int_equal(f->nmsgs, 1);

    struct rec r = rec_new();
    ioapic_save(&f->io, r);
    struct rec copy = rec_roundtrip(r);
    rec_free(r);
    struct fixture *g = calloc(1, sizeof(*g));
    g->accept = 1;
    ioapic_init(&g->io, &ops, g, fake_vclock(&g->clock, 0), fake_vtimer(&g->timer));
    assert_int_equal(ioapic_load(&g->io, copy), 0);
    rec_free(copy);
    assert_int_equal(g->nmsgs, 0); /* nothing was due */
    struct fixture *both[2] = {f, g};
    for (int i = 0; i < 2; i++) {
        struct fixture *x = both[i];
        x->nmsgs = 0;
        assert_int_equal(mmio_rd32(&ioapic_bus_ops, &x->io, 0x00), 0x13);
        assert_int_equal(ind_read(x, 0x00), 0x02000000);
        assert_int_equal(read_entry(x, 9), DEST(1) | LEVEL | LOW | RIRR | 0x39);
        ioapic_eoi(&x->io, 0x39); /* still asserted: again */
        assert_int_equal(x->nmsgs, 1);
        write_entry(x, 12, LEVEL | 0x3c); /* unmask the pending one */
        assert_int_equal(x->nmsgs, 2);
        assert_int_equal(x->msgs[1].vector, 0x3c);
        ioapic_set_irq(&x->io, 2, true);  /* edge from low */
        assert_int_equal(x->nmsgs, 3);
    }
    ioapic_destroy(&g->io);
    free(g);
}

static void test_load_rejects_bad_values(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        /* 23 entries */
        "{\"id\":0,\"regsel\":0,\"lines\":0,\"deferred\":0,\"rte\":[]}",
        "{\"id\":16,\"regsel\":0,\"lines\":0,\"deferred\":0,\"rte\":[]}",
        "{\"id\":0,\"regsel\":256,\"lines\":0,\"deferred\":0,\"rte\":[]}",
        "{\"id\":0,\"regsel\":0,\"lines\":16777216,\"deferred\":0,\"rte\":[]}",
        "{\"id\":0,\"regsel\":0,\"lines\":0,\"rte\":[]}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct rec r;
        assert_int_equal(rec_parse(bad[i], strlen(bad[i]), &r), 0);
        assert_int_not_equal(ioapic_load(&f->io, r), 0);
        rec_free(r);
    }
    /* Bad entries: reserved bits, delivery status, remote IRR on edge, a
     * deferred edge pin. */
    static const uint64_t bad_rte[] = {1ull << 17, IOAPIC_RTE_DELIVS, RIRR, 1ull << 40};
    for (size_t i = 0; i < ARRAY_SIZE(bad_rte) + 1; i++) {
        struct rec r = rec_new();
        rec_put_u64(r, "id", 0);
        rec_put_u64(r, "regsel", 0);
        rec_put_u64(r, "lines", 0);
        rec_put_u64(r, "deferred", i == ARRAY_SIZE(bad_rte) ? 1 : 0);
        for (unsigned pin = 0; pin < 24; pin++)
            rec_put_u64(rec_put_item(r, "rte"), "value",
                        pin == 0 && i < ARRAY_SIZE(bad_rte) ? bad_rte[i] : 0);
        assert_int_not_equal(ioapic_load(&f->io, r), 0);
        rec_free(r);
    }
    /* Unchanged. */
    for (unsigned pin = 0; pin < 24; pin++)
        assert_int_equal(read_entry(f, pin), MASKED);
    check_recovers(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_remote_irr_and_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_masked_then_unmasked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nobody_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eoi_shared_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storm_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests_name("ioapic", tests, NULL, NULL);
}

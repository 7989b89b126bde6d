/* The 8259A pair against the datasheet and against what Linux 6.1 does with
 * it (arch/x86/kernel/i8259.c: probe, init_8259A, mask/ack/EOI, the spurious
 * IRQ check through ISR), plus hostile register writes and snapshots. */
#include "irqchip_fakes.h"

#include <pthread.h>

#include "irqchip/pic.h"

#define M_CMD 0
#define M_IMR 1

struct fixture {
    struct pic pic;
    bool out;
    unsigned rises, calls;
};

static void set_output(void *ctx, bool level)
{
    struct fixture *f = ctx;
    if (level && !f->out)
        f->rises++;
    f->out = level;
    f->calls++;
}

static const struct pic_ops ops = {.set_output = set_output};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    pic_init(&f->pic, &ops, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pic_destroy(&f->pic);
    free(f);
    return 0;
}

static void mw(struct fixture *f, unsigned off, uint8_t v)
{
    io_wr8(&pic_master_bus_ops, &f->pic, off, v);
}

static void sw(struct fixture *f, unsigned off, uint8_t v)
{
    io_wr8(&pic_slave_bus_ops, &f->pic, off, v);
}

static uint8_t mr(struct fixture *f, unsigned off)
{
    return io_rd8(&pic_master_bus_ops, &f->pic, off);
}

static uint8_t sr(struct fixture *f, unsigned off)
{
    return io_rd8(&pic_slave_bus_ops, &f->pic, off);
}

/* Linux's init_8259A(0) then its masks (all masked but the cascade). */
static void linux_init(struct fixture *f, bool auto_eoi)
{
    mw(f, 1, 0xff);
    mw(f, 0, 0x11);                 /* ICW1: edge, cascade, ICW4 */
    mw(f, 1, 0x30);                 /* ICW2: IRQ0 -> vector 0x30 */
    mw(f, 1, 0x04);                 /* ICW3: slave on IR2 */
    mw(f, 1, auto_eoi ? 0x03 : 0x01); /* ICW4: 8086 (+AEOI) */
    sw(f, 0, 0x11);
    sw(f, 1, 0x38);
    sw(f, 1, 0x02);
    sw(f, 1, 0x01);
    mw(f, 1, 0xfb);
    sw(f, 1, 0xff);
}

static void unmask(struct fixture *f, unsigned irq)
{
    if (irq < 8)
        mw(f, 1, mr(f, 1) & ~(1u << irq));
    else
        sw(f, 1, sr(f, 1) & ~(1u << (irq - 8)));
}

static uint8_t read_isr(struct fixture *f, bool slave)
{
    if (slave) {
        sw(f, 0, 0x0b);
        uint8_t v = sr(f, 0);
        sw(f, 0, 0x0a);
        return v;
    }
    mw(f, 0, 0x0b);
    uint8_t v = mr(f, 0);
    mw(f, 0, 0x0a);
    return v;
}

static void test_reset_state_and_probe(void **state)
{
    struct fixture *f = *state;
    assert_false(f->out);
    assert_false(pic_output(&f->pic));
    assert_int_equal(mr(f, M_IMR), 0xfb);
    assert_int_equal(sr(f, 1), 0xff);
    /* BIOS vectors. */
    mw(f, 1, 0xfe);
    pic_set_irq(&f->pic, 0, true);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x08);
    /* probe_8259A: the IMR reads back what was written. */
    sw(f, 1, 0xff);
    mw(f, 1, 0xfb);
    assert_int_equal(mr(f, 1), 0xfb);
    mw(f, 1, 0x5a);
    assert_int_equal(mr(f, 1), 0x5a);
}

static void test_linux_init_edge_flow(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    assert_int_equal(mr(f, 1), 0xfb);
    assert_int_equal(sr(f, 1), 0xff);
    /* A masked edge is latched in IRR but not signalled. */
    pic_set_irq(&f->pic, 1, true);
    pic_set_irq(&f->pic, 1, false);
    assert_false(f->out);
    assert_int_equal(mr(f, 0), 0x02); /* IRR is the default status read */
    unmask(f, 1);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x31);
    assert_false(f->out);
    assert_int_equal(read_isr(f, false), 0x02);
    assert_int_equal(mr(f, 0), 0x00);
    /* No new edge while the line stays high. */
    pic_set_irq(&f->pic, 1, true);
    mw(f, 0, 0x20); /* non-specific EOI */
    assert_int_equal(read_isr(f, false), 0);
    assert_true(f->out);            /* the new rising edge above */
    assert_int_equal(pic_ack(&f->pic), 0x31);
    mw(f, 0, 0x61);                 /* specific EOI for IR1 */
    pic_set_irq(&f->pic, 1, true);  /* still high: no edge */
    assert_false(f->out);
}

static void test_priorities_and_nesting(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    mw(f, 1, 0x00);
    pic_set_irq(&f->pic, 5, true);
    pic_set_irq(&f->pic, 3, true);
    assert_int_equal(pic_ack(&f->pic), 0x33); /* lower number first */
    /* IR5 waits behind IR3 in service. */
    assert_false(f->out);
    /* IR0 preempts. */
    pic_set_irq(&f->pic, 0, true);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x30);
    assert_int_equal(read_isr(f, false), 0x09);
    mw(f, 0, 0x20); /* EOI clears the highest in service: IR0 */
    assert_int_equal(read_isr(f, false), 0x08);
    assert_false(f->out);
    mw(f, 0, 0x20);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x35);
    mw(f, 0, 0x65);
    assert_int_equal(read_isr(f, false), 0);
    assert_false(f->out);
}

static void test_cascade(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    unmask(f, 12);
    unmask(f, 8);
    pic_set_irq(&f->pic, 12, true);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x3c);
    assert_int_equal(read_isr(f, true), 0x10);
    assert_int_equal(read_isr(f, false), 0x04);
    /* IRQ8 has higher priority inside the slave, but the master's IR2 is in
     * service (fully nested mode): nothing until the master's EOI. */
    pic_set_irq(&f->pic, 8, true);
    assert_false(f->out);
    sw(f, 0, 0x64); /* Linux: specific EOI to the slave... */
    mw(f, 0, 0x62); /* ...then to the master's cascade input */
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x38);
    sw(f, 0, 0x20);
    mw(f, 0, 0x20);
    assert_false(f->out);
    /* Masking the cascade on the master masks the whole slave. */
    mw(f, 1, 0xff);
    pic_set_irq(&f->pic, 9, true);
    unmask(f, 9);
    assert_false(f->out);
    mw(f, 1, 0xfb);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x39);
}

static void test_special_fully_nested(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    mw(f, 0, 0x11);
    mw(f, 1, 0x30);
    mw(f, 1, 0x04);
    mw(f, 1, 0x11); /* ICW4: SFNM, 8086 */
    mw(f, 1, 0xfb);
    sw(f, 1, 0x00);
    pic_set_irq(&f->pic, 12, true);
    assert_int_equal(pic_ack(&f->pic), 0x3c);
    /* A higher-priority slave request gets through while IR2 is in service. */
    pic_set_irq(&f->pic, 9, true);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x39);
    /* A lower one does not (the slave holds it). */
    pic_set_irq(&f->pic, 14, true);
    assert_false(f->out);
}

static void test_spurious(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    /* A level input that falls before INTA: spurious IRQ7, ISR untouched. */
    io_wr8(&pic_elcr_bus_ops, &f->pic, 0, 0x08);
    unmask(f, 3);
    pic_set_irq(&f->pic, 3, true);
    assert_true(f->out);
    pic_set_irq(&f->pic, 3, false);
    assert_false(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x37);
    assert_int_equal(read_isr(f, false), 0);
    /* The same on the slave: IRQ15's vector, the master's IR2 in service
     * (Linux's i8259A_irq_real() reads the slave ISR and EOIs the master). */
    io_wr8(&pic_elcr_bus_ops, &f->pic, 1, 0x02);
    unmask(f, 9);
    pic_set_irq(&f->pic, 9, true);
    assert_true(f->out);
    pic_set_irq(&f->pic, 9, false);
    /* The slave's INT fell, so did the master's IR2 request: an INTA the CPU
     * started anyway gets the master's IRQ7. */
    assert_false(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x37);
    assert_int_equal(read_isr(f, true), 0);
    assert_int_equal(read_isr(f, false), 0);
    /* An edge input keeps its latched request even when its line falls
     * (devices pulse their lines). */
    unmask(f, 12);
    pic_set_irq(&f->pic, 12, true);
    pic_set_irq(&f->pic, 12, false);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x3c);
}

static void test_level_triggered(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    /* ELCR: fixed-edge bits cannot be set. */
    io_wr8(&pic_elcr_bus_ops, &f->pic, 0, 0xff);
    io_wr8(&pic_elcr_bus_ops, &f->pic, 1, 0xff);
    assert_int_equal(io_rd8(&pic_elcr_bus_ops, &f->pic, 0), 0xf8);
    assert_int_equal(io_rd8(&pic_elcr_bus_ops, &f->pic, 1), 0xde);
    unmask(f, 10);
    pic_set_irq(&f->pic, 10, true);
    assert_int_equal(pic_ack(&f->pic), 0x3a);
    /* Still asserted at EOI: interrupts again. */
    sw(f, 0, 0x20);
    mw(f, 0, 0x20);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x3a);
    pic_set_irq(&f->pic, 10, false);
    sw(f, 0, 0x20);
    mw(f, 0, 0x20);
    assert_false(f->out);
    /* Repeated "high" calls on a level line do not queue anything. */
    pic_set_irq(&f->pic, 10, true);
    pic_set_irq(&f->pic, 10, true);
    assert_int_equal(pic_ack(&f->pic), 0x3a);
    pic_set_irq(&f->pic, 10, false); /* the handler quiets the device */
    sw(f, 0, 0x20);
    mw(f, 0, 0x20);
    assert_false(f->out);
    /* Withdrawn while the slave's request waits at the master (IR2 follows
     * the slave's INT like a wire): the master's request goes too. */
    pic_set_irq(&f->pic, 10, true);
    assert_true(f->out);
    pic_set_irq(&f->pic, 10, false);
    assert_false(f->out);
    /* A 16-bit write covers both ELCR bytes. */
    uint8_t two[2] = {0x00, 0x00};
    pic_elcr_bus_ops.write(&f->pic, 0, two, 2);
    assert_int_equal(io_rd8(&pic_elcr_bus_ops, &f->pic, 1), 0);
}

static void test_auto_eoi_and_rotation(void **state)
{
    struct fixture *f = *state;
    linux_init(f, true);
    mw(f, 1, 0x00);
    pic_set_irq(&f->pic, 4, true);
    assert_int_equal(pic_ack(&f->pic), 0x34);
    assert_int_equal(read_isr(f, false), 0); /* AEOI: nothing in service */
    /* Rotate in AEOI mode: the served IR becomes the lowest. */
    mw(f, 0, 0x80);
    pic_set_irq(&f->pic, 1, true);
    assert_int_equal(pic_ack(&f->pic), 0x31);
    pic_set_irq(&f->pic, 0, true);
    pic_set_irq(&f->pic, 2 + 1, true);
    /* IR1 was served: priorities now 2,3,...,7,0,1 -> IR3 before IR0. */
    assert_int_equal(pic_ack(&f->pic), 0x33);
    assert_int_equal(pic_ack(&f->pic), 0x30); /* and IR0 became the lowest */
    /* IR0 served last: 1,...,7,0. */
    pic_set_irq(&f->pic, 0, false);
    pic_set_irq(&f->pic, 0, true);
    pic_set_irq(&f->pic, 7, true);
    assert_int_equal(pic_ack(&f->pic), 0x37);
    assert_int_equal(pic_ack(&f->pic), 0x30);
    mw(f, 0, 0x00); /* clear rotate in AEOI */
    for (unsigned irq = 0; irq < 8; irq++)
        pic_set_irq(&f->pic, irq, false);

    /* Normal EOI mode again; set-priority command (OCW2 110): IR5 lowest. */
    linux_init(f, false);
    mw(f, 1, 0x00);
    mw(f, 0, 0xc5);
    pic_set_irq(&f->pic, 5, true);
    pic_set_irq(&f->pic, 6, true);
    pic_set_irq(&f->pic, 0, true);
    assert_int_equal(pic_ack(&f->pic), 0x36); /* 6 is now the highest */
    /* Rotate on non-specific EOI: IR6 becomes lowest -> 7,0,1,...,6. */
    mw(f, 0, 0xa0);
    pic_set_irq(&f->pic, 6, false);
    pic_set_irq(&f->pic, 6, true);
    pic_set_irq(&f->pic, 7, true);
    assert_int_equal(pic_ack(&f->pic), 0x37);
    mw(f, 0, 0x20);
    assert_int_equal(pic_ack(&f->pic), 0x30);
    /* Rotate on specific EOI for IR0: order 1,2,...,7,0. */
    mw(f, 0, 0xe0);
    assert_int_equal(pic_ack(&f->pic), 0x35);
    mw(f, 0, 0x20);
    assert_int_equal(pic_ack(&f->pic), 0x36);
    mw(f, 0, 0x20);
    assert_int_equal(read_isr(f, false), 0);
}

static void test_special_mask_mode(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    mw(f, 1, 0x00);
    pic_set_irq(&f->pic, 1, true);
    assert_int_equal(pic_ack(&f->pic), 0x31);
    pic_set_irq(&f->pic, 4, true);
    assert_false(f->out); /* blocked by IR1 in service */
    mw(f, 1, 0x02);       /* mask IR1 */
    assert_false(f->out);
    mw(f, 0, 0x68);       /* OCW3: set special mask mode */
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x34);
    /* A non-specific EOI leaves the masked IR1 in service. */
    mw(f, 0, 0x20);
    assert_int_equal(read_isr(f, false), 0x02);
    mw(f, 0, 0x48);       /* reset special mask mode */
    mw(f, 1, 0x00);
    mw(f, 0, 0x20);
    assert_int_equal(read_isr(f, false), 0x00);
}

static void test_poll_mode(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    mw(f, 1, 0x00);
    mw(f, 0, 0x0c); /* poll */
    assert_int_equal(mr(f, 0), 0x00); /* nothing pending */
    pic_set_irq(&f->pic, 6, true);
    pic_set_irq(&f->pic, 3, true);
    mw(f, 0, 0x0c);
    assert_int_equal(mr(f, 0), 0x83); /* the read is the INTA */
    assert_int_equal(read_isr(f, false), 0x08);
    /* The poll is one read only: the next read is IRR again. */
    assert_int_equal(mr(f, 0), 0x40);
    mw(f, 0, 0x20);
    mw(f, 0, 0x0c);
    assert_int_equal(mr(f, 1), 0x86); /* either port */
}

static void test_icw1_resets(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    mw(f, 1, 0x00);
    pic_set_irq(&f->pic, 3, true);
    assert_int_equal(pic_ack(&f->pic), 0x33);
    pic_set_irq(&f->pic, 4, true);
    mw(f, 1, 0x55);
    /* ICW1 clears IMR, ISR and the edge-latched IRR; ICW4 not requested
     * clears AEOI. */
    mw(f, 0, 0x10);
    mw(f, 1, 0x50);
    mw(f, 1, 0x04);
    assert_int_equal(mr(f, 1), 0x00);
    assert_int_equal(mr(f, 0), 0x00);
    assert_int_equal(read_isr(f, false), 0x00);
    /* IR3/IR4 are still high: no edge, nothing pending. */
    pic_set_irq(&f->pic, 3, true);
    assert_false(f->out);
    pic_set_irq(&f->pic, 3, false);
    pic_set_irq(&f->pic, 3, true);
    assert_int_equal(pic_ack(&f->pic), 0x53);
    /* Single mode skips ICW3. */
    sw(f, 0, 0x13);
    sw(f, 1, 0x78);
    sw(f, 1, 0x01);
    sw(f, 1, 0x00); /* this is OCW1 now */
    assert_int_equal(sr(f, 1), 0x00);
}

static void test_out_of_range(void **state)
{
    struct fixture *f = *state;
    uint8_t b[4] = {0x12, 0x34, 0x56, 0x78};
    pic_master_bus_ops.write(&f->pic, 1, b, 4); /* IMR, then three outside */
    assert_int_equal(mr(f, 1), 0x12);
    pic_master_bus_ops.read(&f->pic, 1, b, 4);
    assert_int_equal(b[0], 0x12);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(b[3], 0xff);
    pic_master_bus_ops.read(&f->pic, 1000, b, 1);
    assert_int_equal(b[0], 0xff);
    pic_elcr_bus_ops.read(&f->pic, 2, b, 2);
    assert_int_equal(b[0], 0xff);
    pic_set_irq(&f->pic, 16, true);
    pic_set_irq(&f->pic, 2, true); /* the cascade is not a device line */
    pic_set_irq(&f->pic, UINT32_MAX, true);
    assert_false(f->out);
}

/* After anything at all, a fresh initialisation must work like on reset. */
static void check_recovers(struct fixture *f)
{
    for (unsigned irq = 0; irq < 16; irq++)
        if (irq != 2)
            pic_set_irq(&f->pic, irq, false);
    io_wr8(&pic_elcr_bus_ops, &f->pic, 0, 0);
    io_wr8(&pic_elcr_bus_ops, &f->pic, 1, 0);
    linux_init(f, false);
    assert_false(f->out);
    assert_int_equal(f->out, pic_output(&f->pic));
    unmask(f, 11);
    pic_set_irq(&f->pic, 11, true);
    assert_true(f->out);
    assert_int_equal(pic_ack(&f->pic), 0x3b);
    sw(f, 0, 0x20);
    mw(f, 0, 0x20);
    assert_false(f->out);
    assert_int_equal(read_isr(f, false), 0);
    assert_int_equal(read_isr(f, true), 0);
    pic_set_irq(&f->pic, 11, false);
}

static void test_hostile_table(void **state)
{
    struct fixture *f = *state;
    const struct bus_ops *all[] = {&pic_master_bus_ops, &pic_slave_bus_ops, &pic_elcr_bus_ops};
    static const unsigned lens[] = {1, 2, 4, 8};
    uint32_t seed = 12345;
    for (unsigned dev = 0; dev < 3; dev++)
        for (unsigned off = 0; off < 4; off++)
            for (unsigned li = 0; li < 4; li++)
                for (unsigned v = 0; v < 256; v++) {
                    uint8_t data[8];
                    for (unsigned i = 0; i < 8; i++)
                        data[i] = (uint8_t)(v + i * 37);
                    all[dev]->write(&f->pic, off, data, lens[li]);
                    all[dev]->read(&f->pic, off, data, lens[li]);
                    uint32_t r = xorshift32(&seed);
                    pic_set_irq(&f->pic, r % 17, (r >> 8) & 1);
                    if ((r >> 9) % 3 == 0) {
                        uint8_t vec = pic_ack(&f->pic);
                        (void)vec;
                    }
                    /* The output callback always matches the state. */
                    assert_int_equal(f->out, pic_output(&f->pic));
                }
    check_recovers(f);
}

static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    linux_init(f, false);
    io_wr8(&pic_elcr_bus_ops, &f->pic, 1, 0x08); /* IRQ11 level */
    mw(f, 1, 0x00);
    sw(f, 1, 0x00);
    pic_set_irq(&f->pic, 4, true);
    assert_int_equal(pic_ack(&f->pic), 0x34);   /* IR4 in service */
    pic_set_irq(&f->pic, 6, true);               /* pending behind it */
    pic_set_irq(&f->pic, 11, true);              /* level, slave */
    mw(f, 0, 0x0b);                              /* status read: ISR */

    struct rec r = rec_new();
    pic_save(&f->pic, r);
    struct rec copy = rec_roundtrip(r);
    rec_free(r);

    struct fixture g = {0};
    pic_init(&g.pic, &ops, &g);
    assert_int_equal(pic_load(&g.pic, copy), 0);
    rec_free(copy);
    assert_true(g.out); /* reported at load: IR2 (slave) beats IR4 */
    /* Same behaviour from here on in both. */
    struct fixture *both[2] = {f, &g};
    for (int i = 0; i < 2; i++) {
        struct fixture *x = both[i];
        assert_int_equal(io_rd8(&pic_master_bus_ops, &x->pic, 0), 0x10);
        assert_int_equal(pic_ack(&x->pic), 0x3b);
        /* A new edge on an input that was high before the snapshot: none. */
        pic_set_irq(&x->pic, 6, true);
        io_wr8(&pic_slave_bus_ops, &x->pic, 0, 0x20);
        io_wr8(&pic_master_bus_ops, &x->pic, 0, 0x20);
        assert_int_equal(pic_ack(&x->pic), 0x3b); /* level, still high */
        pic_set_irq(&x->pic, 11, false);
        io_wr8(&pic_slave_bus_ops, &x->pic, 0, 0x20);
        io_wr8(&pic_master_bus_ops, &x->pic, 0, 0x20);
        io_wr8(&pic_master_bus_ops, &x->pic, 0, 0x20); /* IR4 */
        assert_int_equal(pic_ack(&x->pic), 0x36);
        assert_false(x->out);
    }
    pic_destroy(&g.pic);
}

static int load_text(struct pic *p, const char *json)
{
    struct rec r;
    assert_int_equal(rec_parse(json, strlen(json), &r), 0);
    int ret = pic_load(p, r);
    rec_free(r);
    return ret;
}

static void test_load_rejects_bad_values(void **state)
{
    struct fixture *f = *state;
    struct rec r = rec_new();
    pic_save(&f->pic, r);
    size_t len;
    char *good = strdup(rec_text(r, &len));
    rec_free(r);
    static const struct {
        const char *from, *to;
    } bad[] = {
        {"\"priority_add\":0", "\"priority_add\":8"},
        {"\"init_state\":0", "\"init_state\":4"},
        {"\"elcr\":0", "\"elcr\":7"},
        {"\"elcr\":0", "\"elcr\":256"},
        {"\"irr\":0", "\"irr\":-1"},
        {"\"vector_base\":8", "\"vector_base\":9"},
        {"\"icw4\":1", "\"icw4\":32"},
        {"\"icw4\":1", "\"icw4\":3"}, /* AEOI bit without auto_eoi */
        {"\"poll\":false", "\"poll\":1"},
        {"\"master\":{", "\"mastr\":{"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *p = strstr(good, bad[i].from);
        assert_non_null(p);
        size_t n = strlen(good) - strlen(bad[i].from) + strlen(bad[i].to) + 1;
        char *text = malloc(n);
        size_t pre = (size_t)(p - good);
        memcpy(text, good, pre);
        strcpy(text + pre, bad[i].to);
        strcat(text, p + strlen(bad[i].from));
        assert_int_not_equal(load_text(&f->pic, text), 0);
        free(text);
    }
    assert_int_equal(load_text(&f->pic, good), 0);
    free(good);
    /* Nothing was half-loaded: still the BIOS state, which works. */
    assert_int_equal(mr(f, 1), 0xfb);
    check_recovers(f);
}

/* Devices and vCPUs at once; must neither deadlock nor corrupt. */
struct thread_arg {
    struct fixture *f;
    unsigned irq;
};

static void *irq_thread(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 20000; i++) {
        pic_set_irq(&a->f->pic, a->irq, true);
        pic_set_irq(&a->f->pic, a->irq, false);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    linux_init(f, true);
    mw(f, 1, 0x00);
    sw(f, 1, 0x00);
    pthread_t t[3];
    struct thread_arg args[3] = {{f, 1}, {f, 9}, {f, 14}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, irq_thread, &args[i]), 0);
    unsigned got = 0;
    for (int i = 0; i < 20000; i++) {
        if (pic_output(&f->pic)) {
            uint8_t v = pic_ack(&f->pic);
            assert_true(v >= 0x30 && v < 0x40);
            if (v >= 0x38) { /* the slave is not in AEOI mode */
                sw(f, 0, 0x20);
            }
            got++;
        }
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    while (pic_output(&f->pic)) {
        if (pic_ack(&f->pic) >= 0x38)
            sw(f, 0, 0x20);
    }
    assert_false(f->out);
    (void)got;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state_and_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_init_edge_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priorities_and_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_fully_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_triggered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_eoi_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_mask_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icw1_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests_name("pic", tests, NULL, NULL);
}

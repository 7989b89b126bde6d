/* The local APIC against the SDM (vol. 3, chapter 10/11, xAPIC) and what
 * Linux 6.1's apic.c does: setup_local_APIC (SVR, LDR/DFR, TPR, LVTs, the
 * ESR write-then-read), the APIC timer (one-shot, periodic, TSC-deadline),
 * IPIs through the ICR, EOI broadcast; with a fake clock and timer. */
#include "irqchip_fakes.h"

#include "irqchip/lapic.h"

#define MAX_IPIS 16

struct fixture {
    struct lapic l;
    struct fake_clock clock;
    struct fake_timer timer;
    unsigned kicks;
    int eois[16];
    unsigned neois;
    struct apic_msg ipis[MAX_IPIS];
    unsigned nipis;
    uint8_t pic_vector;
    unsigned pic_acks;
    /* for routing tests */
    struct lapic *const *route_to;
    unsigned route_n;
};

static void kick(void *ctx)
{
    ((struct fixture *)ctx)->kicks++;
}

static void eoi(void *ctx, uint8_t vector)
{
    struct fixture *f = ctx;
    if (f->neois < 16)
        f->eois[f->neois] = vector;
    f->neois++;
}

static void send_ipi(void *ctx, const struct apic_msg *msg)
{
    struct fixture *f = ctx;
    if (f->nipis < MAX_IPIS)
        f->ipis[f->nipis] = *msg;
    f->nipis++;
    if (f->route_to)
        lapic_route(f->route_to, f->route_n, msg);
}

static uint8_t pic_ack_cb(void *ctx)
{
    struct fixture *f = ctx;
    f->pic_acks++;
    return f->pic_vector;
}

static const struct lapic_ops ops = {kick, eoi, send_ipi, pic_ack_cb};

static void fixture_init(struct fixture *f, unsigned index, uint8_t id, bool bsp, bool vw)
{
    struct lapic_config cfg = {.index = index, .apic_id = id, .bsp = bsp, .virtual_wire = vw};
    f->clock.ns = 1000000;
    lapic_init(&f->l, &cfg, &ops, f, fake_vclock(&f->clock, 2000000000ull),
               fake_vtimer(&f->timer));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    fixture_init(f, 0, 0, true, false);
    *state = f;
    return 0;
}

static int setup_vw(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    fixture_init(f, 0, 0, true, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    lapic_destroy(&f->l);
    free(f);
    return 0;
}

static uint32_t rd(struct fixture *f, unsigned reg)
{
    return mmio_rd32(&lapic_bus_ops, &f->l, reg);
}

static void wr(struct fixture *f, unsigned reg, uint32_t v)
{
    mmio_wr32(&lapic_bus_ops, &f->l, reg, v);
}

/* What setup_local_APIC leaves (flat logical mode, TPR 0, enabled). */
static void linux_setup(struct fixture *f)
{
    wr(f, 0xe0, 0xffffffff);         /* DFR flat */
    wr(f, 0xd0, 0x01000000);         /* LDR */
    wr(f, 0x80, 0);                  /* TPR */
    wr(f, 0xf0, 0x1ff);              /* SVR: enable, spurious 0xff */
    wr(f, 0x370, 0xfe);              /* LVT error */
    wr(f, 0x280, 0);
    wr(f, 0x280, 0);
}

static struct apic_msg fixed(uint8_t vector, bool level)
{
    return (struct apic_msg){.delivery_mode = APIC_DM_FIXED, .vector = vector,
                             .trigger_level = level, .source = -1};
}

static bool test_bit(struct fixture *f, unsigned base, unsigned v)
{
    return rd(f, base + (v >> 5) * 0x10) >> (v & 31) & 1;
}

static void test_reset_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 0x20), 0);
    assert_int_equal(rd(f, 0x30), 0x00050014);
    assert_int_equal(rd(f, 0xe0), 0xffffffff);
    assert_int_equal(rd(f, 0xf0), 0xff);
    for (unsigned r = 0x320; r <= 0x370; r += 0x10)
        assert_int_equal(rd(f, r), 0x10000);
    assert_int_equal(lapic_get_base(&f->l), 0xfee00900);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    assert_int_equal(lapic_pending_events(&f->l), 0);
    /* Without virtual wire, the PIC's INTR does not get through LINT0. */
    lapic_set_lint(&f->l, 0, true);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    /* An AP with ID 3. */
    struct fixture *g = calloc(1, sizeof(*g));
    fixture_init(g, 1, 3, false, false);
    assert_int_equal(rd(g, 0x20), 0x03000000);
    assert_int_equal(lapic_get_base(&g->l), 0xfee00800);
    lapic_destroy(&g->l);
    free(g);
}

static void test_virtual_wire_extint(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 0x350), 0x700);
    assert_int_equal(rd(f, 0x360), 0x400);
    f->pic_vector = 0x30;
    unsigned kicks = f->kicks;
    lapic_set_lint(&f->l, 0, true);
    assert_true(f->kicks > kicks);
    assert_int_equal(lapic_has_interrupt(&f->l), LAPIC_EXTINT);
    assert_true(lapic_pending_events(&f->l) & LAPIC_EV_INTR);
    assert_int_equal(lapic_ack(&f->l), 0x30);
    assert_int_equal(f->pic_acks, 1);
    /* ExtINT bypasses IRR/ISR and PPR. */
    assert_int_equal(rd(f, 0x100 + 0x10), 0);
    wr(f, 0x80, 0xf0);
    assert_int_equal(lapic_has_interrupt(&f->l), LAPIC_EXTINT);
    lapic_set_lint(&f->l, 0, false);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    /* LINT1 as NMI: edges. */
    lapic_set_lint(&f->l, 1, true);
    lapic_set_lint(&f->l, 1, true);
    assert_true(lapic_pending_events(&f->l) & LAPIC_EV_NMI);
    assert_true(lapic_take_nmi(&f->l));
    assert_false(lapic_take_nmi(&f->l));
    lapic_set_lint(&f->l, 1, false);
    lapic_set_lint(&f->l, 1, true);
    assert_true(lapic_take_nmi(&f->l));
    /* Linux enabling the APIC keeps LINT0 ExtINT unmasked on the BSP. */
    linux_setup(f);
    wr(f, 0x350, 0x700);
    lapic_set_lint(&f->l, 0, true);
    assert_int_equal(lapic_has_interrupt(&f->l), LAPIC_EXTINT);
    /* Masking LVT0 closes the path (Linux does once the IOAPIC has the
     * timer). */
    wr(f, 0x350, 0x10700);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    /* With the APIC globally disabled, LINT0 is the CPU's INTR. */
    assert_int_equal(lapic_set_base(&f->l, 0xfee00100), 0);
    assert_int_equal(lapic_has_interrupt(&f->l), LAPIC_EXTINT);
    assert_int_equal(lapic_ack(&f->l), 0x30);
}

static void test_linux_setup_and_esr(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    assert_int_equal(rd(f, 0xf0), 0x1ff);
    assert_int_equal(rd(f, 0xd0), 0x01000000);
    assert_int_equal(rd(f, 0x280), 0);
    /* Reserved register: ESR bit 7, visible only after an ESR write. */
    (void)rd(f, 0x040);
    assert_int_equal(rd(f, 0x280), 0);
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0x80);
    /* The error LVT (0xfe, unmasked) raised an interrupt. */
    assert_int_equal(lapic_has_interrupt(&f->l), 0xfe);
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0);
    /* Masks: DFR low bits, LDR/ID high byte, TPR byte, SVR 10 bits. */
    wr(f, 0xe0, 0x0);
    assert_int_equal(rd(f, 0xe0), 0x0fffffff);
    wr(f, 0xd0, 0xffffffff);
    assert_int_equal(rd(f, 0xd0), 0xff000000);
    wr(f, 0x80, 0xffffffff);
    assert_int_equal(rd(f, 0x80), 0xff);
    wr(f, 0xf0, 0xffffffff);
    assert_int_equal(rd(f, 0xf0), 0x3ff);
    wr(f, 0x20, 0xffffffff);
    assert_int_equal(rd(f, 0x20), 0xff000000);
    /* Write-only EOI and the remote read register read 0. */
    assert_int_equal(rd(f, 0xb0), 0);
    assert_int_equal(rd(f, 0xc0), 0);
    /* Read-only registers ignore writes. */
    wr(f, 0x30, 0);
    assert_int_equal(rd(f, 0x30), 0x00050014);
    wr(f, 0x100, 0xffffffff);
    assert_int_equal(rd(f, 0x100), 0);
    /* LVT masks. */
    wr(f, 0x320, 0xffffffff);
    assert_int_equal(rd(f, 0x320), 0x000100ff); /* mode 3 reserved: one-shot */
    wr(f, 0x350, 0xffffffff);
    assert_int_equal(rd(f, 0x350), 0x0001a7ff);
    wr(f, 0x370, 0xffffffff);
    assert_int_equal(rd(f, 0x370), 0x000100ff);
    wr(f, 0x3e0, 0xffffffff);
    assert_int_equal(rd(f, 0x3e0), 0xb);
    /* Partial reads give the register's bytes. */
    uint8_t b[2];
    lapic_bus_ops.read(&f->l, 0x31, b, 2);
    assert_int_equal(b[0], 0x00);
    assert_int_equal(b[1], 0x05);
    lapic_bus_ops.read(&f->l, 0x34, b, 1);
    assert_int_equal(b[0], 0);
    /* Non-dword writes are ignored. */
    lapic_bus_ops.write(&f->l, 0x80, b, 1);
    lapic_bus_ops.write(&f->l, 0x84, "\1\2\3\4", 4);
    assert_int_equal(rd(f, 0x80), 0xff);
}

static void test_priority_tpr_ppr_nesting(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    struct apic_msg m;
    m = fixed(0x31, false);
    assert_true(lapic_accept(&f->l, &m));
    m = fixed(0x51, false);
    assert_true(lapic_accept(&f->l, &m));
    m = fixed(0x41, false);
    assert_true(lapic_accept(&f->l, &m));
    assert_true(test_bit(f, 0x200, 0x51));
    assert_int_equal(lapic_has_interrupt(&f->l), 0x51);
    /* TPR class 6 holds everything back; class 5 too (not above). */
    wr(f, 0x80, 0x60);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    assert_int_equal(rd(f, 0xa0), 0x60);
    wr(f, 0x80, 0x50);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    lapic_set_cr8(&f->l, 4);
    assert_int_equal(rd(f, 0x80), 0x40);
    assert_int_equal(lapic_get_cr8(&f->l), 4);
    assert_int_equal(lapic_has_interrupt(&f->l), 0x51);
    wr(f, 0x80, 0);
    assert_int_equal(lapic_ack(&f->l), 0x51);
    assert_true(test_bit(f, 0x100, 0x51));
    assert_false(test_bit(f, 0x200, 0x51));
    assert_int_equal(rd(f, 0xa0), 0x50);
    /* Same class as in service: waits; higher class nests. */
    m = fixed(0x5f, false);
    lapic_accept(&f->l, &m);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    m = fixed(0x61, false);
    lapic_accept(&f->l, &m);
    assert_int_equal(lapic_has_interrupt(&f->l), 0x61);
    assert_int_equal(lapic_ack(&f->l), 0x61);
    assert_int_equal(rd(f, 0xa0), 0x60);
    /* EOI clears the highest in service. */
    wr(f, 0xb0, 0);
    assert_false(test_bit(f, 0x100, 0x61));
    assert_true(test_bit(f, 0x100, 0x51));
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    wr(f, 0xb0, 0);
    assert_int_equal(lapic_has_interrupt(&f->l), 0x5f);
    assert_int_equal(lapic_ack(&f->l), 0x5f);
    wr(f, 0xb0, 0);
    assert_int_equal(lapic_ack(&f->l), 0x41);
    wr(f, 0xb0, 0);
    assert_int_equal(lapic_ack(&f->l), 0x31);
    wr(f, 0xb0, 0);
    assert_int_equal(rd(f, 0xa0), 0);
    assert_int_equal(f->neois, 0); /* all edge */
    /* An EOI with nothing in service is harmless. */
    wr(f, 0xb0, 0);
    assert_int_equal(rd(f, 0xa0), 0);
}

static void test_apr(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x80, 0x35);
    assert_int_equal(rd(f, 0x90), 0x35); /* TPR alone */
    struct apic_msg m = fixed(0x61, false);
    lapic_accept(&f->l, &m);
    assert_int_equal(rd(f, 0x90), 0x60); /* IRR class above TPR */
    assert_int_equal(lapic_arb_priority(&f->l), 0x60);
    lapic_ack(&f->l);
    assert_int_equal(rd(f, 0x90), 0x60); /* ISR class */
    wr(f, 0x80, 0x75);
    assert_int_equal(rd(f, 0x90), 0x75);
}

static void test_spurious_and_illegal(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    struct apic_msg m = fixed(0x41, false);
    lapic_accept(&f->l, &m);
    assert_int_equal(lapic_has_interrupt(&f->l), 0x41);
    wr(f, 0x80, 0x80); /* raised between has_interrupt and INTA */
    assert_int_equal(lapic_ack(&f->l), 0xff);
    assert_int_equal(rd(f, 0x100 + 0x20), 0); /* no ISR bit */
    assert_true(test_bit(f, 0x200, 0x41));
    wr(f, 0x80, 0);
    /* Vectors 0-15: received illegal vector, not delivered. */
    m = fixed(0x05, false);
    assert_false(lapic_accept(&f->l, &m));
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0x40);
    assert_false(test_bit(f, 0x200, 0x05));
    /* An error LVT with an illegal vector does not recurse. */
    wr(f, 0x370, 0x03);
    wr(f, 0x040, 0);
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0xc0);
}

static void test_level_eoi_broadcast(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    struct apic_msg m = fixed(0x39, true);
    lapic_accept(&f->l, &m);
    assert_true(test_bit(f, 0x180, 0x39));
    m = fixed(0x3a, false);
    lapic_accept(&f->l, &m);
    assert_int_equal(lapic_ack(&f->l), 0x3a);
    wr(f, 0xb0, 0);
    assert_int_equal(f->neois, 0);
    assert_int_equal(lapic_ack(&f->l), 0x39);
    wr(f, 0xb0, 0);
    assert_int_equal(f->neois, 1);
    assert_int_equal(f->eois[0], 0x39);
    /* An edge message for the same vector clears TMR again. */
    m = fixed(0x39, false);
    lapic_accept(&f->l, &m);
    assert_false(test_bit(f, 0x180, 0x39));
}

static void test_software_disable(void **state)
{
    struct fixture *f = *state;
    /* Software-disabled at reset: fixed messages refused, NMI taken. */
    struct apic_msg m = fixed(0x41, false);
    assert_false(lapic_accept(&f->l, &m));
    m.delivery_mode = APIC_DM_NMI;
    assert_true(lapic_accept(&f->l, &m));
    assert_true(lapic_take_nmi(&f->l));
    /* LVT writes stay masked while disabled. */
    wr(f, 0x350, 0x700);
    assert_int_equal(rd(f, 0x350), 0x10700);
    linux_setup(f);
    wr(f, 0x350, 0x700);
    wr(f, 0x320, 0xec);
    assert_int_equal(rd(f, 0x350), 0x700);
    /* Clearing the enable bit masks every LVT. */
    wr(f, 0xf0, 0xff);
    for (unsigned r = 0x320; r <= 0x370; r += 0x10)
        assert_true(rd(f, r) & 0x10000);
}

static void test_apic_base_msr(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x20, 0x05000000);
    /* Reserved bits: #GP; x2APIC enable is reserved here. */
    assert_int_equal(lapic_set_base(&f->l, 0xfee00900 | 1), -EINVAL);
    assert_int_equal(lapic_set_base(&f->l, 0xfee00900 | (1u << 10)), -EINVAL);
    assert_int_equal(lapic_set_base(&f->l, 0xfee00900 | (1ull << 60)), -EINVAL);
    assert_int_equal(lapic_get_base(&f->l), 0xfee00900);
    /* Global disable: all ones, nothing accepted, state lost. */
    assert_int_equal(lapic_set_base(&f->l, 0xfee00000), 0);
    assert_int_equal(lapic_get_base(&f->l), 0xfee00100); /* BSP is read-only */
    assert_int_equal(rd(f, 0x30), 0xffffffff);
    wr(f, 0xf0, 0x1ff);
    struct apic_msg m = fixed(0x41, false);
    assert_false(lapic_accept(&f->l, &m));
    m.delivery_mode = APIC_DM_INIT;
    assert_false(lapic_accept(&f->l, &m));
    /* Re-enabled (and moved): power-on state. */
    assert_int_equal(lapic_set_base(&f->l, 0xfed00800), 0);
    assert_int_equal(lapic_get_base(&f->l), 0xfed00900);
    assert_int_equal(rd(f, 0xf0), 0xff);
    assert_int_equal(rd(f, 0x20), 0);
    assert_int_equal(rd(f, 0xd0), 0);
}

static void test_icr_ipis(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    /* Fixed IPI, physical destination 2 (Linux writes ICR2 first). */
    wr(f, 0x310, 0x02ffffff);
    assert_int_equal(rd(f, 0x310), 0x02000000);
    wr(f, 0x300, 0x000000fd);
    assert_int_equal(f->nipis, 1);
    assert_int_equal(f->ipis[0].dest, 2);
    assert_int_equal(f->ipis[0].vector, 0xfd);
    assert_int_equal(f->ipis[0].delivery_mode, APIC_DM_FIXED);
    assert_int_equal(f->ipis[0].shorthand, APIC_SH_NONE);
    assert_int_equal(f->ipis[0].source, 0);
    assert_false(f->ipis[0].dest_logical);
    assert_int_equal(rd(f, 0x300) & (1u << 12), 0); /* delivery status idle */
    /* INIT assert, INIT de-assert, SIPI (Linux's wakeup_secondary_cpu_via_init). */
    wr(f, 0x310, 0x01000000);
    wr(f, 0x300, 0x0000c500);
    wr(f, 0x300, 0x00008500);
    wr(f, 0x300, 0x00000699);
    assert_int_equal(f->nipis, 4);
    assert_int_equal(f->ipis[1].delivery_mode, APIC_DM_INIT);
    assert_false(f->ipis[1].deassert);
    assert_true(f->ipis[2].deassert);
    assert_int_equal(f->ipis[3].delivery_mode, APIC_DM_SIPI);
    assert_int_equal(f->ipis[3].vector, 0x99);
    /* Shorthands; logical; lowest priority. */
    wr(f, 0x300, 0x000c00fb); /* all but self */
    assert_int_equal(f->ipis[4].shorthand, APIC_SH_OTHERS);
    wr(f, 0x300, 0x000400f0); /* self */
    assert_int_equal(f->ipis[5].shorthand, APIC_SH_SELF);
    wr(f, 0x310, 0x0f000000);
    wr(f, 0x300, 0x000009ef);
    assert_true(f->ipis[6].dest_logical);
    assert_int_equal(f->ipis[6].delivery_mode, APIC_DM_LOWEST);
    assert_int_equal(f->nipis, 7);
    /* Not sent: illegal vector (ESR bit 5), NMI to self, reserved modes. */
    wr(f, 0x300, 0x0000000e);
    wr(f, 0x300, 0x00040400);
    wr(f, 0x300, 0x00000300);
    wr(f, 0x300, 0x00000700);
    assert_int_equal(f->nipis, 7);
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0x20);
}

static void test_init_sipi(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x20, 0x07000000);
    wr(f, 0x80, 0x20);
    struct apic_msg m = {.delivery_mode = APIC_DM_INIT, .trigger_level = true,
                         .deassert = true, .source = -1};
    assert_true(lapic_accept(&f->l, &m)); /* de-assert: ignored */
    assert_false(lapic_pending_events(&f->l) & LAPIC_EV_INIT);
    m.deassert = false;
    assert_true(lapic_accept(&f->l, &m));
    m = (struct apic_msg){.delivery_mode = APIC_DM_SIPI, .vector = 0x9a, .source = -1};
    assert_true(lapic_accept(&f->l, &m));
    assert_int_equal(lapic_pending_events(&f->l), LAPIC_EV_INIT | LAPIC_EV_SIPI);
    assert_true(lapic_take_init(&f->l));
    assert_false(lapic_take_init(&f->l));
    /* INIT reset: registers back, ID and base kept, SIPI still there. */
    assert_int_equal(rd(f, 0x20), 0x07000000);
    assert_int_equal(rd(f, 0x80), 0);
    assert_int_equal(rd(f, 0xf0), 0xff);
    assert_int_equal(lapic_get_base(&f->l), 0xfee00900);
    assert_int_equal(lapic_take_sipi(&f->l), 0x9a);
    assert_int_equal(lapic_take_sipi(&f->l), -1);
    /* SMI. */
    m.delivery_mode = APIC_DM_SMI;
    assert_true(lapic_accept(&f->l, &m));
    assert_true(lapic_take_smi(&f->l));
    assert_false(lapic_take_smi(&f->l));
    /* ExtINT as a message (IOAPIC pin in ExtINT mode): one INTA to the PIC. */
    f->pic_vector = 0x37;
    m.delivery_mode = APIC_DM_EXTINT;
    assert_true(lapic_accept(&f->l, &m));
    assert_int_equal(lapic_has_interrupt(&f->l), LAPIC_EXTINT);
    assert_int_equal(lapic_ack(&f->l), 0x37);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
}

static void test_lint_fixed_level(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x360, 0x8000 | 0x66); /* LINT1 fixed, level */
    lapic_set_lint(&f->l, 1, true);
    assert_true(rd(f, 0x360) & (1u << 14)); /* remote IRR */
    assert_true(test_bit(f, 0x180, 0x66));
    assert_int_equal(lapic_ack(&f->l), 0x66);
    lapic_set_lint(&f->l, 1, true); /* still high: no second one */
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    wr(f, 0xb0, 0); /* EOI with the line high: again */
    assert_int_equal(lapic_has_interrupt(&f->l), 0x66);
    assert_int_equal(lapic_ack(&f->l), 0x66);
    lapic_set_lint(&f->l, 1, false);
    wr(f, 0xb0, 0);
    assert_int_equal(rd(f, 0x360) & (1u << 14), 0);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    /* Edge fixed LINT0. */
    wr(f, 0x350, 0x67);
    lapic_set_lint(&f->l, 0, true);
    lapic_set_lint(&f->l, 0, true);
    assert_int_equal(lapic_ack(&f->l), 0x67);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
}

/* --- timer --- */

static void expire(struct fixture *f)
{
    assert_true(f->timer.armed);
    if (f->clock.ns < f->timer.deadline)
        f->clock.ns = f->timer.deadline;
    f->timer.armed = false; /* a host timer fires once per arm */
    lapic_timer_expired(&f->l, f->clock.ns);
}

static unsigned take_timer_irqs(struct fixture *f, uint8_t vector)
{
    unsigned n = 0;
    while (lapic_has_interrupt(&f->l) == vector) {
        assert_int_equal(lapic_ack(&f->l), vector);
        wr(f, 0xb0, 0);
        n++;
    }
    return n;
}

static void test_timer_oneshot(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x3e0, 0x3);         /* divide by 16 */
    wr(f, 0x320, 0xef);        /* one-shot, vector 0xef */
    uint64_t t0 = f->clock.ns;
    wr(f, 0x380, 1000);
    assert_true(f->timer.armed);
    assert_int_equal(f->timer.deadline, t0 + 16000);
    assert_int_equal(rd(f, 0x390), 1000);
    f->clock.ns = t0 + 15;
    assert_int_equal(rd(f, 0x390), 1000);
    f->clock.ns = t0 + 16;
    assert_int_equal(rd(f, 0x390), 999);
    f->clock.ns = t0 + 8000;
    assert_int_equal(rd(f, 0x390), 500);
    /* An early expiry call re-arms and delivers nothing. */
    lapic_timer_expired(&f->l, f->clock.ns);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    assert_int_equal(f->timer.deadline, t0 + 16000);
    f->clock.ns = t0 + 16000;
    assert_int_equal(rd(f, 0x390), 0);
    unsigned kicks = f->kicks;
    expire(f);
    assert_true(f->kicks > kicks);
    assert_int_equal(take_timer_irqs(f, 0xef), 1);
    /* Duplicate expiry: nothing more. */
    lapic_timer_expired(&f->l, f->clock.ns + 100000);
    assert_int_equal(take_timer_irqs(f, 0xef), 0);
    assert_int_equal(rd(f, 0x390), 0);
    /* Writing 0 stops a running timer. */
    wr(f, 0x380, 50);
    assert_true(f->timer.armed);
    wr(f, 0x380, 0);
    assert_false(f->timer.armed);
    /* Divide by 1 (0xb) and 2 (0x0). */
    wr(f, 0x3e0, 0xb);
    t0 = f->clock.ns;
    wr(f, 0x380, 10);
    assert_int_equal(f->timer.deadline, t0 + 10);
    wr(f, 0x3e0, 0x0);
    assert_int_equal(f->timer.deadline, t0 + 20);
}

static void test_timer_periodic_catch_up(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x3e0, 0xb);                 /* divide by 1: 1 ns per tick */
    wr(f, 0x320, (1u << 17) | 0xec);   /* periodic */
    uint64_t t0 = f->clock.ns;
    wr(f, 0x380, 1000000);             /* 1 ms */
    assert_int_equal(f->timer.deadline, t0 + 1000000);
    for (int i = 1; i <= 5; i++) {
        expire(f);
        assert_int_equal(take_timer_irqs(f, 0xec), 1);
        assert_int_equal(f->timer.deadline, t0 + (uint64_t)(i + 1) * 1000000);
    }
    /* Between expiries the count runs down and reloads. */
    f->clock.ns = t0 + 5250000;
    assert_int_equal(rd(f, 0x390), 750000);
    /* The host is 3.5 periods late: one interrupt, and the next deadline is
     * on the original grid (no drift). */
    f->clock.ns = t0 + 9500000;
    lapic_timer_expired(&f->l, f->clock.ns);
    assert_int_equal(take_timer_irqs(f, 0xec), 1);
    assert_int_equal(f->timer.deadline, t0 + 10000000);
    assert_int_equal(rd(f, 0x390), 500000);
    /* Masked: counting goes on, no interrupts. */
    wr(f, 0x320, (1u << 17) | (1u << 16) | 0xec);
    expire(f);
    assert_int_equal(take_timer_irqs(f, 0xec), 0);
    assert_int_equal(f->timer.deadline, t0 + 11000000);
    /* A tiny period is delivered no faster than the gap. */
    wr(f, 0x320, (1u << 17) | 0xec);
    uint64_t t1 = f->clock.ns;
    wr(f, 0x380, 100); /* 100 ns */
    assert_true(f->timer.deadline >= t1 + LAPIC_TIMER_MIN_GAP_NS);
    for (int i = 0; i < 100; i++) {
        uint64_t before = f->clock.ns;
        expire(f);
        assert_true(f->timer.deadline >= before + LAPIC_TIMER_MIN_GAP_NS);
        assert_int_equal((f->timer.deadline - t1) % 100, 0); /* on the grid */
    }
    assert_true(take_timer_irqs(f, 0xec) <= 1);
    /* Periodic -> one-shot keeps the current countdown, then stops. */
    wr(f, 0x380, 1000);
    uint64_t t2 = f->clock.ns;
    wr(f, 0x320, 0xec);
    assert_int_equal(f->timer.deadline, t2 + 1000);
    expire(f);
    assert_int_equal(take_timer_irqs(f, 0xec), 1);
    assert_false(f->timer.armed);
}

static void test_timer_divider_change(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x3e0, 0x0); /* by 2 */
    wr(f, 0x320, 0xe0);
    uint64_t t0 = f->clock.ns;
    wr(f, 0x380, 1000);
    f->clock.ns = t0 + 400; /* 200 ticks */
    assert_int_equal(rd(f, 0x390), 800);
    wr(f, 0x3e0, 0xa);      /* by 128 */
    assert_int_equal(rd(f, 0x390), 800);
    assert_int_equal(f->timer.deadline, t0 + 400 + 800 * 128);
    f->clock.ns += 128 * 100;
    assert_int_equal(rd(f, 0x390), 700);
}

static void test_timer_tsc_deadline(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    /* Writes are ignored outside TSC-deadline mode. */
    lapic_set_tsc_deadline(&f->l, 123456789);
    assert_int_equal(lapic_get_tsc_deadline(&f->l), 0);
    assert_false(f->timer.armed);
    /* A running one-shot is disarmed by the mode change. */
    wr(f, 0x380, 100000);
    assert_true(f->timer.armed);
    wr(f, 0x320, (2u << 17) | 0xec);
    assert_false(f->timer.armed);
    assert_int_equal(rd(f, 0x380), 0);
    wr(f, 0x380, 5); /* ignored in this mode */
    assert_int_equal(rd(f, 0x380), 0);
    assert_int_equal(rd(f, 0x390), 0);
    /* TSC at 2 GHz: 2000 cycles ahead = 1000 ns. */
    uint64_t tsc = fake_clock_now_tsc(&f->clock);
    lapic_set_tsc_deadline(&f->l, tsc + 2000);
    assert_int_equal(lapic_get_tsc_deadline(&f->l), tsc + 2000);
    assert_int_equal(f->timer.deadline, f->clock.ns + 1000);
    /* Early: re-armed, nothing delivered. */
    lapic_timer_expired(&f->l, f->clock.ns + 999);
    assert_int_equal(lapic_has_interrupt(&f->l), -1);
    assert_true(f->timer.armed);
    expire(f);
    assert_int_equal(take_timer_irqs(f, 0xec), 1);
    assert_int_equal(lapic_get_tsc_deadline(&f->l), 0);
    /* A past deadline fires at once; 0 disarms. */
    lapic_set_tsc_deadline(&f->l, 1);
    assert_int_equal(take_timer_irqs(f, 0xec), 1);
    lapic_set_tsc_deadline(&f->l, fake_clock_now_tsc(&f->clock) + 1000000);
    assert_true(f->timer.armed);
    lapic_set_tsc_deadline(&f->l, 0);
    assert_false(f->timer.armed);
    /* Rounded up: 1 cycle at 2 GHz is 1 ns, never 0. */
    lapic_set_tsc_deadline(&f->l, fake_clock_now_tsc(&f->clock) + 1);
    assert_int_equal(f->timer.deadline, f->clock.ns + 1);
    /* Far future: no overflow. */
    lapic_set_tsc_deadline(&f->l, UINT64_MAX);
    assert_true(f->timer.deadline > f->clock.ns);
    /* Leaving the mode disarms and clears the MSR. */
    wr(f, 0x320, 0xec);
    assert_false(f->timer.armed);
    assert_int_equal(lapic_get_tsc_deadline(&f->l), 0);
}

/* --- routing --- */

struct machine {
    struct fixture f[3];
    struct lapic *lapics[3];
};

static void machine_init(struct machine *m)
{
    for (unsigned i = 0; i < 3; i++) {
        fixture_init(&m->f[i], i, (uint8_t)i, i == 0, i == 0);
        m->lapics[i] = &m->f[i].l;
        linux_setup(&m->f[i]);
        wr(&m->f[i], 0xd0, 1u << (24 + i)); /* flat: bit i */
        m->f[i].route_to = m->lapics;
        m->f[i].route_n = 3;
    }
}

static void machine_destroy(struct machine *m)
{
    for (unsigned i = 0; i < 3; i++)
        lapic_destroy(&m->f[i].l);
}

static unsigned pending_mask(struct machine *m, uint8_t vector)
{
    unsigned mask = 0;
    for (unsigned i = 0; i < 3; i++)
        if (test_bit(&m->f[i], 0x200, vector))
            mask |= 1u << i;
    return mask;
}

static void clear_irr(struct machine *m)
{
    for (unsigned i = 0; i < 3; i++)
        while (lapic_has_interrupt(&m->f[i].l) >= 0) {
            lapic_ack(&m->f[i].l);
            wr(&m->f[i], 0xb0, 0);
        }
}

static void test_routing(void **state)
{
    (void)state;
    struct machine *m = calloc(1, sizeof(*m));
    machine_init(m);
    struct apic_msg msg = fixed(0x40, false);
    msg.dest = 1;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 1);
    assert_int_equal(pending_mask(m, 0x40), 2);
    clear_irr(m);
    msg.dest = 0xff; /* physical broadcast */
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 3);
    clear_irr(m);
    msg.dest = 7;    /* nobody */
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 0);
    /* Logical flat. */
    msg.dest_logical = true;
    msg.dest = 0x05;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 2);
    assert_int_equal(pending_mask(m, 0x40), 5);
    clear_irr(m);
    /* Logical cluster: cluster 1, members 0-1. */
    for (unsigned i = 0; i < 3; i++) {
        wr(&m->f[i], 0xe0, 0x0fffffff);
        wr(&m->f[i], 0xd0, (0x10u | (1u << i)) << 24);
    }
    wr(&m->f[2], 0xd0, 0x21u << 24); /* cluster 2 */
    msg.dest = 0x13;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 2);
    assert_int_equal(pending_mask(m, 0x40), 3);
    clear_irr(m);
    msg.dest = 0xff;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 3);
    clear_irr(m);
    /* Lowest priority: the lowest APR among the targets. */
    for (unsigned i = 0; i < 3; i++) {
        wr(&m->f[i], 0xe0, 0xffffffff);
        wr(&m->f[i], 0xd0, 1u << (24 + i));
    }
    wr(&m->f[0], 0x80, 0x50);
    wr(&m->f[1], 0x80, 0x20);
    wr(&m->f[2], 0x80, 0x30);
    msg.delivery_mode = APIC_DM_LOWEST;
    msg.dest = 0x07;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 1);
    assert_int_equal(pending_mask(m, 0x40), 2);
    /* MSI redirection hint works the same way. */
    msg.delivery_mode = APIC_DM_FIXED;
    msg.redir_hint = true;
    msg.dest = 0x05;
    msg.vector = 0x41;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 1);
    assert_int_equal(pending_mask(m, 0x41), 4);
    for (unsigned i = 0; i < 3; i++)
        wr(&m->f[i], 0x80, 0);
    clear_irr(m);
    /* IPIs through the ICR, routed by the send_ipi callback straight back
     * into the APICs (the sender's own included: no lock is held). */
    wr(&m->f[1], 0x300, 0x000400e1); /* self */
    assert_int_equal(pending_mask(m, 0xe1), 2);
    wr(&m->f[1], 0x300, 0x000800e2); /* all including self */
    assert_int_equal(pending_mask(m, 0xe2), 7);
    wr(&m->f[1], 0x300, 0x000c00e3); /* all excluding self */
    assert_int_equal(pending_mask(m, 0xe3), 5);
    wr(&m->f[0], 0x310, 0x02000000);
    wr(&m->f[0], 0x300, 0x000000e4);
    assert_int_equal(pending_mask(m, 0xe4), 4);
    /* INIT/SIPI to an AP. */
    wr(&m->f[0], 0x310, 0x02000000);
    wr(&m->f[0], 0x300, 0x0000c500);
    wr(&m->f[0], 0x300, 0x00000608);
    assert_int_equal(lapic_pending_events(&m->f[2].l) & (LAPIC_EV_INIT | LAPIC_EV_SIPI),
                     LAPIC_EV_INIT | LAPIC_EV_SIPI);
    /* A globally disabled APIC matches nothing. */
    assert_int_equal(lapic_set_base(&m->f[2].l, 0xfee00000), 0);
    msg = fixed(0x40, false);
    msg.dest = 0xff;
    assert_int_equal(lapic_route(m->lapics, 3, &msg), 2);
    machine_destroy(m);
    free(m);
}

/* --- hostile --- */

/* The timer thread must never be handed a deadline it cannot get past. */
static void check_timer_sane(struct fixture *f)
{
    for (int i = 0; i < 3 && f->timer.armed; i++) {
        if (f->timer.deadline > f->clock.ns + 1000000000000ull)
            break;
        f->clock.ns = MAX(f->clock.ns, f->timer.deadline);
        f->timer.armed = false;
        lapic_timer_expired(&f->l, f->clock.ns);
        if (f->timer.armed)
            assert_true(f->timer.deadline > f->clock.ns);
    }
}

static void check_recovers(struct fixture *f)
{
    assert_int_equal(lapic_set_base(&f->l, 0xfee00000), 0);
    assert_int_equal(lapic_set_base(&f->l, 0xfee00800), 0);
    (void)lapic_take_nmi(&f->l);
    (void)lapic_take_smi(&f->l);
    (void)lapic_take_sipi(&f->l);
    lapic_set_lint(&f->l, 0, false);
    lapic_set_lint(&f->l, 1, false);
    assert_int_equal(lapic_pending_events(&f->l), 0);
    assert_false(f->timer.armed);
    linux_setup(f);
    struct apic_msg m = fixed(0x51, true);
    assert_true(lapic_accept(&f->l, &m));
    assert_int_equal(lapic_ack(&f->l), 0x51);
    unsigned n = f->neois;
    wr(f, 0xb0, 0);
    assert_int_equal(f->neois, n + 1);
    wr(f, 0x3e0, 0xb);
    wr(f, 0x320, 0xe9);
    wr(f, 0x380, 1000);
    expire(f);
    assert_int_equal(take_timer_irqs(f, 0xe9), 1);
}

static void test_hostile_table(void **state)
{
    struct fixture *f = *state;
    static const unsigned lens[] = {1, 2, 4, 8};
    static const uint32_t pats[] = {0, 0xffffffff, 0x0001ffff, 0x000600ff, 0x80000001,
                                    0x00020010, 0x000c0400, 0x0000c500};
    uint32_t seed = 99;
    linux_setup(f);
    for (unsigned off = 0; off < LAPIC_MMIO_LEN + 0x20; off += 4) {
        for (unsigned p = 0; p < ARRAY_SIZE(pats); p++) {
            uint8_t data[8];
            uint32_t v = pats[p] ^ (xorshift32(&seed) & 0x00ff00ff);
            le32_store(data, v);
            le32_store(data + 4, ~v);
            unsigned len = lens[xorshift32(&seed) % 4];
            lapic_bus_ops.write(&f->l, off, data, len);
            lapic_bus_ops.write(&f->l, off, data, 4);
            lapic_bus_ops.read(&f->l, off, data, len);
            uint32_t r = xorshift32(&seed);
            f->clock.ns += r % 5000;
            switch (r % 9) {
            case 0:
                lapic_set_tsc_deadline(&f->l, (uint64_t)r * r);
                break;
            case 1:
                if (lapic_set_base(&f->l, ((uint64_t)xorshift32(&seed) << 32) | r) == 0)
                    f->clock.ns++;
                break;
            case 2: {
                struct apic_msg m = {.dest = (uint8_t)r, .dest_logical = r >> 8 & 1,
                                     .delivery_mode = r >> 9 & 7, .vector = (uint8_t)(r >> 12),
                                     .trigger_level = r >> 20 & 1, .deassert = r >> 21 & 1,
                                     .source = -1};
                lapic_accept(&f->l, &m);
                break;
            }
            case 3:
                lapic_set_lint(&f->l, r >> 4 & 3, r >> 8 & 1);
                break;
            case 4:
                if (lapic_has_interrupt(&f->l) >= 0)
                    lapic_ack(&f->l);
                break;
            case 5:
                lapic_timer_expired(&f->l, f->clock.ns);
                break;
            case 6:
                lapic_set_cr8(&f->l, r);
                break;
            case 7:
                (void)lapic_take_init(&f->l);
                break;
            default:
                if (lapic_set_base(&f->l, 0xfee00800) == 0)
                    linux_setup(f);
                break;
            }
            if (f->timer.armed && f->timer.deadline <= f->clock.ns)
                lapic_timer_expired(&f->l, f->clock.ns);
            if (f->timer.armed)
                assert_true(f->timer.deadline > 0);
        }
        check_timer_sane(f);
    }
    /* Unaligned and odd-length accesses everywhere. */
    for (unsigned off = 0; off < 0x400; off++)
        for (unsigned li = 0; li < 4; li++) {
            uint8_t data[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
            lapic_bus_ops.write(&f->l, off, data, lens[li]);
            lapic_bus_ops.read(&f->l, off, data, lens[li]);
        }
    lapic_bus_ops.read(&f->l, UINT64_MAX - 2, &seed, 4);
    lapic_bus_ops.write(&f->l, UINT64_MAX - 3, &seed, 4);
    lapic_set_lint(&f->l, 2, true);
    lapic_set_lint(&f->l, UINT32_MAX, true);
    check_recovers(f);
}

/* --- snapshots --- */

static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x80, 0x20);
    struct apic_msg m = fixed(0x39, true);
    lapic_accept(&f->l, &m);
    assert_int_equal(lapic_ack(&f->l), 0x39); /* in service, level */
    m = fixed(0x61, false);
    lapic_accept(&f->l, &m);
    m = fixed(0x31, false);
    lapic_accept(&f->l, &m);                   /* pending, held by PPR */
    m = (struct apic_msg){.delivery_mode = APIC_DM_NMI, .source = -1};
    lapic_accept(&f->l, &m);
    wr(f, 0x3e0, 0x1);                         /* by 4 */
    wr(f, 0x320, (1u << 17) | 0xe5);
    uint64_t t0 = f->clock.ns;
    wr(f, 0x380, 250000);                      /* 1 ms period */
    f->clock.ns = t0 + 2300000;                /* 2.3 periods: one missed expiry */

    struct rec r = rec_new();
    lapic_save(&f->l, r);
    struct rec copy = rec_roundtrip(r);
    rec_free(r);
    struct fixture *g = calloc(1, sizeof(*g));
    fixture_init(g, 0, 0, true, false);
    g->clock.ns = 777000000000ull;             /* another epoch */
    assert_int_equal(lapic_load(&g->l, copy), 0);
    rec_free(copy);
    assert_true(g->kicks > 0);
    assert_int_equal(rd(g, 0x390), rd(f, 0x390));
    assert_int_equal(rd(g, 0x390), 250000 - 75000);
    /* Same behaviour on both from here. */
    struct fixture *both[2] = {f, g};
    for (int i = 0; i < 2; i++) {
        struct fixture *x = both[i];
        uint64_t base = x->clock.ns;
        assert_true(lapic_take_nmi(&x->l));
        assert_int_equal(rd(x, 0xa0), 0x30);
        assert_int_equal(lapic_has_interrupt(&x->l), 0x61);
        /* The overdue expiry fires once; then the grid continues. */
        lapic_timer_expired(&x->l, base);
        assert_int_equal(x->timer.deadline, base + 700000);
        assert_int_equal(lapic_ack(&x->l), 0xe5);
        wr(x, 0xb0, 0);
        assert_int_equal(lapic_ack(&x->l), 0x61);
        wr(x, 0xb0, 0);
        unsigned n = x->neois;
        wr(x, 0xb0, 0); /* the level one */
        assert_int_equal(x->neois, n + 1);
        assert_int_equal(x->eois[n], 0x39);
        assert_int_equal(lapic_ack(&x->l), 0x31);
    }
    lapic_destroy(&g->l);
    free(g);
}

static void test_save_load_tsc_deadline(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x320, (2u << 17) | 0xec);
    uint64_t tsc = fake_clock_now_tsc(&f->clock) + 4000;
    lapic_set_tsc_deadline(&f->l, tsc);
    struct rec r = rec_new();
    lapic_save(&f->l, r);
    struct fixture *g = calloc(1, sizeof(*g));
    fixture_init(g, 0, 0, true, false);
    g->clock.ns = f->clock.ns; /* the TSC continues across the restore */
    assert_int_equal(lapic_load(&g->l, r), 0);
    rec_free(r);
    assert_int_equal(lapic_get_tsc_deadline(&g->l), tsc);
    assert_int_equal(g->timer.deadline, g->clock.ns + 2000);
    expire(g);
    assert_int_equal(take_timer_irqs(g, 0xec), 1);
    lapic_destroy(&g->l);
    free(g);
}

static int load_with(struct fixture *f, const char *key, uint64_t value)
{
    struct rec r = rec_new();
    lapic_save(&f->l, r);
    rec_put_u64(r, key, value);
    int ret = lapic_load(&f->l, r);
    rec_free(r);
    return ret;
}

static void test_load_rejects_bad_values(void **state)
{
    struct fixture *f = *state;
    linux_setup(f);
    wr(f, 0x80, 0x10);
    static const struct {
        const char *key;
        uint64_t value;
    } bad[] = {
        {"base", 0xfee00901}, {"base", 0xfee00d00}, {"base", 0xfee00800}, /* BSP bit */
        {"tpr", 0x100}, {"id", 0x01}, {"ldr", 0xff}, {"dfr", 0}, {"svr", 0x1000},
        {"esr", 0x10}, {"icr_lo", 0x1000}, {"icr_hi", 1}, {"lvt_timer", 0x60000},
        {"lvt_timer", 0x4000}, {"lvt_lint0", 0x20000}, {"lvt_error", 0x700}, {"tdcr", 4},
        {"tmict", 1ull << 32}, {"sipi_vector", 256}, {"tsc_deadline", 5},
        {"timer_running", 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (!strcmp(bad[i].key, "timer_running")) {
            struct rec r = rec_new();
            lapic_save(&f->l, r);
            rec_put_bool(r, "timer_running", true); /* with tmict 0 */
            assert_int_not_equal(lapic_load(&f->l, r), 0);
            rec_free(r);
            continue;
        }
        assert_int_not_equal(load_with(f, bad[i].key, bad[i].value), 0);
    }
    /* A running timer with an absurd elapsed count or target. */
    wr(f, 0x380, 1000);
    assert_int_not_equal(load_with(f, "timer_elapsed", 1ull << 63), 0);
    assert_int_not_equal(load_with(f, "timer_target", UINT64_MAX), 0);
    assert_int_equal(load_with(f, "tpr", 0x10), 0);
    struct rec r = rec_new();
    rec_put_u64(r, "base", 0xfee00900);
    assert_int_not_equal(lapic_load(&f->l, r), 0); /* incomplete */
    rec_free(r);
    assert_int_equal(rd(f, 0x80), 0x10);
    check_recovers(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtual_wire_extint, setup_vw, teardown),
        cmocka_unit_test_setup_teardown(test_linux_setup_and_esr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_tpr_ppr_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious_and_illegal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_eoi_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_software_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apic_base_msr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icr_ipis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_sipi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_fixed_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_periodic_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_divider_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_tsc_deadline, setup, teardown),
        cmocka_unit_test(test_routing),
        cmocka_unit_test_setup_teardown(test_hostile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_tsc_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests_name("lapic", tests, NULL, NULL);
}

/* The interrupt controllers wired together as the lead will wire them: the
 * PIT and devices drive ISA lines into the PIC and the IOAPIC; the PIC's
 * output is the BSP's LINT0; the IOAPIC and IPIs go through lapic_route();
 * EOIs broadcast back to the IOAPIC. Then the same from several threads at
 * once, which must neither deadlock nor lose the machine's consistency. */
#include "irqchip_fakes.h"

#include <pthread.h>
#include <stdatomic.h>

#include "devices/i8254.h"
#include "irqchip/ioapic.h"
#include "irqchip/lapic.h"
#include "irqchip/pic.h"

#define NCPU 2

struct machine {
    struct pic pic;
    struct ioapic io;
    struct lapic cpu[NCPU];
    struct lapic *lapics[NCPU];
    struct pit pit;
    struct fake_clock clock;
    struct fake_timer pit_timer, io_timer, cpu_timer[NCPU];
    struct irq_sink sink;
    atomic_uint kicks[NCPU];
};

static struct machine *M;

static void gsi_set(void *ctx, uint32_t gsi, bool level)
{
    struct machine *m = ctx;
    if (gsi < 16)
        pic_set_irq(&m->pic, gsi, level);
    ioapic_set_irq(&m->io, gsi == 0 ? 2 : gsi, level); /* MADT: IRQ0 -> GSI 2 */
}

static const struct irq_sink_ops sink_ops = {.set_line = gsi_set};

static void pic_out(void *ctx, bool level)
{
    lapic_set_lint(&((struct machine *)ctx)->cpu[0], 0, level);
}

static const struct pic_ops pic_ops = {.set_output = pic_out};

static int io_deliver(void *ctx, const struct apic_msg *msg)
{
    struct machine *m = ctx;
    return lapic_route(m->lapics, NCPU, msg);
}

static const struct ioapic_ops io_ops = {.deliver = io_deliver};

struct cpu_ctx {
    struct machine *m;
    unsigned idx;
};
static struct cpu_ctx cpu_ctx[NCPU];

static void cpu_kick(void *ctx)
{
    struct cpu_ctx *c = ctx;
    atomic_fetch_add(&c->m->kicks[c->idx], 1);
}

static void cpu_eoi(void *ctx, uint8_t vector)
{
    ioapic_eoi(&((struct cpu_ctx *)ctx)->m->io, vector);
}

static void cpu_ipi(void *ctx, const struct apic_msg *msg)
{
    struct machine *m = ((struct cpu_ctx *)ctx)->m;
    lapic_route(m->lapics, NCPU, msg);
}

static uint8_t cpu_pic_ack(void *ctx)
{
    return pic_ack(&((struct cpu_ctx *)ctx)->m->pic);
}

static const struct lapic_ops cpu_ops = {cpu_kick, cpu_eoi, cpu_ipi, cpu_pic_ack};

static int setup(void **state)
{
    struct machine *m = calloc(1, sizeof(*m));
    m->clock.ns = 1000;
    struct vclock clk = fake_vclock(&m->clock, 1000000000);
    m->sink = (struct irq_sink){&sink_ops, m};
    pic_init(&m->pic, &pic_ops, m);
    ioapic_init(&m->io, &io_ops, m, clk, fake_vtimer(&m->io_timer));
    for (unsigned i = 0; i < NCPU; i++) {
        struct lapic_config cfg = {.index = i, .apic_id = (uint8_t)i, .bsp = i == 0,
                                   .virtual_wire = i == 0};
        cpu_ctx[i] = (struct cpu_ctx){m, i};
        lapic_init(&m->cpu[i], &cfg, &cpu_ops, &cpu_ctx[i], clk, fake_vtimer(&m->cpu_timer[i]));
        m->lapics[i] = &m->cpu[i];
    }
    pit_init(&m->pit, (struct irq_line){&m->sink, 0}, clk, fake_vtimer(&m->pit_timer));
    M = m;
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct machine *m = *state;
    pit_destroy(&m->pit);
    for (unsigned i = 0; i < NCPU; i++)
        lapic_destroy(&m->cpu[i]);
    ioapic_destroy(&m->io);
    pic_destroy(&m->pic);
    free(m);
    return 0;
}

static void pic_linux_init(struct machine *m)
{
    static const uint8_t master[] = {0x11, 0x30, 0x04, 0x01}, slave[] = {0x11, 0x38, 0x02, 0x01};
    io_wr8(&pic_master_bus_ops, &m->pic, 1, 0xff);
    for (int i = 0; i < 4; i++)
        io_wr8(&pic_master_bus_ops, &m->pic, i ? 1 : 0, master[i]);
    for (int i = 0; i < 4; i++)
        io_wr8(&pic_slave_bus_ops, &m->pic, i ? 1 : 0, slave[i]);
}

static void apic_enable(struct machine *m, unsigned i)
{
    mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0xf0, 0x1ff);
}

/* What a CPU does at an instruction boundary with IF=1. */
static int cpu_take(struct machine *m, unsigned i)
{
    if (lapic_has_interrupt(&m->cpu[i]) < 0)
        return -1;
    return lapic_ack(&m->cpu[i]);
}

static void test_pit_through_pic_and_lint0(void **state)
{
    struct machine *m = *state;
    pic_linux_init(m);
    io_wr8(&pic_master_bus_ops, &m->pic, 1, 0xfe); /* only IRQ0 */
    /* PIT channel 0 periodic (Linux's 0x34, HZ=1000). */
    io_wr8(&pit_bus_ops, &m->pit, 3, 0x34);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0xa9);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0x04);
    for (int tick = 0; tick < 5; tick++) {
        m->clock.ns = m->pit_timer.deadline;
        pit_timer_expired(&m->pit, m->clock.ns);
        /* The INTA goes through the BSP's LINT0 (ExtINT) to the PIC. */
        assert_int_equal(lapic_has_interrupt(&m->cpu[0]), LAPIC_EXTINT);
        assert_int_equal(lapic_has_interrupt(&m->cpu[1]), -1);
        assert_int_equal(cpu_take(m, 0), 0x30);
        assert_int_equal(lapic_has_interrupt(&m->cpu[0]), -1);
        io_wr8(&pic_master_bus_ops, &m->pic, 0, 0x20);
    }
}

static void test_ioapic_level_with_eoi_broadcast(void **state)
{
    struct machine *m = *state;
    apic_enable(m, 0);
    apic_enable(m, 1);
    /* GSI 10 level, to APIC 1. */
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 10 + 1);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x01000000);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 10);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x8000 | 0x4a);
    struct irq_line line = {&m->sink, 10};
    irq_line_set(&line, true);
    assert_int_equal(cpu_take(m, 1), 0x4a);
    /* The handler does not quiet the device: the EOI re-delivers. */
    mmio_wr32(&lapic_bus_ops, &m->cpu[1], 0xb0, 0);
    assert_int_equal(cpu_take(m, 1), 0x4a);
    irq_line_set(&line, false);
    mmio_wr32(&lapic_bus_ops, &m->cpu[1], 0xb0, 0);
    assert_int_equal(cpu_take(m, 1), -1);
    assert_int_equal(cpu_take(m, 0), -1);
}

static void test_pit_through_ioapic_and_apic_timer(void **state)
{
    struct machine *m = *state;
    apic_enable(m, 0);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 2);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x30);
    io_wr8(&pit_bus_ops, &m->pit, 3, 0x34);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0xa9);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0x04);
    m->clock.ns = m->pit_timer.deadline;
    pit_timer_expired(&m->pit, m->clock.ns);
    /* The PIC is masked (BIOS state), the IOAPIC delivers vector 0x30. */
    assert_int_equal(cpu_take(m, 0), 0x30);
    mmio_wr32(&lapic_bus_ops, &m->cpu[0], 0xb0, 0);
    /* The LAPIC timer on the same clock. */
    mmio_wr32(&lapic_bus_ops, &m->cpu[0], 0x3e0, 0xb);
    mmio_wr32(&lapic_bus_ops, &m->cpu[0], 0x320, 0xec);
    mmio_wr32(&lapic_bus_ops, &m->cpu[0], 0x380, 5000);
    m->clock.ns = m->cpu_timer[0].deadline;
    lapic_timer_expired(&m->cpu[0], m->clock.ns);
    assert_int_equal(cpu_take(m, 0), 0xec);
}

/* --- threads --- */

static atomic_bool stop;
static atomic_uint handled[NCPU];

static void *vcpu_thread(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    struct machine *m = M;
    unsigned n = 0;
    while (!atomic_load(&stop)) {
        int v = cpu_take(m, i);
        if (v >= 0) {
            if (v >= 0x30 && v < 0x40) /* from the PIC */
                io_wr8(&pic_master_bus_ops, &m->pic, 0, 0x20);
            else if (v != 0xff)
                mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0xb0, 0);
            atomic_fetch_add(&handled[i], 1);
        }
        if (++n % 64 == 0) /* an IPI to the other CPU, and one to self */
            mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0x300, 0x000c00e0);
        if (n % 97 == 0)
            mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0x300, 0x000400e1);
        if (n % 101 == 0)
            (void)lapic_take_nmi(&m->cpu[i]);
    }
    return NULL;
}

static void *device_thread(void *arg)
{
    struct machine *m = M;
    (void)arg;
    for (unsigned n = 0; n < 20000; n++) {
        struct irq_line l10 = {&m->sink, 10}, l4 = {&m->sink, 4}, l1 = {&m->sink, 1};
        irq_line_set(&l10, n & 1);
        irq_line_pulse(&l4);
        irq_line_pulse(&l1);
    }
    return NULL;
}

static void *timer_thread(void *arg)
{
    struct machine *m = M;
    (void)arg;
    for (unsigned n = 0; n < 20000; n++) {
        uint64_t now = __atomic_add_fetch(&m->clock.ns, 50000, __ATOMIC_RELAXED);
        pit_timer_expired(&m->pit, now);
        lapic_timer_expired(&m->cpu[n & 1], now);
        ioapic_timer_expired(&m->io, now);
    }
    return NULL;
}

static void test_threads_no_deadlock(void **state)
{
    struct machine *m = *state;
    pic_linux_init(m);
    io_wr8(&pic_master_bus_ops, &m->pic, 1, 0xfc); /* IRQ0, IRQ1 via the PIC */
    apic_enable(m, 0);
    apic_enable(m, 1);
    mmio_wr32(&lapic_bus_ops, &m->cpu[0], 0x350, 0x700); /* keep virtual wire */
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 10);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x8000 | 0x4a); /* level, to APIC 0 */
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 4 + 1);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x01000000);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0, 0x10 + 2 * 4);
    mmio_wr32(&ioapic_bus_ops, &m->io, 0x10, 0x44);            /* edge, to APIC 1 */
    io_wr8(&pit_bus_ops, &m->pit, 3, 0x34);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0xa9);
    io_wr8(&pit_bus_ops, &m->pit, 0, 0x04);
    for (unsigned i = 0; i < NCPU; i++) {
        mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0x3e0, 0xb);
        mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0x320, (1u << 17) | 0xed);
        mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0x380, 200000);
    }
    atomic_store(&stop, false);
    pthread_t cpus[NCPU], dev, tim;
    for (unsigned i = 0; i < NCPU; i++)
        assert_int_equal(pthread_create(&cpus[i], NULL, vcpu_thread, (void *)(uintptr_t)i), 0);
    assert_int_equal(pthread_create(&dev, NULL, device_thread, NULL), 0);
    assert_int_equal(pthread_create(&tim, NULL, timer_thread, NULL), 0);
    pthread_join(dev, NULL);
    pthread_join(tim, NULL);
    atomic_store(&stop, true);
    for (unsigned i = 0; i < NCPU; i++)
        pthread_join(cpus[i], NULL);
    assert_true(atomic_load(&handled[0]) > 0);
    assert_true(atomic_load(&handled[1]) > 0);
    /* Drain: everything left can be handled and nothing is stuck. */
    struct irq_line l10 = {&m->sink, 10};
    irq_line_set(&l10, false);
    for (unsigned i = 0; i < NCPU; i++) {
        int v, guard = 0;
        while ((v = cpu_take(m, i)) >= 0 && guard++ < 1000) {
            if (v >= 0x30 && v < 0x40)
                io_wr8(&pic_master_bus_ops, &m->pic, 0, 0x20);
            else
                mmio_wr32(&lapic_bus_ops, &m->cpu[i], 0xb0, 0);
        }
        assert_true(guard < 1000);
        assert_int_equal(mmio_rd32(&lapic_bus_ops, &m->cpu[i], 0xa0), 0); /* PPR */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pit_through_pic_and_lint0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ioapic_level_with_eoi_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pit_through_ioapic_and_apic_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_no_deadlock, setup, teardown),
    };
    return cmocka_run_group_tests_name("irqchip", tests, NULL, NULL);
}

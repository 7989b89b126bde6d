/* The 8254 PIT and port 0x61 against the datasheet and Linux 6.1's use of
 * them: TSC calibration on channel 2 through port 0x61 (pit_calibrate_tsc,
 * quick_pit_calibrate), the i8253 clockevent (mode 2 periodic 0x34, mode 4
 * one-shot 0x38, shutdown 0x30) and clocksource (latch command), on a fake
 * clock. */
#include "irqchip_fakes.h"
#include "rec_copy.h"

#include "devices/i8254.h"

struct fixture {
    struct pit pit;
    struct fake_clock clock;
    struct fake_timer timer;
    struct irq_sink sink;
    unsigned pulses;
    bool level;
};

static void set_line(void *ctx, uint32_t gsi, bool level)
{
    struct fixture *f = ctx;
    assert_int_equal(gsi, 0);
    if (level && !f->level)
        f->pulses++;
    f->level = level;
}

static const struct irq_sink_ops sink_ops = {.set_line = set_line};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->clock.ns = 1234567891; /* an odd phase against the PIT clock */
    f->sink = (struct irq_sink){&sink_ops, f};
    pit_init(&f->pit, (struct irq_line){&f->sink, 0}, fake_vclock(&f->clock, 0),
             fake_vtimer(&f->timer));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pit_destroy(&f->pit);
    free(f);
    return 0;
}

static uint64_t ticks(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * PIT_HZ / 1000000000u);
}

static uint64_t tick_ns(uint64_t k)
{
    return (uint64_t)(((unsigned __int128)k * 1000000000u + PIT_HZ - 1) / PIT_HZ);
}

static void out8(struct fixture *f, unsigned port, uint8_t v)
{
    if (port == 0x61)
        io_wr8(&pit_port61_ops, &f->pit, 0, v);
    else
        io_wr8(&pit_bus_ops, &f->pit, port - 0x40, v);
}

static uint8_t in8(struct fixture *f, unsigned port)
{
    if (port == 0x61)
        return io_rd8(&pit_port61_ops, &f->pit, 0);
    return io_rd8(&pit_bus_ops, &f->pit, port - 0x40);
}

static bool out2(struct fixture *f)
{
    return in8(f, 0x61) & 0x20;
}

/* Latch and read a channel's count (LSB then MSB), as Linux's clocksource. */
static uint16_t latched(struct fixture *f, unsigned ch)
{
    out8(f, 0x43, (uint8_t)(ch << 6));
    uint16_t lo = in8(f, 0x40 + ch);
    return (uint16_t)(lo | in8(f, 0x40 + ch) << 8);
}

static void at_tick(struct fixture *f, uint64_t k)
{
    f->clock.ns = tick_ns(k);
}

static void expire(struct fixture *f)
{
    assert_true(f->timer.armed);
    if (f->clock.ns < f->timer.deadline)
        f->clock.ns = f->timer.deadline;
    f->timer.armed = false;
    pit_timer_expired(&f->pit, f->clock.ns);
}

static void test_reset_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in8(f, 0x43), 0xff);
    assert_int_equal(in8(f, 0x61) & 0x2f, 0);
    assert_false(f->timer.armed);
    /* The refresh toggle flips every 15.085 us. */
    f->clock.ns = 15085 * 10;
    uint8_t a = in8(f, 0x61) & 0x10;
    f->clock.ns += 15085;
    uint8_t b = in8(f, 0x61) & 0x10;
    assert_int_not_equal(a, b);
    /* Port 0x61: bits 0-3 read back, the rest is status. */
    out8(f, 0x61, 0xff);
    assert_int_equal(in8(f, 0x61) & 0xcf, 0x0f);
}

/* Linux's pit_calibrate_tsc(): mode 0 on channel 2, poll OUT2 in port 0x61.
 * OUT2 must rise exactly N+1 PIT clocks after the count is written. */
static void calibration(struct fixture *f, uint16_t latch)
{
    out8(f, 0x61, (uint8_t)((in8(f, 0x61) & ~0x02) | 0x01));
    out8(f, 0x43, 0xb0);
    out8(f, 0x42, (uint8_t)latch);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, (uint8_t)(latch >> 8));
    assert_false(out2(f));
    uint64_t rise = kw + 1 + latch;
    /* Sampled along the way: low, with the count going down one per tick. */
    for (uint64_t k = kw + 1; k < rise; k += 997) {
        at_tick(f, k);
        assert_false(out2(f));
        assert_int_equal(latched(f, 2), latch - (k - kw - 1));
    }
    f->clock.ns = tick_ns(rise) - 1;
    assert_false(out2(f));
    f->clock.ns = tick_ns(rise);
    assert_true(out2(f));
    assert_int_equal(latched(f, 2), 0);
    /* OUT stays high while the count wraps on. */
    at_tick(f, rise + 70000);
    assert_true(out2(f));
    assert_int_equal(latched(f, 2), (uint16_t)(0 - 70000));
    assert_false(f->timer.armed); /* channel 2 needs no timer */
    assert_int_equal(f->pulses, 0);
}

static void test_calibrate_mode0_out2(void **state)
{
    struct fixture *f = *state;
    calibration(f, 11931); /* CAL_MS = 10 */
    calibration(f, 59659); /* 50 ms */
    calibration(f, 1);
}

/* quick_pit_calibrate(): 0xffff in mode 0, the MSB read without latch drops
 * by one every 256 clocks. */
static void test_quick_calibrate_msb(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, (uint8_t)((in8(f, 0x61) & ~0x02) | 0x01));
    out8(f, 0x43, 0xb0);
    out8(f, 0x42, 0xff);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, 0xff);
    for (unsigned i = 0; i < 200; i++) {
        /* count = 0xffff - (k - kw - 1): MSB is 0xff - i for 256 ticks */
        uint64_t first = kw + 1 + 256 * (uint64_t)i;
        at_tick(f, i == 0 ? first : first - 0); /* first tick with this MSB is first + 0 */
        (void)in8(f, 0x42); /* ignore LSB */
        assert_int_equal(in8(f, 0x42), 0xff - i);
        at_tick(f, first + 255);
        (void)in8(f, 0x42);
        assert_int_equal(in8(f, 0x42), 0xff - i);
    }
}

/* Linux's clockevent in periodic mode: 0x34, LATCH = 1193 for HZ=1000. */
static void test_mode2_periodic_irq0(void **state)
{
    struct fixture *f = *state;
    const uint16_t n = 1193;
    out8(f, 0x43, 0x34);
    out8(f, 0x40, n & 0xff);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x40, n >> 8);
    assert_true(f->timer.armed);
    assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + n));
    for (unsigned i = 1; i <= 10; i++) {
        expire(f);
        assert_int_equal(f->pulses, i);
        assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + (uint64_t)(i + 1) * n));
    }
    /* The clocksource's latch read: the count within the period. */
    at_tick(f, kw + 1 + 10 * (uint64_t)n + 100);
    assert_int_equal(latched(f, 0), n - 100);
    /* The host is 5 periods late: one pulse, then back on the grid. */
    at_tick(f, kw + 1 + 16 * (uint64_t)n + 3);
    f->timer.armed = false;
    pit_timer_expired(&f->pit, f->clock.ns);
    assert_int_equal(f->pulses, 11);
    assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + 17 * (uint64_t)n));
    /* Shutdown (mode 0 control word): no more interrupts. */
    out8(f, 0x43, 0x30);
    assert_false(f->timer.armed);
    /* ...and i8253_clear_counter_on_shutdown's zero count: one interrupt
     * after 65536 clocks, as on hardware. */
    out8(f, 0x40, 0);
    kw = ticks(f->clock.ns);
    out8(f, 0x40, 0);
    assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + 65536));
    expire(f);
    assert_int_equal(f->pulses, 12);
    assert_false(f->timer.armed);
}

/* Linux's clockevent in one-shot mode: 0x38 then counts without a new
 * control word (each restarts the count). */
static void test_mode4_oneshot(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x43, 0x38);
    out8(f, 0x40, 100);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x40, 0);
    /* The strobe: OUT low for one clock at the terminal count, the rising
     * edge after it interrupts. */
    assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + 101));
    expire(f);
    assert_int_equal(f->pulses, 1);
    assert_false(f->timer.armed);
    /* Reprogrammed before it fires: the new count replaces it. */
    out8(f, 0x40, 0x10);
    kw = ticks(f->clock.ns);
    out8(f, 0x40, 0x27); /* 10000 */
    uint64_t first = f->timer.deadline;
    assert_int_equal(first, tick_ns(kw + 1 + 10001));
    at_tick(f, kw + 5000);
    out8(f, 0x40, 50);
    uint64_t kw2 = ticks(f->clock.ns);
    out8(f, 0x40, 0);
    assert_int_equal(f->timer.deadline, tick_ns(kw2 + 1 + 51));
    expire(f);
    assert_int_equal(f->pulses, 2);
    /* Strobe on channel 2 seen through OUT2. */
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb8);
    out8(f, 0x42, 5);
    kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    at_tick(f, kw + 5);
    assert_true(out2(f));
    at_tick(f, kw + 6);
    assert_false(out2(f));
    at_tick(f, kw + 7);
    assert_true(out2(f));
}

static void test_mode3_square_wave(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x03); /* gate and speaker on: a beep */
    static const uint16_t counts[] = {10, 5, 2, 3};
    for (unsigned c = 0; c < ARRAY_SIZE(counts); c++) {
        uint16_t n = counts[c];
        out8(f, 0x43, 0xb6);
        out8(f, 0x42, (uint8_t)n);
        uint64_t kw = ticks(f->clock.ns);
        out8(f, 0x42, 0);
        unsigned high = (n + 1) / 2;
        for (uint64_t p = 0; p < 3 * (uint64_t)n; p++) {
            at_tick(f, kw + 1 + p);
            assert_int_equal(out2(f), (p % n) < high);
        }
    }
    /* Counts go down by two; odd counts as the datasheet says. */
    out8(f, 0x43, 0xb6);
    out8(f, 0x42, 5);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    static const uint16_t seq[] = {5, 4, 2, 5, 2, 5, 4};
    for (unsigned i = 0; i < ARRAY_SIZE(seq); i++) {
        at_tick(f, kw + 1 + i);
        assert_int_equal(latched(f, 2), seq[i]);
    }
    /* Gate low forces OUT high and stops; a rising gate reloads. */
    at_tick(f, kw + 1 + 3); /* low half */
    assert_false(out2(f));
    out8(f, 0x61, 0x00);
    assert_true(out2(f));
    out8(f, 0x61, 0x01);
    uint64_t kg = ticks(f->clock.ns);
    at_tick(f, kg + 1);
    assert_int_equal(latched(f, 2), 5);
    assert_true(out2(f));
}

static void test_modes_1_and_5_gate_trigger(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x00);
    out8(f, 0x43, 0xb2); /* mode 1 */
    out8(f, 0x42, 10);
    out8(f, 0x42, 0);
    f->clock.ns += 100000;
    assert_true(out2(f)); /* waits for a trigger */
    out8(f, 0x61, 0x01);
    uint64_t kt = ticks(f->clock.ns);
    assert_true(out2(f));
    at_tick(f, kt + 1);
    assert_false(out2(f));
    assert_int_equal(latched(f, 2), 10);
    at_tick(f, kt + 10);
    assert_false(out2(f));
    at_tick(f, kt + 11);
    assert_true(out2(f));
    /* Gate level does not matter; a new rising edge retriggers. */
    out8(f, 0x61, 0x00);
    at_tick(f, kt + 20);
    out8(f, 0x61, 0x01);
    kt = ticks(f->clock.ns);
    at_tick(f, kt + 5);
    assert_false(out2(f));
    assert_int_equal(latched(f, 2), 6);
    /* Mode 5: a strobe N clocks after the trigger. */
    out8(f, 0x61, 0x00);
    out8(f, 0x43, 0xba);
    out8(f, 0x42, 4);
    out8(f, 0x42, 0);
    out8(f, 0x61, 0x01);
    kt = ticks(f->clock.ns);
    at_tick(f, kt + 4);
    assert_true(out2(f));
    at_tick(f, kt + 5);
    assert_false(out2(f));
    at_tick(f, kt + 6);
    assert_true(out2(f));
}

static void test_mode0_gate_and_first_byte(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb0);
    out8(f, 0x42, 100);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    at_tick(f, kw + 41);
    assert_int_equal(latched(f, 2), 60);
    out8(f, 0x61, 0x00); /* suspend */
    at_tick(f, kw + 500);
    assert_int_equal(latched(f, 2), 60);
    assert_false(out2(f));
    out8(f, 0x61, 0x01);
    uint64_t kr = ticks(f->clock.ns);
    at_tick(f, kr + 59);
    assert_false(out2(f));
    at_tick(f, kr + 60);
    assert_true(out2(f));
    /* Writing the first byte of a new count stops it and drops OUT. */
    at_tick(f, kr + 70);
    assert_int_equal(latched(f, 2), (uint16_t)-10);
    out8(f, 0x42, 0x34);
    assert_false(out2(f));
    assert_int_equal(latched(f, 2), (uint16_t)-10);
    f->clock.ns += 1000000;
    assert_int_equal(latched(f, 2), (uint16_t)-10);
    assert_false(out2(f));
    out8(f, 0x42, 0x12);
    kw = ticks(f->clock.ns) - 0;
    at_tick(f, kw + 1 + 0x1234);
    assert_true(out2(f));
}

static void test_mode2_new_count_at_reload(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb4);
    out8(f, 0x42, 100);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    at_tick(f, kw + 1 + 30);
    out8(f, 0x42, 10);
    out8(f, 0x42, 0);
    /* Status shows null count until the reload. */
    out8(f, 0x43, 0xe8); /* read-back status of channel 2 */
    assert_int_equal(in8(f, 0x42) & 0x40, 0x40);
    at_tick(f, kw + 1 + 99);
    assert_int_equal(latched(f, 2), 1);
    assert_false(out2(f));
    at_tick(f, kw + 1 + 100);
    assert_int_equal(latched(f, 2), 10);
    assert_true(out2(f));
    at_tick(f, kw + 1 + 109);
    assert_false(out2(f));
    at_tick(f, kw + 1 + 110);
    assert_true(out2(f));
    out8(f, 0x43, 0xe8);
    assert_int_equal(in8(f, 0x42) & 0x40, 0);
}

static void test_access_modes_latch_readback(void **state)
{
    struct fixture *f = *state;
    /* LSB only and MSB only. */
    out8(f, 0x43, 0x54); /* ch1, LSB, mode 2 */
    out8(f, 0x41, 0x80);
    uint64_t kw = ticks(f->clock.ns);
    at_tick(f, kw + 1);
    assert_int_equal(in8(f, 0x41), 0x80);
    at_tick(f, kw + 1 + 0x20);
    assert_int_equal(in8(f, 0x41), 0x60);
    out8(f, 0x43, 0x64); /* ch1, MSB, mode 2 */
    out8(f, 0x41, 0x02);
    kw = ticks(f->clock.ns);
    at_tick(f, kw + 1 + 0x100);
    assert_int_equal(in8(f, 0x41), 0x01);
    /* A latch holds its value; a second latch before the read is ignored. */
    out8(f, 0x43, 0x74);
    out8(f, 0x41, 0x00);
    kw = ticks(f->clock.ns);
    out8(f, 0x41, 0x10);
    at_tick(f, kw + 1 + 0x100);
    out8(f, 0x43, 0x40);
    at_tick(f, kw + 1 + 0x300);
    out8(f, 0x43, 0x40);
    assert_int_equal(in8(f, 0x41), 0x00);
    assert_int_equal(in8(f, 0x41), 0x0f);
    /* Read-back: status then count, for two channels at once. */
    at_tick(f, kw + 1 + 0x200);
    out8(f, 0x43, 0xc4); /* count and status of channel 1 */
    uint8_t st = in8(f, 0x41);
    assert_int_equal(st, 0x80 | 0x30 | (2 << 1)); /* OUT high, LSB+MSB, mode 2 */
    assert_int_equal(in8(f, 0x41), 0x00);
    assert_int_equal(in8(f, 0x41), 0x0e);
    /* Status only, of a channel with a control word but no count. */
    out8(f, 0x43, 0x90); /* ch2, LSB only, mode 0 */
    out8(f, 0x43, 0xe8);
    assert_int_equal(in8(f, 0x42), 0x40 | 0x10); /* OUT low, null count */
    /* Mode bits 6 and 7 are modes 2 and 3, and read back as written. */
    out8(f, 0x43, 0x3c); /* ch0, mode 6 */
    out8(f, 0x43, 0xe2);
    assert_int_equal(in8(f, 0x40) & 0x0e, 6 << 1);
    out8(f, 0x40, 10);
    out8(f, 0x40, 0);
    assert_true(f->timer.armed); /* periodic, like mode 2 */
}

static void test_bcd(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb1); /* ch2, mode 0, BCD */
    out8(f, 0x42, 0x00);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x42, 0x01); /* 100 */
    at_tick(f, kw + 1 + 1);
    assert_int_equal(latched(f, 2), 0x0099);
    at_tick(f, kw + 1 + 100);
    assert_true(out2(f));
    at_tick(f, kw + 1 + 101);
    assert_int_equal(latched(f, 2), 0x9999); /* wraps at 10000 */
    /* 0 is 10000. */
    out8(f, 0x43, 0xb1);
    out8(f, 0x42, 0);
    kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    at_tick(f, kw + 1 + 9999);
    assert_false(out2(f));
    assert_int_equal(latched(f, 2), 0x0001);
    at_tick(f, kw + 1 + 10000);
    assert_true(out2(f));
    /* Digits above 9 at face value: 0x00ff = 15*10+15 = 165. */
    out8(f, 0x43, 0xb1);
    out8(f, 0x42, 0xff);
    kw = ticks(f->clock.ns);
    out8(f, 0x42, 0x00);
    at_tick(f, kw + 1 + 164);
    assert_false(out2(f));
    at_tick(f, kw + 1 + 165);
    assert_true(out2(f));
}

static void test_irq_min_gap(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x43, 0x34);
    out8(f, 0x40, 2);
    out8(f, 0x40, 0);
    for (int i = 0; i < 50; i++) {
        uint64_t before = f->clock.ns;
        expire(f);
        assert_true(f->timer.deadline >= before + PIT_MIN_IRQ_GAP_NS);
    }
    assert_true(f->pulses >= 49 && f->pulses <= 50);
}

static void check_recovers(struct fixture *f)
{
    out8(f, 0x43, 0x34);
    out8(f, 0x40, 0xa9);
    uint64_t kw = ticks(f->clock.ns);
    out8(f, 0x40, 0x04); /* 1193 */
    assert_int_equal(f->timer.deadline, tick_ns(kw + 1 + 1193));
    unsigned p = f->pulses;
    expire(f);
    expire(f);
    assert_int_equal(f->pulses, p + 2);
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb0);
    out8(f, 0x42, 10);
    kw = ticks(f->clock.ns);
    out8(f, 0x42, 0);
    at_tick(f, kw + 10);
    assert_false(out2(f));
    at_tick(f, kw + 11);
    assert_true(out2(f));
}

static void test_hostile_table(void **state)
{
    struct fixture *f = *state;
    static const unsigned lens[] = {1, 2, 4, 8};
    uint32_t seed = 4242;
    for (unsigned off = 0; off < 6; off++)
        for (unsigned li = 0; li < 4; li++)
            for (unsigned v = 0; v < 256; v++) {
                uint8_t data[8];
                for (unsigned i = 0; i < 8; i++)
                    data[i] = (uint8_t)(v ^ (xorshift32(&seed) & (i ? 0xff : 0)));
                pit_bus_ops.write(&f->pit, off, data, lens[li]);
                pit_bus_ops.read(&f->pit, off, data, lens[li]);
                uint32_t r = xorshift32(&seed);
                if (r & 1)
                    pit_port61_ops.write(&f->pit, r >> 1 & 1, data, lens[li]);
                pit_port61_ops.read(&f->pit, 0, data, 1);
                f->clock.ns += r % 3000;
                if ((r >> 4) % 4 == 0 && f->timer.armed) {
                    f->clock.ns = MAX(f->clock.ns, f->timer.deadline);
                    f->timer.armed = false;
                    pit_timer_expired(&f->pit, f->clock.ns);
                    /* never a deadline the timer thread cannot get past */
                    if (f->timer.armed)
                        assert_true(f->timer.deadline > f->clock.ns);
                }
            }
    pit_bus_ops.read(&f->pit, UINT64_MAX - 1, &seed, 4);
    pit_bus_ops.write(&f->pit, UINT64_MAX - 1, &seed, 4);
    pit_port61_ops.write(&f->pit, 0, &seed, 0);
    check_recovers(f);
}

static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    /* ch0 periodic, ch2 mid-way through a mode-0 count, ch1 latched. */
    out8(f, 0x43, 0x34);
    out8(f, 0x40, 1000 & 0xff);
    uint64_t kw0 = ticks(f->clock.ns);
    out8(f, 0x40, 1000 >> 8);
    out8(f, 0x61, 0x01);
    out8(f, 0x43, 0xb0);
    out8(f, 0x42, 5000 & 0xff);
    uint64_t kw2 = ticks(f->clock.ns);
    out8(f, 0x42, 5000 >> 8);
    out8(f, 0x43, 0x54);
    out8(f, 0x41, 0x99);
    at_tick(f, kw2 + 1 + 1234);
    out8(f, 0x43, 0x40); /* latch ch1 */
    uint64_t saved_tick = ticks(f->clock.ns);

    struct rec r = rec_new();
    pit_save(&f->pit, r);
    struct rec copy = rec_roundtrip(r);
    rec_free(r);
    struct fixture *g = calloc(1, sizeof(*g));
    g->clock.ns = 5000000000000ull + 777; /* another epoch and phase */
    g->sink = (struct irq_sink){&sink_ops, g};
    pit_init(&g->pit, (struct irq_line){&g->sink, 0}, fake_vclock(&g->clock, 0),
             fake_vtimer(&g->timer));
    assert_int_equal(pit_load(&g->pit, copy), 0);
    rec_free(copy);
    assert_int_equal(f->pulses, 1); /* the accesses caught up with the edge */
    assert_int_equal(g->pulses, 0);
    uint64_t base_g = ticks(g->clock.ns);
    /* Same counts, same OUT2 timing relative to the save. */
    struct fixture *both[2] = {f, g};
    uint64_t base[2] = {saved_tick, base_g};
    for (int i = 0; i < 2; i++) {
        struct fixture *x = both[i];
        assert_int_equal(in8(x, 0x41), 0x99 - 1234 % 0x99); /* the latch survived */
        assert_int_equal(latched(x, 2), 5000 - 1234);
        at_tick(x, base[i] + 5000 - 1234 - 1);
        assert_false(out2(x));
        at_tick(x, base[i] + 5000 - 1234);
        assert_true(out2(x));
    }
    (void)kw0;
    /* Channel 0 keeps its period and phase in the restored one: the save
     * was 1234 + 1 - 1001 = 234 ticks into the second period. */
    g->clock.ns = tick_ns(base_g);
    assert_int_equal(g->timer.deadline, tick_ns(base_g + 1000 - 234));
    expire(g);
    assert_int_equal(g->pulses, 1);
    uint64_t d1 = g->timer.deadline;
    expire(g);
    assert_int_equal(g->pulses, 2);
    assert_int_equal(ticks(g->timer.deadline) - ticks(d1), 1000);
    /* An edge that passed with no access and no expiry is due at save and
     * delivered by the load. */
    at_tick(f, ticks(f->timer.deadline) + 10);
    r = rec_new();
    pit_save(&f->pit, r);
    unsigned before = g->pulses;
    assert_int_equal(pit_load(&g->pit, r), 0);
    rec_free(r);
    assert_int_equal(g->pulses, before + 1);
    pit_destroy(&g->pit);
    free(g);
}

/* Found by fuzz_legacy_ports: a channel counting a binary count above
 * 10000, then switched to BCD by a control word, was saved with its old
 * count, which the load refuses in BCD: the guest made its own snapshot
 * impossible to restore. */
static void test_bcd_after_binary_count_restores(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x43, 0xb0); /* channel 2, LSB then MSB, mode 0, binary */
    out8(f, 0x42, 0xbc);
    out8(f, 0x42, 0xa7); /* 42940 */
    out8(f, 0x61, 0x01); /* gate 2 high: it counts */
    f->clock.ns += 1000000;
    out8(f, 0x43, 0xb1); /* the same channel in BCD, no count yet */
    struct rec r = rec_new();
    pit_save(&f->pit, r);
    r = rec_copy(r);
    assert_int_equal(pit_load(&f->pit, r), 0);
    rec_free(r);
}

/* Also found by fuzz_legacy_ports: a control word dropped a latched count
 * half read (LSB then MSB) but kept its "MSB next" flag, which the load
 * refuses in any other access mode. */
static void test_control_word_after_half_read_latch_restores(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x43, 0x30); /* channel 0, LSB then MSB, mode 0 */
    out8(f, 0x40, 0x34);
    out8(f, 0x40, 0x12);
    out8(f, 0x43, 0x00); /* latch channel 0 */
    (void)in8(f, 0x40);  /* its LSB only */
    out8(f, 0x43, 0x10); /* channel 0, LSB only */
    struct rec r = rec_new();
    pit_save(&f->pit, r);
    r = rec_copy(r);
    assert_int_equal(pit_load(&f->pit, r), 0);
    rec_free(r);
}

/* And by its campaign of 2026-12-03: in mode 2 a count written while
 * counting waits for the reload; the gate falling then stopped the channel
 * with that count still pending, a state the load refused ("'pending' is
 * inconsistent"). It restores, and the gate's rise loads the new count. */
static void test_pending_count_with_gate_low_restores(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x61, 0x01); /* gate 2 high */
    out8(f, 0x43, 0xb4); /* channel 2, LSB then MSB, mode 2 */
    out8(f, 0x42, 0x00);
    out8(f, 0x42, 0x4c); /* 19456 */
    f->clock.ns += 1000000;
    out8(f, 0x42, 0x10);
    out8(f, 0x42, 0x27); /* 10000: pending until the reload */
    f->clock.ns += 1000000;
    out8(f, 0x61, 0x00); /* the gate stops it, the count still pending */
    struct rec r = rec_new();
    pit_save(&f->pit, r);
    r = rec_copy(r);
    assert_int_equal(pit_load(&f->pit, r), 0);
    rec_free(r);
    out8(f, 0x61, 0x01); /* a rising gate reloads (at the next tick): the new count */
    at_tick(f, ticks(f->clock.ns) + 1);
    assert_int_equal(latched(f, 2), 10000);
}

static void test_load_rejects_bad_values(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x43, 0x34);
    out8(f, 0x40, 100);
    out8(f, 0x40, 0);
    struct rec good = rec_new();
    pit_save(&f->pit, good);
    size_t len;
    char *text = strdup(rec_text(good, &len));
    rec_free(good);
    static const struct {
        const char *from, *to;
    } bad[] = {
        {"\"mode_bits\":2", "\"mode_bits\":8"},
        {"\"rw\":3", "\"rw\":0"},
        {"\"rw\":3", "\"rw\":4"},
        {"\"n\":100", "\"n\":65537"},
        {"\"n\":100", "\"n\":0"},
        {"\"gate\":true", "\"gate\":false"},     /* channel 0's gate is tied high */
        {"\"port61\":0", "\"port61\":16"},
        {"\"port61\":0", "\"port61\":1"},        /* disagrees with gate 2 */
        {"\"has_count\":true", "\"has_count\":false"},
        {"\"pending\":false", "\"pending\":true"},
        {"\"hold\":0", "\"hold\":65536"},
        {"\"elapsed\":", "\"elapsed\":461168601842738790"},
        {"\"channels\":[", "\"chanels\":["},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *p = strstr(text, bad[i].from);
        assert_non_null(p);
        size_t n = strlen(text) - strlen(bad[i].from) + strlen(bad[i].to) + 1;
        char *t = malloc(n);
        size_t pre = (size_t)(p - text);
        memcpy(t, text, pre);
        strcpy(t + pre, bad[i].to);
        strcat(t, p + strlen(bad[i].from));
        struct rec r;
        assert_int_equal(rec_parse(t, strlen(t), &r), 0);
        assert_int_not_equal(pit_load(&f->pit, r), 0);
        rec_free(r);
        free(t);
    }
    free(text);
    check_recovers(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calibrate_mode0_out2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quick_calibrate_msb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_periodic_irq0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode4_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode3_square_wave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_1_and_5_gate_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode0_gate_and_first_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_new_count_at_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_modes_latch_readback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_min_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcd_after_binary_count_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_word_after_half_read_latch_restores, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_count_with_gate_low_restores, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests_name("i8254", tests, NULL, NULL);
}

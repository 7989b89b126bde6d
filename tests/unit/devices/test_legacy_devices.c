/* The i8042 keyboard controller, CMOS RTC, ACPI PM registers and pvpanic. */
#include "fake_irq.h"
#include "rec_copy.h"

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "util/util.h"

/* --- i8042 ------------------------------------------------------------------ */

struct kbc {
    struct i8042 c;
    struct fake_irq irq;
    struct irq_sink sink;
    unsigned resets;
};

static void on_reset(void *ctx)
{
    ((struct kbc *)ctx)->resets++;
}

static const struct i8042_host_ops kbc_ops = {.reset = on_reset};

static struct kbc *kbc_new(void)
{
    struct kbc *k = calloc(1, sizeof(*k));
    k->sink = fake_irq_sink(&k->irq);
    i8042_init(&k->c, (struct irq_line){&k->sink, 1}, (struct irq_line){&k->sink, 12},
               &kbc_ops, k);
    return k;
}

static uint8_t kbc_status(struct kbc *k)
{
    uint8_t v;
    i8042_cmd_bus_ops.read(&k->c, 0, &v, 1);
    return v;
}

static uint8_t kbc_data(struct kbc *k)
{
    uint8_t v;
    i8042_data_bus_ops.read(&k->c, 0, &v, 1);
    return v;
}

static void kbc_cmd(struct kbc *k, uint8_t v)
{
    i8042_cmd_bus_ops.write(&k->c, 0, &v, 1);
}

static void kbc_write(struct kbc *k, uint8_t v)
{
    i8042_data_bus_ops.write(&k->c, 0, &v, 1);
}

static void test_i8042_probe_sequence(void **state)
{
    (void)state;
    struct kbc *k = kbc_new();
    assert_int_equal(kbc_status(k) & 0x01, 0);  /* nothing to read: flush ends */
    kbc_cmd(k, 0xaa);                           /* self test */
    assert_int_equal(kbc_status(k) & 0x01, 1);
    assert_int_equal(kbc_data(k), 0x55);
    kbc_cmd(k, 0x20);                           /* read CTR */
    uint8_t ctr = kbc_data(k);
    assert_true(ctr & 0x01);                    /* keyboard interrupt on */
    kbc_cmd(k, 0x60);                           /* write CTR */
    kbc_write(k, (uint8_t)(ctr & ~0x01));
    kbc_cmd(k, 0x20);
    assert_int_equal(kbc_data(k), ctr & ~0x01);
    kbc_cmd(k, 0xab);                           /* keyboard port test */
    assert_int_equal(kbc_data(k), 0x00);
    /* AUX loopback: the byte comes back flagged as mouse data. */
    kbc_cmd(k, 0xd3);
    kbc_write(k, 0x5a);
    assert_int_equal(kbc_status(k) & 0x21, 0x21);
    assert_int_equal(kbc_data(k), 0x5a);
    i8042_destroy(&k->c);
    free(k);
}

static void test_i8042_keyboard_commands(void **state)
{
    (void)state;
    struct kbc *k = kbc_new();
    kbc_write(k, 0xff);                          /* reset */
    assert_int_equal(kbc_data(k), 0xfa);
    assert_int_equal(kbc_data(k), 0xaa);
    kbc_write(k, 0xf2);                          /* identify */
    assert_int_equal(kbc_data(k), 0xfa);
    assert_int_equal(kbc_data(k), 0xab);
    assert_int_equal(kbc_data(k), 0x83);
    kbc_write(k, 0xed);                          /* LEDs, then argument */
    assert_int_equal(kbc_data(k), 0xfa);
    kbc_write(k, 0x07);
    assert_int_equal(kbc_data(k), 0xfa);
    assert_int_equal(kbc_status(k) & 0x01, 0);
    /* Each byte raises its own edge on IRQ 1. */
    unsigned before = k->irq.raises[1];
    kbc_write(k, 0xf2);
    kbc_data(k);
    kbc_data(k);
    kbc_data(k);
    assert_int_equal(k->irq.raises[1], before + 3);
    i8042_destroy(&k->c);
    free(k);
}

static void test_i8042_reset_line(void **state)
{
    (void)state;
    struct kbc *k = kbc_new();
    kbc_cmd(k, 0xfe);                            /* pulse reset: reboot=k */
    assert_int_equal(k->resets, 1);
    kbc_cmd(k, 0xff);                            /* pulse nothing */
    assert_int_equal(k->resets, 1);
    kbc_cmd(k, 0xd1);                            /* write output port, bit 0 low */
    kbc_write(k, 0x00);
    assert_int_equal(k->resets, 2);
    kbc_cmd(k, 0xd1);
    kbc_write(k, 0x01);
    assert_int_equal(k->resets, 2);
    i8042_destroy(&k->c);
    free(k);
}

static void test_i8042_ctrl_alt_del(void **state)
{
    (void)state;
    struct kbc *k = kbc_new();
    i8042_send_ctrl_alt_del(&k->c);              /* translated: set 1 */
    static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    for (size_t i = 0; i < sizeof(set1); i++)
        assert_int_equal(kbc_data(k), set1[i]);
    assert_int_equal(kbc_status(k) & 0x01, 0);
    kbc_cmd(k, 0x60);
    kbc_write(k, 0x05);                           /* translation off */
    i8042_send_ctrl_alt_del(&k->c);
    assert_int_equal(kbc_data(k), 0x14);          /* set 2 Ctrl make */
    i8042_destroy(&k->c);
    free(k);
}

/* --- RTC --------------------------------------------------------------------- */

static time_t fixed_time = 1795244104; /* 2026-11-21 06:55:04 UTC, a Saturday */

static time_t fake_now(void)
{
    return fixed_time;
}

static uint8_t rtc_get(struct rtc_cmos *rtc, uint8_t reg)
{
    uint8_t v;
    rtc_cmos_bus_ops.write(rtc, 0, &reg, 1);
    rtc_cmos_bus_ops.read(rtc, 1, &v, 1);
    return v;
}

static void rtc_set(struct rtc_cmos *rtc, uint8_t reg, uint8_t v)
{
    rtc_cmos_bus_ops.write(rtc, 0, &reg, 1);
    rtc_cmos_bus_ops.write(rtc, 1, &v, 1);
}

static void test_rtc_reads_host_time_bcd(void **state)
{
    (void)state;
    struct rtc_cmos rtc;
    rtc_cmos_init(&rtc, fake_now);
    assert_int_equal(rtc_get(&rtc, 0x00), 0x04);
    assert_int_equal(rtc_get(&rtc, 0x02), 0x55);
    assert_int_equal(rtc_get(&rtc, 0x04), 0x06);
    assert_int_equal(rtc_get(&rtc, 0x06), 0x07); /* Saturday */
    assert_int_equal(rtc_get(&rtc, 0x07), 0x21);
    assert_int_equal(rtc_get(&rtc, 0x08), 0x11);
    assert_int_equal(rtc_get(&rtc, 0x09), 0x26);
    assert_int_equal(rtc_get(&rtc, 0x32), 0x20);
    assert_int_equal(rtc_get(&rtc, 0x0a) & 0x80, 0); /* never updating */
    assert_int_equal(rtc_get(&rtc, 0x0d), 0x80);     /* battery good */
    /* NMI-mask bit in the index is ignored. */
    assert_int_equal(rtc_get(&rtc, 0x80 | 0x09), 0x26);
    rtc_cmos_destroy(&rtc);
}

static void test_rtc_binary_and_12h(void **state)
{
    (void)state;
    struct rtc_cmos rtc;
    rtc_cmos_init(&rtc, fake_now);
    rtc_set(&rtc, 0x0b, 0x06);                 /* binary, 24h */
    assert_int_equal(rtc_get(&rtc, 0x02), 55);
    rtc_set(&rtc, 0x0b, 0x00);                 /* BCD, 12h */
    assert_int_equal(rtc_get(&rtc, 0x04), 0x06); /* 6 AM */
    fixed_time += 12 * 3600;
    assert_int_equal(rtc_get(&rtc, 0x04), 0x86); /* 6 PM */
    fixed_time -= 12 * 3600;
    rtc_cmos_destroy(&rtc);
}

static void test_rtc_guest_sets_time(void **state)
{
    (void)state;
    struct rtc_cmos rtc;
    rtc_cmos_init(&rtc, fake_now);
    rtc_set(&rtc, 0x09, 0x30);                 /* year 2030 */
    assert_int_equal(rtc_get(&rtc, 0x09), 0x30);
    fixed_time += 60;                          /* the clock keeps running */
    assert_int_equal(rtc_get(&rtc, 0x02), 0x56);
    assert_int_equal(rtc_get(&rtc, 0x09), 0x30);
    fixed_time -= 60;
    rtc_set(&rtc, 0x40, 0xab);                 /* CMOS RAM */
    assert_int_equal(rtc_get(&rtc, 0x40), 0xab);
    rtc_set(&rtc, 0x0d, 0x00);                 /* read-only */
    assert_int_equal(rtc_get(&rtc, 0x0d), 0x80);
    rtc_cmos_destroy(&rtc);
}

/* --- ACPI PM and pvpanic -------------------------------------------------- */

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
    return fake_ns;
}

struct pm_host {
    int sleeps;
    unsigned last_typ;
};

static void on_sleep(void *ctx, unsigned typ)
{
    struct pm_host *h = ctx;
    h->sleeps++;
    h->last_typ = typ;
}

static const struct acpi_pm_host_ops pm_ops = {.sleep = on_sleep};

/* A snapshot's index must select a byte of the CMOS RAM: 128 and beyond
 * are refused and the device keeps its state. */
static void test_rtc_load_checks_index(void **state)
{
    (void)state;
    struct rtc_cmos rtc;
    rtc_cmos_init(&rtc, NULL);
    rtc_set(&rtc, 0x20, 0x5a);
    for (unsigned index = 126; index < 256; index += 129) { /* 126 and 255 */
        struct rec r = rec_new();
        rtc_cmos_save(&rtc, r);
        rec_put_u64(r, "index", index);
        struct rec back = rec_copy(r);
        int ret = rtc_cmos_load(&rtc, back);
        if (index < RTC_CMOS_SIZE) {
            assert_int_equal(ret, 0);
            assert_int_equal(rtc.index, index);
        } else {
            assert_int_equal(ret, -EINVAL);
            assert_non_null(strstr(err_msg(), "'index' 255 is beyond"));
            assert_int_not_equal(rtc.index, 255);
        }
        rec_free(back);
    }
    assert_int_equal(rtc_get(&rtc, 0x20), 0x5a);
    rtc_cmos_destroy(&rtc);
}

/* Found by fuzz_device_state: a snapshot's offset near the end of time_t
 * made the next read of a time register overflow (signed) and hand
 * gmtime_r a time it cannot convert. Offsets a guest can set still load. */
static void test_rtc_load_checks_offset(void **state)
{
    (void)state;
    struct rtc_cmos rtc;
    rtc_cmos_init(&rtc, fake_now);
    rtc_set(&rtc, 0x0b, 0x06); /* binary, 24h */
    rtc_set(&rtc, 0x32, 255);  /* century 255: year 25526 */
    const uint64_t offsets[] = {(uint64_t)rtc.offset_sec, (uint64_t)INT64_MAX,
                                (uint64_t)INT64_MIN, (uint64_t)(RTC_MAX_OFFSET_SEC + 1)};
    for (unsigned i = 0; i < ARRAY_SIZE(offsets); i++) {
        struct rec r = rec_new();
        rtc_cmos_save(&rtc, r);
        rec_put_u64(r, "offset_sec", offsets[i]);
        struct rec back = rec_copy(r);
        int ret = rtc_cmos_load(&rtc, back);
        rec_free(back);
        if (i == 0) {
            assert_int_equal(ret, 0);
        } else {
            assert_int_equal(ret, -EINVAL);
            assert_non_null(strstr(err_msg(), "'offset_sec'"));
        }
    }
    assert_int_equal(rtc_get(&rtc, 0x32), 255);
    rtc_cmos_destroy(&rtc);
}

static void test_acpi_pm(void **state)
{
    (void)state;
    struct pm_host h = {0};
    struct acpi_pm pm;
    acpi_pm_init(&pm, &pm_ops, &h, fake_clock);
    uint16_t v16;
    acpi_pm_bus_ops.read(&pm, 4, &v16, 2);
    assert_int_equal(v16 & 1, 1);              /* SCI_EN: ACPI mode */
    uint16_t s5 = (5 << 10) | (1 << 13);
    acpi_pm_bus_ops.write(&pm, 4, &s5, 2);
    assert_int_equal(h.sleeps, 1);
    assert_int_equal(h.last_typ, 5);
    uint16_t no_slp_en = 5 << 10;
    acpi_pm_bus_ops.write(&pm, 4, &no_slp_en, 2);
    assert_int_equal(h.sleeps, 1);
    /* PM timer: 3.579545 MHz from the clock. */
    uint32_t t0, t1;
    fake_ns = 1000000000ull;
    acpi_pm_bus_ops.read(&pm, 8, &t0, 4);
    fake_ns += 1000000000ull;
    acpi_pm_bus_ops.read(&pm, 8, &t1, 4);
    assert_int_equal(t1 - t0, 3579545);
    /* Enable register holds; out-of-range reads are all ones. */
    uint16_t en = 0x0120;
    acpi_pm_bus_ops.write(&pm, 2, &en, 2);
    acpi_pm_bus_ops.read(&pm, 2, &v16, 2);
    assert_int_equal(v16, 0x0120);
    uint32_t v32;
    acpi_pm_bus_ops.read(&pm, 10, &v32, 4);
    assert_int_equal(v32, 0xffffffff);
    acpi_pm_destroy(&pm);
}

static int panics;
static void on_panic(void *ctx, uint8_t events)
{
    (void)ctx;
    if (events & PVPANIC_PANICKED)
        panics++;
}

static void test_pvpanic(void **state)
{
    (void)state;
    static const struct pvpanic_host_ops ops = {.event = on_panic};
    struct pvpanic p;
    pvpanic_init(&p, &ops, NULL);
    uint8_t v = 0;
    pvpanic_bus_ops.read(&p, 0, &v, 1);
    assert_int_equal(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
    v = PVPANIC_CRASH_LOADED;
    pvpanic_bus_ops.write(&p, 0, &v, 1);
    assert_int_equal(panics, 0);
    v = PVPANIC_PANICKED;
    pvpanic_bus_ops.write(&p, 0, &v, 1);
    assert_int_equal(panics, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i8042_probe_sequence),
        cmocka_unit_test(test_i8042_keyboard_commands),
        cmocka_unit_test(test_i8042_reset_line),
        cmocka_unit_test(test_i8042_ctrl_alt_del),
        cmocka_unit_test(test_rtc_reads_host_time_bcd),
        cmocka_unit_test(test_rtc_binary_and_12h),
        cmocka_unit_test(test_rtc_guest_sets_time),
        cmocka_unit_test(test_rtc_load_checks_index),
        cmocka_unit_test(test_rtc_load_checks_offset),
        cmocka_unit_test(test_acpi_pm),
        cmocka_unit_test(test_pvpanic),
    };
    return cmocka_run_group_tests_name("legacy_devices", tests, NULL, NULL);
}

/* The legacy port devices of ember's board — i8042, the 8250 UART, the
 * CMOS RTC, pvpanic, the ACPI PM registers and the 8254 PIT — on a port
 * bus at their real addresses, with fake interrupt lines, clocks and hosts,
 * for the fuzz targets that drive them (fuzz_legacy_ports) and load their
 * saved state (fuzz_device_state). The board's own setup is not under test:
 * its entry points abort. Included by one file per target. */
#ifndef EMBER_TESTS_FUZZ_LEGACY_MACHINE_H
#define EMBER_TESTS_FUZZ_LEGACY_MACHINE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "bus/bus.h"
#include "devices/acpi_pm.h"
#include "devices/board.h"
#include "devices/i8042.h"
#include "devices/i8254.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/serial_8250.h"

/* --- the board, not under test -------------------------------------------- */

struct irq_line board_irq(const struct board *b, uint32_t gsi)
{
    (void)b, (void)gsi;
    abort();
}
struct device *board_add(struct board *b, const struct device_ops *ops, void *dev,
                         const char *name)
{
    (void)b, (void)ops, (void)dev, (void)name;
    abort();
}
int board_describe(struct board *b, const struct acpi_device *desc)
{
    (void)b, (void)desc;
    abort();
}
void board_take_console(struct board *b, board_input_fn input, void *dev)
{
    (void)b, (void)input, (void)dev;
    abort();
}
void board_post_writes(struct board *b, uint16_t port, uint16_t len)
{
    (void)b, (void)port, (void)len;
    abort();
}
void board_event(const struct board *b, enum board_event event)
{
    (void)b, (void)event;
    abort();
}
void *board_find(const struct board *b, const void *kind, unsigned n)
{
    (void)b, (void)kind, (void)n;
    abort();
}

/* --- fakes ------------------------------------------------------------------ */

static void lm_set_line(void *ctx, uint32_t gsi, bool level)
{
    (void)ctx, (void)gsi, (void)level;
}
static const struct irq_sink_ops lm_sink_ops = {.set_line = lm_set_line};
static const struct irq_sink lm_sink = {&lm_sink_ops, NULL};

/* One fake clock for every device, in nanoseconds; the RTC reads seconds. */
static uint64_t lm_now;
static uint64_t lm_now_ns(void) { return lm_now; }
static uint64_t lm_now_ns_ctx(void *ctx) { (void)ctx; return lm_now; }
static time_t lm_now_sec(void) { return (time_t)(1800000000 + lm_now / 1000000000u); }
static const struct vclock_ops lm_clock_ops = {.now_ns = lm_now_ns_ctx};

static uint64_t lm_pit_deadline;
static void lm_arm(void *ctx, uint64_t deadline) { (void)ctx, lm_pit_deadline = deadline; }
static void lm_disarm(void *ctx) { (void)ctx, lm_pit_deadline = 0; }
static const struct vtimer_ops lm_timer_ops = {lm_arm, lm_disarm};

/* The serial console's host: takes 'room' bytes, then wants a call-back. */
struct lm_host {
    size_t room;
    void (*writable)(void *arg);
    void *arg;
};
static size_t lm_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct lm_host *h = ctx;
    static uint8_t out[SERIAL_FIFO_SIZE * 2];
    size_t n = len < h->room ? len : h->room;
    memcpy(out, buf, n < sizeof(out) ? n : sizeof(out)); /* ASan checks what it was given */
    h->room -= n;
    return n;
}
static void lm_input_ready(void *ctx) { (void)ctx; }
static void lm_wait_writable(void *ctx, void (*fn)(void *arg), void *arg)
{
    struct lm_host *h = ctx;
    h->writable = fn;
    h->arg = arg;
}
static const struct chardev_host_ops lm_host_ops = {lm_write, lm_input_ready, lm_wait_writable};

static unsigned lm_resets, lm_sleeps, lm_panics;
static void lm_reset(void *ctx) { (void)ctx, lm_resets++; }
static const struct i8042_host_ops lm_i8042_host = {.reset = lm_reset};
static void lm_sleep(void *ctx, unsigned slp_typ) { (void)ctx, (void)slp_typ, lm_sleeps++; }
static const struct acpi_pm_host_ops lm_pm_host = {.sleep = lm_sleep};
static void lm_panic(void *ctx, uint8_t events) { (void)ctx, (void)events, lm_panics++; }
static const struct pvpanic_host_ops lm_panic_host = {.event = lm_panic};

/* --- the machine -------------------------------------------------------------- */

struct legacy_machine {
    struct bus pio;
    struct i8042 kbc;
    struct serial com1;
    struct lm_host com1_host;
    struct rtc_cmos rtc;
    struct pvpanic panic;
    struct acpi_pm pm;
    struct pit pit;
};

static void lm_check(int ret)
{
    if (ret)
        abort();
}

static void lm_build(struct legacy_machine *m)
{
    memset(m, 0, sizeof(*m));
    lm_now = 0;
    bus_init(&m->pio, "pio");
    i8042_init(&m->kbc, (struct irq_line){&lm_sink, 1}, (struct irq_line){&lm_sink, 12},
               &lm_i8042_host, NULL);
    const struct chardev_host h = {&lm_host_ops, &m->com1_host};
    serial_init(&m->com1, (struct irq_line){&lm_sink, 4}, &h);
    rtc_cmos_init(&m->rtc, lm_now_sec);
    pvpanic_init(&m->panic, &lm_panic_host, NULL);
    acpi_pm_init(&m->pm, &lm_pm_host, NULL, lm_now_ns);
    pit_init(&m->pit, (struct irq_line){&lm_sink, 0}, (struct vclock){&lm_clock_ops, NULL, 0},
             (struct vtimer){&lm_timer_ops, NULL});
    lm_check(bus_register(&m->pio, PORT_I8042_DATA, 1, &i8042_data_bus_ops, &m->kbc, "kbd"));
    lm_check(bus_register(&m->pio, PORT_I8042_CMD, 1, &i8042_cmd_bus_ops, &m->kbc, "kbc"));
    lm_check(bus_register(&m->pio, PORT_COM1, SERIAL_REG_COUNT, &serial_bus_ops, &m->com1,
                          "com1"));
    lm_check(bus_register(&m->pio, PORT_RTC, 2, &rtc_cmos_bus_ops, &m->rtc, "rtc"));
    lm_check(bus_register(&m->pio, PORT_PVPANIC, 1, &pvpanic_bus_ops, &m->panic, "pvpanic"));
    lm_check(bus_register(&m->pio, PORT_ACPI_PM1_EVT, ACPI_PM_REGION_SIZE, &acpi_pm_bus_ops,
                          &m->pm, "acpi-pm"));
    lm_check(bus_register(&m->pio, 0x40, 4, &pit_bus_ops, &m->pit, "pit"));
    lm_check(bus_register(&m->pio, 0x61, 1, &pit_port61_ops, &m->pit, "port61"));
}

static void lm_destroy(struct legacy_machine *m)
{
    bus_destroy(&m->pio);
    i8042_destroy(&m->kbc);
    serial_destroy(&m->com1);
    rtc_cmos_destroy(&m->rtc);
    acpi_pm_destroy(&m->pm);
    pit_destroy(&m->pit);
}

/* What no guest access and no loaded state may ever break: every index
 * stays inside its array (ASan cannot see past an array inside a struct). */
static void lm_check_invariants(const struct legacy_machine *m)
{
    if (m->rtc.index >= RTC_CMOS_SIZE || m->kbc.q_count > I8042_QUEUE_SIZE ||
        m->kbc.q_head >= I8042_QUEUE_SIZE || m->com1.rx_count > SERIAL_FIFO_SIZE ||
        m->com1.rx_head >= SERIAL_FIFO_SIZE || m->com1.tx_count > SERIAL_FIFO_SIZE)
        abort();
}

/* The ports a guest reaches the devices at, and a few beside them. */
static const uint16_t lm_ports[] = {
    0x60, 0x64, 0x70, 0x71, 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
    0x505, 0x600, 0x602, 0x604, 0x608, 0x60a, 0x40, 0x41, 0x42, 0x43, 0x61, 0x3f7,
    0x5ff, 0x60b, 0x72, 0x44,
};
#define LM_NR_PORTS (sizeof(lm_ports) / sizeof(lm_ports[0]))

#endif

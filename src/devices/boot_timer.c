#include "devices/boot_timer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"
#include "util/log.h"

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void boot_timer_init(struct boot_timer *t)
{
    memset(t, 0, sizeof(*t));
    t->start_ns = clock_ns(CLOCK_MONOTONIC);
    t->start_cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static void boot_timer_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    (void)dev, (void)offset;
    memset(data, 0, len);
}

/* Only a one-byte write of the magic at offset 0 counts, as in Firecracker. */
static void boot_timer_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct boot_timer *t = dev;
    if (len != 1 || offset != 0 || *(const uint8_t *)data != BOOT_TIMER_MAGIC)
        return;
    uint64_t us = (clock_ns(CLOCK_MONOTONIC) - t->start_ns) / 1000;
    uint64_t cpu_us = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - t->start_cpu_ns) / 1000;
    t->reports++;
    log_forced(LOG_INFO, "Guest-boot-time = %6llu us %llu ms, %6llu CPU us %llu CPU ms",
               (unsigned long long)us, (unsigned long long)(us / 1000),
               (unsigned long long)cpu_us, (unsigned long long)(cpu_us / 1000));
}

const struct bus_ops boot_timer_bus_ops = {
    .read = boot_timer_read,
    .write = boot_timer_write,
};

static const struct device_ops boot_timer_device_ops = {.destroy = free};

int boot_timer_board_setup(struct board *b)
{
    if (!b->cfg->boot_timer)
        return 0;
    struct boot_timer *t = malloc(sizeof(*t));
    if (!t)
        return err_set(-ENOMEM, "out of memory");
    boot_timer_init(t);
    if (!board_add(b, &boot_timer_device_ops, t, "boot-timer"))
        return -ENOSPC;
    return bus_register(b->mmio, LAYOUT_BOOT_TIMER, 0x1000, &boot_timer_bus_ops, t,
                        "boot-timer");
}

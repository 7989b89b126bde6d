#include "devices/acpi_pm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/layout.h"
#include "devices/board.h"
#include "util/util.h"

#define OFF_STATUS 0
#define OFF_ENABLE 2
#define OFF_CONTROL 4
#define OFF_TIMER 8

#define CNT_SCI_EN 0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK (7u << CNT_SLP_TYP_SHIFT)
#define CNT_SLP_EN 0x2000
#define PM_TIMER_HZ 3579545ull

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_host_ops *host, void *host_ctx,
                  uint64_t (*now_ns)(void))
{
    memset(pm, 0, sizeof(*pm));
    pthread_mutex_init(&pm->lock, NULL);
    pm->host = host;
    pm->host_ctx = host_ctx;
    pm->now_ns = now_ns ? now_ns : monotonic_ns;
    /* No SMI command port: the platform is always in ACPI mode. */
    pm->control = CNT_SCI_EN;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
    pthread_mutex_destroy(&pm->lock);
}

static uint32_t pm_timer(const struct acpi_pm *pm)
{
    uint64_t ns = pm->now_ns();
    /* ticks = ns * 3579545 / 1e9, split to avoid overflow */
    uint64_t ticks = (ns / 1000000000ull) * PM_TIMER_HZ +
                     (ns % 1000000000ull) * PM_TIMER_HZ / 1000000000ull;
    return (uint32_t)ticks;
}

static void acpi_pm_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct acpi_pm *pm = dev;
    uint8_t regs[ACPI_PM_REGION_SIZE] = {0};
    pthread_mutex_lock(&pm->lock);
    le16_store(regs + OFF_STATUS, pm->status);
    le16_store(regs + OFF_ENABLE, pm->enable);
    le16_store(regs + OFF_CONTROL, pm->control);
    le32_store(regs + OFF_TIMER, pm_timer(pm));
    pthread_mutex_unlock(&pm->lock);
    if (offset + len <= sizeof(regs))
        memcpy(data, regs + offset, len);
    else
        memset(data, 0xff, len);
}

static void acpi_pm_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct acpi_pm *pm = dev;
    uint8_t regs[ACPI_PM_REGION_SIZE];
    unsigned slp_typ = 0;
    bool sleep = false;
    if (offset + len > sizeof(regs))
        return;
    pthread_mutex_lock(&pm->lock);
    le16_store(regs + OFF_STATUS, 0);
    le16_store(regs + OFF_ENABLE, pm->enable);
    le16_store(regs + OFF_CONTROL, pm->control);
    memcpy(regs + offset, data, len);
    if (offset < OFF_ENABLE) /* status bits are write-one-to-clear */
        pm->status &= (uint16_t)~le16_load(regs + OFF_STATUS);
    pm->enable = le16_load(regs + OFF_ENABLE);
    uint16_t control = le16_load(regs + OFF_CONTROL);
    if (control & CNT_SLP_EN) {
        sleep = true;
        slp_typ = (control & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;
    }
    pm->control = (uint16_t)((control & ~CNT_SLP_EN) | CNT_SCI_EN);
    pthread_mutex_unlock(&pm->lock);
    if (sleep && pm->host && pm->host->sleep)
        pm->host->sleep(pm->host_ctx, slp_typ);
}

const struct bus_ops acpi_pm_bus_ops = {
    .read = acpi_pm_read,
    .write = acpi_pm_write,
};

void acpi_pm_save(struct acpi_pm *pm, struct rec r)
{
    pthread_mutex_lock(&pm->lock);
    rec_put_u64(r, "status", pm->status);
    rec_put_u64(r, "enable", pm->enable);
    rec_put_u64(r, "control", pm->control);
    pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_load(struct acpi_pm *pm, struct rec r)
{
    uint16_t status, enable, control;
    int ret = rec_get_u16(r, "status", UINT16_MAX, &status);
    if (!ret)
        ret = rec_get_u16(r, "enable", UINT16_MAX, &enable);
    if (!ret)
        ret = rec_get_u16(r, "control", UINT16_MAX, &control);
    if (ret)
        return err_prefix(ret, "acpi-pm");
    pm->status = status, pm->enable = enable, pm->control = control;
    return 0;
}

/* --- on the board --------------------------------------------------------- */

static void acpi_pm_device_destroy(void *dev)
{
    acpi_pm_destroy(dev);
    free(dev);
}

static void acpi_pm_device_save(void *dev, struct rec r)
{
    acpi_pm_save(dev, r);
}

static int acpi_pm_device_load(void *dev, struct rec r)
{
    return acpi_pm_load(dev, r);
}

static const struct device_ops acpi_pm_device_ops = {
    .destroy = acpi_pm_device_destroy,
    .save = acpi_pm_device_save,
    .load = acpi_pm_device_load,
};

static void acpi_pm_board_sleep(void *ctx, unsigned slp_typ)
{
    if (slp_typ == ACPI_S5_SLP_TYP)
        board_event(ctx, BOARD_POWER_OFF);
}

static const struct acpi_pm_host_ops acpi_pm_board_ops = {.sleep = acpi_pm_board_sleep};

int acpi_pm_board_setup(struct board *b)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return err_set(-ENOMEM, "out of memory");
    acpi_pm_init(pm, &acpi_pm_board_ops, b, NULL);
    if (!board_add(b, &acpi_pm_device_ops, pm, "acpi_pm"))
        return -ENOSPC;
    return bus_register(b->pio, PORT_ACPI_PM1_EVT, ACPI_PM_REGION_SIZE, &acpi_pm_bus_ops, pm,
                        "acpi-pm");
}

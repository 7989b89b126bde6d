/* ACPI fixed-hardware registers: the PM1 event block (status, enable), the
 * PM1 control block (where the guest writes SLP_TYP|SLP_EN to power off) and
 * the 32-bit PM timer at 3.579545 MHz. Offsets: 0-3 event block, 4-5 control
 * block, 8-11 timer. */
#ifndef EMBER_DEVICES_ACPI_PM_H
#define EMBER_DEVICES_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>

#include "bus/bus.h"
#include "snapshot/record.h"

struct board;

#define ACPI_PM_REGION_SIZE 12

struct acpi_pm_host_ops {
    /* The guest entered sleep state 'slp_typ' (S5 = power off). */
    void (*sleep)(void *ctx, unsigned slp_typ);
};

struct acpi_pm {
    pthread_mutex_t lock;
    const struct acpi_pm_host_ops *host;
    void *host_ctx;
    uint16_t status;
    uint16_t enable;
    uint16_t control;
    uint64_t (*now_ns)(void);
};

extern const struct bus_ops acpi_pm_bus_ops;

void acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_host_ops *host, void *host_ctx,
                  uint64_t (*now_ns)(void));
void acpi_pm_destroy(struct acpi_pm *pm);
/* Snapshots: the PM1 status, enable and control registers. */
void acpi_pm_save(struct acpi_pm *pm, struct rec r);
int acpi_pm_load(struct acpi_pm *pm, struct rec r) EMBER_MUST_CHECK;

/* The PM registers at port 0x600 (the FADT points there); S5 powers the
 * board off. */
int acpi_pm_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

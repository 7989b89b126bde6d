/* The pvpanic device (one I/O port): a guest's panic notifier writes to it,
 * whatever the guest's panic= setting, so the host learns of the panic. */
#ifndef EMBER_DEVICES_PVPANIC_H
#define EMBER_DEVICES_PVPANIC_H

#include <stdint.h>

#include "bus/bus.h"
#include "util/err.h"

struct board;

#define PVPANIC_PANICKED 0x1
#define PVPANIC_CRASH_LOADED 0x2

struct pvpanic_host_ops {
    void (*event)(void *ctx, uint8_t events);
};

struct pvpanic {
    const struct pvpanic_host_ops *host;
    void *host_ctx;
};

extern const struct bus_ops pvpanic_bus_ops;

void pvpanic_init(struct pvpanic *p, const struct pvpanic_host_ops *host, void *host_ctx);

/* pvpanic at port 0x505 (QEMU's ACPI ID); a panic is a board event. */
int pvpanic_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

/* Firecracker's boot timer (--boot-timer): a page of MMIO at the start of
 * the 32-bit hole where the guest's init writes the byte 123 once it has
 * booted; ember then logs how long the boot took, wall-clock and CPU time
 * since the VM was built, in Firecracker's words ("Guest-boot-time = ..."). */
#ifndef EMBER_DEVICES_BOOT_TIMER_H
#define EMBER_DEVICES_BOOT_TIMER_H

#include <stdint.h>

#include "bus/bus.h"
#include "util/err.h"

#define BOOT_TIMER_MAGIC 123

struct boot_timer {
    uint64_t start_ns, start_cpu_ns; /* CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID */
    unsigned reports;
};

extern const struct bus_ops boot_timer_bus_ops;

void boot_timer_init(struct boot_timer *t);

struct board;
int boot_timer_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

/* The BIOS-style physical memory map handed to the guest (boot_params e820
 * table, or the PVH memory map). */
#ifndef EMBER_ARCH_X86_64_E820_H
#define EMBER_ARCH_X86_64_E820_H

#include <stdint.h>

#include "util/err.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX_ENTRIES 128 /* what boot_params holds */

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

struct e820_map {
    struct e820_entry entries[E820_MAX_ENTRIES];
    unsigned nr;
};

/* Map for 'ram_size' bytes of guest RAM: the low 640 KiB minus the EBDA, the
 * BIOS/ACPI area reserved, RAM from 1 MiB to the PCI hole, the rest at 4 GiB.
 * Fails when ram_size is too small to hold anything above 1 MiB. */
int e820_build(uint64_t ram_size, struct e820_map *map) EMBER_MUST_CHECK;
/* End of the RAM range starting at 1 MiB (what fits below the PCI hole). */
uint64_t e820_low_ram_end(uint64_t ram_size);

#endif

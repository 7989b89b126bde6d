#include "arch/x86_64/e820.h"

#include <string.h>

#include "arch/x86_64/layout.h"
#include "util/util.h"

static void e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
    map->entries[map->nr++] = (struct e820_entry){addr, size, type};
}

uint64_t e820_low_ram_end(uint64_t ram_size)
{
    return MIN(ram_size, LAYOUT_PCI_HOLE_START);
}

int e820_build(uint64_t ram_size, struct e820_map *map)
{
    memset(map, 0, sizeof(*map));
    if (ram_size <= LAYOUT_HIGH_RAM)
        return err_set(-EINVAL, "guest memory of %llu bytes leaves nothing above 1 MiB",
                       (unsigned long long)ram_size);
    uint64_t low_end = e820_low_ram_end(ram_size);
    e820_add(map, 0, LAYOUT_EBDA, E820_RAM);
    e820_add(map, LAYOUT_EBDA, LAYOUT_LOW_RAM_END - LAYOUT_EBDA, E820_RESERVED);
    e820_add(map, LAYOUT_ACPI, LAYOUT_HIGH_RAM - LAYOUT_ACPI, E820_RESERVED);
    e820_add(map, LAYOUT_HIGH_RAM, low_end - LAYOUT_HIGH_RAM, E820_RAM);
    if (ram_size > low_end)
        e820_add(map, LAYOUT_4GIB, ram_size - low_end, E820_RAM);
    return 0;
}

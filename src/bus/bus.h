/* A bus maps address ranges (port I/O or MMIO) to devices. Devices see
 * offsets from the start of their range, never absolute addresses.
 *
 * Lookups take a read lock, so vCPU threads dispatch concurrently; changes
 * (a PCI BAR moving) take the write lock. A device callback must therefore
 * never change the bus it is being called from. */
#ifndef EMBER_BUS_BUS_H
#define EMBER_BUS_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct bus_ops {
    /* 'len' is 1, 2, 4 or 8; data is little-endian. Reads fill 'data'. */
    void (*read)(void *dev, uint64_t offset, void *data, unsigned len);
    void (*write)(void *dev, uint64_t offset, const void *data, unsigned len);
};

struct bus_range {
    uint64_t base;
    uint64_t len;
    const struct bus_ops *ops;
    void *dev;
    const char *name;
};

struct bus {
    const char *name;
    pthread_rwlock_t lock;
    struct bus_range *ranges;  /* sorted by base, never overlapping */
    unsigned nr_ranges;
    unsigned capacity;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);
/* Fails with -EEXIST if [base, base+len) overlaps a registered range. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
                 const struct bus_ops *ops, void *dev, const char *name)
    EMBER_MUST_CHECK;
/* Removes the range that starts at 'base' and belongs to 'dev'. */
int bus_unregister(struct bus *bus, uint64_t base, void *dev);
/* Dispatch one access. Returns false when no device claims the address: reads
 * then return all ones, as on a PC with nothing on the bus. */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif

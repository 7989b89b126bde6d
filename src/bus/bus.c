#include "bus.h"

#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
    pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
    free(bus->ranges);
    pthread_rwlock_destroy(&bus->lock);
    memset(bus, 0, sizeof(*bus));
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
                 const struct bus_ops *ops, void *dev, const char *name)
{
    if (len == 0 || base + len < base)
        return err_set(-EINVAL, "%s bus: bad range %#llx+%#llx for %s", bus->name,
                       (unsigned long long)base, (unsigned long long)len, name);
    int ret = 0;
    pthread_rwlock_wrlock(&bus->lock);
    unsigned pos = 0;
    for (; pos < bus->nr_ranges; pos++) {
        const struct bus_range *r = &bus->ranges[pos];
        if (ranges_overlap(base, len, r->base, r->len)) {
            ret = err_set(-EEXIST, "%s bus: %s at %#llx overlaps %s at %#llx",
                          bus->name, name, (unsigned long long)base, r->name,
                          (unsigned long long)r->base);
            goto out;
        }
        if (r->base > base)
            break;
    }
    if (bus->nr_ranges == bus->capacity) {
        unsigned cap = bus->capacity ? bus->capacity * 2 : 16;
        struct bus_range *grown = realloc(bus->ranges, cap * sizeof(*grown));
        if (!grown) {
            ret = err_set(-ENOMEM, "%s bus: out of memory", bus->name);
            goto out;
        }
        bus->ranges = grown;
        bus->capacity = cap;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
            (bus->nr_ranges - pos) * sizeof(*bus->ranges));
    bus->ranges[pos] = (struct bus_range){base, len, ops, dev, name};
    bus->nr_ranges++;
out:
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

int bus_unregister(struct bus *bus, uint64_t base, void *dev)
{
    int ret = -ENOENT;
    pthread_rwlock_wrlock(&bus->lock);
    for (unsigned i = 0; i < bus->nr_ranges; i++) {
        if (bus->ranges[i].base == base && bus->ranges[i].dev == dev) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1],
                    (bus->nr_ranges - i - 1) * sizeof(*bus->ranges));
            bus->nr_ranges--;
            ret = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

/* Caller holds the lock. Binary search over sorted, disjoint ranges; the
 * whole access must fall inside the range that claims its first byte. */
static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr,
                                        unsigned len)
{
    unsigned lo = 0, hi = bus->nr_ranges;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->len)
            lo = mid + 1;
        else
            return len <= r->len - (addr - r->base) ? r : NULL;
    }
    return NULL;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct bus_range *r = bus_find(bus, addr, len);
    bool found = r && r->ops->read;
    if (found)
        r->ops->read(r->dev, addr - r->base, data, len);
    else
        memset(data, 0xff, len);
    pthread_rwlock_unlock(&bus->lock);
    return found;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct bus_range *r = bus_find(bus, addr, len);
    bool found = r && r->ops->write;
    if (found)
        r->ops->write(r->dev, addr - r->base, data, len);
    pthread_rwlock_unlock(&bus->lock);
    return found;
}

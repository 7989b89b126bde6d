#include "devices/pvpanic.h"

#include <string.h>

void pvpanic_init(struct pvpanic *p, const struct pvpanic_host_ops *host, void *host_ctx)
{
    p->host = host;
    p->host_ctx = host_ctx;
}

static void pvpanic_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    (void)dev;
    (void)offset;
    /* The events the guest may report; its driver ignores unlisted ones. */
    memset(data, 0, len);
    *(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct pvpanic *p = dev;
    (void)offset;
    (void)len;
    uint8_t events = *(const uint8_t *)data & (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
    if (events && p->host && p->host->event)
        p->host->event(p->host_ctx, events);
}

const struct bus_ops pvpanic_bus_ops = {
    .read = pvpanic_read,
    .write = pvpanic_write,
};

#include "devices/pvpanic.h"

#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"

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

/* --- on the board --------------------------------------------------------- */

static const struct device_ops pvpanic_device_ops = {.destroy = free};

static void pvpanic_board_event(void *ctx, uint8_t events)
{
    if (events & PVPANIC_PANICKED)
        board_event(ctx, BOARD_PANIC);
}

static const struct pvpanic_host_ops pvpanic_board_ops = {.event = pvpanic_board_event};

int pvpanic_board_setup(struct board *b)
{
    struct pvpanic *p = calloc(1, sizeof(*p));
    if (!p)
        return err_set(-ENOMEM, "out of memory");
    pvpanic_init(p, &pvpanic_board_ops, b);
    if (!board_add(b, &pvpanic_device_ops, p, "pvpanic"))
        return -ENOSPC;
    /* The ID Linux's pvpanic driver binds to. */
    const struct acpi_device acpi = {
        .name = "PEVT", .hid = "QEMU0001", .hid_is_string = true, .uid = -1,
        .io = {{PORT_PVPANIC, 1}}, .nr_io = 1, .irq = -1};
    int ret = bus_register(b->pio, PORT_PVPANIC, 1, &pvpanic_bus_ops, p, "pvpanic");
    return ret ? ret : board_describe(b, &acpi);
}

#include "devices/board.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

struct irq_line board_irq(const struct board *b, uint32_t gsi)
{
    return (struct irq_line){b->irq, gsi};
}

void board_event(const struct board *b, enum board_event event)
{
    if (b->host && b->host->event)
        b->host->event(b->host_ctx, event);
}

struct device *board_add(struct board *b, const struct device_ops *ops, void *dev,
                         const char *name)
{
    if (b->nr_devices == BOARD_MAX_DEVICES) {
        if (ops->destroy)
            ops->destroy(dev);
        err_set(-ENOSPC, "more than %d devices", BOARD_MAX_DEVICES);
        return NULL;
    }
    struct device *d = &b->devices[b->nr_devices++];
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->dev = dev;
    d->kind = ops;
    d->model = dev;
    snprintf(d->name, sizeof(d->name), "%s", name);
    return d;
}

int board_describe(struct board *b, const struct acpi_device *desc)
{
    if (b->nr_acpi == ACPI_MAX_DEVICES)
        return err_set(-ENOSPC, "more than %d devices in the DSDT", ACPI_MAX_DEVICES);
    b->acpi[b->nr_acpi++] = *desc;
    return 0;
}

int board_cmdline_append(struct board *b, const char *fmt, ...)
{
    char word[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(word, sizeof(word), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(word) ||
        b->cmdline_len + 1 + (size_t)n >= sizeof(b->cmdline))
        return err_set(-ENOSPC, "the devices' kernel command line is longer than %d bytes",
                       BOARD_CMDLINE_MAX - 1);
    b->cmdline_len += (size_t)snprintf(b->cmdline + b->cmdline_len,
                                       sizeof(b->cmdline) - b->cmdline_len, "%s%s",
                                       b->cmdline_len ? " " : "", word);
    return 0;
}

void board_post_writes(struct board *b, uint16_t port, uint16_t len)
{
    if (b->nr_posted < BOARD_MAX_POSTED)
        b->posted[b->nr_posted++] = (struct board_posted){port, len};
}

void board_take_console(struct board *b, board_input_fn input, void *dev)
{
    b->console_input = input;
    b->console_input_dev = dev;
}

void *board_find(const struct board *b, const void *kind, unsigned n)
{
    for (unsigned i = 0; i < b->nr_devices; i++)
        if (b->devices[i].kind == kind && n-- == 0)
            return b->devices[i].model;
    return NULL;
}

void board_save(struct board *b, struct rec r)
{
    for (unsigned i = 0; i < b->nr_devices; i++) {
        struct device *d = &b->devices[i];
        if (d->ops->save)
            d->ops->save(d->dev, d->group ? rec_put_item(r, d->group)
                                          : rec_put_child(r, d->name));
    }
}

/* Devices of one group are the group's list items, in order. */
static unsigned group_size(const struct board *b, const char *group)
{
    unsigned n = 0;
    for (unsigned i = 0; i < b->nr_devices; i++)
        n += b->devices[i].group && !strcmp(b->devices[i].group, group);
    return n;
}

static int load_one(struct board *b, unsigned i, struct rec r)
{
    struct device *d = &b->devices[i];
    struct rec child;
    if (!d->group)
        return rec_get_child(r, d->name, &child) ?: d->ops->load(d->dev, child);
    unsigned index = 0, members = group_size(b, d->group);
    for (unsigned k = 0; k < i; k++)
        index += b->devices[k].group && !strcmp(b->devices[k].group, d->group);
    size_t n;
    int ret = rec_get_count(r, d->group, BOARD_MAX_DEVICES, &n);
    if (!ret && n != members)
        ret = err_set(-EINVAL, "%zu %s devices, the machine has %u", n, d->group, members);
    if (!ret)
        ret = rec_get_item(r, d->group, index, &child);
    return ret ? ret : d->ops->load(d->dev, child);
}

int board_load(struct board *b, struct rec r)
{
    for (unsigned i = 0; i < b->nr_devices; i++) {
        if (!b->devices[i].ops->load)
            continue;
        int ret = load_one(b, i, r);
        if (ret)
            return err_prefix(ret, "devices");
    }
    return 0;
}

void board_pause(struct board *b, bool paused)
{
    for (unsigned i = 0; i < b->nr_devices; i++)
        if (b->devices[i].ops->pause)
            b->devices[i].ops->pause(b->devices[i].dev, paused);
}

void board_dump(struct board *b)
{
    for (unsigned i = 0; i < b->nr_devices; i++)
        if (b->devices[i].ops->dump)
            b->devices[i].ops->dump(b->devices[i].dev);
}

void board_destroy(struct board *b)
{
    while (b->nr_devices) {
        struct device *d = &b->devices[--b->nr_devices];
        if (d->ops->destroy)
            d->ops->destroy(d->dev);
    }
    b->nr_acpi = 0;
    b->cmdline_len = 0;
    b->cmdline[0] = '\0';
    b->nr_mmio = 0;
    b->console_input = NULL;
}

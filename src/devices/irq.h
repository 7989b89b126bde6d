/* How a device raises an interrupt without knowing who delivers it: the VMM
 * implements the sink with the CPU backend; unit tests record the calls. */
#ifndef EMBER_DEVICES_IRQ_H
#define EMBER_DEVICES_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_sink_ops {
    void (*set_line)(void *ctx, uint32_t gsi, bool level);
};

struct irq_sink {
    const struct irq_sink_ops *ops;
    void *ctx;
};

/* One interrupt line of a device: a GSI on some sink. */
struct irq_line {
    const struct irq_sink *sink;
    uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
    if (line->sink && line->sink->ops->set_line)
        line->sink->ops->set_line(line->sink->ctx, line->gsi, level);
}

static inline void irq_line_pulse(const struct irq_line *line)
{
    irq_line_set(line, true);
    irq_line_set(line, false);
}

#endif

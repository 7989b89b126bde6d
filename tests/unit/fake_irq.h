/* A fake interrupt sink for unit tests: records every line change. */
#ifndef EMBER_TESTS_FAKE_IRQ_H
#define EMBER_TESTS_FAKE_IRQ_H

#include "fakes.h"

#include "devices/irq.h"

#define FAKE_IRQ_LINES 32

struct fake_irq {
    bool level[FAKE_IRQ_LINES];
    unsigned raises[FAKE_IRQ_LINES]; /* low-to-high transitions */
    unsigned calls;
};

static void fake_irq_set(void *ctx, uint32_t gsi, bool level)
{
    struct fake_irq *f = ctx;
    if (gsi >= FAKE_IRQ_LINES)
        return;
    if (level && !f->level[gsi])
        f->raises[gsi]++;
    f->level[gsi] = level;
    f->calls++;
}

static const struct irq_sink_ops fake_irq_ops = {.set_line = fake_irq_set};

static inline struct irq_sink fake_irq_sink(struct fake_irq *f)
{
    memset(f, 0, sizeof(*f));
    return (struct irq_sink){&fake_irq_ops, f};
}

#endif

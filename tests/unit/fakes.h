/* Fakes for unit tests: guest memory on the heap and an interrupt sink that
 * records every line change. */
#ifndef EMBER_TESTS_FAKES_H
#define EMBER_TESTS_FAKES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "devices/irq.h"
#include "mem/guest_mem.h"

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

/* Guest memory backed by calloc'ed buffers; free with fake_mem_free. */
static inline void fake_mem_init(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    memset(gm, 0, sizeof(*gm));
    void *buf = calloc(1, size);
    assert_non_null(buf);
    assert_int_equal(gm_add_region(gm, gpa, size, buf), 0);
}

static inline void fake_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    void *buf = calloc(1, size);
    assert_non_null(buf);
    assert_int_equal(gm_add_region(gm, gpa, size, buf), 0);
}

static inline void fake_mem_free(struct guest_mem *gm)
{
    for (unsigned i = 0; i < gm->nr_regions; i++)
        free(gm->regions[i].hva);
    memset(gm, 0, sizeof(*gm));
}

#endif

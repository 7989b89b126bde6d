/* Fakes for unit tests: guest memory on the heap. */
#ifndef EMBER_TESTS_FAKES_H
#define EMBER_TESTS_FAKES_H

#include "unit.h"

#include "mem/guest_mem.h"

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

/* Guest memory: the one door.
 *
 * Every guest-physical address that ember touches goes through gm_ptr(),
 * which requires the whole range [gpa, gpa+len) to lie inside a single region
 * and is safe against arithmetic overflow. Devices use the copy helpers on top
 * of it; they never compute host pointers themselves. */
#ifndef EMBER_MEM_GUEST_MEM_H
#define EMBER_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define GM_MAX_REGIONS 4

struct gm_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
};

struct guest_mem {
    struct gm_region regions[GM_MAX_REGIONS];
    unsigned nr_regions;
    uint64_t total_size;  /* sum of region sizes */
    bool owns_mappings;   /* unmapped by gm_destroy */
};

/* Map anonymous memory for a guest of 'ram_size' bytes, laid out around the
 * 32-bit PCI hole [hole_start, 4 GiB). */
int gm_create_anon(struct guest_mem *gm, uint64_t ram_size, uint64_t hole_start)
    EMBER_MUST_CHECK;
/* Describe caller-owned memory (used by unit tests with heap buffers). */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *hva)
    EMBER_MUST_CHECK;
void gm_destroy(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len), or NULL if any byte of it is outside guest
 * RAM or the range spans two regions. len 0 is treated as len 1. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
bool gm_range_valid(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copies: 0 on success, -EFAULT if the range is not wholly guest RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
    EMBER_MUST_CHECK;
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
    EMBER_MUST_CHECK;
int gm_fill(const struct guest_mem *gm, uint64_t gpa, int byte, size_t len)
    EMBER_MUST_CHECK;

/* Little-endian field loads/stores, copied out of guest memory first so a
 * concurrent guest write cannot change a value between check and use. */
int gm_read_u16(const struct guest_mem *gm, uint64_t gpa, uint16_t *out) EMBER_MUST_CHECK;
int gm_read_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t *out) EMBER_MUST_CHECK;
int gm_read_u64(const struct guest_mem *gm, uint64_t gpa, uint64_t *out) EMBER_MUST_CHECK;
int gm_write_u16(const struct guest_mem *gm, uint64_t gpa, uint16_t v) EMBER_MUST_CHECK;
int gm_write_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t v) EMBER_MUST_CHECK;
int gm_write_u64(const struct guest_mem *gm, uint64_t gpa, uint64_t v) EMBER_MUST_CHECK;

#endif

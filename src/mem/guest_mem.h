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

#include "config/config.h"
#include "util/err.h"

#define GM_MAX_REGIONS 8 /* RAM (1-2), then device memory (pmem) */

#define GM_PAGE_SIZE 4096ull

struct gm_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
    /* Pages ember itself wrote for the guest (device DMA), one bit per
     * 4 KiB page, while dirty tracking is on (NULL otherwise). */
    _Atomic uint64_t *dirty;
};

struct guest_mem {
    struct gm_region regions[GM_MAX_REGIONS];
    unsigned nr_regions;
    unsigned nr_ram;      /* regions[0..nr_ram) are RAM; the rest device memory */
    uint64_t total_size;  /* sum of the RAM regions' sizes */
    bool owns_mappings;   /* unmapped by gm_destroy */
    bool hugetlb;         /* RAM of 2 MiB hugetlbfs pages: discarded only whole */
    bool track_dirty;     /* gm_track_dirty was called: device writes are marked */
    /* Told of every write ember makes for the guest (device DMA), after the
     * bytes are in place: a CPU backend that decodes guest code drops what
     * it decoded from there. NULL: nobody listens. */
    void (*write_hook)(void *ctx, uint64_t gpa, uint64_t len);
    void *write_hook_ctx;
};

struct gm_anon_options {
    enum guest_pages pages;
    bool mergeable;   /* offered to KSM (MADV_MERGEABLE) */
};

/* Map anonymous memory for a guest of 'ram_size' bytes, laid out around the
 * 32-bit PCI hole [hole_start, 4 GiB), with transparent huge pages. */
int gm_create_anon(struct guest_mem *gm, uint64_t ram_size, uint64_t hole_start)
    EMBER_MUST_CHECK;
/* The same, backed as 'opt' says. */
int gm_create_anon_with(struct guest_mem *gm, uint64_t ram_size, uint64_t hole_start,
                        const struct gm_anon_options *opt) EMBER_MUST_CHECK;
/* Describe caller-owned memory (used by unit tests with heap buffers). */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *hva)
    EMBER_MUST_CHECK;
/* The same layout, each region a private copy-on-write mapping of 'fd' at
 * consecutive offsets (region order): pages load lazily on first touch, and
 * writes never reach the file. The file must be at least ram_size long.
 * 'mergeable': offered to KSM, which merges the pages the guest copied on
 * write (the file's own pages are shared through the page cache already). */
int gm_create_file(struct guest_mem *gm, int fd, uint64_t ram_size, uint64_t hole_start,
                   bool mergeable)
    EMBER_MUST_CHECK;
/* Device memory after the RAM (virtio-pmem): 'fd' shared (or, read-only,
 * private: the guest's writes never reach the file) at 'gpa', 'size' bytes
 * rounded up to 2 MiB, the part past the file's end anonymous zeroes (so
 * no access can fault past EOF). Not RAM: no dirty tracking, not in
 * snapshots' memory files. *mapped_size: the region's size. */
int gm_map_file_region(struct guest_mem *gm, uint64_t gpa, int fd, uint64_t size,
                       bool read_only, uint64_t *mapped_size) EMBER_MUST_CHECK;
void gm_destroy(struct guest_mem *gm);

/* Dirty tracking of device writes (for Diff snapshots): on from now on. */
int gm_track_dirty(struct guest_mem *gm) EMBER_MUST_CHECK;
void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* OR region i's dirty bits into 'bitmap' and clear them. */
void gm_take_dirty(const struct guest_mem *gm, unsigned region, uint64_t *bitmap);
/* gm_ptr for memory a device is about to write (marks it dirty and tells
 * the write hook). A device that fills it later (asynchronous I/O) calls
 * gm_note_written when the bytes have landed. */
void *gm_ptr_for_write(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* The host range [hva, hva+len), handed out by gm_ptr_for_write, now holds
 * what the device wrote. */
void gm_note_written(const struct guest_mem *gm, const void *hva, uint64_t len);

/* Give the page-aligned range [gpa, gpa+len) back to the host (a balloon's
 * pages, pages the guest reported free): 0, -EINVAL if not page-aligned or
 * empty, -EFAULT if not wholly in one region of guest RAM. */
int gm_discard(const struct guest_mem *gm, uint64_t gpa, uint64_t len) EMBER_MUST_CHECK;

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

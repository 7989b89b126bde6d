#include "guest_mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/util.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

static int gm_insert(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *hva, bool ram)
{
    if (gm->nr_regions >= GM_MAX_REGIONS)
        return err_set(-ENOSPC, "too many guest memory regions");
    if (size == 0 || gpa + size < gpa)
        return err_set(-EINVAL, "bad guest memory region %#llx+%#llx",
                       (unsigned long long)gpa, (unsigned long long)size);
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct gm_region *r = &gm->regions[i];
        if (gpa < r->gpa + r->size && r->gpa < gpa + size)
            return err_set(-EINVAL, "overlapping guest memory regions");
    }
    if (ram && gm->nr_ram != gm->nr_regions)
        return err_set(-EINVAL, "guest RAM regions must come before device memory");
    gm->regions[gm->nr_regions++] = (struct gm_region){gpa, size, hva, NULL};
    if (ram) {
        gm->nr_ram++;
        gm->total_size += size;
    }
    return 0;
}

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *hva)
{
    return gm_insert(gm, gpa, size, hva, true);
}

int gm_map_file_region(struct guest_mem *gm, uint64_t gpa, int fd, uint64_t size,
                       bool read_only, uint64_t *mapped_size)
{
    uint64_t total = align_up(size ? size : 1, MiB(2));
    if (total < size)
        return err_set(-EINVAL, "device memory of %llu bytes is too large",
                       (unsigned long long)size);
    /* Reserve the whole region as zeroes, then put the file over its start. */
    uint8_t *hva = mmap(NULL, total, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (hva == MAP_FAILED)
        return err_errno(-errno, "cannot reserve %llu MiB for device memory",
                         (unsigned long long)(total >> 20));
    uint64_t file_part = align_up(size, GM_PAGE_SIZE);
    if (file_part &&
        mmap(hva, file_part, PROT_READ | PROT_WRITE,
             (read_only ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd, 0) == MAP_FAILED) {
        int ret = err_errno(-errno, "cannot map the device memory file");
        munmap(hva, total);
        return ret;
    }
    int ret = gm_insert(gm, gpa, total, hva, false);
    if (ret) {
        munmap(hva, total);
        return ret;
    }
    *mapped_size = total;
    return 0;
}

/* Guest RAM is 2 MiB-aligned in the host's address space, like its guest
 * addresses: only then can KVM map it with 2 MiB pages (transparent or
 * hugetlbfs), which saves a nested-paging fault per 4 KiB touched. */
static void *map_aligned(uint64_t size)
{
    const uint64_t align = MiB(2);
    uint8_t *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return MAP_FAILED;
    uint8_t *hva = (uint8_t *)align_up((uintptr_t)raw, align);
    if (hva > raw)
        munmap(raw, (size_t)(hva - raw));
    uint8_t *end = hva + size, *raw_end = raw + size + align;
    if (raw_end > end)
        munmap(end, (size_t)(raw_end - end));
    return hva;
}

static void *map_ram(uint64_t size, const struct gm_anon_options *opt)
{
    void *hva;
    if (opt->pages == GUEST_PAGES_HUGETLB) {
        /* Reserved up front (no MAP_NORESERVE): a pool too small for the
         * guest fails here, with a message, not as a SIGBUS later. */
        hva = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
        if (hva == MAP_FAILED)
            return hva;
    } else {
        hva = map_aligned(size);
        if (hva == MAP_FAILED)
            return hva;
        /* Advice only: a host without THP refuses it, and that is fine. */
        madvise(hva, size, opt->pages == GUEST_PAGES_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    }
    if (opt->mergeable)
        madvise(hva, size, MADV_MERGEABLE); /* a host without KSM refuses it */
    return hva;
}

static int gm_map_one(struct guest_mem *gm, uint64_t gpa, uint64_t size,
                      const struct gm_anon_options *opt)
{
    void *hva = map_ram(size, opt);
    if (hva == MAP_FAILED && opt->pages == GUEST_PAGES_HUGETLB)
        return err_errno(-errno, "cannot get %llu MiB of 2 MiB huge pages for guest memory "
                         "(the host's pool: /proc/sys/vm/nr_hugepages, HugePages_Free in "
                         "/proc/meminfo)", (unsigned long long)(size >> 20));
    if (hva == MAP_FAILED)
        return err_errno(-errno, "cannot map %llu MiB of guest memory",
                         (unsigned long long)(size >> 20));
    int ret = gm_insert(gm, gpa, size, hva, true);
    if (ret)
        munmap(hva, size);
    return ret;
}

int gm_create_anon(struct guest_mem *gm, uint64_t ram_size, uint64_t hole_start)
{
    const struct gm_anon_options thp = {GUEST_PAGES_THP, false};
    return gm_create_anon_with(gm, ram_size, hole_start, &thp);
}

int gm_create_anon_with(struct guest_mem *gm, uint64_t ram_size, uint64_t hole_start,
                        const struct gm_anon_options *opt)
{
    memset(gm, 0, sizeof(*gm));
    gm->owns_mappings = true;
    gm->hugetlb = opt->pages == GUEST_PAGES_HUGETLB;
    if (gm->hugetlb && (ram_size | hole_start) & (MiB(2) - 1))
        return err_set(-EINVAL, "guest memory of 2 MiB huge pages must be a multiple of 2 MiB");
    uint64_t low = MIN(ram_size, hole_start);
    int ret = gm_map_one(gm, 0, low, opt);
    if (!ret && ram_size > low)
        ret = gm_map_one(gm, GiB(4), ram_size - low, opt);
    if (ret)
        gm_destroy(gm);
    return ret;
}

int gm_create_file(struct guest_mem *gm, int fd, uint64_t ram_size, uint64_t hole_start,
                   bool mergeable)
{
    memset(gm, 0, sizeof(*gm));
    gm->owns_mappings = true;
    uint64_t low = MIN(ram_size, hole_start);
    const uint64_t starts[2] = {0, GiB(4)}, sizes[2] = {low, ram_size - low};
    uint64_t offset = 0;
    for (int i = 0; i < 2 && sizes[i]; i++) {
        void *hva = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
                         fd, (off_t)offset);
        int ret = hva == MAP_FAILED ? err_errno(-errno, "cannot map the memory file") : 0;
        if (!ret && mergeable)
            madvise(hva, sizes[i], MADV_MERGEABLE); /* a host without KSM refuses it */
        if (!ret && (ret = gm_insert(gm, starts[i], sizes[i], hva, true)))
            munmap(hva, sizes[i]);
        if (ret) {
            gm_destroy(gm);
            return ret;
        }
        offset += sizes[i];
    }
    return 0;
}

void gm_destroy(struct guest_mem *gm)
{
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        if (gm->owns_mappings)
            munmap(gm->regions[i].hva, gm->regions[i].size);
        free((void *)gm->regions[i].dirty);
    }
    memset(gm, 0, sizeof(*gm));
}

static size_t dirty_words(uint64_t size)
{
    return (size_t)((size / GM_PAGE_SIZE + 63) / 64);
}

int gm_track_dirty(struct guest_mem *gm)
{
    for (unsigned i = 0; i < gm->nr_ram; i++) {
        struct gm_region *r = &gm->regions[i];
        if (!r->dirty && !(r->dirty = calloc(dirty_words(r->size), sizeof(uint64_t))))
            return err_set(-ENOMEM, "out of memory for dirty-page tracking");
    }
    gm->track_dirty = true;
    return 0;
}

void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    if (!gm->track_dirty) /* the device write path's usual case */
        return;
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct gm_region *r = &gm->regions[i];
        if (!r->dirty || gpa < r->gpa || gpa - r->gpa >= r->size)
            continue;
        uint64_t first = (gpa - r->gpa) / GM_PAGE_SIZE;
        uint64_t last = (gpa - r->gpa + MAX(len, 1) - 1) / GM_PAGE_SIZE;
        last = MIN(last, r->size / GM_PAGE_SIZE - 1);
        for (uint64_t p = first; p <= last; p++)
            atomic_fetch_or(&r->dirty[p / 64], 1ull << (p % 64));
        return;
    }
}

void gm_take_dirty(const struct guest_mem *gm, unsigned region, uint64_t *bitmap)
{
    const struct gm_region *r = &gm->regions[region];
    if (!r->dirty)
        return;
    for (size_t w = 0; w < dirty_words(r->size); w++)
        bitmap[w] |= atomic_exchange(&r->dirty[w], 0);
}

static void written(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    gm_mark_dirty(gm, gpa, len);
    if (gm->write_hook)
        gm->write_hook(gm->write_hook_ctx, gpa, len);
}

void *gm_ptr_for_write(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);
    if (p)
        written(gm, gpa, len);
    return p;
}

int gm_discard(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    uint64_t page = gm->hugetlb ? MiB(2) : GM_PAGE_SIZE;
    if (!len || ((gpa | len) & (page - 1)))
        return -EINVAL;
    void *p = gm_ptr(gm, gpa, len);
    if (!p)
        return -EFAULT;
    /* Private memory: the pages go back to the host, and read as zeros (or
     * as the snapshot file's pages, for a restored guest) when touched again. */
    if (madvise(p, len, MADV_DONTNEED) < 0)
        return -errno;
    written(gm, gpa, len);
    return 0;
}

void gm_note_written(const struct guest_mem *gm, const void *hva, uint64_t len)
{
    const uint8_t *p = hva;
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct gm_region *r = &gm->regions[i];
        if (p >= r->hva && (uint64_t)(p - r->hva) < r->size &&
            len <= r->size - (uint64_t)(p - r->hva)) {
            written(gm, r->gpa + (uint64_t)(p - r->hva), len);
            return;
        }
    }
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        len = 1;
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct gm_region *r = &gm->regions[i];
        /* Subtractions only: no sum can wrap. */
        if (gpa < r->gpa)
            continue;
        uint64_t offset = gpa - r->gpa;
        if (offset >= r->size || len > r->size - offset)
            continue;
        return r->hva + offset;
    }
    return NULL;
}

bool gm_range_valid(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    return gm_ptr(gm, gpa, len) != NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
    const void *src = gm_ptr(gm, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
    void *dst = gm_ptr(gm, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    written(gm, gpa, len);
    return 0;
}

int gm_fill(const struct guest_mem *gm, uint64_t gpa, int byte, size_t len)
{
    void *dst = gm_ptr(gm, gpa, len);
    if (!dst)
        return -EFAULT;
    memset(dst, byte, len);
    written(gm, gpa, len);
    return 0;
}

#define GM_FIELD_ACCESSORS(bits)                                               \
    int gm_read_u##bits(const struct guest_mem *gm, uint64_t gpa,              \
                        uint##bits##_t *out)                                   \
    {                                                                          \
        uint8_t buf[bits / 8];                                                 \
        int ret = gm_read(gm, gpa, buf, sizeof(buf));                          \
        if (!ret)                                                              \
            *out = le##bits##_load(buf);                                       \
        return ret;                                                            \
    }                                                                          \
    int gm_write_u##bits(const struct guest_mem *gm, uint64_t gpa,             \
                         uint##bits##_t v)                                     \
    {                                                                          \
        uint8_t buf[bits / 8];                                                 \
        le##bits##_store(buf, v);                                              \
        return gm_write(gm, gpa, buf, sizeof(buf));                            \
    }

GM_FIELD_ACCESSORS(16)
GM_FIELD_ACCESSORS(32)
GM_FIELD_ACCESSORS(64)

/* A split virtqueue laid out in fake guest memory, driven as a guest would. */
#ifndef EMBER_TESTS_VQ_FAKE_H
#define EMBER_TESTS_VQ_FAKE_H

#include "fakes.h"

#include "util/util.h"
#include "virtio/virtq.h"

#define VQF_MEM_SIZE 0x100000ull /* 1 MiB of guest RAM at 0 */
#define VQF_DESC 0x1000ull
#define VQF_AVAIL 0x5000ull
#define VQF_USED 0x6000ull
#define VQF_DATA 0x10000ull      /* buffers and indirect tables from here */

struct vq_fake {
    struct guest_mem gm;
    struct virtq q;
    uint16_t avail_idx;
    uint8_t *mem;
};

static inline void vqf_init(struct vq_fake *f, uint16_t size)
{
    memset(f, 0, sizeof(*f));
    fake_mem_init(&f->gm, 0, VQF_MEM_SIZE);
    f->mem = f->gm.regions[0].hva;
    f->q.size = size;
    f->q.desc_gpa = VQF_DESC;
    f->q.avail_gpa = VQF_AVAIL;
    f->q.used_gpa = VQF_USED;
    f->q.indirect = true;
}

static inline void vqf_start(struct vq_fake *f)
{
    assert_int_equal(virtq_start(&f->q, &f->gm), 0);
}

static inline void vqf_free(struct vq_fake *f)
{
    fake_mem_free(&f->gm);
}

static inline void vqf_put_desc(uint8_t *table, uint16_t i, uint64_t addr, uint32_t len,
                                uint16_t flags, uint16_t next)
{
    uint8_t *d = table + 16u * i;
    le64_store(d, addr);
    le32_store(d + 8, len);
    le16_store(d + 12, flags);
    le16_store(d + 14, next);
}

static inline void vqf_desc(struct vq_fake *f, uint16_t i, uint64_t addr, uint32_t len,
                            uint16_t flags, uint16_t next)
{
    vqf_put_desc(f->mem + VQF_DESC, i, addr, len, flags, next);
}

/* Make 'head' available. */
static inline void vqf_publish(struct vq_fake *f, uint16_t head)
{
    le16_store(f->mem + VQF_AVAIL + 4 + 2u * (f->avail_idx % f->q.size), head);
    f->avail_idx++;
    le16_store(f->mem + VQF_AVAIL + 2, f->avail_idx);
}

static inline uint16_t vqf_used_idx(struct vq_fake *f)
{
    return le16_load(f->mem + VQF_USED + 2);
}

static inline void vqf_used_elem(struct vq_fake *f, uint16_t i, uint32_t *id, uint32_t *len)
{
    const uint8_t *e = f->mem + VQF_USED + 4 + 8u * (i % f->q.size);
    *id = le32_load(e);
    *len = le32_load(e + 4);
}

#endif

#ifndef EMBER_UTIL_UTIL_H
#define EMBER_UTIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

static inline bool is_aligned(uint64_t v, uint64_t align)
{
    return (v & (align - 1)) == 0;
}

static inline uint64_t align_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) & ~(align - 1);
}

static inline uint64_t align_down(uint64_t v, uint64_t align)
{
    return v & ~(align - 1);
}

/* Little-endian loads and stores on byte buffers (no alignment assumed). */
static inline uint16_t le16_load(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t le32_load(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static inline uint64_t le64_load(const void *p)
{
    return le32_load(p) | (uint64_t)le32_load((const uint8_t *)p + 4) << 32;
}

static inline void le16_store(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static inline void le32_store(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static inline void le64_store(void *p, uint64_t v)
{
    le32_store(p, (uint32_t)v);
    le32_store((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Value of a little-endian access of 'len' (1,2,4,8) bytes. */
static inline uint64_t le_load_n(const void *p, unsigned len)
{
    switch (len) {
    case 1: return *(const uint8_t *)p;
    case 2: return le16_load(p);
    case 4: return le32_load(p);
    case 8: return le64_load(p);
    default: return 0;
    }
}

static inline void le_store_n(void *p, unsigned len, uint64_t v)
{
    switch (len) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: le16_store(p, (uint16_t)v); break;
    case 4: le32_store(p, (uint32_t)v); break;
    case 8: le64_store(p, v); break;
    default: break;
    }
}

/* Parse a memory size such as 256M, 2G, 1024K or a plain number of MiB.
 * Returns 0 and the size in bytes, or -EINVAL. */
int parse_size(const char *text, uint64_t *bytes);

#endif

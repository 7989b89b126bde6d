/* A growable byte buffer for building files and records in memory. */
#ifndef EMBER_UTIL_BUF_H
#define EMBER_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the contents are incomplete */
};

void buf_put(struct buf *b, const void *data, size_t len);
void buf_put_u32(struct buf *b, uint32_t v); /* little-endian */
void buf_put_u64(struct buf *b, uint64_t v);
void buf_free(struct buf *b);

#endif

#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void buf_put(struct buf *b, const void *data, size_t len)
{
    if (b->failed || len == 0)
        return;
    if (len > b->cap - b->len) {
        size_t cap = MAX(b->cap * 2, b->len + len + 256);
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t raw[4];
    le32_store(raw, v);
    buf_put(b, raw, 4);
}

void buf_put_u64(struct buf *b, uint64_t v)
{
    uint8_t raw[8];
    le64_store(raw, v);
    buf_put(b, raw, 8);
}

void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

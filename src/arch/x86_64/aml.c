#include "arch/x86_64/aml.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_ONES 0xff
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE_OP 0x82
#define AML_ROOT_CHAR '\\'
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f

void aml_init(struct aml_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void aml_free(struct aml_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static bool aml_reserve(struct aml_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = MAX(b->cap * 2, b->len + extra + 256);
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void aml_bytes(struct aml_buf *b, const void *p, size_t n)
{
    if (!aml_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void aml_byte(struct aml_buf *b, uint8_t v)
{
    aml_bytes(b, &v, 1);
}

static void aml_name_seg(struct aml_buf *b, const char *seg, size_t len)
{
    char padded[4] = {'_', '_', '_', '_'};
    memcpy(padded, seg, MIN(len, sizeof(padded)));
    aml_bytes(b, padded, 4);
}

void aml_name_string(struct aml_buf *b, const char *path)
{
    if (*path == AML_ROOT_CHAR) {
        aml_byte(b, AML_ROOT_CHAR);
        path++;
    }
    const char *segs[16];
    size_t lens[16];
    size_t n = 0;
    while (*path && n < ARRAY_SIZE(segs)) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        segs[n] = path;
        lens[n++] = len;
        path += len + (dot ? 1 : 0);
    }
    if (n == 0) {
        aml_byte(b, 0x00); /* NullName */
        return;
    }
    if (n == 2)
        aml_byte(b, AML_DUAL_NAME_PREFIX);
    else if (n > 2) {
        aml_byte(b, AML_MULTI_NAME_PREFIX);
        aml_byte(b, (uint8_t)n);
    }
    for (size_t i = 0; i < n; i++)
        aml_name_seg(b, segs[i], lens[i]);
}

void aml_integer(struct aml_buf *b, uint64_t v)
{
    uint8_t buf[9];
    if (v == 0) {
        aml_byte(b, AML_ZERO);
    } else if (v == 1) {
        aml_byte(b, AML_ONE);
    } else if (v <= 0xff) {
        buf[0] = AML_BYTE_PREFIX;
        buf[1] = (uint8_t)v;
        aml_bytes(b, buf, 2);
    } else if (v <= 0xffff) {
        buf[0] = AML_WORD_PREFIX;
        le16_store(buf + 1, (uint16_t)v);
        aml_bytes(b, buf, 3);
    } else if (v <= 0xffffffffu) {
        buf[0] = AML_DWORD_PREFIX;
        le32_store(buf + 1, (uint32_t)v);
        aml_bytes(b, buf, 5);
    } else {
        buf[0] = AML_QWORD_PREFIX;
        le64_store(buf + 1, v);
        aml_bytes(b, buf, 9);
    }
}

void aml_string(struct aml_buf *b, const char *s)
{
    aml_byte(b, AML_STRING_PREFIX);
    aml_bytes(b, s, strlen(s) + 1);
}

uint32_t aml_eisaid_value(const char *id)
{
    /* Three letters of five bits each, then four hex digits, stored so the
     * integer's little-endian bytes read as the big-endian ID. */
    uint32_t v = (uint32_t)((toupper((unsigned char)id[0]) - '@') & 0x1f) << 26 |
                 (uint32_t)((toupper((unsigned char)id[1]) - '@') & 0x1f) << 21 |
                 (uint32_t)((toupper((unsigned char)id[2]) - '@') & 0x1f) << 16 |
                 (uint32_t)strtoul(id + 3, NULL, 16);
    return __builtin_bswap32(v);
}

void aml_eisaid(struct aml_buf *b, const char *id)
{
    uint8_t buf[5] = {AML_DWORD_PREFIX};
    le32_store(buf + 1, aml_eisaid_value(id));
    aml_bytes(b, buf, 5);
}

void aml_name(struct aml_buf *b, const char *name)
{
    aml_byte(b, AML_NAME_OP);
    aml_name_string(b, name);
}

size_t aml_pkglen_encode(size_t body, uint8_t out[4])
{
    if (body + 1 <= 0x3f) {
        out[0] = (uint8_t)(body + 1);
        return 1;
    }
    for (size_t n = 2; n <= 4; n++) {
        size_t total = body + n;
        if (total < (1ull << (4 + 8 * (n - 1)))) {
            out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
            for (size_t i = 1; i < n; i++)
                out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
            return n;
        }
    }
    return 0; /* larger than AML can express; callers stay far below */
}

/* The PkgLength is inserted at 'mark' once the body's size is known. */
void aml_end(struct aml_buf *b, size_t mark)
{
    if (b->failed || mark > b->len)
        return;
    uint8_t enc[4];
    size_t n = aml_pkglen_encode(b->len - mark, enc);
    if (n == 0 || !aml_reserve(b, n)) {
        b->failed = true;
        return;
    }
    memmove(b->data + mark + n, b->data + mark, b->len - mark);
    memcpy(b->data + mark, enc, n);
    b->len += n;
}

size_t aml_scope_begin(struct aml_buf *b, const char *path)
{
    aml_byte(b, AML_SCOPE_OP);
    size_t mark = b->len;
    aml_name_string(b, path);
    return mark;
}

size_t aml_device_begin(struct aml_buf *b, const char *name)
{
    aml_byte(b, AML_EXT_PREFIX);
    aml_byte(b, AML_DEVICE_OP);
    size_t mark = b->len;
    aml_name_string(b, name);
    return mark;
}

size_t aml_package_begin(struct aml_buf *b, uint8_t count)
{
    aml_byte(b, AML_PACKAGE_OP);
    size_t mark = b->len;
    aml_byte(b, count);
    return mark;
}

size_t aml_buffer_begin(struct aml_buf *b, size_t size)
{
    aml_byte(b, AML_BUFFER_OP);
    size_t mark = b->len;
    aml_integer(b, size);
    return mark;
}

/* Resource descriptors (ACPI 6.x, section 6.4). */
void aml_res_io(struct aml_buf *b, uint16_t base, uint8_t len)
{
    uint8_t d[8] = {0x47, 0x01}; /* I/O port, 16-bit decode */
    le16_store(d + 2, base);
    le16_store(d + 4, base);
    d[6] = 1;   /* alignment */
    d[7] = len;
    aml_bytes(b, d, sizeof(d));
}

void aml_res_irq(struct aml_buf *b, unsigned irq)
{
    uint8_t d[3] = {0x22}; /* IRQ, edge-triggered, active high */
    le16_store(d + 1, (uint16_t)(1u << irq));
    aml_bytes(b, d, sizeof(d));
}

/* Memory32Fixed: a device's own registers, read-write. */
void aml_res_mem32_fixed(struct aml_buf *b, uint32_t base, uint32_t len)
{
    uint8_t d[12] = {0x86, 9, 0, 0x01 /* read-write */};
    le32_store(d + 4, base);
    le32_store(d + 8, len);
    aml_bytes(b, d, sizeof(d));
}

/* Extended Interrupt: one GSI the device consumes, edge-triggered, active
 * high, exclusive (what Firecracker describes for virtio-mmio). */
void aml_res_interrupt(struct aml_buf *b, uint32_t gsi)
{
    uint8_t d[9] = {0x89, 6, 0, 0x03 /* consumer, edge */, 1 /* one interrupt */};
    le32_store(d + 5, gsi);
    aml_bytes(b, d, sizeof(d));
}

/* Word address space descriptor: a bridge's window that it produces. */
static void aml_res_word(struct aml_buf *b, uint8_t type, uint8_t type_flags,
                         uint16_t min, uint16_t max)
{
    uint8_t d[16] = {0x88, 13, 0, type, 0x0c /* fixed min and max */, type_flags};
    le16_store(d + 8, min);
    le16_store(d + 10, max);
    le16_store(d + 14, (uint16_t)(max - min + 1));
    aml_bytes(b, d, sizeof(d));
}

void aml_res_bus_numbers(struct aml_buf *b, uint16_t min, uint16_t max)
{
    aml_res_word(b, 2, 0, min, max);
}

void aml_res_io_window(struct aml_buf *b, uint16_t min, uint16_t max)
{
    aml_res_word(b, 1, 0x03 /* ISA and non-ISA ranges */, min, max);
}

void aml_res_mem32_window(struct aml_buf *b, uint32_t min, uint32_t max)
{
    uint8_t d[26] = {0x87, 23, 0, 0 /* memory */, 0x0c, 0x03 /* cacheable, RW */};
    le32_store(d + 10, min);
    le32_store(d + 14, max);
    le32_store(d + 22, max - min + 1);
    aml_bytes(b, d, sizeof(d));
}

void aml_res_mem64_window(struct aml_buf *b, uint64_t min, uint64_t max)
{
    uint8_t d[46] = {0x8a, 43, 0, 0, 0x0c, 0x03};
    le64_store(d + 14, min);
    le64_store(d + 22, max);
    le64_store(d + 38, max - min + 1);
    aml_bytes(b, d, sizeof(d));
}

void aml_res_end(struct aml_buf *b)
{
    uint8_t d[2] = {0x79, 0x00}; /* checksum 0: treated as valid */
    aml_bytes(b, d, sizeof(d));
}

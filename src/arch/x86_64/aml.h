/* A minimal AML encoder: just the terms ember's DSDT needs (names, scopes,
 * devices, packages, buffers, integers, strings) and resource descriptors. */
#ifndef EMBER_ARCH_X86_64_AML_H
#define EMBER_ARCH_X86_64_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; the content is incomplete */
};

void aml_init(struct aml_buf *b);
void aml_free(struct aml_buf *b);
void aml_bytes(struct aml_buf *b, const void *p, size_t n);
void aml_byte(struct aml_buf *b, uint8_t v);

/* "\\_SB_.PCI0", "_HID", "COM1": segments padded to four characters. */
void aml_name_string(struct aml_buf *b, const char *path);
void aml_integer(struct aml_buf *b, uint64_t v);
void aml_string(struct aml_buf *b, const char *s);
/* Compressed EISA ID such as "PNP0A03", as an integer. */
void aml_eisaid(struct aml_buf *b, const char *id);
uint32_t aml_eisaid_value(const char *id);

/* Name(NAME, <value written next>). */
void aml_name(struct aml_buf *b, const char *name);
/* Constructs with a PkgLength: begin returns a mark that end() needs. */
size_t aml_scope_begin(struct aml_buf *b, const char *path);
size_t aml_device_begin(struct aml_buf *b, const char *name);
size_t aml_package_begin(struct aml_buf *b, uint8_t count);
size_t aml_buffer_begin(struct aml_buf *b, size_t size);
void aml_end(struct aml_buf *b, size_t mark);

/* Resource template helpers (append descriptors inside a buffer). */
void aml_res_io(struct aml_buf *b, uint16_t base, uint8_t len);
void aml_res_irq(struct aml_buf *b, unsigned irq);
void aml_res_mem32_fixed(struct aml_buf *b, uint32_t base, uint32_t len);
void aml_res_interrupt(struct aml_buf *b, uint32_t gsi);
void aml_res_bus_numbers(struct aml_buf *b, uint16_t min, uint16_t max);
void aml_res_io_window(struct aml_buf *b, uint16_t min, uint16_t max);
void aml_res_mem32_window(struct aml_buf *b, uint32_t min, uint32_t max);
void aml_res_mem64_window(struct aml_buf *b, uint64_t min, uint64_t max);
void aml_res_end(struct aml_buf *b);

/* PkgLength encoding of a body of 'body' bytes; returns its size (1-4). */
size_t aml_pkglen_encode(size_t body, uint8_t out[4]);

#endif

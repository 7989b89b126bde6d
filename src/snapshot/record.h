/* A device's saved state: named unsigned values, byte strings and nested
 * records (JSON objects underneath, via json-c, so the state section can
 * be read by people and grows by name rather than by offset). Devices
 * write with rec_put_* and read with rec_get_*, which check that each value
 * is present, of its type and within the range the device allows: a
 * snapshot is input like any other. */
#ifndef EMBER_SNAPSHOT_RECORD_H
#define EMBER_SNAPSHOT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct json_object;

struct rec {
    struct json_object *obj;
};

struct rec rec_new(void);
void rec_free(struct rec r);
/* Serialized text (owned by the record) / parse one (a new record). */
const char *rec_text(struct rec r, size_t *len);
/* Text with more values or deeper nesting than these is refused by a scan
 * before json-c builds any object: each value costs json-c tens of bytes, so
 * a state file of small values ("[0,0,0,...") would otherwise cost ember
 * dozens of times its size. A real record holds a few thousand values (a
 * vsock device with all its connections: about 20 000) and nests 5 deep. */
#define REC_MAX_VALUES (1u << 18)
#define REC_MAX_DEPTH 16
int rec_parse(const void *text, size_t len, struct rec *out) EMBER_MUST_CHECK;

void rec_put_u64(struct rec r, const char *key, uint64_t v);
void rec_put_bool(struct rec r, const char *key, bool v);
void rec_put_bytes(struct rec r, const char *key, const void *data, size_t len);
void rec_put_str(struct rec r, const char *key, const char *s);
struct rec rec_put_child(struct rec r, const char *key);
/* Append a new record to the list 'key' (created on first use). */
struct rec rec_put_item(struct rec r, const char *key);

/* Each returns 0, or -EINVAL with err_msg() naming the key. */
int rec_get_u64(struct rec r, const char *key, uint64_t max, uint64_t *out) EMBER_MUST_CHECK;
int rec_get_u32(struct rec r, const char *key, uint32_t max, uint32_t *out) EMBER_MUST_CHECK;
int rec_get_u16(struct rec r, const char *key, uint16_t max, uint16_t *out) EMBER_MUST_CHECK;
int rec_get_u8(struct rec r, const char *key, uint8_t *out) EMBER_MUST_CHECK;
int rec_get_bool(struct rec r, const char *key, bool *out) EMBER_MUST_CHECK;
/* Exactly 'len' bytes. */
int rec_get_bytes(struct rec r, const char *key, void *data, size_t len) EMBER_MUST_CHECK;
/* A string of at most max-1 bytes, copied into out[max]. */
int rec_get_str(struct rec r, const char *key, char *out, size_t max) EMBER_MUST_CHECK;
bool rec_has(struct rec r, const char *key);
/* A string owned by the record, or NULL if the key is absent or null. */
const char *rec_get_str_or_null(struct rec r, const char *key);
int rec_get_child(struct rec r, const char *key, struct rec *out) EMBER_MUST_CHECK;
/* The list 'key' with at most 'max' items. */
int rec_get_count(struct rec r, const char *key, size_t max, size_t *n) EMBER_MUST_CHECK;
int rec_get_item(struct rec r, const char *key, size_t index, struct rec *out) EMBER_MUST_CHECK;

#endif

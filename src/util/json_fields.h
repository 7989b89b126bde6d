/* Strict reading of a JSON request body: only the listed fields, each of
 * its type, the required ones present. Messages name the field and what is
 * wrong with it, for the client's fault_message. */
#ifndef EMBER_UTIL_JSON_FIELDS_H
#define EMBER_UTIL_JSON_FIELDS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum jf_type { JF_STRING, JF_BOOL, JF_UINT, JF_OBJECT, JF_ARRAY };

struct jf_field {
    const char *name;
    enum jf_type type;
    bool required;
    bool nullable; /* null is accepted and means "absent" */
};

/* 0, or -EINVAL with err_msg() naming the field ('what' names the body). */
int jf_check(struct json_object *obj, const struct jf_field *fields, size_t count,
             const char *what) EMBER_MUST_CHECK;

/* Parse a whole request body as one JSON value; trailing bytes, an empty
 * body or malformed JSON are errors. The caller owns the result. */
int jf_parse(const char *text, size_t len, struct json_object **out) EMBER_MUST_CHECK;

/* Field access after jf_check (absent or null: the default). */
struct json_object *jf_get(struct json_object *obj, const char *name);
const char *jf_string(struct json_object *obj, const char *name, const char *dflt);
bool jf_bool(struct json_object *obj, const char *name, bool dflt);
uint64_t jf_uint(struct json_object *obj, const char *name, uint64_t dflt);

#endif

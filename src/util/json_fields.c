#include "util/json_fields.h"

#include <string.h>

#include "util/util.h"

static const char *type_name(enum jf_type t)
{
    switch (t) {
    case JF_STRING: return "a string";
    case JF_BOOL: return "a boolean";
    case JF_UINT: return "a non-negative integer";
    case JF_OBJECT: return "an object";
    case JF_ARRAY: return "an array";
    }
    return "?";
}

static bool type_matches(struct json_object *v, enum jf_type t)
{
    switch (t) {
    case JF_STRING: return json_object_is_type(v, json_type_string);
    case JF_BOOL: return json_object_is_type(v, json_type_boolean);
    case JF_UINT:
        /* json-c keeps integers above INT64_MAX as unsigned; negative ones
         * come back negative from get_int64. */
        return json_object_is_type(v, json_type_int) &&
               (json_object_get_int64(v) >= 0 || json_object_get_uint64(v) > INT64_MAX);
    case JF_OBJECT: return json_object_is_type(v, json_type_object);
    case JF_ARRAY: return json_object_is_type(v, json_type_array);
    }
    return false;
}

static const struct jf_field *find_field(const struct jf_field *fields, size_t count,
                                         const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp(fields[i].name, name))
            return &fields[i];
    return NULL;
}

int jf_check(struct json_object *obj, const struct jf_field *fields, size_t count,
             const char *what)
{
    if (!obj || !json_object_is_type(obj, json_type_object))
        return err_set(-EINVAL, "%s: expected a JSON object", what);
    json_object_object_foreach(obj, key, value) {
        const struct jf_field *f = find_field(fields, count, key);
        if (!f)
            return err_set(-EINVAL, "%s: unknown field '%s'", what, key);
        if (!value) {
            if (!f->nullable)
                return err_set(-EINVAL, "%s: field '%s' must be %s, not null", what, key,
                               type_name(f->type));
            continue;
        }
        if (!type_matches(value, f->type))
            return err_set(-EINVAL, "%s: field '%s' must be %s", what, key, type_name(f->type));
        /* An embedded NUL would silently cut a path short. */
        if (f->type == JF_STRING &&
            strlen(json_object_get_string(value)) != (size_t)json_object_get_string_len(value))
            return err_set(-EINVAL, "%s: field '%s' contains a NUL character", what, key);
    }
    for (size_t i = 0; i < count; i++)
        if (fields[i].required && !jf_get(obj, fields[i].name))
            return err_set(-EINVAL, "%s: missing required field '%s'", what, fields[i].name);
    return 0;
}

int jf_parse(const char *text, size_t len, struct json_object **out)
{
    *out = NULL;
    if (len == 0)
        return err_set(-EINVAL, "the request needs a JSON body");
    if (len > INT32_MAX)
        return err_set(-EINVAL, "the JSON body is too large");
    struct json_tokener *tok = json_tokener_new_ex(32);
    if (!tok)
        return err_set(-ENOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    int ret = 0;
    if (jerr == json_tokener_continue)
        ret = err_set(-EINVAL, "malformed JSON body: it ends early");
    else if (jerr != json_tokener_success)
        ret = err_set(-EINVAL, "malformed JSON body at byte %zu: %s", end,
                      json_tokener_error_desc(jerr));
    else
        for (size_t i = end; i < len && !ret; i++)
            if (!strchr(" \t\r\n", text[i]))
                ret = err_set(-EINVAL, "malformed JSON body: unexpected data after byte %zu",
                              end);
    json_tokener_free(tok);
    if (ret) {
        json_object_put(obj);
        return ret;
    }
    *out = obj;
    return 0;
}

struct json_object *jf_get(struct json_object *obj, const char *name)
{
    struct json_object *v = NULL;
    if (!obj || !json_object_object_get_ex(obj, name, &v))
        return NULL;
    return v; /* NULL for a JSON null */
}

const char *jf_string(struct json_object *obj, const char *name, const char *dflt)
{
    struct json_object *v = jf_get(obj, name);
    return v ? json_object_get_string(v) : dflt;
}

bool jf_bool(struct json_object *obj, const char *name, bool dflt)
{
    struct json_object *v = jf_get(obj, name);
    return v ? json_object_get_boolean(v) : dflt;
}

uint64_t jf_uint(struct json_object *obj, const char *name, uint64_t dflt)
{
    struct json_object *v = jf_get(obj, name);
    return v ? json_object_get_uint64(v) : dflt;
}

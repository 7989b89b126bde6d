#include "snapshot/record.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_fields.h"

struct rec rec_new(void)
{
    return (struct rec){json_object_new_object()};
}

void rec_free(struct rec r)
{
    json_object_put(r.obj);
}

const char *rec_text(struct rec r, size_t *len)
{
    return json_object_to_json_string_length(
        r.obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

/* Count values and nesting without building anything: every value but the
 * first follows a ',' or ':' or opens with '[' or '{' — close enough to
 * bound json-c's work (strings are skipped, escapes included). */
static int check_shape(const char *p, size_t len)
{
    size_t values = 1;
    unsigned depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"': in_string = true; break;
        case '[':
        case '{':
            if (++depth > REC_MAX_DEPTH)
                return err_set(-EINVAL, "nested deeper than %u levels", REC_MAX_DEPTH);
            values++;
            break;
        case ']':
        case '}':
            if (depth)
                depth--;
            break;
        case ',':
        case ':': values++; break;
        default: break;
        }
        if (values > REC_MAX_VALUES)
            return err_set(-EINVAL, "more than %u values", REC_MAX_VALUES);
    }
    return 0;
}

int rec_parse(const void *text, size_t len, struct rec *out)
{
    out->obj = NULL;
    int ret = check_shape(text, len);
    if (ret)
        return ret;
    ret = jf_parse(text, len, &out->obj);
    if (!ret && !json_object_is_type(out->obj, json_type_object)) {
        json_object_put(out->obj);
        out->obj = NULL;
        return err_set(-EINVAL, "expected a JSON object");
    }
    return ret;
}

void rec_put_u64(struct rec r, const char *key, uint64_t v)
{
    json_object_object_add(r.obj, key, json_object_new_uint64(v));
}

void rec_put_bool(struct rec r, const char *key, bool v)
{
    json_object_object_add(r.obj, key, json_object_new_boolean(v));
}

void rec_put_bytes(struct rec r, const char *key, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *text = malloc(len * 2 + 1);
    if (!text) {
        json_object_object_add(r.obj, key, NULL); /* read back as an error */
        return;
    }
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        text[2 * i] = hex[p[i] >> 4];
        text[2 * i + 1] = hex[p[i] & 15];
    }
    text[2 * len] = '\0';
    json_object_object_add(r.obj, key, json_object_new_string_len(text, (int)(2 * len)));
    free(text);
}

void rec_put_str(struct rec r, const char *key, const char *s)
{
    json_object_object_add(r.obj, key, s ? json_object_new_string(s) : NULL);
}

struct rec rec_put_child(struct rec r, const char *key)
{
    struct json_object *child = json_object_new_object();
    json_object_object_add(r.obj, key, child);
    return (struct rec){child};
}

struct rec rec_put_item(struct rec r, const char *key)
{
    struct json_object *list;
    if (!json_object_object_get_ex(r.obj, key, &list) || !list) {
        list = json_object_new_array();
        json_object_object_add(r.obj, key, list);
    }
    struct json_object *item = json_object_new_object();
    json_object_array_add(list, item);
    return (struct rec){item};
}

static struct json_object *get_typed(struct rec r, const char *key, json_type type,
                                     const char *what)
{
    struct json_object *v = NULL;
    if (!r.obj || !json_object_object_get_ex(r.obj, key, &v) || !v) {
        err_set(-EINVAL, "'%s' is missing", key);
        return NULL;
    }
    if (!json_object_is_type(v, type)) {
        err_set(-EINVAL, "'%s' is not %s", key, what);
        return NULL;
    }
    return v;
}

int rec_get_u64(struct rec r, const char *key, uint64_t max, uint64_t *out)
{
    struct json_object *v = get_typed(r, key, json_type_int, "an integer");
    if (!v)
        return -EINVAL;
    if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) <= INT64_MAX)
        return err_set(-EINVAL, "'%s' is negative", key);
    uint64_t x = json_object_get_uint64(v);
    if (x > max)
        return err_set(-EINVAL, "'%s' is %llu, more than %llu", key, (unsigned long long)x,
                       (unsigned long long)max);
    *out = x;
    return 0;
}

int rec_get_u32(struct rec r, const char *key, uint32_t max, uint32_t *out)
{
    uint64_t v;
    int ret = rec_get_u64(r, key, max, &v);
    if (!ret)
        *out = (uint32_t)v;
    return ret;
}

int rec_get_u16(struct rec r, const char *key, uint16_t max, uint16_t *out)
{
    uint64_t v;
    int ret = rec_get_u64(r, key, max, &v);
    if (!ret)
        *out = (uint16_t)v;
    return ret;
}

int rec_get_u8(struct rec r, const char *key, uint8_t *out)
{
    uint64_t v;
    int ret = rec_get_u64(r, key, UINT8_MAX, &v);
    if (!ret)
        *out = (uint8_t)v;
    return ret;
}

int rec_get_bool(struct rec r, const char *key, bool *out)
{
    struct json_object *v = get_typed(r, key, json_type_boolean, "a boolean");
    if (!v)
        return -EINVAL;
    *out = json_object_get_boolean(v);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int rec_get_bytes(struct rec r, const char *key, void *data, size_t len)
{
    struct json_object *v = get_typed(r, key, json_type_string, "a byte string");
    if (!v)
        return -EINVAL;
    const char *text = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != 2 * len)
        return err_set(-EINVAL, "'%s' holds %d bytes, expected %zu", key,
                       json_object_get_string_len(v) / 2, len);
    uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return err_set(-EINVAL, "'%s' is not hexadecimal", key);
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int rec_get_str(struct rec r, const char *key, char *out, size_t max)
{
    struct json_object *v = get_typed(r, key, json_type_string, "a string");
    if (!v)
        return -EINVAL;
    size_t n = (size_t)json_object_get_string_len(v);
    if (n >= max || strlen(json_object_get_string(v)) != n)
        return err_set(-EINVAL, "'%s' is longer than %zu bytes or holds a NUL", key, max - 1);
    memcpy(out, json_object_get_string(v), n + 1);
    return 0;
}

bool rec_has(struct rec r, const char *key)
{
    struct json_object *v = NULL;
    return r.obj && json_object_object_get_ex(r.obj, key, &v) && v;
}

const char *rec_get_str_or_null(struct rec r, const char *key)
{
    struct json_object *v = NULL;
    if (!r.obj || !json_object_object_get_ex(r.obj, key, &v) || !v ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int rec_get_child(struct rec r, const char *key, struct rec *out)
{
    struct json_object *v = get_typed(r, key, json_type_object, "a record");
    if (!v)
        return -EINVAL;
    out->obj = v;
    return 0;
}

int rec_get_count(struct rec r, const char *key, size_t max, size_t *n)
{
    struct json_object *v = get_typed(r, key, json_type_array, "a list");
    if (!v)
        return -EINVAL;
    *n = json_object_array_length(v);
    if (*n > max)
        return err_set(-EINVAL, "'%s' has %zu entries, at most %zu are possible", key, *n, max);
    return 0;
}

int rec_get_item(struct rec r, const char *key, size_t index, struct rec *out)
{
    struct json_object *v = get_typed(r, key, json_type_array, "a list");
    if (!v)
        return -EINVAL;
    struct json_object *item = index < json_object_array_length(v)
                                   ? json_object_array_get_idx(v, index) : NULL;
    if (!item || !json_object_is_type(item, json_type_object))
        return err_set(-EINVAL, "'%s'[%zu] is missing or not a record", key, index);
    out->obj = item;
    return 0;
}

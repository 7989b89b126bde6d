#include "api/mmds_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/util.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void mmds_store_init(struct mmds_store *s, size_t limit)
{
    memset(s, 0, sizeof(*s));
    s->limit = limit;
}

void mmds_store_free(struct mmds_store *s)
{
    json_object_put(s->data);
    s->data = NULL;
    s->initialized = false;
    free(s->tokens);
    s->tokens = NULL;
    s->next_token = 0;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A deep copy of 'v' (NULL is JSON's null) with every object's keys in byte
 * order into *out; -ENOMEM. */
static int sorted_copy(struct json_object *v, struct json_object **out)
{
    *out = NULL;
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        struct json_object *a = json_object_new_array_ext((int)n), *item;
        for (size_t i = 0; a && i < n; i++) {
            if (sorted_copy(json_object_array_get_idx(v, i), &item)) {
                json_object_put(a);
                return -ENOMEM;
            }
            json_object_array_add(a, item);
        }
        *out = a;
        return a ? 0 : -ENOMEM;
    }
    if (!json_object_is_type(v, json_type_object)) {
        *out = json_object_get(v); /* scalars are never changed in place */
        return 0;
    }
    size_t n = (size_t)json_object_object_length(v), i = 0;
    const char **keys = malloc(MAX(n, 1) * sizeof(*keys));
    struct json_object *o = json_object_new_object(), *child;
    if (!keys || !o) {
        free(keys);
        json_object_put(o);
        return -ENOMEM;
    }
    json_object_object_foreach(v, key, val) {
        (void)val;
        keys[i++] = key;
    }
    qsort(keys, n, sizeof(*keys), cmp_keys);
    for (i = 0; i < n; i++) {
        if (sorted_copy(json_object_object_get(v, keys[i]), &child)) {
            free(keys);
            json_object_put(o);
            return -ENOMEM;
        }
        json_object_object_add(o, keys[i], child);
    }
    free(keys);
    *out = o;
    return 0;
}

static size_t json_size(struct json_object *v)
{
    size_t len = 0;
    json_object_to_json_string_length(v, JSON_FLAGS, &len);
    return len;
}

/* Take 'v' (a new reference) as the data if it fits. */
static int store_if_fits(struct mmds_store *s, struct json_object *v)
{
    if (json_size(v) > s->limit) {
        json_object_put(v);
        return err_set(-EFBIG, "The MMDS patch request doesn't fit.");
    }
    json_object_put(s->data);
    s->data = v;
    s->initialized = true;
    return 0;
}

int mmds_store_put(struct mmds_store *s, struct json_object *value)
{
    struct json_object *copy;
    if (sorted_copy(value, &copy))
        return err_set(-ENOMEM, "out of memory");
    return store_if_fits(s, copy);
}

/* RFC 7386: 'target' (a reference the function takes; NULL is null)
 * merged with 'patch' into *out (a new reference); -ENOMEM. */
static int merge_patch(struct json_object *target, struct json_object *patch,
                       struct json_object **out)
{
    if (!json_object_is_type(patch, json_type_object)) {
        json_object_put(target);
        return sorted_copy(patch, out);
    }
    if (!json_object_is_type(target, json_type_object)) {
        json_object_put(target);
        if (!(target = json_object_new_object()))
            return -ENOMEM;
    }
    json_object_object_foreach(patch, key, val) {
        if (!val) { /* null removes */
            json_object_object_del(target, key);
            continue;
        }
        struct json_object *old = json_object_object_get(target, key), *merged;
        if (merge_patch(json_object_get(old), val, &merged)) {
            json_object_put(target);
            return -ENOMEM;
        }
        json_object_object_add(target, key, merged);
    }
    *out = target;
    return 0;
}

int mmds_store_patch(struct mmds_store *s, struct json_object *patch)
{
    if (!s->initialized)
        return err_set(-ENOENT, "The MMDS data store is not initialized.");
    struct json_object *copy = NULL, *merged, *sorted;
    if (s->data && json_object_deep_copy(s->data, &copy, NULL))
        return err_set(-ENOMEM, "out of memory");
    if (merge_patch(copy, patch, &merged))
        return err_set(-ENOMEM, "out of memory");
    /* New keys went in at the end: sort again. */
    int ret = sorted_copy(merged, &sorted);
    json_object_put(merged);
    return ret ? err_set(-ENOMEM, "out of memory") : store_if_fits(s, sorted);
}

struct json_object *mmds_store_get(const struct mmds_store *s)
{
    return s->initialized ? json_object_get(s->data) : json_object_new_object();
}

/* --- reading paths -------------------------------------------------------- */

/* One RFC 6901 reference token (~1 is '/', ~0 is '~') of at most len bytes
 * into out; false when malformed. */
static bool unescape_token(const char *p, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '~') {
            out[o++] = p[i];
            continue;
        }
        if (i + 1 == len || (p[i + 1] != '0' && p[i + 1] != '1'))
            return false;
        out[o++] = p[++i] == '0' ? '~' : '/';
    }
    out[o] = '\0';
    return true;
}

/* One step down; false when there is no such key or index. */
static bool step(struct json_object *v, const char *token, struct json_object **child)
{
    if (json_object_is_type(v, json_type_object))
        return json_object_object_get_ex(v, token, child);
    if (!json_object_is_type(v, json_type_array) || !*token || strlen(token) > 9 ||
        (token[0] == '0' && token[1]) || strspn(token, "0123456789") != strlen(token))
        return false;
    size_t idx = strtoul(token, NULL, 10);
    if (idx >= json_object_array_length(v))
        return false;
    *child = json_object_array_get_idx(v, idx);
    return true;
}

/* The value at 'path' (slashes collapsed, a trailing one dropped) into
 * *out (NULL is JSON's null); false when there is none. */
static bool lookup(struct json_object *root, const char *path, struct json_object **out)
{
    struct json_object *v = root;
    char *token = malloc(strlen(path) + 1);
    if (!token)
        return false;
    const char *p = path;
    bool found = true;
    while (found && *p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, "/");
        found = unescape_token(p, n, token) && step(v, token, &v);
        p += n;
    }
    free(token);
    *out = v;
    return found;
}

static char *imds_listing(struct json_object *obj)
{
    size_t cap = 1, len = 0;
    json_object_object_foreach(obj, k, v) {
        (void)v;
        cap += strlen(k) + 2;
    }
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    json_object_object_foreach(obj, key, val) {
        len += (size_t)sprintf(out + len, "%s%s%s", len ? "\n" : "", key,
                               json_object_is_type(val, json_type_object) ? "/" : "");
    }
    return out;
}

int mmds_store_render(const struct mmds_store *s, const char *path, bool json, char **out)
{
    *out = NULL;
    struct json_object *v; /* before any PUT the data is null, as Firecracker's */
    if (!lookup(s->data, path, &v))
        return -ENOENT;
    if (json && !s->imds_compat)
        *out = strdup(json_object_to_json_string_ext(v, JSON_FLAGS));
    else if (json_object_is_type(v, json_type_object))
        *out = imds_listing(v);
    else if (json_object_is_type(v, json_type_string))
        *out = strdup(json_object_get_string(v));
    else
        return -ENOTSUP;
    return *out ? 0 : -ENOMEM;
}

/* --- session tokens ------------------------------------------------------- */

int mmds_token_new(struct mmds_store *s, uint32_t ttl_s, uint64_t now_ms,
                   char out[MMDS_TOKEN_LEN + 1])
{
    if (ttl_s < MMDS_TOKEN_MIN_TTL || ttl_s > MMDS_TOKEN_MAX_TTL)
        return err_set(-EINVAL, "Invalid time to live value provided for token: %u. Please "
                                "provide a value between %u and %u.", ttl_s,
                       MMDS_TOKEN_MIN_TTL, MMDS_TOKEN_MAX_TTL);
    if (!s->tokens && !(s->tokens = calloc(MMDS_MAX_TOKENS, sizeof(*s->tokens))))
        return err_set(-ENOMEM, "Failed to store a session token: out of memory");
    uint8_t raw[MMDS_TOKEN_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return err_errno(-errno, "Failed to generate a key");
    /* An expired slot first, else the oldest (round robin). */
    unsigned slot = s->next_token;
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++)
        if (s->tokens[i].expiry_ms <= now_ms) {
            slot = i;
            break;
        }
    if (slot == s->next_token)
        s->next_token = (s->next_token + 1) % MMDS_MAX_TOKENS;
    struct mmds_token *t = &s->tokens[slot];
    for (size_t i = 0; i < sizeof(raw); i++)
        sprintf(t->text + 2 * i, "%02x", raw[i]);
    t->expiry_ms = now_ms + (uint64_t)ttl_s * 1000;
    memcpy(out, t->text, sizeof(t->text));
    return 0;
}

/* Compared in constant time: the guest learns nothing from timing. */
static bool same_token(const char *a, const char *b)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < MMDS_TOKEN_LEN; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

bool mmds_token_valid(const struct mmds_store *s, const char *token, uint64_t now_ms)
{
    if (!s->tokens || strnlen(token, MMDS_TOKEN_MAX_LEN + 1) != MMDS_TOKEN_LEN)
        return false; /* no token was ever issued, or not a token's length */
    bool ok = false;
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++)
        ok |= s->tokens[i].expiry_ms > now_ms && same_token(s->tokens[i].text, token);
    return ok;
}

void mmds_tokens_clear(struct mmds_store *s)
{
    if (s->tokens)
        memset(s->tokens, 0, MMDS_MAX_TOKENS * sizeof(*s->tokens));
    s->next_token = 0;
}

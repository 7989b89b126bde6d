/* The metadata service's data (Firecracker's MMDS): one JSON document the
 * host puts (replacing it) and patches (an RFC 7386 merge patch), bounded
 * in serialized size; the guest reads paths into it, IMDS-style or as
 * JSON, and with version 2 first asks for a session token. Keys are kept
 * sorted, so every rendering lists them as Firecracker does. Not
 * thread-safe: the API and the guest's HTTP server share the main loop. */
#ifndef EMBER_API_MMDS_STORE_H
#define EMBER_API_MMDS_STORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MMDS_DEFAULT_SIZE_LIMIT 51200 /* Firecracker's default (bytes) */
#define MMDS_TOKEN_MIN_TTL 1          /* seconds */
#define MMDS_TOKEN_MAX_TTL 21600
#define MMDS_TOKEN_LEN 64             /* hex digits */
#define MMDS_TOKEN_MAX_LEN 70         /* longer ones are refused unread */
#define MMDS_MAX_TOKENS 1024          /* live tokens; a flood replaces the oldest */

enum mmds_version { MMDS_V1, MMDS_V2 };

struct mmds_token {
    char text[MMDS_TOKEN_LEN + 1];
    uint64_t expiry_ms; /* 0: unused */
};

struct mmds_store {
    bool initialized;         /* a PUT was made */
    struct json_object *data; /* NULL: JSON's null (the data before a PUT) */
    size_t limit;             /* bytes of its compact JSON text */
    enum mmds_version version;
    bool imds_compat;         /* IMDS text whatever the Accept header says */
    /* MMDS_MAX_TOKENS slots, allocated with the first token: 80 KiB that a
     * VM whose guest never asks for one does not hold. */
    struct mmds_token *tokens;
    unsigned next_token;
};

void mmds_store_init(struct mmds_store *s, size_t limit);
void mmds_store_free(struct mmds_store *s);

/* Replace the data ('value' is copied). -EFBIG past the limit. */
int mmds_store_put(struct mmds_store *s, struct json_object *value) EMBER_MUST_CHECK;
/* Merge 'patch' in (RFC 7386). -ENOENT before any PUT, -EFBIG past the
 * limit; the data is unchanged on failure. */
int mmds_store_patch(struct mmds_store *s, struct json_object *patch) EMBER_MUST_CHECK;
/* The data (a new reference; {} before any PUT). */
struct json_object *mmds_store_get(const struct mmds_store *s);

/* The value at 'path' ("/a/b/", repeated slashes collapsed, a trailing one
 * ignored), as JSON text or IMDS text: an object lists its keys one a line,
 * objects with a '/'; a string is itself. *out is malloc'ed. -ENOENT: no
 * such path; -ENOTSUP: IMDS text of a number, boolean, array or null. */
int mmds_store_render(const struct mmds_store *s, const char *path, bool json, char **out)
    EMBER_MUST_CHECK;

/* A session token of 'ttl_s' seconds from now_ms; -EINVAL for a TTL
 * outside 1..21600. */
int mmds_token_new(struct mmds_store *s, uint32_t ttl_s, uint64_t now_ms,
                   char out[MMDS_TOKEN_LEN + 1]) EMBER_MUST_CHECK;
bool mmds_token_valid(const struct mmds_store *s, const char *token, uint64_t now_ms);
/* Forget every token (a restored VM's guest starts over). */
void mmds_tokens_clear(struct mmds_store *s);

#endif

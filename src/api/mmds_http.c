#include "api/mmds_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const token_headers[] = {"X-metadata-token", "X-aws-ec2-metadata-token"};
static const char *const ttl_headers[] = {"X-metadata-token-ttl-seconds",
                                          "X-aws-ec2-metadata-token-ttl-seconds"};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void reply(struct http_response *resp, int status, const char *content_type, char *body)
{
    resp->status = status;
    resp->content_type = content_type;
    resp->body = body;
}

static void reply_text(struct http_response *resp, int status, const char *fmt, const char *arg)
{
    char *body = NULL;
    if (asprintf(&body, fmt, arg) < 0)
        body = NULL;
    reply(resp, status, "text/plain", body);
}

/* The first of 'names' the request carries: its value, and *which. */
static const char *first_header(const struct http_request *req, const char *const *names,
                                size_t count, const char **which)
{
    for (size_t i = 0; i < count; i++) {
        const char *v = http_request_header(req, names[i]);
        if (v) {
            if (which)
                *which = names[i];
            return v;
        }
    }
    return NULL;
}

static bool wants_json(const struct http_request *req)
{
    const char *accept = http_request_header(req, "Accept");
    return accept && !strcasecmp(accept, "application/json");
}

static void get_value(struct mmds_store *s, const struct http_request *req,
                      struct http_response *resp)
{
    bool json = wants_json(req);
    char *body;
    int ret = mmds_store_render(s, req->path, json, &body);
    if (ret == -ENOENT)
        reply_text(resp, 404, "Resource not found: %s.", req->path);
    else if (ret == -ENOTSUP)
        reply_text(resp, 501, "%s", "Cannot retrieve value. The value has an unsupported type.");
    else if (ret)
        reply_text(resp, 500, "%s", "out of memory");
    else
        reply(resp, 200, json && !s->imds_compat ? "application/json" : "text/plain", body);
}

static void get_request(struct mmds_store *s, const struct http_request *req,
                        struct http_response *resp)
{
    const char *token = first_header(req, token_headers, 2, NULL);
    if (s->version == MMDS_V2) {
        if (!token) {
            reply_text(resp, 401, "%s", "No MMDS token provided. Use `X-metadata-token` or "
                       "`X-aws-ec2-metadata-token` header to specify the session token.");
            return;
        }
        if (!mmds_token_valid(s, token, now_ms())) {
            reply_text(resp, 401, "%s", "MMDS token not valid.");
            return;
        }
    }
    get_value(s, req, resp); /* V1: a token is optional, and not checked */
}

/* A TTL as Firecracker parses it: a u32 in decimal, nothing else. */
static bool parse_ttl(const char *text, uint32_t *out)
{
    if (!*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 10)
        return false;
    unsigned long long v = strtoull(text, NULL, 10);
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static void put_token(struct mmds_store *s, const struct http_request *req,
                      struct http_response *resp)
{
    if (http_request_header(req, "X-Forwarded-For")) {
        reply_text(resp, 400, "%s", "Invalid header. Reason: Unsupported header name. "
                                    "Key: X-Forwarded-For");
        return;
    }
    if (strcmp(req->path, MMDS_TOKEN_PATH)) {
        reply_text(resp, 404, "Resource not found: %s.", req->path);
        return;
    }
    const char *name = NULL;
    const char *value = first_header(req, ttl_headers, 2, &name);
    uint32_t ttl;
    if (!value) {
        reply_text(resp, 400, "%s", "Token time to live value not found. Use "
                   "`X-metadata-token-ttl-seconds` or `X-aws-ec2-metadata-token-ttl-seconds` "
                   "header to specify the token's lifetime.");
        return;
    }
    if (!parse_ttl(value, &ttl)) {
        char *body = NULL;
        if (asprintf(&body, "Invalid header. Reason: Invalid value. Key:%s; Value:%s", name,
                     value) < 0)
            body = NULL;
        reply(resp, 400, "text/plain", body);
        return;
    }
    char token[MMDS_TOKEN_LEN + 1];
    if (mmds_token_new(s, ttl, now_ms(), token)) {
        reply_text(resp, 400, "%s", err_msg());
        return;
    }
    reply(resp, 200, "text/plain", strdup(token));
    snprintf(resp->extra_headers, sizeof(resp->extra_headers), "%s: %u\r\n", name, ttl);
}

/* Firecracker collapses repeated slashes before looking a path up. */
static void collapse_slashes(char *path)
{
    char *w = path;
    for (const char *r = path; *r; r++)
        if (!(*r == '/' && w > path && w[-1] == '/'))
            *w++ = *r;
    *w = '\0';
}

void mmds_http_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct mmds_store *s = ctx;
    if (!req->path[0]) {
        reply_text(resp, 400, "%s", "Invalid URI.");
        return;
    }
    char *path = strdup(req->path);
    if (!path) {
        reply_text(resp, 500, "%s", "out of memory");
        return;
    }
    collapse_slashes(path);
    struct http_request r = *req;
    r.path = path;
    if (!strcmp(req->method, "GET"))
        get_request(s, &r, resp);
    else if (!strcmp(req->method, "PUT"))
        put_token(s, &r, resp);
    else {
        reply_text(resp, 405, "%s", "Not allowed HTTP method.");
        snprintf(resp->extra_headers, sizeof(resp->extra_headers), "Allow: GET, PUT\r\n");
    }
    free(path);
}

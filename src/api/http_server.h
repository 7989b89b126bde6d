/* HTTP/1.1 over a Unix socket for the control API, parsed with the
 * http-parser library. Non-blocking throughout: one slow, stalled or
 * misbehaving client never holds up another or the VM. Requests on a
 * connection are answered in order (pipelining works); bodies are limited
 * in size, partial requests and unread responses time out, and the number
 * of connections is capped. */
#ifndef EMBER_API_HTTP_SERVER_H
#define EMBER_API_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/evloop.h"

#define HTTP_DEFAULT_MAX_BODY 51200 /* Firecracker's default payload limit */
#define HTTP_MAX_URL 1024
#define HTTP_MAX_HEADER_BYTES 8192
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_REQUEST_TIMEOUT_MS 10000 /* to finish a started request */
#define HTTP_WRITE_TIMEOUT_MS 10000   /* to read a response */

#define HTTP_MAX_KEPT_HEADERS 32 /* headers a handler can look up; more are parsed, not kept */

struct http_header {
    const char *name, *value;
};

struct http_request {
    const char *method; /* "GET", "PUT", ... */
    const char *path;
    const char *body;   /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    const struct http_header *headers; /* names as sent (case kept) */
    unsigned nr_headers;
};

struct http_response {
    int status;
    char *body;         /* malloc'ed text, or NULL for no body */
    const char *content_type; /* NULL: application/json */
    char extra_headers[160];  /* further "Name: value\r\n" lines, or "" */
};

/* The value of header 'name' (compared without case), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

/* Counters a server keeps (the owner reports them). */
struct http_stats {
    uint64_t requests, bad_requests, connections, connections_refused;
};

struct http_server;

/* Listen on 'path', a socket file of permission bits 'mode' (a stale socket
 * left by a dead process is replaced; a live one or any other file is an
 * error). 'path' NULL: no listening socket, connections come through
 * http_server_adopt. */
int http_server_create(const char *path, mode_t mode, size_t max_body, struct evloop *loop,
                       http_handler_fn handler, void *ctx, struct http_server **out)
    EMBER_MUST_CHECK;
/* How the server names itself in the log ("control API" by default). */
void http_server_set_name(struct http_server *srv, const char *name);
/* Serve a connected stream socket (non-blocking) as a new client. */
void http_server_adopt(struct http_server *srv, int fd);
/* Close every connection and remove the socket file. */
void http_server_destroy(struct http_server *srv);
const struct http_stats *http_server_stats(const struct http_server *srv);
/* For tests: how many connections are open. */
unsigned http_server_connections(const struct http_server *srv);

/* A JSON error body {"fault_message": msg} (malloc'ed). */
char *http_fault_body(const char *msg);

#endif

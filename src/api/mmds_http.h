/* The guest's side of the metadata service: HTTP requests that reached
 * ember through a NIC (parsed by the shared HTTP server) answered from the
 * store as Firecracker's MMDS answers them: GET of a path (IMDS text, or
 * JSON with "Accept: application/json"), PUT /latest/api/token for a V2
 * session token, plain-text errors with Firecracker's statuses and words. */
#ifndef EMBER_API_MMDS_HTTP_H
#define EMBER_API_MMDS_HTTP_H

#include "api/http_server.h"
#include "api/mmds_store.h"

#define MMDS_TOKEN_PATH "/latest/api/token"
#define MMDS_MAX_REQUEST_BODY 4096 /* the guest sends none; more is refused */

/* An http_handler_fn; ctx is the struct mmds_store. */
void mmds_http_handle(void *ctx, const struct http_request *req, struct http_response *resp);

#endif

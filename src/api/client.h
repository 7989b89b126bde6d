/* A client of ember's control API (as of any Firecracker-compatible VMM):
 * one request per connection over the Unix socket. 'ember snapshot' uses it
 * so that a snapshot can be taken from the command line. */
#ifndef EMBER_API_CLIENT_H
#define EMBER_API_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct api_reply {
    int status;
    char body[4096]; /* NUL-terminated, cut at sizeof - 1 */
};

/* Send one request; 0 once a whole response arrived (any status), else an
 * error naming the socket. 'body' may be NULL. */
int api_client_call(const char *sock, const char *method, const char *path,
                    const char *body, struct api_reply *reply) EMBER_MUST_CHECK;

struct snapshot_command {
    const char *sock, *state_path, *mem_path;
    bool diff;        /* snapshot_type Diff instead of Full */
    bool keep_paused; /* do not resume a VM this command paused */
};

/* Pause the VM if it runs, PUT /snapshot/create, resume it again unless
 * asked not to (also when the snapshot failed). */
int api_client_snapshot(const struct snapshot_command *cmd) EMBER_MUST_CHECK;

#endif

/* Unix stream sockets on paths: a listening socket that replaces the socket
 * file a dead process left behind (never a live one, never another kind of
 * file), and a connect that never blocks. */
#ifndef EMBER_UTIL_USOCK_H
#define EMBER_UTIL_USOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/err.h"

/* A bound, listening socket: non-blocking, close-on-exec. */
struct usock_listener {
    int fd;
    dev_t dev; /* the socket file, so it is only ever unlinked while it is ours */
    ino_t ino;
};

/* Bind and listen on 'path'. A socket file nobody serves on is replaced;
 * a live one (-EADDRINUSE), another file (-EEXIST) or a path too long for
 * sun_path (-ENAMETOOLONG) is refused. Messages start with 'what'. 'mode'
 * (permission bits) is the socket file's mode from its creation on, or 0 for
 * what the umask gives. */
int usock_listen(const char *path, const char *what, int backlog, mode_t mode,
                 struct usock_listener *out) EMBER_MUST_CHECK;
/* Close the socket and remove its file if the path still names it. */
void usock_close(struct usock_listener *l, const char *path);

/* Connect to the socket at 'path' without blocking: a connected,
 * non-blocking, close-on-exec stream, or a negative errno (-ENOENT,
 * -ECONNREFUSED, -EAGAIN when the listener's backlog is full,
 * -ENAMETOOLONG ...). No message is set: a refusal is the peer's answer. */
int usock_connect(const char *path);

#endif

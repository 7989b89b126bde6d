/* Writes that finish or fail as a whole, and files replaced as a whole: a
 * file is written under a temporary name next to it and renamed into place
 * only once complete and synced, so a failure never leaves half of it. */
#ifndef EMBER_UTIL_FILEIO_H
#define EMBER_UTIL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* 0, or -errno (EINTR retried). */
int write_all(int fd, const void *data, size_t len) EMBER_MUST_CHECK;
int pwrite_all(int fd, const void *data, size_t len, uint64_t offset) EMBER_MUST_CHECK;

/* A log or metrics sink as Firecracker opens it: created if missing, and
 * opened read-write and non-blocking, so that a FIFO nobody reads yet opens
 * at once (its lines wait in the pipe for the reader) and a full one drops a
 * line instead of stalling the VMM. Returns the fd or -errno. */
int open_sink(const char *path);

struct atomic_file {
    int fd;
    char tmp[4096];
};

/* Open a new, empty temporary file for 'path'; 0 or an error naming 'path'. */
int atomic_file_create(struct atomic_file *f, const char *path) EMBER_MUST_CHECK;
/* 'ret' is the caller's result so far: if 0, sync the file and rename it to
 * 'path'; otherwise (or if that fails) remove it. Returns the first error. */
int atomic_file_finish(struct atomic_file *f, const char *path, int ret) EMBER_MUST_CHECK;

#endif

/* The file-system server behind virtio-fs: FUSE requests, as Linux's
 * virtiofs driver sends them, answered from one host directory (the share).
 * It knows nothing of virtqueues: a request is the readable bytes of a
 * chain (header, arguments, data) and its reply goes into the writable
 * bytes, both given as iovecs, so it is tested on plain buffers.
 *
 * Confinement: every host file is reached from the share's directory
 * descriptor, one name at a time, with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) and O_PATH
 * handles; a name with '/', or ".", ".." or "" is refused; a symlink is never
 * followed on the host (the guest follows it in its own namespace); files
 * are reopened for I/O through /proc/self/fd (opened once, never resolved
 * from "/" afterwards) only if they are regular files or directories, so
 * a device node or FIFO in the share is never opened on the host. A
 * read-only share answers EROFS to every change. The guest cannot exhaust
 * ember's descriptors or memory: the node and handle tables are bounded
 * (ENFILE / EMFILE beyond), and so is every buffer a request makes ember
 * allocate. The guest cannot plant set-user-ID files, device nodes or
 * non-"user." extended attributes (file capabilities) on the host.
 *
 * Thread-safe: several workers may handle requests at once. */
#ifndef EMBER_VIRTIO_BACKENDS_FS_SERVER_H
#define EMBER_VIRTIO_BACKENDS_FS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config/config.h"
#include "snapshot/record.h"
#include "util/err.h"


struct fsrv_limits {
    unsigned max_nodes;   /* files the guest knows (a name and an inode each) */
    unsigned max_handles; /* files and directories the guest holds open */
    unsigned max_open;    /* O_PATH descriptors kept for nodes, the least
                           * recently used closed beyond (0: max_nodes) */
};

/* Largest READ/WRITE the server offers (FUSE max_write / max_pages). */
/* 1 MiB: FUSE_MAX_MAX_PAGES, the most Linux 6.1 takes, so a 1 MiB read() or
 * write() is one round trip. */
#define FSRV_MAX_PAGES 256u
#define FSRV_MAX_WRITE (FSRV_MAX_PAGES * 4096u)

struct fsrv_stats {
    uint64_t requests, errors, bytes_read, bytes_written, refused_escapes, nodes, handles;
    uint64_t node_fds, reopens, evictions, stale;
};

struct fsrv;

/* Serve 'dir' (opened here, O_PATH; must be a directory). */
int fsrv_open(struct fsrv **out, const char *dir, bool read_only, enum fs_cache_mode cache,
              const struct fsrv_limits *limits) EMBER_MUST_CHECK;
void fsrv_close(struct fsrv *s);
/* The driver went away (device reset): forget every node but the root and
 * close every handle. No request may be in progress. */
void fsrv_reset(struct fsrv *s);

/* Answer one request: 'in' holds its bytes, the reply goes into 'out'.
 * Returns the number of bytes written into 'out': 0 for requests without a
 * reply (FORGET, BATCH_FORGET, INTERRUPT) and for requests too broken to
 * answer (no room for a reply header). */
size_t fsrv_handle(struct fsrv *s, const struct iovec *in, int in_cnt, const struct iovec *out,
                   int out_cnt);

/* How READ fills the guest's buffers: preadv(2)'s contract (a short count
 * only at the end of the file or on an error after some bytes). By default
 * preadv itself; the device may give one that spreads a large read over
 * its threads. Set before the first request. */
typedef ssize_t (*fsrv_read_fn)(void *ctx, int fd, const struct iovec *iov, int cnt, off_t off);
void fsrv_set_reader(struct fsrv *s, fsrv_read_fn fn, void *ctx);

void fsrv_get_stats(struct fsrv *s, struct fsrv_stats *out);
/* Snapshots (no request in progress): the nodes the guest knows and the
 * files it holds open. A load needs the same directory (its inode); nodes
 * come back closed, reopened by name on use; open files are reopened now
 * (one gone since answers EBADF, with a warning). */
void fsrv_save(struct fsrv *s, struct rec r);
int fsrv_load(struct fsrv *s, struct rec r) EMBER_MUST_CHECK;
/* The share's directory descriptor (the device checks a restore's). */
int fsrv_root_fd(const struct fsrv *s);

#endif

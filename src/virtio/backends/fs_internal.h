/* Inside the virtio-fs server: the node and handle tables (fs_nodes.c), the
 * request being answered and its helpers (fs_server.c), and the operations
 * (fs_ops_entry.c: names and attributes; fs_ops_data.c: open files,
 * directories, extended attributes). */
#ifndef EMBER_VIRTIO_BACKENDS_FS_INTERNAL_H
#define EMBER_VIRTIO_BACKENDS_FS_INTERNAL_H

#include <linux/fuse.h>
#include <pthread.h>
#include <sys/stat.h>

#include "virtio/backends/fs_server.h"

/* --- nodes: what a FUSE nodeid names --------------------------------------
 * A nodeid is (generation << 32) | (slot + 1): the root is slot 0 at
 * generation 0, i.e. FUSE_ROOT_ID; a freed slot's next user gets a new
 * generation, so a stale nodeid from the guest finds nothing.
 *
 * A node keeps its parent and its name there, so that its O_PATH
 * descriptor may be closed when too many are open (least recently used
 * first) and reopened on the next use, one name at a time from the nearest
 * open ancestor, beneath the share as every other open; the reopened file
 * must be the same (device, inode, type), or the guest gets ESTALE. A
 * parent stays in the table while a child names it. */
struct fs_node {
    int fd;            /* O_PATH|O_NOFOLLOW, or -1: closed (or the slot free) */
    bool live;         /* the slot is in use */
    uint32_t gen;
    dev_t dev;
    ino_t ino;
    uint64_t birth;    /* birth time (ns), 0 if the file system has none:
                        * tells a reused inode number from the file */
    mode_t type;       /* S_IFMT bits */
    uint64_t nlookup;  /* the guest's references (LOOKUP counts, FORGET gives back) */
    uint32_t refs;     /* requests using it right now: its descriptor stays open */
    uint32_t kids;     /* nodes whose parent this is */
    int32_t parent;    /* slot; -1 for the root */
    char *name;        /* its name in the parent (NULL for the root) */
    int32_t hash_next; /* slot, or -1 */
    int32_t free_next;
    int32_t lru_prev, lru_next; /* among nodes with an open descriptor; -1 ends */
};

struct fs_handle {
    int fd;            /* -1: free (or, after a restore, not reopened: EIO) */
    bool live;
    uint32_t gen;
    uint32_t refs;
    bool released;     /* RELEASE came: closed when the last user is done */
    bool dir;
    int flags;         /* as opened (a restore opens it again so) */
    uint64_t nodeid;   /* what it was opened from */
    int32_t free_next;
    pthread_mutex_t dir_lock; /* a directory's position (READDIR seeks) */
};

struct fs_tables {
    pthread_mutex_t lock;
    struct fs_node *nodes;
    unsigned max_nodes, used_nodes;
    unsigned max_open, open_fds; /* node descriptors held / allowed */
    int32_t free_nodes;
    int32_t lru_head, lru_tail;  /* most / least recently used open node */
    int32_t *buckets; /* (dev, ino) -> first slot */
    unsigned nr_buckets; /* a power of two */
    struct fs_handle *handles;
    unsigned max_handles, used_handles;
    int32_t free_handles;
    uint64_t reopens, evictions, stale; /* counters */
};

int fs_tables_init(struct fs_tables *t, const struct fsrv_limits *lim, int root_fd,
                   const struct stat *root) EMBER_MUST_CHECK;
void fs_tables_destroy(struct fs_tables *t);
/* Drop every node but the root and every handle (no request in progress). */
void fs_tables_reset(struct fs_tables *t);
/* The node 'nodeid' names, in use with its descriptor open (put it back),
 * or NULL: unknown, or no longer where it was (-ESTALE for the guest). */
struct fs_node *fs_node_get(struct fs_tables *t, uint64_t nodeid);
void fs_node_put(struct fs_tables *t, struct fs_node *n);
/* The guest learns of the file 'fd' (O_PATH), found as 'name' in 'dir':
 * the node already known for its (dev, ino) gains a lookup (and takes that
 * name), or a new node takes 'fd'. 0 and *nodeid, or -ENFILE (table full)
 * or -ENOMEM; 'fd' is the table's in every case. */
int fs_node_learn(struct fs_tables *t, struct fs_node *dir, const char *name, int fd,
                  const struct stat *st, uint64_t birth, uint64_t *nodeid);
/* FORGET: the guest drops 'count' lookups (unknown nodes are ignored). */
void fs_node_forget(struct fs_tables *t, uint64_t nodeid, uint64_t count);
/* The guest renamed 'old' in 'from' (the file dev/ino) to 'new' in 'to':
 * its node follows, if it knew it by that name. */
void fs_node_renamed(struct fs_tables *t, dev_t dev, ino_t ino, const struct fs_node *from,
                     const char *old, const struct fs_node *to, const char *new);
/* Restore: a node at 'slot' with descriptor closed (fs_state.c). */
int fs_node_restore(struct fs_tables *t, uint32_t slot, uint32_t gen, int32_t parent,
                    const char *name, ino_t ino, uint64_t birth, mode_t type, uint64_t nlookup)
    EMBER_MUST_CHECK;
/* Restore done: rebuild the free list and check that every parent is a
 * directory that exists. */
int fs_tables_restored(struct fs_tables *t) EMBER_MUST_CHECK;

/* Close every handle (lock held; fs_tables_reset's). */
void fs_handles_reset(struct fs_tables *t);
/* A new handle owning 'fd' (opened with 'flags' from node 'nodeid'): 0 and
 * *fh, or -EMFILE ('fd' closed). */
int fs_handle_add(struct fs_tables *t, int fd, bool dir, uint64_t nodeid, int flags,
                  uint64_t *fh);
/* Restore: the handle 'fh' as it was, with 'fd' (-1: could not reopen). */
int fs_handle_restore(struct fs_tables *t, uint64_t fh, int fd, bool dir, uint64_t nodeid,
                      int flags) EMBER_MUST_CHECK;
/* The open handle 'fh' (of a directory if 'dir'), in use; NULL if none. */
struct fs_handle *fs_handle_get(struct fs_tables *t, uint64_t fh, bool dir);
void fs_handle_put(struct fs_tables *t, struct fs_handle *h);
/* RELEASE: 0, or -EBADF for an unknown handle. */
int fs_handle_release(struct fs_tables *t, uint64_t fh, bool dir);

/* --- the server and the request being answered --------------------------- */
struct fsrv {
    int root_fd;   /* the share, O_PATH */
    int proc_fd;   /* /proc/self/fd, to reopen O_PATH handles */
    bool read_only;
    bool as_root;  /* ember runs as root: new files go to the caller's uid/gid */
    enum fs_cache_mode cache;
    fsrv_read_fn read_fn;
    void *read_ctx;
    struct fs_tables t;
    pthread_mutex_t stats_lock;
    struct fsrv_stats stats;
};

struct fs_req {
    struct fsrv *s;
    struct fuse_in_header h;
    const uint8_t *args;    /* the arguments after the header (copied) */
    size_t args_len, args_at;
    const struct iovec *in; /* the whole request, for WRITE's data */
    int in_cnt;
    const struct iovec *out;
    int out_cnt;
    size_t out_len;
    size_t written;         /* bytes of reply written into 'out' */
};

/* Arguments: the next 'len' bytes (NULL if the request is shorter), and a
 * NUL-terminated string (NULL if none ends within the request). */
const void *fs_arg(struct fs_req *r, size_t len);
const char *fs_arg_str(struct fs_req *r);
/* The same for a single name of a directory entry: NULL and *err set
 * (EINVAL for "", ".", ".." or a '/', ENAMETOOLONG) unless it is one. */
const char *fs_arg_name(struct fs_req *r, int *err);
/* Reply with 'len' bytes of 'data' (and 'len2' of 'data2' after them):
 * 0, or -ERANGE if the driver gave too little room. */
int fs_reply(struct fs_req *r, const void *data, size_t len, const void *data2, size_t len2);
/* Scatter 'len' bytes into the reply's buffers at 'offset' (past the
 * header); returns how many landed. */
size_t fs_out_copy(struct fs_req *r, size_t offset, const void *src, size_t len);
/* The reply's buffers from 'offset', 'len' bytes, as iovecs in 'iov' (at
 * most 'max'); their number. */
int fs_out_iov(struct fs_req *r, size_t offset, size_t len, struct iovec *iov, int max);
int fs_in_iov(struct fs_req *r, size_t offset, size_t len, struct iovec *iov, int max);
void fs_count(struct fsrv *s, uint64_t *field, uint64_t n);

/* fstat of 'fd' itself (a link is not followed), and its birth time in ns
 * (0 if the file system keeps none): 0 or a negative errno. */
int fs_stat_fd(int fd, struct stat *st, uint64_t *birth);
/* Open a name beneath 'dirfd' without following any link or leaving it. */
int fs_open_beneath(int dirfd, const char *name, int flags, mode_t mode);
/* Reopen node 'n' (a regular file or directory only) with 'flags'. */
int fs_reopen(struct fsrv *s, const struct fs_node *n, int flags);
void fs_fill_attr(struct fuse_attr *a, const struct stat *st);
void fs_fill_entry(struct fsrv *s, struct fuse_entry_out *e, uint64_t nodeid,
                   const struct stat *st);
/* How long the guest may keep a name or attributes (cache=), in seconds. */
uint64_t fs_cache_seconds(const struct fsrv *s);
/* Look 'name' up beneath node 'dir': the guest learns of it (a lookup
 * counted); 0 and 'e' filled, or a negative errno. */
int fs_lookup_name(struct fsrv *s, struct fs_node *dir, const char *name,
                   struct fuse_entry_out *e);

/* Operations: 0 (a reply was written) or a negative errno to answer. */
typedef int (*fs_op_fn)(struct fs_req *r);
int fs_op_lookup(struct fs_req *r);
int fs_op_getattr(struct fs_req *r);
int fs_op_setattr(struct fs_req *r);
int fs_op_readlink(struct fs_req *r);
int fs_op_symlink(struct fs_req *r);
int fs_op_mknod(struct fs_req *r);
int fs_op_mkdir(struct fs_req *r);
int fs_op_unlink(struct fs_req *r);
int fs_op_rmdir(struct fs_req *r);
int fs_op_rename(struct fs_req *r);
int fs_op_rename2(struct fs_req *r);
int fs_op_link(struct fs_req *r);
int fs_op_statfs(struct fs_req *r);
int fs_op_access(struct fs_req *r);
int fs_op_create(struct fs_req *r);
int fs_op_open(struct fs_req *r);
int fs_op_opendir(struct fs_req *r);
int fs_op_read(struct fs_req *r);
int fs_op_write(struct fs_req *r);
int fs_op_release(struct fs_req *r);
int fs_op_releasedir(struct fs_req *r);
int fs_op_flush(struct fs_req *r);
int fs_op_fsync(struct fs_req *r);
int fs_op_readdir(struct fs_req *r);
int fs_op_readdirplus(struct fs_req *r);
int fs_op_fallocate(struct fs_req *r);
int fs_op_lseek(struct fs_req *r);
int fs_op_copy_file_range(struct fs_req *r);
int fs_op_setxattr(struct fs_req *r);
int fs_op_getxattr(struct fs_req *r);
int fs_op_listxattr(struct fs_req *r);
int fs_op_removexattr(struct fs_req *r);

#endif

/* virtio-fs operations on open files and directories: CREATE, OPEN(DIR),
 * READ, WRITE (straight between the guest's buffers and the file),
 * RELEASE(DIR), FLUSH, FSYNC(DIR), READDIR(PLUS), FALLOCATE, LSEEK,
 * COPY_FILE_RANGE, and the extended attributes (only "user." ones). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/util.h"
#include "virtio/backends/fs_internal.h"

/* A READ or WRITE of FSRV_MAX_WRITE bytes in page-sized buffers, one more
 * for a start within a page, and room to spare. */
#define FS_MAX_IOV (FSRV_MAX_PAGES + 4)
#define FS_XATTR_MAX 65536u
#define FS_DIR_BUF_MAX 65536u

/* The open flags a guest may pass on: access mode, appending, and the
 * synchronous-write ones; never O_CREAT, O_NOFOLLOW games, O_PATH, O_DIRECT
 * (the guest's page cache decides) or O_NOATIME (EPERM for non-owners). */
static int guest_open_flags(uint32_t flags)
{
    return (int)(flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NONBLOCK));
}

static bool open_writes(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static uint32_t fopen_flags(const struct fsrv *s)
{
    return s->cache == FS_CACHE_MODE_NEVER ? FOPEN_DIRECT_IO
           : s->cache == FS_CACHE_MODE_ALWAYS ? FOPEN_KEEP_CACHE : 0;
}

int fs_op_create(struct fs_req *r)
{
    const struct fuse_create_in *in = fs_arg(r, sizeof(*in));
    int err;
    const char *name = in ? fs_arg_name(r, &err) : NULL;
    if (!in)
        return -EINVAL;
    if (!name)
        return err;
    struct fs_node *dir = fs_node_get(&r->s->t, r->h.nodeid);
    if (!dir)
        return -ESTALE;
    int flags = guest_open_flags(in->flags) | O_CREAT | (int)(in->flags & O_EXCL);
    mode_t mode = in->mode & 0777; /* no set-ID bits from the guest */
    int fd = dir->type == S_IFDIR ? fs_open_beneath(dir->fd, name, flags, mode) : -ENOTDIR;
    struct fuse_entry_out e;
    err = fd < 0 ? fd : 0;
    if (!err && r->s->as_root && fchown(fd, r->h.uid, r->h.gid) < 0)
        err = -errno;
    if (!err)
        err = fs_lookup_name(r->s, dir, name, &e);
    fs_node_put(&r->s->t, dir);
    if (err) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    struct fuse_open_out o = {.open_flags = fopen_flags(r->s)};
    if ((err = fs_handle_add(&r->s->t, fd, false, e.nodeid, flags & ~(O_CREAT | O_EXCL | O_TRUNC),
                             &o.fh)) == 0 &&
        (err = fs_reply(r, &e, sizeof(e), &o, sizeof(o))) != 0)
        fs_handle_release(&r->s->t, o.fh, false);
    if (err)
        fs_node_forget(&r->s->t, e.nodeid, 1);
    return err;
}

static int open_node(struct fs_req *r, bool dir)
{
    const struct fuse_open_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    int flags = dir ? O_RDONLY | O_DIRECTORY : guest_open_flags(in->flags);
    if (r->s->read_only && open_writes(flags))
        return -EROFS;
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    int fd = (n->type == S_IFDIR) != dir ? (dir ? -ENOTDIR : -EISDIR) : fs_reopen(r->s, n, flags);
    fs_node_put(&r->s->t, n);
    if (fd < 0)
        return fd;
    struct fuse_open_out o = {.open_flags = dir ? 0 : fopen_flags(r->s)};
    int err = fs_handle_add(&r->s->t, fd, dir, r->h.nodeid, flags & ~O_TRUNC, &o.fh);
    if (!err && (err = fs_reply(r, &o, sizeof(o), NULL, 0)))
        fs_handle_release(&r->s->t, o.fh, dir);
    return err;
}

int fs_op_open(struct fs_req *r)
{
    return open_node(r, false);
}

int fs_op_opendir(struct fs_req *r)
{
    return open_node(r, true);
}

static int release(struct fs_req *r, bool dir)
{
    const struct fuse_release_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    int err = fs_handle_release(&r->s->t, in->fh, dir);
    return err ? err : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_release(struct fs_req *r)
{
    return release(r, false);
}

int fs_op_releasedir(struct fs_req *r)
{
    return release(r, true);
}

/* A FLUSH (each close() of a file) would do nothing here: a write is on
 * the host file when its reply goes, and locks are the guest kernel's.
 * ENOSYS tells the guest's FUSE client so once; it then sends no more
 * FLUSH (fc->no_flush), a round trip saved on every close. */
int fs_op_flush(struct fs_req *r)
{
    const struct fuse_flush_in *in = fs_arg(r, sizeof(*in));
    return in ? -ENOSYS : -EINVAL;
}

int fs_op_read(struct fs_req *r)
{
    const struct fuse_read_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    const size_t hdr = sizeof(struct fuse_out_header);
    if (r->out_len < hdr)
        return -EINVAL;
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, false);
    if (!h)
        return -EBADF;
    size_t want = MIN((size_t)in->size, MIN(r->out_len - hdr, (size_t)FSRV_MAX_WRITE));
    struct iovec iov[FS_MAX_IOV];
    int n = fs_out_iov(r, hdr, want, iov, FS_MAX_IOV);
    ssize_t got = -1;
    if (n >= 0)
        got = want ? r->s->read_fn(r->s->read_ctx, h->fd, iov, n, (off_t)in->offset) : 0;
    int err = got < 0 ? (n < 0 ? -EINVAL : -errno) : 0;
    fs_handle_put(&r->s->t, h);
    if (err)
        return err;
    fs_count(r->s, &r->s->stats.bytes_read, (uint64_t)got);
    struct fuse_out_header oh = {.len = (uint32_t)(hdr + (size_t)got), .unique = r->h.unique};
    fs_out_copy(r, 0, &oh, sizeof(oh));
    r->written = oh.len;
    return 0;
}

int fs_op_write(struct fs_req *r)
{
    const struct fuse_write_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    size_t at = sizeof(struct fuse_in_header) + sizeof(*in);
    /* The data follows the arguments and ends where the request does. */
    if (in->size > FSRV_MAX_WRITE || in->size > r->h.len - at)
        return -EINVAL;
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, false);
    if (!h)
        return -EBADF;
    struct iovec iov[FS_MAX_IOV];
    int n = fs_in_iov(r, at, in->size, iov, FS_MAX_IOV);
    ssize_t done = n < 0 ? -1 : in->size ? pwritev(h->fd, iov, n, (off_t)in->offset) : 0;
    int err = done < 0 ? (n < 0 ? -EINVAL : -errno) : 0;
    fs_handle_put(&r->s->t, h);
    if (err)
        return err;
    fs_count(r->s, &r->s->stats.bytes_written, (uint64_t)done);
    struct fuse_write_out out = {.size = (uint32_t)done};
    return fs_reply(r, &out, sizeof(out), NULL, 0);
}

int fs_op_fsync(struct fs_req *r)
{
    const struct fuse_fsync_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    bool dir = r->h.opcode == FUSE_FSYNCDIR;
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, dir);
    if (!h)
        return -EBADF;
    int ret = ((in->fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd)) < 0 ? -errno : 0;
    fs_handle_put(&r->s->t, h);
    return ret ? ret : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_fallocate(struct fs_req *r)
{
    const struct fuse_fallocate_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, false);
    if (!h)
        return -EBADF;
    int ret = fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0 ? -errno
                                                                                     : 0;
    fs_handle_put(&r->s->t, h);
    return ret ? ret : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_lseek(struct fs_req *r)
{
    const struct fuse_lseek_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE)
        return -EINVAL; /* the guest keeps its own positions */
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, false);
    if (!h)
        return -EBADF;
    off_t off = lseek(h->fd, (off_t)in->offset, (int)in->whence);
    int ret = off < 0 ? -errno : 0;
    fs_handle_put(&r->s->t, h);
    struct fuse_lseek_out out = {.offset = (uint64_t)off};
    return ret ? ret : fs_reply(r, &out, sizeof(out), NULL, 0);
}

int fs_op_copy_file_range(struct fs_req *r)
{
    const struct fuse_copy_file_range_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    if (in->flags)
        return -EINVAL;
    struct fs_handle *src = fs_handle_get(&r->s->t, in->fh_in, false);
    struct fs_handle *dst = fs_handle_get(&r->s->t, in->fh_out, false);
    int ret = 0;
    ssize_t done = 0;
    if (!src || !dst) {
        ret = -EBADF;
    } else {
        loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
        size_t len = (size_t)MIN(in->len, (uint64_t)1 << 30);
        done = copy_file_range(src->fd, &off_in, dst->fd, &off_out, len, 0);
        ret = done < 0 ? -errno : 0;
    }
    fs_handle_put(&r->s->t, src);
    fs_handle_put(&r->s->t, dst);
    struct fuse_write_out out = {.size = (uint32_t)done};
    return ret ? ret : fs_reply(r, &out, sizeof(out), NULL, 0);
}

/* --- directories ------------------------------------------------------------------ */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* One entry into the reply buffer at *at; false if it does not fit. */
static bool emit_dirent(struct fs_req *r, struct fs_node *dir, uint8_t *buf, size_t cap,
                        size_t *at, const struct linux_dirent64 *d, bool plus)
{
    size_t namelen = strlen(d->d_name);
    size_t size = plus ? FUSE_DIRENTPLUS_SIZE(&(struct fuse_direntplus){.dirent.namelen =
                                                                             namelen})
                       : FUSE_DIRENT_SIZE(&(struct fuse_dirent){.namelen = namelen});
    if (size > cap - *at)
        return false;
    memset(buf + *at, 0, size);
    struct fuse_dirent *fd = plus ? &((struct fuse_direntplus *)(buf + *at))->dirent
                                  : (struct fuse_dirent *)(buf + *at);
    bool dots = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
    /* ".." of the share's root must not tell the host's parent's inode. */
    fd->ino = dots ? dir->ino : d->d_ino;
    fd->off = (uint64_t)d->d_off;
    fd->namelen = (uint32_t)namelen;
    fd->type = d->d_type;
    memcpy(fd->name, d->d_name, namelen);
    if (plus && !dots) {
        /* Nodeid 0 (not looked up) if the file went or the table is full:
         * the guest then looks it up itself. */
        struct fuse_entry_out *e = &((struct fuse_direntplus *)(buf + *at))->entry_out;
        if (fs_lookup_name(r->s, dir, d->d_name, e))
            memset(e, 0, sizeof(*e));
    }
    *at += size;
    return true;
}

static int read_dir(struct fs_req *r, bool plus)
{
    const struct fuse_read_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    const size_t hdr = sizeof(struct fuse_out_header);
    size_t cap = MIN((size_t)in->size, MIN(r->out_len > hdr ? r->out_len - hdr : 0,
                                           (size_t)FS_DIR_BUF_MAX));
    struct fs_handle *h = fs_handle_get(&r->s->t, in->fh, true);
    if (!h)
        return -EBADF;
    struct fs_node *dir = fs_node_get(&r->s->t, r->h.nodeid);
    size_t raw_cap = MAX(cap, (size_t)4096); /* getdents64 wants room for a long name */
    uint8_t *out = malloc(cap + 1), *raw = malloc(raw_cap);
    int err = !dir ? -ESTALE : !out || !raw ? -ENOMEM : 0;
    size_t at = 0;
    pthread_mutex_lock(&h->dir_lock);
    if (!err && lseek(h->fd, (off_t)in->offset, SEEK_SET) < 0)
        err = -errno;
    bool full = false;
    while (!err && !full) {
        long got = syscall(SYS_getdents64, h->fd, raw, raw_cap);
        if (got < 0)
            err = -errno;
        if (got <= 0)
            break;
        for (long pos = 0; pos < got;) {
            const struct linux_dirent64 *d = (const void *)(raw + pos);
            if (!emit_dirent(r, dir, out, cap, &at, d, plus)) {
                full = true;
                break;
            }
            pos += d->d_reclen;
        }
    }
    pthread_mutex_unlock(&h->dir_lock);
    fs_handle_put(&r->s->t, h);
    fs_node_put(&r->s->t, dir);
    if (!err && at == 0 && full)
        err = -EINVAL; /* not even one entry fits the guest's buffer */
    if (!err)
        err = fs_reply(r, out, at, NULL, 0);
    free(out);
    free(raw);
    return err;
}

int fs_op_readdir(struct fs_req *r)
{
    return read_dir(r, false);
}

int fs_op_readdirplus(struct fs_req *r)
{
    return read_dir(r, true);
}

/* --- extended attributes ----------------------------------------------------------- */

/* Only the "user." namespace: "security." (file capabilities), "trusted."
 * and "system." set from a guest could grant rights on the host. */
static bool xattr_name_ok(const char *name)
{
    return !strncmp(name, "user.", 5) && strlen(name) <= XATTR_NAME_MAX;
}

/* A readable descriptor of the node for the f*xattr calls. */
static int xattr_fd(struct fs_req *r, bool *not_file)
{
    *not_file = false;
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    *not_file = n->type != S_IFREG && n->type != S_IFDIR;
    int fd = *not_file ? -EPERM : fs_reopen(r->s, n, O_RDONLY | O_NONBLOCK);
    fs_node_put(&r->s->t, n);
    return fd;
}

int fs_op_getxattr(struct fs_req *r)
{
    const struct fuse_getxattr_in *in = fs_arg(r, sizeof(*in));
    const char *name = in ? fs_arg_str(r) : NULL;
    if (!name)
        return -EINVAL;
    bool not_file;
    int fd = xattr_fd(r, &not_file);
    if (fd < 0)
        return not_file || !xattr_name_ok(name) ? -ENODATA : fd;
    if (!xattr_name_ok(name)) {
        close(fd);
        return -ENODATA;
    }
    size_t cap = MIN((size_t)in->size, (size_t)FS_XATTR_MAX);
    char *val = malloc(cap + 1);
    ssize_t len = val ? fgetxattr(fd, name, val, in->size ? cap : 0) : -1;
    int err = !val ? -ENOMEM : len < 0 ? -errno : 0;
    close(fd);
    if (!err) {
        struct fuse_getxattr_out out = {.size = (uint32_t)len};
        err = in->size ? fs_reply(r, val, (size_t)len, NULL, 0)
                       : fs_reply(r, &out, sizeof(out), NULL, 0);
    }
    free(val);
    return err;
}

int fs_op_listxattr(struct fs_req *r)
{
    const struct fuse_getxattr_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    bool not_file;
    int fd = xattr_fd(r, &not_file);
    char *all = malloc(FS_XATTR_MAX), *mine = malloc(FS_XATTR_MAX);
    ssize_t len = fd >= 0 && all ? flistxattr(fd, all, FS_XATTR_MAX) : 0;
    int err = fd < 0 && !not_file ? fd : !all || !mine ? -ENOMEM : len < 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    size_t kept = 0;
    for (ssize_t at = 0; !err && at < len; at += (ssize_t)strlen(all + at) + 1) {
        if (xattr_name_ok(all + at)) { /* the guest sees what it could set */
            size_t n = strlen(all + at) + 1;
            memcpy(mine + kept, all + at, n);
            kept += n;
        }
    }
    if (!err && in->size && kept > in->size)
        err = -ERANGE;
    struct fuse_getxattr_out out = {.size = (uint32_t)kept};
    if (!err)
        err = in->size ? fs_reply(r, mine, kept, NULL, 0) : fs_reply(r, &out, sizeof(out), NULL, 0);
    free(all);
    free(mine);
    return err;
}

int fs_op_setxattr(struct fs_req *r)
{
    /* FUSE_SETXATTR_EXT is not negotiated: the 8-byte form. */
    const struct fuse_setxattr_in *in = fs_arg(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
    const char *name = in ? fs_arg_str(r) : NULL;
    if (!name)
        return -EINVAL;
    const void *value = in->size <= FS_XATTR_MAX ? fs_arg(r, in->size) : NULL;
    if (!value)
        return in->size > FS_XATTR_MAX ? -E2BIG : -EINVAL;
    if (!xattr_name_ok(name))
        return -EPERM;
    bool not_file;
    int fd = xattr_fd(r, &not_file);
    if (fd < 0)
        return fd;
    int err = fsetxattr(fd, name, value, in->size, (int)in->flags) < 0 ? -errno : 0;
    close(fd);
    return err ? err : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_removexattr(struct fs_req *r)
{
    const char *name = fs_arg_str(r);
    if (!name)
        return -EINVAL;
    if (!xattr_name_ok(name))
        return -EPERM;
    bool not_file;
    int fd = xattr_fd(r, &not_file);
    if (fd < 0)
        return fd;
    int err = fremovexattr(fd, name) < 0 ? -errno : 0;
    close(fd);
    return err ? err : fs_reply(r, NULL, 0, NULL, 0);
}

/* The virtio-fs server: opening the share, taking a request apart (copied
 * out of the guest's buffers before anything is checked), dispatching it,
 * and writing the reply; INIT and FORGET live here, the other operations in
 * fs_ops_entry.c and fs_ops_data.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/util.h"
#include "virtio/backends/fs_internal.h"

/* Arguments copied out of the guest's buffers: the largest request but
 * WRITE (whose data is used in place) is SETXATTR with a 64 KiB value. */
#define FS_ARGS_MAX (sizeof(struct fuse_in_header) + 65536 + 2 * 4096 + 64)
#define FS_PROTO_MINOR_MIN 27

/* --- opening files ---------------------------------------------------------- */

int fs_open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                   RESOLVE_NO_XDEV,
    };
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

int fs_reopen(struct fsrv *s, const struct fs_node *n, int flags)
{
    /* Only files and directories: a device node or FIFO in the share (made
     * by someone on the host) is never opened by ember. */
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return n->type == S_IFLNK ? -ELOOP : -EACCES;
    char name[16];
    snprintf(name, sizeof(name), "%d", n->fd);
    /* Through our own O_PATH descriptor: the file it holds, whatever its
     * name is now; O_NOFOLLOW would refuse that magic link. */
    int fd = openat(s->proc_fd, name, (flags & ~(O_CREAT | O_NOFOLLOW | O_EXCL)) | O_CLOEXEC |
                                          O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_ino != n->ino || st.st_dev != n->dev) {
        close(fd);
        return -ESTALE;
    }
    return fd;
}

static int open_proc_self_fd(void)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_NO_SYMLINKS};
    /* "/proc/self" is itself a symlink: go through /proc/thread-self's
     * owner explicitly. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)getpid());
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

int fs_stat_fd(int fd, struct stat *st, uint64_t *birth)
{
    struct statx x;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME,
              &x) < 0)
        return -errno;
    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
    st->st_ino = x.stx_ino;
    st->st_mode = x.stx_mode;
    st->st_nlink = x.stx_nlink;
    st->st_uid = x.stx_uid;
    st->st_gid = x.stx_gid;
    st->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
    st->st_size = (off_t)x.stx_size;
    st->st_blksize = x.stx_blksize;
    st->st_blocks = (blkcnt_t)x.stx_blocks;
    st->st_atim = (struct timespec){x.stx_atime.tv_sec, x.stx_atime.tv_nsec};
    st->st_mtim = (struct timespec){x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec};
    st->st_ctim = (struct timespec){x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec};
    *birth = (x.stx_mask & STATX_BTIME)
                 ? (uint64_t)x.stx_btime.tv_sec * 1000000000u + x.stx_btime.tv_nsec : 0;
    return 0;
}

/* --- attributes and entries --------------------------------------------------- */

void fs_fill_attr(struct fuse_attr *a, const struct stat *st)
{
    memset(a, 0, sizeof(*a));
    a->ino = st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->blocks = (uint64_t)st->st_blocks;
    a->atime = (uint64_t)st->st_atim.tv_sec;
    a->mtime = (uint64_t)st->st_mtim.tv_sec;
    a->ctime = (uint64_t)st->st_ctim.tv_sec;
    a->atimensec = (uint32_t)st->st_atim.tv_nsec;
    a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
    a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
    a->mode = st->st_mode;
    a->nlink = (uint32_t)st->st_nlink;
    a->uid = st->st_uid;
    a->gid = st->st_gid;
    a->rdev = (uint32_t)st->st_rdev;
    a->blksize = (uint32_t)st->st_blksize;
}

uint64_t fs_cache_seconds(const struct fsrv *s)
{
    switch (s->cache) {
    case FS_CACHE_MODE_NEVER: return 0;
    case FS_CACHE_MODE_ALWAYS: return 86400;
    default: return 1;
    }
}

void fs_fill_entry(struct fsrv *s, struct fuse_entry_out *e, uint64_t nodeid,
                   const struct stat *st)
{
    memset(e, 0, sizeof(*e));
    e->nodeid = nodeid;
    e->entry_valid = e->attr_valid = fs_cache_seconds(s);
    fs_fill_attr(&e->attr, st);
}

int fs_lookup_name(struct fsrv *s, struct fs_node *dir, const char *name,
                   struct fuse_entry_out *e)
{
    if (dir->type != S_IFDIR)
        return -ENOTDIR;
    int fd = fs_open_beneath(dir->fd, name, O_PATH, 0);
    if (fd < 0) {
        if (fd == -EXDEV || fd == -ELOOP)
            fs_count(s, &s->stats.refused_escapes, 1);
        return fd == -EXDEV ? -EACCES : fd;
    }
    struct stat st;
    uint64_t birth, nodeid;
    int ret = fs_stat_fd(fd, &st, &birth);
    if (ret) {
        close(fd);
        return ret;
    }
    ret = fs_node_learn(&s->t, dir, name, fd, &st, birth, &nodeid);
    if (!ret)
        fs_fill_entry(s, e, nodeid, &st);
    return ret;
}

/* --- the request's bytes ---------------------------------------------------------- */

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* iovecs over [offset, offset+len) of 'src'; their number (-1: too many). */
static int iov_slice(const struct iovec *src, int cnt, size_t offset, size_t len,
                     struct iovec *dst, int max)
{
    int n = 0;
    for (int i = 0; i < cnt && len; i++) {
        if (offset >= src[i].iov_len) {
            offset -= src[i].iov_len;
            continue;
        }
        size_t take = MIN(len, src[i].iov_len - offset);
        if (n == max)
            return -1;
        dst[n++] = (struct iovec){(uint8_t *)src[i].iov_base + offset, take};
        len -= take;
        offset = 0;
    }
    return n;
}

static size_t iov_copy_from(const struct iovec *iov, int cnt, void *dst, size_t len)
{
    size_t done = 0;
    for (int i = 0; i < cnt && done < len; i++) {
        size_t take = MIN(len - done, iov[i].iov_len);
        memcpy((uint8_t *)dst + done, iov[i].iov_base, take);
        done += take;
    }
    return done;
}

int fs_out_iov(struct fs_req *r, size_t offset, size_t len, struct iovec *iov, int max)
{
    return iov_slice(r->out, r->out_cnt, offset, len, iov, max);
}

int fs_in_iov(struct fs_req *r, size_t offset, size_t len, struct iovec *iov, int max)
{
    return iov_slice(r->in, r->in_cnt, offset, len, iov, max);
}

size_t fs_out_copy(struct fs_req *r, size_t offset, const void *src, size_t len)
{
    struct iovec iov[64];
    size_t done = 0;
    while (done < len) {
        int n = iov_slice(r->out, r->out_cnt, offset + done, len - done, iov, 64);
        if (n <= 0)
            n = n < 0 ? 64 : 0; /* more pieces than fit: copy these, then go on */
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            memcpy(iov[i].iov_base, (const uint8_t *)src + done, iov[i].iov_len);
            done += iov[i].iov_len;
        }
    }
    return done;
}

const void *fs_arg(struct fs_req *r, size_t len)
{
    if (len > r->args_len - r->args_at)
        return NULL;
    const void *p = r->args + r->args_at;
    r->args_at += len;
    return p;
}

const char *fs_arg_str(struct fs_req *r)
{
    const char *p = (const char *)r->args + r->args_at;
    const char *nul = memchr(p, 0, r->args_len - r->args_at);
    if (!nul)
        return NULL;
    r->args_at += (size_t)(nul - p) + 1;
    return p;
}

const char *fs_arg_name(struct fs_req *r, int *err)
{
    const char *name = fs_arg_str(r);
    *err = -EINVAL;
    if (!name)
        return NULL;
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
        fs_count(r->s, &r->s->stats.refused_escapes, 1);
        return NULL;
    }
    if (strlen(name) > 255) {
        *err = -ENAMETOOLONG;
        return NULL;
    }
    return name;
}

void fs_count(struct fsrv *s, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&s->stats_lock);
    *field += n;
    pthread_mutex_unlock(&s->stats_lock);
}

static void write_header(struct fs_req *r, int error, size_t len)
{
    struct fuse_out_header oh = {.len = (uint32_t)len, .error = error, .unique = r->h.unique};
    fs_out_copy(r, 0, &oh, sizeof(oh));
    r->written = len;
}

int fs_reply(struct fs_req *r, const void *data, size_t len, const void *data2, size_t len2)
{
    size_t total = sizeof(struct fuse_out_header) + len + len2;
    if (total > r->out_len)
        return -ERANGE;
    fs_out_copy(r, sizeof(struct fuse_out_header), data, len);
    fs_out_copy(r, sizeof(struct fuse_out_header) + len, data2, len2);
    write_header(r, 0, total);
    return 0;
}

/* --- INIT, FORGET -------------------------------------------------------------------- */

static int op_init(struct fs_req *r)
{
    /* The oldest fuse_init_in (7.x before flags2) is the first 16 bytes. */
    const struct fuse_init_in *in = fs_arg(r, 16);
    if (!in)
        return -EINVAL;
    if (in->major != FUSE_KERNEL_VERSION || in->minor < FS_PROTO_MINOR_MIN)
        return -EPROTO;
    const uint32_t wanted = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
                            FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
                            FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_ASYNC_DIO |
                            FUSE_AUTO_INVAL_DATA;
    struct fuse_init_out out = {
        .major = FUSE_KERNEL_VERSION,
        .minor = MIN(in->minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION),
        .max_readahead = in->max_readahead,
        .flags = in->flags & wanted,
        .max_background = 64,
        .congestion_threshold = 48,
        .max_write = FSRV_MAX_WRITE,
        .time_gran = 1,
        .max_pages = FSRV_MAX_PAGES,
    };
    return fs_reply(r, &out, sizeof(out), NULL, 0);
}

static int op_forget(struct fs_req *r)
{
    const struct fuse_forget_in *in = fs_arg(r, sizeof(*in));
    if (in)
        fs_node_forget(&r->s->t, r->h.nodeid, in->nlookup);
    return 0; /* no reply */
}

static int op_batch_forget(struct fs_req *r)
{
    const struct fuse_batch_forget_in *in = fs_arg(r, sizeof(*in));
    for (uint32_t i = 0; in && i < in->count; i++) {
        const struct fuse_forget_one *one = fs_arg(r, sizeof(*one));
        if (!one)
            break; /* a count beyond the request: the rest is not there */
        fs_node_forget(&r->s->t, one->nodeid, one->nlookup);
    }
    return 0;
}

static int op_ok(struct fs_req *r)
{
    return fs_reply(r, NULL, 0, NULL, 0);
}

/* INTERRUPT: every request runs to its end; nothing to answer. */
static int op_none(struct fs_req *r)
{
    (void)r;
    return 0;
}

/* --- dispatch ----------------------------------------------------------------------- */

static const struct fs_op {
    fs_op_fn fn;
    bool writes;   /* changes the share: EROFS on a read-only one */
    bool no_reply;
} ops[] = {
    [FUSE_LOOKUP] = {fs_op_lookup, false, false},
    [FUSE_FORGET] = {op_forget, false, true},
    [FUSE_GETATTR] = {fs_op_getattr, false, false},
    [FUSE_SETATTR] = {fs_op_setattr, true, false},
    [FUSE_READLINK] = {fs_op_readlink, false, false},
    [FUSE_SYMLINK] = {fs_op_symlink, true, false},
    [FUSE_MKNOD] = {fs_op_mknod, true, false},
    [FUSE_MKDIR] = {fs_op_mkdir, true, false},
    [FUSE_UNLINK] = {fs_op_unlink, true, false},
    [FUSE_RMDIR] = {fs_op_rmdir, true, false},
    [FUSE_RENAME] = {fs_op_rename, true, false},
    [FUSE_LINK] = {fs_op_link, true, false},
    [FUSE_OPEN] = {fs_op_open, false, false},
    [FUSE_READ] = {fs_op_read, false, false},
    [FUSE_WRITE] = {fs_op_write, true, false},
    [FUSE_STATFS] = {fs_op_statfs, false, false},
    [FUSE_RELEASE] = {fs_op_release, false, false},
    [FUSE_FSYNC] = {fs_op_fsync, false, false},
    [FUSE_SETXATTR] = {fs_op_setxattr, true, false},
    [FUSE_GETXATTR] = {fs_op_getxattr, false, false},
    [FUSE_LISTXATTR] = {fs_op_listxattr, false, false},
    [FUSE_REMOVEXATTR] = {fs_op_removexattr, true, false},
    [FUSE_FLUSH] = {fs_op_flush, false, false},
    [FUSE_INIT] = {op_init, false, false},
    [FUSE_OPENDIR] = {fs_op_opendir, false, false},
    [FUSE_READDIR] = {fs_op_readdir, false, false},
    [FUSE_RELEASEDIR] = {fs_op_releasedir, false, false},
    [FUSE_FSYNCDIR] = {fs_op_fsync, false, false},
    [FUSE_ACCESS] = {fs_op_access, false, false},
    [FUSE_CREATE] = {fs_op_create, true, false},
    [FUSE_INTERRUPT] = {op_none, false, true},
    [FUSE_DESTROY] = {op_ok, false, false},
    [FUSE_BATCH_FORGET] = {op_batch_forget, false, true},
    [FUSE_FALLOCATE] = {fs_op_fallocate, true, false},
    [FUSE_READDIRPLUS] = {fs_op_readdirplus, false, false},
    [FUSE_RENAME2] = {fs_op_rename2, true, false},
    [FUSE_LSEEK] = {fs_op_lseek, false, false},
    [FUSE_COPY_FILE_RANGE] = {fs_op_copy_file_range, true, false},
};

static const struct fs_op *op_for(uint32_t opcode)
{
    return opcode < ARRAY_SIZE(ops) && ops[opcode].fn ? &ops[opcode] : NULL;
}

size_t fsrv_handle(struct fsrv *s, const struct iovec *in, int in_cnt, const struct iovec *out,
                   int out_cnt)
{
    struct fs_req r = {.s = s, .in = in, .in_cnt = in_cnt, .out = out, .out_cnt = out_cnt};
    r.out_len = iov_total(out, out_cnt);
    size_t in_len = iov_total(in, in_cnt);
    fs_count(s, &s->stats.requests, 1);
    if (iov_copy_from(in, in_cnt, &r.h, sizeof(r.h)) < sizeof(r.h)) {
        fs_count(s, &s->stats.errors, 1);
        return 0; /* not even a header: nothing to answer to */
    }
    const struct fs_op *op = op_for(r.h.opcode);
    bool fits = r.out_len >= sizeof(struct fuse_out_header);
    int err = 0;
    uint8_t *copy = NULL;
    if (r.h.len < sizeof(r.h) || r.h.len > in_len) {
        err = -EINVAL; /* the header's length must be the request's */
    } else if (!op) {
        err = -ENOSYS;
    } else if (op->writes && s->read_only) {
        err = -EROFS;
    } else {
        size_t want = r.h.opcode == FUSE_WRITE ? sizeof(r.h) + sizeof(struct fuse_write_in)
                                               : r.h.len;
        want = MIN(want, (size_t)r.h.len);
        if (want > FS_ARGS_MAX)
            err = -E2BIG;
        else if (!(copy = malloc(want)))
            err = -ENOMEM;
        if (!err) {
            iov_copy_from(in, in_cnt, copy, want);
            r.args = copy + sizeof(r.h);
            r.args_len = want - sizeof(r.h);
            err = op->fn(&r);
        }
    }
    free(copy);
    if (op && op->no_reply && !err)
        return 0;
    if (err && fits)
        write_header(&r, err, sizeof(struct fuse_out_header));
    if (err)
        fs_count(s, &s->stats.errors, 1);
    return r.written;
}

/* --- lifetime -------------------------------------------------------------------------- */

int fsrv_open(struct fsrv **out, const char *dir, bool read_only, enum fs_cache_mode cache,
              const struct fsrv_limits *limits)
{
    struct fsrv *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(-ENOMEM, "out of memory");
    s->read_only = read_only;
    s->cache = cache;
    fsrv_set_reader(s, NULL, NULL);
    s->as_root = geteuid() == 0;
    s->root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        int e = -errno;
        free(s);
        return err_errno(e, "shared directory %s", dir);
    }
    s->proc_fd = open_proc_self_fd();
    if (s->proc_fd < 0) {
        int e = s->proc_fd;
        close(s->root_fd);
        free(s);
        return err_errno(e, "virtio-fs needs /proc/self/fd (is /proc mounted?)");
    }
    struct stat st;
    int ret = fstat(s->root_fd, &st) < 0 ? err_errno(-errno, "shared directory %s", dir) : 0;
    if (!ret)
        ret = fs_tables_init(&s->t, limits, s->root_fd, &st);
    if (ret) {
        close(s->proc_fd);
        close(s->root_fd);
        free(s);
        return ret;
    }
    pthread_mutex_init(&s->stats_lock, NULL);
    *out = s;
    return 0;
}

void fsrv_close(struct fsrv *s)
{
    if (!s)
        return;
    fs_tables_destroy(&s->t); /* the root's slot keeps its descriptor: closed below */
    close(s->root_fd);
    close(s->proc_fd);
    pthread_mutex_destroy(&s->stats_lock);
    free(s);
}

void fsrv_reset(struct fsrv *s)
{
    fs_tables_reset(&s->t);
}

static ssize_t plain_read(void *ctx, int fd, const struct iovec *iov, int cnt, off_t off)
{
    (void)ctx;
    return preadv(fd, iov, cnt, off);
}

void fsrv_set_reader(struct fsrv *s, fsrv_read_fn fn, void *ctx)
{
    s->read_fn = fn ? fn : plain_read;
    s->read_ctx = ctx;
}

void fsrv_get_stats(struct fsrv *s, struct fsrv_stats *out)
{
    pthread_mutex_lock(&s->stats_lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_lock);
    pthread_mutex_lock(&s->t.lock);
    out->nodes = s->t.used_nodes;
    out->handles = s->t.used_handles;
    out->node_fds = s->t.open_fds;
    out->reopens = s->t.reopens;
    out->evictions = s->t.evictions;
    out->stale = s->t.stale;
    pthread_mutex_unlock(&s->t.lock);
}

int fsrv_root_fd(const struct fsrv *s)
{
    return s->root_fd;
}

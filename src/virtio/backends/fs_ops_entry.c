/* virtio-fs operations on names and attributes: LOOKUP, GETATTR, SETATTR,
 * READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME(2), LINK, STATFS,
 * ACCESS. Each works on the O_PATH descriptor of the node the guest names
 * and a single checked name beneath it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "virtio/backends/fs_internal.h"

/* The guest may not plant set-user-ID (or set-group-ID executable) files
 * on the host; a directory's set-group-ID bit only steers group ownership. */
static mode_t safe_mode(mode_t mode, bool dir)
{
    mode &= 07777;
    mode &= ~(mode_t)S_ISUID;
    if (!dir)
        mode &= ~(mode_t)S_ISGID;
    return mode;
}

/* With ember as root, a new entry belongs to the guest's caller. */
static int give_to_caller(struct fs_req *r, int dirfd, const char *name)
{
    if (!r->s->as_root)
        return 0;
    if (fchownat(dirfd, name, r->h.uid, r->h.gid, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return 0;
}

static int stat_node(const struct fs_node *n, struct stat *st)
{
    return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int reply_attr(struct fs_req *r, const struct stat *st)
{
    struct fuse_attr_out out = {0};
    out.attr_valid = r->s->cache == FS_CACHE_MODE_NEVER    ? 0
                     : r->s->cache == FS_CACHE_MODE_ALWAYS ? 86400
                                                           : 1;
    fs_fill_attr(&out.attr, st);
    return fs_reply(r, &out, sizeof(out), NULL, 0);
}

int fs_op_lookup(struct fs_req *r)
{
    int err;
    const char *name = fs_arg_name(r, &err);
    if (!name)
        return err;
    struct fs_node *dir = fs_node_get(&r->s->t, r->h.nodeid);
    if (!dir)
        return -ESTALE;
    struct fuse_entry_out e;
    int ret = fs_lookup_name(r->s, dir, name, &e);
    fs_node_put(&r->s->t, dir);
    if (ret == -ENOENT && fs_cache_seconds(r->s)) {
        /* A missing name as an entry with node 0: the guest keeps it (a
         * negative dentry) as long as it keeps names, so a program probing
         * a search path asks once, not at every start. */
        memset(&e, 0, sizeof(e));
        e.entry_valid = fs_cache_seconds(r->s);
        return fs_reply(r, &e, sizeof(e), NULL, 0);
    }
    if (ret)
        return ret;
    ret = fs_reply(r, &e, sizeof(e), NULL, 0);
    if (ret) /* the guest will never know of this lookup */
        fs_node_forget(&r->s->t, e.nodeid, 1);
    return ret;
}

int fs_op_getattr(struct fs_req *r)
{
    const struct fuse_getattr_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    struct stat st;
    int ret;
    /* An open file answers for itself: its name may be gone (unlinked while
     * open) and its node's descriptor closed. */
    struct fs_handle *h = (in->getattr_flags & FUSE_GETATTR_FH)
                              ? fs_handle_get(&r->s->t, in->fh, false) : NULL;
    if (h) {
        ret = fstat(h->fd, &st) < 0 ? -errno : 0;
        fs_handle_put(&r->s->t, h);
        return ret ? ret : reply_attr(r, &st);
    }
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    ret = stat_node(n, &st);
    fs_node_put(&r->s->t, n);
    return ret ? ret : reply_attr(r, &st);
}

static int set_size(struct fs_req *r, struct fs_node *n, const struct fuse_setattr_in *in)
{
    struct fs_handle *h = NULL;
    if (in->valid & FATTR_FH)
        h = fs_handle_get(&r->s->t, in->fh, false);
    int fd = h ? h->fd : fs_reopen(r->s, n, O_WRONLY);
    int ret = fd < 0 ? fd : ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
    if (h)
        fs_handle_put(&r->s->t, h);
    else if (fd >= 0)
        close(fd);
    return ret;
}

static void set_time(struct timespec *ts, uint32_t valid, uint32_t set, uint32_t now,
                     uint64_t sec, uint32_t nsec)
{
    if (valid & now)
        *ts = (struct timespec){0, UTIME_NOW};
    else if (valid & set)
        *ts = (struct timespec){(time_t)sec, nsec};
    else
        *ts = (struct timespec){0, UTIME_OMIT};
}

static int set_times(struct fs_req *r, struct fs_node *n, const struct fuse_setattr_in *in)
{
    struct timespec ts[2];
    set_time(&ts[0], in->valid, FATTR_ATIME, FATTR_ATIME_NOW, in->atime, in->atimensec);
    set_time(&ts[1], in->valid, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime, in->mtimensec);
    if (n->type == S_IFLNK) /* the link itself, never what it points to */
        return utimensat(n->fd, "", ts, AT_EMPTY_PATH) < 0 ? -errno : 0;
    char name[16];
    snprintf(name, sizeof(name), "%d", n->fd);
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EPERM;
    return utimensat(r->s->proc_fd, name, ts, 0) < 0 ? -errno : 0;
}

static int set_mode(struct fs_req *r, struct fs_node *n, mode_t mode)
{
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EPERM; /* a link has no mode; devices and FIFOs stay as they are */
    char name[16];
    snprintf(name, sizeof(name), "%d", n->fd);
    return fchmodat(r->s->proc_fd, name, safe_mode(mode, n->type == S_IFDIR), 0) < 0 ? -errno
                                                                                      : 0;
}

int fs_op_setattr(struct fs_req *r)
{
    const struct fuse_setattr_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    int ret = 0;
    if (in->valid & FATTR_MODE)
        ret = set_mode(r, n, in->mode);
    if (!ret && (in->valid & (FATTR_UID | FATTR_GID))) {
        uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
        gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;
        if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            ret = -errno;
    }
    if (!ret && (in->valid & FATTR_SIZE))
        ret = n->type == S_IFREG ? set_size(r, n, in) : -EINVAL;
    if (!ret && (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)))
        ret = set_times(r, n, in);
    struct stat st;
    if (!ret)
        ret = stat_node(n, &st);
    fs_node_put(&r->s->t, n);
    return ret ? ret : reply_attr(r, &st);
}

int fs_op_readlink(struct fs_req *r)
{
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    char target[PATH_MAX];
    ssize_t len = n->type == S_IFLNK ? readlinkat(n->fd, "", target, sizeof(target)) : -1;
    int ret = len < 0 ? (n->type == S_IFLNK ? -errno : -EINVAL) : 0;
    fs_node_put(&r->s->t, n);
    return ret ? ret : fs_reply(r, target, (size_t)len, NULL, 0);
}

/* After making 'name' beneath 'dir': hand it to the caller, look it up and
 * answer with its entry. */
static int reply_new_entry(struct fs_req *r, struct fs_node *dir, const char *name)
{
    int ret = give_to_caller(r, dir->fd, name);
    struct fuse_entry_out e;
    if (!ret)
        ret = fs_lookup_name(r->s, dir, name, &e);
    if (ret)
        return ret;
    ret = fs_reply(r, &e, sizeof(e), NULL, 0);
    if (ret)
        fs_node_forget(&r->s->t, e.nodeid, 1);
    return ret;
}

/* The parent directory the request names, and the entry's name after
 * 'skip' bytes of fixed arguments. */
static struct fs_node *parent_and_name(struct fs_req *r, size_t skip, const void **fixed,
                                       const char **name, int *err)
{
    *fixed = skip ? fs_arg(r, skip) : NULL;
    if (skip && !*fixed) {
        *err = -EINVAL;
        return NULL;
    }
    if (!(*name = fs_arg_name(r, err)))
        return NULL;
    struct fs_node *dir = fs_node_get(&r->s->t, r->h.nodeid);
    *err = !dir ? -ESTALE : dir->type != S_IFDIR ? -ENOTDIR : 0;
    if (dir && *err) {
        fs_node_put(&r->s->t, dir);
        dir = NULL;
    }
    return dir;
}

int fs_op_symlink(struct fs_req *r)
{
    const void *none;
    const char *name;
    int err;
    struct fs_node *dir = parent_and_name(r, 0, &none, &name, &err);
    if (!dir)
        return err;
    /* The target is the guest's to interpret; the host never follows it. */
    const char *target = fs_arg_str(r);
    if (!target || !*target || strlen(target) >= PATH_MAX)
        err = -EINVAL;
    else if (symlinkat(target, dir->fd, name) < 0)
        err = -errno;
    else
        err = reply_new_entry(r, dir, name);
    fs_node_put(&r->s->t, dir);
    return err;
}

int fs_op_mknod(struct fs_req *r)
{
    const struct fuse_mknod_in *in;
    const char *name;
    int err;
    struct fs_node *dir = parent_and_name(r, sizeof(*in), (const void **)&in, &name, &err);
    if (!dir)
        return err;
    mode_t type = in->mode & S_IFMT;
    /* No device nodes on the host: ember may run as root. */
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
        err = -EPERM;
    else if (mknodat(dir->fd, name, type | safe_mode(in->mode, false), 0) < 0)
        err = -errno;
    else
        err = reply_new_entry(r, dir, name);
    fs_node_put(&r->s->t, dir);
    return err;
}

int fs_op_mkdir(struct fs_req *r)
{
    const struct fuse_mkdir_in *in;
    const char *name;
    int err;
    struct fs_node *dir = parent_and_name(r, sizeof(*in), (const void **)&in, &name, &err);
    if (!dir)
        return err;
    if (mkdirat(dir->fd, name, safe_mode(in->mode, true)) < 0)
        err = -errno;
    else
        err = reply_new_entry(r, dir, name);
    fs_node_put(&r->s->t, dir);
    return err;
}

static int remove_entry(struct fs_req *r, int flags)
{
    const void *none;
    const char *name;
    int err;
    struct fs_node *dir = parent_and_name(r, 0, &none, &name, &err);
    if (!dir)
        return err;
    err = unlinkat(dir->fd, name, flags) < 0 ? -errno : 0;
    fs_node_put(&r->s->t, dir);
    return err ? err : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_unlink(struct fs_req *r)
{
    return remove_entry(r, 0);
}

int fs_op_rmdir(struct fs_req *r)
{
    return remove_entry(r, AT_REMOVEDIR);
}

/* Rename, and let the nodes of the files moved follow their new names
 * (a closed node is reopened by name). */
static int rename_entry(struct fsrv *s, struct fs_node *from, const char *old,
                        struct fs_node *to, const char *new, uint32_t flags)
{
    struct stat a, b;
    bool have_a = fstatat(from->fd, old, &a, AT_SYMLINK_NOFOLLOW) == 0;
    bool have_b = (flags & RENAME_EXCHANGE) && fstatat(to->fd, new, &b, AT_SYMLINK_NOFOLLOW) == 0;
    if (renameat2(from->fd, old, to->fd, new, flags) < 0)
        return -errno;
    if (have_a)
        fs_node_renamed(&s->t, a.st_dev, a.st_ino, from, old, to, new);
    if (have_b)
        fs_node_renamed(&s->t, b.st_dev, b.st_ino, to, new, from, old);
    return 0;
}

static int do_rename(struct fs_req *r, uint64_t newdir_id, uint32_t flags)
{
    int err;
    const char *old = fs_arg_name(r, &err);
    if (!old)
        return err;
    const char *new = fs_arg_name(r, &err);
    if (!new)
        return err;
    if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
        return -EINVAL;
    struct fs_node *from = fs_node_get(&r->s->t, r->h.nodeid);
    struct fs_node *to = fs_node_get(&r->s->t, newdir_id);
    if (!from || !to)
        err = -ESTALE;
    else if (from->type != S_IFDIR || to->type != S_IFDIR)
        err = -ENOTDIR;
    else
        err = rename_entry(r->s, from, old, to, new, flags);
    fs_node_put(&r->s->t, from);
    fs_node_put(&r->s->t, to);
    return err ? err : fs_reply(r, NULL, 0, NULL, 0);
}

int fs_op_rename(struct fs_req *r)
{
    const struct fuse_rename_in *in = fs_arg(r, sizeof(*in));
    return in ? do_rename(r, in->newdir, 0) : -EINVAL;
}

int fs_op_rename2(struct fs_req *r)
{
    const struct fuse_rename2_in *in = fs_arg(r, sizeof(*in));
    return in ? do_rename(r, in->newdir, in->flags) : -EINVAL;
}

static int link_node(struct fsrv *s, const struct fs_node *n, int dirfd, const char *name)
{
    if (linkat(n->fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOENT || (n->type != S_IFREG)) /* without CAP_DAC_READ_SEARCH: */
        return -errno;
    char path[16]; /* ... through our own descriptor's magic link */
    snprintf(path, sizeof(path), "%d", n->fd);
    return linkat(s->proc_fd, path, dirfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

int fs_op_link(struct fs_req *r)
{
    const struct fuse_link_in *in;
    const char *name;
    int err;
    struct fs_node *dir = parent_and_name(r, sizeof(*in), (const void **)&in, &name, &err);
    if (!dir)
        return err;
    struct fs_node *n = fs_node_get(&r->s->t, in->oldnodeid);
    if (!n)
        err = -ESTALE;
    else if (n->type == S_IFDIR)
        err = -EPERM;
    else
        err = link_node(r->s, n, dir->fd, name);
    fs_node_put(&r->s->t, n);
    if (!err)
        err = reply_new_entry(r, dir, name);
    fs_node_put(&r->s->t, dir);
    return err;
}

int fs_op_statfs(struct fs_req *r)
{
    struct statfs sf;
    if (fstatfs(r->s->root_fd, &sf) < 0)
        return -errno;
    struct fuse_statfs_out out = {0};
    out.st.blocks = sf.f_blocks;
    out.st.bfree = sf.f_bfree;
    out.st.bavail = sf.f_bavail;
    out.st.files = sf.f_files;
    out.st.ffree = sf.f_ffree;
    out.st.bsize = (uint32_t)sf.f_bsize;
    out.st.namelen = (uint32_t)sf.f_namelen;
    out.st.frsize = (uint32_t)sf.f_frsize;
    return fs_reply(r, &out, sizeof(out), NULL, 0);
}

/* The guest checks permissions itself (virtiofs mounts with
 * default_permissions); this answers only what the host decides. */
int fs_op_access(struct fs_req *r)
{
    const struct fuse_access_in *in = fs_arg(r, sizeof(*in));
    if (!in)
        return -EINVAL;
    struct fs_node *n = fs_node_get(&r->s->t, r->h.nodeid);
    if (!n)
        return -ESTALE;
    fs_node_put(&r->s->t, n);
    if ((in->mask & W_OK) && r->s->read_only)
        return -EROFS;
    return fs_reply(r, NULL, 0, NULL, 0);
}

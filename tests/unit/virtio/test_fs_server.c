/* The virtio-fs server against a temporary directory, without a virtqueue:
 * every opcode it answers, checked from the host side, and a hostile table
 * (short and lying headers, unknown opcodes, names with '/' or "..", stale
 * and unknown nodes and handles, host symlinks leading out of the share,
 * device nodes, exhausted tables, a read-only share). */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "virtio/backends/fs_server.h"
#include "fs_req.h"

/* --- every opcode -------------------------------------------------------------- */

static uint64_t create(struct fsrv *s, const char *name, uint64_t *fh, int *err)
{
    req_begin(FUSE_CREATE, FUSE_ROOT_ID);
    struct fuse_create_in in = {.flags = O_RDWR | O_CREAT, .mode = S_IFREG | 06755};
    req_add(&in, sizeof(in));
    req_str(name);
    *err = req_send(s);
    if (*err)
        return 0;
    const struct fuse_entry_out *e = reply();
    *fh = ((const struct fuse_open_out *)(e + 1))->fh;
    return e->nodeid;
}

static void test_files(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    int err;
    uint64_t fh = 0, node = create(s, "new.txt", &fh, &err);
    assert_int_equal(err, 0);
    struct stat st;
    char p[512];
    host_path(p, sizeof(p), "new.txt");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755); /* set-ID bits never reach the host */

    req_begin(FUSE_WRITE, node);
    struct fuse_write_in w = {.fh = fh, .offset = 0, .size = 11};
    req_add(&w, sizeof(w));
    req_add("hello world", 11);
    assert_int_equal(req_send(s), 0);
    assert_int_equal(((const struct fuse_write_out *)reply())->size, 11);
    assert_string_equal(host_read("new.txt"), "hello world");

    req_begin(FUSE_READ, node);
    struct fuse_read_in r = {.fh = fh, .offset = 6, .size = 100};
    req_add(&r, sizeof(r));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(R.got, sizeof(struct fuse_out_header) + 5);
    assert_memory_equal(reply(), "world", 5);

    req_begin(FUSE_FLUSH, node); /* nothing to do: ENOSYS, so the guest sends no more */
    struct fuse_flush_in fl = {.fh = fh};
    req_add(&fl, sizeof(fl));
    assert_int_equal(req_send(s), -ENOSYS);
    req_begin(FUSE_FSYNC, node);
    struct fuse_fsync_in fs = {.fh = fh, .fsync_flags = 1};
    req_add(&fs, sizeof(fs));
    assert_int_equal(req_send(s), 0);

    req_begin(FUSE_FALLOCATE, node);
    struct fuse_fallocate_in fa = {.fh = fh, .offset = 0, .length = 65536};
    req_add(&fa, sizeof(fa));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 65536);

    req_begin(FUSE_LSEEK, node);
    struct fuse_lseek_in ls = {.fh = fh, .offset = 0, .whence = SEEK_HOLE};
    req_add(&ls, sizeof(ls));
    assert_int_equal(req_send(s), 0);

    /* copy_file_range into a second file */
    uint64_t fh2 = 0, node2 = create(s, "copy.txt", &fh2, &err);
    assert_int_equal(err, 0);
    req_begin(FUSE_COPY_FILE_RANGE, node);
    struct fuse_copy_file_range_in cr = {.fh_in = fh, .off_in = 0, .nodeid_out = node2,
                                         .fh_out = fh2, .off_out = 0, .len = 5};
    req_add(&cr, sizeof(cr));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(((const struct fuse_write_out *)reply())->size, 5);
    assert_string_equal(host_read("copy.txt"), "hello");

    /* SETATTR: size, mode (no set-user-ID), times */
    req_begin(FUSE_SETATTR, node);
    struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_MODE | FATTR_MTIME, .size = 5,
                                 .mode = 04600, .mtime = 1000000};
    req_add(&sa, sizeof(sa));
    assert_int_equal(req_send(s), 0);
    const struct fuse_attr_out *ao = reply();
    assert_int_equal(ao->attr.size, 5);
    assert_int_equal(ao->attr.mode & 07777, 0600);
    assert_int_equal(ao->attr.mtime, 1000000);

    req_begin(FUSE_GETATTR, node);
    struct fuse_getattr_in ga = {0};
    req_add(&ga, sizeof(ga));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(((const struct fuse_attr_out *)reply())->attr.size, 5);

    assert_int_equal(release(s, node, fh, false), 0);
    assert_int_equal(release(s, node, fh, false), -EBADF); /* twice */
    assert_int_equal(release(s, node2, fh2, false), 0);

    /* OPEN of an existing file, O_TRUNC */
    fh = open_file(s, node, O_WRONLY | O_TRUNC, &err);
    assert_int_equal(err, 0);
    assert_string_equal(host_read("new.txt"), "");
    assert_int_equal(release(s, node, fh, false), 0);

    req_begin(FUSE_STATFS, FUSE_ROOT_ID);
    assert_int_equal(req_send(s), 0);
    assert_true(((const struct fuse_statfs_out *)reply())->st.bsize > 0);

    req_begin(FUSE_ACCESS, node);
    struct fuse_access_in ac = {.mask = R_OK};
    req_add(&ac, sizeof(ac));
    assert_int_equal(req_send(s), 0);
    fsrv_close(s);
}

/* The largest WRITE and READ that INIT offers (FSRV_MAX_WRITE), in
 * page-sized buffers as the guest's FUSE client lends them: each is one
 * round trip; a byte more is refused. */
static void test_largest_io(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    int err;
    uint64_t fh = 0, node = create(s, "big", &fh, &err);
    assert_int_equal(err, 0);
    const size_t page = 4096, pages = FSRV_MAX_PAGES;
    uint8_t *data = malloc(FSRV_MAX_WRITE + 1), *back = malloc(FSRV_MAX_WRITE);
    assert_non_null(data);
    assert_non_null(back);
    for (size_t i = 0; i <= FSRV_MAX_WRITE; i++)
        data[i] = (uint8_t)(i * 7 + i / page);
    struct {
        struct fuse_in_header h;
        struct fuse_write_in w;
    } wr = {.h = {.len = sizeof(wr) + FSRV_MAX_WRITE, .opcode = FUSE_WRITE, .unique = 9,
                  .nodeid = node},
            .w = {.fh = fh, .size = FSRV_MAX_WRITE}};
    struct iovec in[FSRV_MAX_PAGES + 1] = {{&wr, sizeof(wr)}};
    for (size_t i = 0; i < pages; i++)
        in[1 + i] = (struct iovec){data + i * page, page};
    struct {
        struct fuse_out_header h;
        struct fuse_write_out w;
    } wrote;
    struct iovec out = {&wrote, sizeof(wrote)};
    assert_int_equal(fsrv_handle(s, in, 1 + (int)pages, &out, 1), sizeof(wrote));
    assert_int_equal(wrote.h.error, 0);
    assert_int_equal(wrote.w.size, FSRV_MAX_WRITE);

    wr.h.len++; /* one byte beyond: the last buffer a byte longer */
    wr.w.size++;
    in[pages].iov_len++;
    assert_int_equal(fsrv_handle(s, in, 1 + (int)pages, &out, 1), sizeof(wrote.h));
    assert_int_equal(wrote.h.error, -EINVAL);

    struct {
        struct fuse_in_header h;
        struct fuse_read_in r;
    } rd = {.h = {.len = sizeof(rd), .opcode = FUSE_READ, .unique = 10, .nodeid = node},
            .r = {.fh = fh, .size = FSRV_MAX_WRITE}};
    struct iovec rin = {&rd, sizeof(rd)};
    struct fuse_out_header got;
    struct iovec rout[FSRV_MAX_PAGES + 1] = {{&got, sizeof(got)}};
    for (size_t i = 0; i < pages; i++)
        rout[1 + i] = (struct iovec){back + i * page, page};
    assert_int_equal(fsrv_handle(s, &rin, 1, rout, 1 + (int)pages), sizeof(got) + FSRV_MAX_WRITE);
    assert_int_equal(got.error, 0);
    assert_memory_equal(back, data, FSRV_MAX_WRITE);
    free(data);
    free(back);
    assert_int_equal(release(s, node, fh, false), 0);
    fsrv_close(s);
}

static void test_names(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    req_begin(FUSE_MKDIR, FUSE_ROOT_ID);
    struct fuse_mkdir_in md = {.mode = 0755};
    req_add(&md, sizeof(md));
    req_str("sub");
    assert_int_equal(req_send(s), 0);
    uint64_t sub = ((const struct fuse_entry_out *)reply())->nodeid;
    assert_int_equal(must_lookup(s, FUSE_ROOT_ID, "sub"), sub); /* one node per file */

    req_begin(FUSE_MKNOD, sub);
    struct fuse_mknod_in mk = {.mode = S_IFIFO | 0644};
    req_add(&mk, sizeof(mk));
    req_str("fifo");
    assert_int_equal(req_send(s), 0);

    req_begin(FUSE_SYMLINK, sub);
    req_str("link");
    req_str("../../../../etc/passwd"); /* the guest's business: never followed here */
    assert_int_equal(req_send(s), 0);
    uint64_t link = ((const struct fuse_entry_out *)reply())->nodeid;
    req_begin(FUSE_READLINK, link);
    assert_int_equal(req_send(s), 0);
    assert_int_equal(R.got, sizeof(struct fuse_out_header) + strlen("../../../../etc/passwd"));

    host_write("f", "data");
    uint64_t f = must_lookup(s, FUSE_ROOT_ID, "f");
    req_begin(FUSE_LINK, sub);
    struct fuse_link_in li = {.oldnodeid = f};
    req_add(&li, sizeof(li));
    req_str("hard");
    assert_int_equal(req_send(s), 0);
    assert_string_equal(host_read("sub/hard"), "data");

    req_begin(FUSE_RENAME, sub);
    struct fuse_rename_in rn = {.newdir = FUSE_ROOT_ID};
    req_add(&rn, sizeof(rn));
    req_str("hard");
    req_str("moved");
    assert_int_equal(req_send(s), 0);
    assert_string_equal(host_read("moved"), "data");

    req_begin(FUSE_RENAME2, FUSE_ROOT_ID);
    struct fuse_rename2_in r2 = {.newdir = FUSE_ROOT_ID, .flags = RENAME_NOREPLACE};
    req_add(&r2, sizeof(r2));
    req_str("moved");
    req_str("f");
    assert_int_equal(req_send(s), -EEXIST);

    /* READDIR and READDIRPLUS of sub: ".", "..", fifo, link */
    req_begin(FUSE_OPENDIR, sub);
    struct fuse_open_in oi = {0};
    req_add(&oi, sizeof(oi));
    assert_int_equal(req_send(s), 0);
    uint64_t dh = ((const struct fuse_open_out *)reply())->fh;
    for (int plus = 0; plus < 2; plus++) {
        req_begin(plus ? FUSE_READDIRPLUS : FUSE_READDIR, sub);
        struct fuse_read_in rd = {.fh = dh, .offset = 0, .size = 4096};
        req_add(&rd, sizeof(rd));
        assert_int_equal(req_send(s), 0);
        int names = 0;
        for (size_t at = sizeof(struct fuse_out_header); at < R.got;) {
            const struct fuse_dirent *d;
            if (plus) {
                const struct fuse_direntplus *dp = (const void *)(R.out + at);
                d = &dp->dirent;
                at += FUSE_DIRENTPLUS_SIZE(dp);
                bool dots = d->namelen <= 2 && d->name[0] == '.';
                assert_true(dots ? dp->entry_out.nodeid == 0 : dp->entry_out.nodeid != 0);
            } else {
                d = (const void *)(R.out + at);
                at += FUSE_DIRENT_SIZE(d);
            }
            names++;
        }
        assert_int_equal(names, 4);
    }
    req_begin(FUSE_FSYNCDIR, sub);
    struct fuse_fsync_in fsd = {.fh = dh};
    req_add(&fsd, sizeof(fsd));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(release(s, sub, dh, true), 0);

    assert_int_equal(simple_name_op(s, FUSE_UNLINK, sub, "fifo"), 0);
    assert_int_equal(simple_name_op(s, FUSE_UNLINK, sub, "link"), 0);
    assert_int_equal(simple_name_op(s, FUSE_RMDIR, FUSE_ROOT_ID, "sub"), 0);
    char p[512];
    host_path(p, sizeof(p), "sub");
    assert_int_equal(access(p, F_OK), -1);

    /* FORGET the looked-up sub: its nodeid goes stale */
    req_begin(FUSE_FORGET, sub);
    struct fuse_forget_in fg = {.nlookup = 100};
    req_add(&fg, sizeof(fg));
    assert_int_equal(req_send(s), 1); /* no reply */
    req_begin(FUSE_GETATTR, sub);
    struct fuse_getattr_in ga = {0};
    req_add(&ga, sizeof(ga));
    assert_int_equal(req_send(s), -ESTALE);
    fsrv_close(s);
}

static void test_xattrs(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    host_write("x", "");
    uint64_t x = must_lookup(s, FUSE_ROOT_ID, "x");
    req_begin(FUSE_SETXATTR, x);
    struct { uint32_t size, flags; } sx = {3, 0};
    req_add(&sx, sizeof(sx));
    req_str("user.k");
    req_add("abc", 3);
    int err = req_send(s);
    if (err == -ENOTSUP || err == -EOPNOTSUPP) {
        print_message("SKIPPED (loudly): this host's /tmp has no user xattrs\n");
        fsrv_close(s);
        return;
    }
    assert_int_equal(err, 0);
    req_begin(FUSE_GETXATTR, x);
    struct fuse_getxattr_in gx = {.size = 64};
    req_add(&gx, sizeof(gx));
    req_str("user.k");
    assert_int_equal(req_send(s), 0);
    assert_memory_equal(reply(), "abc", 3);
    req_begin(FUSE_LISTXATTR, x);
    gx.size = 0;
    req_add(&gx, sizeof(gx));
    assert_int_equal(req_send(s), 0);
    assert_int_equal(((const struct fuse_getxattr_out *)reply())->size, 7);
    /* Namespaces that could grant host rights are refused. */
    static const char *const refused[] = {"trusted.k", "security.capability", "system.x"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *bad = refused[i];
        req_begin(FUSE_SETXATTR, x);
        req_add(&sx, sizeof(sx));
        req_str(bad);
        req_add("abc", 3);
        assert_int_equal(req_send(s), -EPERM);
    }
    req_begin(FUSE_REMOVEXATTR, x);
    req_str("user.k");
    assert_int_equal(req_send(s), 0);
    fsrv_close(s);
}

/* --- the hostile table ------------------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    /* Shorter than a header: nothing to answer. */
    struct iovec in = {R.buf, 10}, out = {R.out, sizeof(R.out)};
    assert_int_equal(fsrv_handle(s, &in, 1, &out, 1), 0);
    /* A header whose length is beyond the request, or below a header. */
    req_begin(FUSE_GETATTR, FUSE_ROOT_ID);
    struct fuse_getattr_in ga = {0};
    req_add(&ga, sizeof(ga));
    struct fuse_in_header *h = (void *)R.buf;
    h->len = (uint32_t)R.len + 1;
    in.iov_len = R.len;
    assert_true(fsrv_handle(s, &in, 1, &out, 1) == sizeof(struct fuse_out_header));
    assert_int_equal(((struct fuse_out_header *)R.out)->error, -EINVAL);
    h->len = 8;
    fsrv_handle(s, &in, 1, &out, 1);
    assert_int_equal(((struct fuse_out_header *)R.out)->error, -EINVAL);
    /* No room for a reply header. */
    h->len = (uint32_t)R.len;
    out.iov_len = 15;
    assert_int_equal(fsrv_handle(s, &in, 1, &out, 1), 0);
    /* Unknown opcodes: ENOSYS. */
    uint32_t unknown[] = {0, FUSE_GETLK, FUSE_SETLK, FUSE_IOCTL, FUSE_POLL, 5000, 0xffffffffu};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        req_begin(unknown[i], FUSE_ROOT_ID);
        assert_int_equal(req_send(s), -ENOSYS);
    }
    /* Arguments cut short. */
    uint32_t ops[] = {FUSE_GETATTR, FUSE_SETATTR, FUSE_OPEN, FUSE_READ, FUSE_WRITE, FUSE_CREATE,
                      FUSE_MKDIR, FUSE_MKNOD, FUSE_LINK, FUSE_RENAME, FUSE_RENAME2, FUSE_LOOKUP,
                      FUSE_SETXATTR, FUSE_GETXATTR, FUSE_FALLOCATE, FUSE_LSEEK, FUSE_INIT,
                      FUSE_COPY_FILE_RANGE, FUSE_READDIRPLUS, FUSE_SYMLINK};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        req_begin(ops[i], FUSE_ROOT_ID);
        req_add("\x01\x02\x03", 3);
        assert_int_equal(req_send(s), -EINVAL);
    }
    /* A WRITE claiming more data than it carries. */
    host_write("w", "");
    uint64_t w = must_lookup(s, FUSE_ROOT_ID, "w");
    int err;
    uint64_t fh = open_file(s, w, O_RDWR, &err);
    assert_int_equal(err, 0);
    req_begin(FUSE_WRITE, w);
    struct fuse_write_in wi = {.fh = fh, .size = 1000};
    req_add(&wi, sizeof(wi));
    req_add("abc", 3);
    assert_int_equal(req_send(s), -EINVAL);
    /* A READ bigger than the reply's room: cut to fit. */
    host_write("w", "0123456789");
    req_begin(FUSE_READ, w);
    struct fuse_read_in ri = {.fh = fh, .size = 1 << 30};
    req_add(&ri, sizeof(ri));
    R.out_cap = sizeof(struct fuse_out_header) + 4;
    assert_int_equal(req_send(s), 0);
    assert_int_equal(R.got, sizeof(struct fuse_out_header) + 4);
    /* Unknown handles and nodes. */
    ri.fh = fh + 1;
    req_begin(FUSE_READ, w);
    req_add(&ri, sizeof(ri));
    assert_int_equal(req_send(s), -EBADF);
    req_begin(FUSE_GETATTR, 0x123456789ull);
    req_add(&ga, sizeof(ga));
    assert_int_equal(req_send(s), -ESTALE);
    /* FORGET of unknown nodes, and a BATCH_FORGET counting beyond its data. */
    req_begin(FUSE_FORGET, 999999);
    struct fuse_forget_in fg = {.nlookup = 1};
    req_add(&fg, sizeof(fg));
    assert_int_equal(req_send(s), 1);
    req_begin(FUSE_BATCH_FORGET, 0);
    struct fuse_batch_forget_in bf = {.count = 1000000};
    req_add(&bf, sizeof(bf));
    struct fuse_forget_one one = {.nodeid = FUSE_ROOT_ID, .nlookup = 50};
    req_add(&one, sizeof(one));
    assert_int_equal(req_send(s), 1);
    assert_int_equal(must_lookup(s, FUSE_ROOT_ID, "w"), w); /* the root survived */
    /* A readdir buffer of a few bytes. */
    req_begin(FUSE_OPENDIR, FUSE_ROOT_ID);
    struct fuse_open_in oi = {0};
    req_add(&oi, sizeof(oi));
    assert_int_equal(req_send(s), 0);
    uint64_t dh = ((const struct fuse_open_out *)reply())->fh;
    req_begin(FUSE_READDIR, FUSE_ROOT_ID);
    struct fuse_read_in rd = {.fh = dh, .size = 8};
    req_add(&rd, sizeof(rd));
    assert_int_equal(req_send(s), -EINVAL);
    req_begin(FUSE_READ, FUSE_ROOT_ID); /* a directory handle is not a file's */
    rd.size = 100;
    req_add(&rd, sizeof(rd));
    assert_int_equal(req_send(s), -EBADF);
    fsrv_close(s);
}

static void test_escapes(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 64, 16);
    const char *bad[] = {"..", ".", "", "a/b", "../etc", "/etc/passwd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err;
        lookup(s, FUSE_ROOT_ID, bad[i], &err);
        assert_int_equal(err, -EINVAL);
        assert_int_equal(simple_name_op(s, FUSE_UNLINK, FUSE_ROOT_ID, bad[i]), -EINVAL);
        req_begin(FUSE_MKDIR, FUSE_ROOT_ID);
        struct fuse_mkdir_in md = {.mode = 0755};
        req_add(&md, sizeof(md));
        req_str(bad[i]);
        assert_int_equal(req_send(s), -EINVAL);
    }
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    int err;
    lookup(s, FUSE_ROOT_ID, longname, &err);
    assert_int_equal(err, -ENAMETOOLONG);

    /* A host symlink to a file outside, and one to a directory outside. */
    char p[512];
    host_path(p, sizeof(p), "out-file");
    assert_int_equal(symlink(outside, p), 0);
    host_path(p, sizeof(p), "out-dir");
    assert_int_equal(symlink("/etc", p), 0);
    uint64_t lf = must_lookup(s, FUSE_ROOT_ID, "out-file"); /* the link itself */
    req_begin(FUSE_GETATTR, lf);
    struct fuse_getattr_in ga = {0};
    req_add(&ga, sizeof(ga));
    assert_int_equal(req_send(s), 0);
    assert_true(S_ISLNK(((const struct fuse_attr_out *)reply())->attr.mode));
    open_file(s, lf, O_RDWR, &err);
    assert_int_equal(err, -ELOOP);
    req_begin(FUSE_SETATTR, lf);
    struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
    req_add(&sa, sizeof(sa));
    assert_int_equal(req_send(s), -EINVAL);
    req_begin(FUSE_SETXATTR, lf);
    struct { uint32_t size, flags; } sx = {1, 0};
    req_add(&sx, sizeof(sx));
    req_str("user.x");
    req_add("x", 1);
    assert_int_equal(req_send(s), -EPERM);
    uint64_t ld = must_lookup(s, FUSE_ROOT_ID, "out-dir");
    lookup(s, ld, "passwd", &err);
    assert_int_equal(err, -ENOTDIR);
    req_begin(FUSE_CREATE, ld);
    struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0644};
    req_add(&ci, sizeof(ci));
    req_str("planted");
    assert_int_equal(req_send(s), -ENOTDIR);
    /* A hard link through the link: a link to the link, never to its target. */
    req_begin(FUSE_LINK, FUSE_ROOT_ID);
    struct fuse_link_in li = {.oldnodeid = lf};
    req_add(&li, sizeof(li));
    req_str("hl");
    err = req_send(s);
    struct stat st;
    host_path(p, sizeof(p), "hl");
    if (err == 0) {
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
    }
    /* Creating over a host symlink does not write through it. */
    uint64_t fh, n;
    req_begin(FUSE_CREATE, FUSE_ROOT_ID);
    req_add(&ci, sizeof(ci));
    req_str("out-file");
    assert_int_equal(req_send(s), -ELOOP);
    (void)fh, (void)n;
    FILE *f = fopen(outside, "r");
    char text[16] = {0};
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f), 6);
    fclose(f);
    assert_string_equal(text, "SECRET");
    /* No device nodes; a FIFO made on the host is never opened. */
    req_begin(FUSE_MKNOD, FUSE_ROOT_ID);
    struct fuse_mknod_in mk = {.mode = S_IFCHR | 0600, .rdev = makedev(1, 1)};
    req_add(&mk, sizeof(mk));
    req_str("mem");
    assert_int_equal(req_send(s), -EPERM);
    host_path(p, sizeof(p), "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    uint64_t ff = must_lookup(s, FUSE_ROOT_ID, "fifo");
    open_file(s, ff, O_RDONLY, &err);
    assert_int_equal(err, -EACCES);
    /* A rename out of the share is not expressible: names only. */
    req_begin(FUSE_RENAME, FUSE_ROOT_ID);
    struct fuse_rename_in rn = {.newdir = FUSE_ROOT_ID};
    req_add(&rn, sizeof(rn));
    req_str("fifo");
    req_str("../escaped");
    assert_int_equal(req_send(s), -EINVAL);
    fsrv_close(s);
}

static void test_read_only(void **state)
{
    (void)state;
    host_write("ro", "keep");
    struct fsrv *s = serve(true, 64, 16);
    uint64_t n = must_lookup(s, FUSE_ROOT_ID, "ro");
    int err;
    open_file(s, n, O_RDWR, &err);
    assert_int_equal(err, -EROFS);
    open_file(s, n, O_RDONLY | O_TRUNC, &err);
    assert_int_equal(err, -EROFS);
    uint64_t fh = open_file(s, n, O_RDONLY, &err);
    assert_int_equal(err, 0);
    uint32_t writes[] = {FUSE_SETATTR, FUSE_SYMLINK, FUSE_MKNOD, FUSE_MKDIR, FUSE_UNLINK,
                         FUSE_RMDIR, FUSE_RENAME, FUSE_RENAME2, FUSE_LINK, FUSE_WRITE, FUSE_CREATE,
                         FUSE_SETXATTR, FUSE_REMOVEXATTR, FUSE_FALLOCATE, FUSE_COPY_FILE_RANGE};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        req_begin(writes[i], n);
        struct fuse_write_in wi = {.fh = fh, .size = 4};
        req_add(&wi, sizeof(wi));
        req_add("gone", 5);
        assert_int_equal(req_send(s), -EROFS);
    }
    req_begin(FUSE_ACCESS, n);
    struct fuse_access_in ac = {.mask = W_OK};
    req_add(&ac, sizeof(ac));
    assert_int_equal(req_send(s), -EROFS);
    assert_string_equal(host_read("ro"), "keep");
    fsrv_close(s);
}

static void test_exhaustion(void **state)
{
    (void)state;
    struct fsrv *s = serve(false, 4, 3); /* the root and three more nodes */
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        host_write(name, "x");
    }
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        ids[i] = must_lookup(s, FUSE_ROOT_ID, name);
    }
    int err;
    lookup(s, FUSE_ROOT_ID, "n3", &err);
    assert_int_equal(err, -ENFILE);
    /* READDIRPLUS still lists, without nodes for what does not fit. */
    req_begin(FUSE_OPENDIR, FUSE_ROOT_ID);
    struct fuse_open_in oi = {0};
    req_add(&oi, sizeof(oi));
    assert_int_equal(req_send(s), 0);
    uint64_t dh = ((const struct fuse_open_out *)reply())->fh;
    req_begin(FUSE_READDIRPLUS, FUSE_ROOT_ID);
    struct fuse_read_in rd = {.fh = dh, .size = 8192};
    req_add(&rd, sizeof(rd));
    assert_int_equal(req_send(s), 0);
    /* Handles: the directory's and two files'; the fourth is refused. */
    uint64_t fh1 = open_file(s, ids[0], O_RDONLY, &err);
    assert_int_equal(err, 0);
    open_file(s, ids[1], O_RDONLY, &err);
    assert_int_equal(err, 0);
    open_file(s, ids[2], O_RDONLY, &err);
    assert_int_equal(err, -EMFILE);
    assert_int_equal(release(s, ids[0], fh1, false), 0);
    open_file(s, ids[2], O_RDONLY, &err);
    assert_int_equal(err, 0);
    /* Forgetting frees a node for the next lookup. */
    req_begin(FUSE_BATCH_FORGET, 0);
    struct fuse_batch_forget_in bf = {.count = 1};
    req_add(&bf, sizeof(bf));
    struct fuse_forget_one one = {.nodeid = ids[0], .nlookup = 1000};
    req_add(&one, sizeof(one));
    assert_int_equal(req_send(s), 1);
    must_lookup(s, FUSE_ROOT_ID, "n3");
    /* A reset (a new driver) forgets everything but the root. */
    fsrv_reset(s);
    req_begin(FUSE_GETATTR, ids[1]);
    struct fuse_getattr_in ga = {0};
    req_add(&ga, sizeof(ga));
    assert_int_equal(req_send(s), -ESTALE);
    must_lookup(s, FUSE_ROOT_ID, "n4");
    struct fsrv_stats st;
    fsrv_get_stats(s, &st);
    assert_int_equal(st.nodes, 2);
    assert_int_equal(st.handles, 0);
    fsrv_close(s);
}

/* A missing name is a negative entry (node 0) the guest keeps as long as
 * it keeps names; no node is made for it; other errors stay errors; and
 * cache=never, which keeps nothing, answers ENOENT. */
static void test_negative_entries(void **state)
{
    (void)state;
    const struct { enum fs_cache_mode mode; uint64_t valid; } modes[] = {
        {FS_CACHE_MODE_AUTO, 1}, {FS_CACHE_MODE_ALWAYS, 86400}, {FS_CACHE_MODE_NEVER, 0}};
    host_write("here", "x");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct fsrv *s;
        struct fsrv_limits lim = {64, 16, 0};
        assert_int_equal(fsrv_open(&s, dir, false, modes[i].mode, &lim), 0);
        req_begin(FUSE_INIT, 0);
        struct fuse_init_in in = {.major = 7, .minor = 38};
        req_add(&in, sizeof(in));
        assert_int_equal(req_send(s), 0);
        struct fsrv_stats before, after;
        fsrv_get_stats(s, &before);
        req_begin(FUSE_LOOKUP, FUSE_ROOT_ID);
        req_str("not-here");
        int err = req_send(s);
        if (modes[i].valid) {
            assert_int_equal(err, 0);
            const struct fuse_entry_out *e = reply();
            assert_true(e->nodeid == 0 && e->entry_valid == modes[i].valid);
            assert_true(e->attr_valid == 0 && e->attr.ino == 0);
        } else {
            assert_int_equal(err, -ENOENT);
        }
        fsrv_get_stats(s, &after);
        assert_int_equal(after.nodes, before.nodes);
        req_begin(FUSE_LOOKUP, must_lookup(s, FUSE_ROOT_ID, "here")); /* not a directory */
        req_str("x");
        assert_int_equal(req_send(s), -ENOTDIR);
        fsrv_close(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xattrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhaustion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Requests to the virtio-fs server on plain buffers, and a temporary
 * share, for the server's unit tests (test_fs_server.c, test_fs_nodes.c). */
#ifndef EMBER_TESTS_UNIT_FS_REQ_H
#define EMBER_TESTS_UNIT_FS_REQ_H

#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/backends/fs_server.h"

/* --- building requests ---------------------------------------------------------- */

struct req {
    uint8_t buf[200000];
    size_t len;
    uint8_t out[200000];
    size_t out_cap;
    size_t got;
};

static struct req R;

static inline void req_begin(uint32_t opcode, uint64_t nodeid)
{
    memset(&R.buf, 0, sizeof(struct fuse_in_header));
    struct fuse_in_header *h = (void *)R.buf;
    h->opcode = opcode;
    h->nodeid = nodeid;
    h->unique = 77;
    R.len = sizeof(*h);
    R.out_cap = sizeof(R.out);
}

static inline void req_add(const void *p, size_t n)
{
    memcpy(R.buf + R.len, p, n);
    R.len += n;
}

static inline void req_str(const char *s)
{
    req_add(s, strlen(s) + 1);
}

/* Send: the readable bytes in three pieces (so that no header sits in one
 * buffer), the reply into two; returns the reply's error (0 or -errno),
 * or 1 if there was no reply at all. */
static inline int req_send(struct fsrv *s)
{
    struct fuse_in_header *h = (void *)R.buf;
    h->len = (uint32_t)R.len;
    size_t a = R.len / 3, b = 2 * R.len / 3;
    struct iovec in[3] = {{R.buf, a}, {R.buf + a, b - a}, {R.buf + b, R.len - b}};
    size_t half = R.out_cap / 2;
    struct iovec out[2] = {{R.out, half}, {R.out + half, R.out_cap - half}};
    memset(R.out, 0xa5, sizeof(R.out));
    R.got = fsrv_handle(s, in, 3, out, 2);
    if (R.got == 0)
        return 1;
    const struct fuse_out_header *oh = (void *)R.out;
    assert_int_equal(oh->len, R.got);
    assert_int_equal(oh->unique, 77);
    return oh->error;
}

static inline const void *reply(void)
{
    return R.out + sizeof(struct fuse_out_header);
}

/* --- the share ------------------------------------------------------------------- */

static char dir[256], outside[256];

static inline void host_path(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", dir, rel);
}

static inline void host_write(const char *rel, const char *text)
{
    char p[512];
    host_path(p, sizeof(p), rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static inline char *host_read(const char *rel)
{
    static char text[4096];
    char p[512];
    host_path(p, sizeof(p), rel);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

/* A server on the share, past INIT; 'open': node descriptors kept (0: all). */
static inline struct fsrv *serve_lru(bool ro, unsigned nodes, unsigned handles, unsigned open)
{
    struct fsrv *s;
    struct fsrv_limits lim = {nodes, handles, open};
    assert_int_equal(fsrv_open(&s, dir, ro, FS_CACHE_MODE_AUTO, &lim), 0);
    req_begin(FUSE_INIT, 0);
    struct fuse_init_in in = {.major = 7, .minor = 38, .max_readahead = 65536,
                              .flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_POSIX_LOCKS};
    req_add(&in, sizeof(in));
    assert_int_equal(req_send(s), 0);
    const struct fuse_init_out *o = reply();
    assert_int_equal(o->major, 7);
    assert_int_equal(o->max_write, FSRV_MAX_WRITE);
    assert_int_equal(o->flags, FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES); /* no locks offered */
    return s;
}

static inline struct fsrv *serve(bool ro, unsigned nodes, unsigned handles)
{
    return serve_lru(ro, nodes, handles, 0);
}

static inline int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ember-fs-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(outside, sizeof(outside), "/tmp/ember-fs-outside-XXXXXX");
    int fd = mkstemp(outside);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SECRET", 6), 6);
    close(fd);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static inline uint64_t lookup(struct fsrv *s, uint64_t parent, const char *name, int *err)
{
    req_begin(FUSE_LOOKUP, parent);
    req_str(name);
    *err = req_send(s);
    uint64_t id = *err ? 0 : ((const struct fuse_entry_out *)reply())->nodeid;
    if (!*err && !id) /* a negative entry: how the guest's kernel reads it */
        *err = -ENOENT;
    return id;
}

static inline uint64_t must_lookup(struct fsrv *s, uint64_t parent, const char *name)
{
    int err;
    uint64_t id = lookup(s, parent, name, &err);
    assert_int_equal(err, 0);
    return id;
}

static inline uint64_t open_file(struct fsrv *s, uint64_t node, uint32_t flags, int *err)
{
    req_begin(FUSE_OPEN, node);
    struct fuse_open_in in = {.flags = flags};
    req_add(&in, sizeof(in));
    *err = req_send(s);
    return *err ? 0 : ((const struct fuse_open_out *)reply())->fh;
}

static inline int release(struct fsrv *s, uint64_t node, uint64_t fh, bool dirh)
{
    req_begin(dirh ? FUSE_RELEASEDIR : FUSE_RELEASE, node);
    struct fuse_release_in in = {.fh = fh};
    req_add(&in, sizeof(in));
    return req_send(s);
}

static inline int simple_name_op(struct fsrv *s, uint32_t op, uint64_t parent, const char *name)
{
    req_begin(op, parent);
    req_str(name);
    return req_send(s);
}

#endif

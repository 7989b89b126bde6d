/* The virtio-fs server's node descriptors closed least recently used
 * first and reopened by name: a guest that looks up many files without
 * forgetting them keeps ember's descriptors bounded, its files stay
 * usable (also after its own renames), a file the host replaced or moved
 * is stale, and a reopen never leaves the share (a directory on the way
 * swapped for a symlink to the outside); and the table in a snapshot: a
 * restored server knows the guest's nodes and open files, on the same
 * directory only, and refuses a corrupt record. */
#include "fs_req.h"

#include <dirent.h>
#include <json-c/json.h>

#include "rec_copy.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int getattr(struct fsrv *s, uint64_t node, struct fuse_attr_out *out)
{
    req_begin(FUSE_GETATTR, node);
    struct fuse_getattr_in in = {0};
    req_add(&in, sizeof(in));
    int err = req_send(s);
    if (!err && out)
        *out = *(const struct fuse_attr_out *)reply();
    return err;
}

static void host_mkdir(const char *rel)
{
    char p[512];
    host_path(p, sizeof(p), rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void host_rename(const char *from, const char *to)
{
    char a[512], b[512];
    host_path(a, sizeof(a), from);
    host_path(b, sizeof(b), to);
    assert_int_equal(rename(a, b), 0);
}

/* Look up n0..n(count-1) (made on the host first if 'make'). */
static void lookup_many(struct fsrv *s, const char *prefix, int count, bool make)
{
    char name[32];
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        if (make)
            host_write(name, "x");
        must_lookup(s, FUSE_ROOT_ID, name);
    }
}

static void test_bounded_descriptors(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 4096, 8, 4);
    int before = count_fds();
    lookup_many(s, "n", 1000, true);
    struct fsrv_stats st;
    fsrv_get_stats(s, &st);
    assert_int_equal(st.nodes, 1001);
    assert_true(st.node_fds <= 4);
    assert_true(count_fds() - before <= 4);
    assert_true(st.evictions >= 996);
    /* The table itself is bounded: ENFILE past it, no descriptor kept. */
    fsrv_close(s);
    s = serve_lru(false, 100, 8, 4);
    before = count_fds();
    char name[32];
    int err = 0;
    for (int i = 0; i < 200 && !err; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        lookup(s, FUSE_ROOT_ID, name, &err);
    }
    assert_int_equal(err, -ENFILE);
    assert_true(count_fds() - before <= 4);
    fsrv_close(s);
}

static void test_reopen(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 4096, 8, 3);
    host_mkdir("a");
    host_mkdir("a/b");
    host_write("a/b/f", "deep");
    uint64_t a = must_lookup(s, FUSE_ROOT_ID, "a");
    uint64_t b = must_lookup(s, a, "b");
    uint64_t f = must_lookup(s, b, "f");
    lookup_many(s, "n", 20, true); /* a, b and f closed */
    struct fuse_attr_out ao;
    assert_int_equal(getattr(s, f, &ao), 0); /* reopened: a, b, then f */
    assert_int_equal(ao.attr.size, 4);
    struct fsrv_stats st;
    fsrv_get_stats(s, &st);
    assert_true(st.reopens >= 3);
    assert_true(st.node_fds <= 3);
    int err;
    uint64_t fh = open_file(s, f, O_RDONLY, &err);
    assert_int_equal(err, 0);
    req_begin(FUSE_READ, f);
    struct fuse_read_in rd = {.fh = fh, .size = 100};
    req_add(&rd, sizeof(rd));
    assert_int_equal(req_send(s), 0);
    assert_memory_equal(reply(), "deep", 4);
    assert_int_equal(release(s, f, fh, false), 0);
    /* A lookup through a closed directory reopens it too. */
    lookup_many(s, "n", 20, false);
    uint64_t g = lookup(s, b, "g", &err);
    assert_int_equal(err, -ENOENT);
    (void)g;
    fsrv_close(s);
}

static void test_renames(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 4096, 8, 2);
    host_mkdir("d");
    host_mkdir("e");
    host_write("d/moved", "m");
    host_write("d/x", "x");
    host_write("e/y", "yy");
    host_write("gone", "g");
    host_write("replaced", "r");
    host_write("hostmoved", "h");
    uint64_t d = must_lookup(s, FUSE_ROOT_ID, "d");
    uint64_t e = must_lookup(s, FUSE_ROOT_ID, "e");
    uint64_t moved = must_lookup(s, d, "moved");
    uint64_t x = must_lookup(s, d, "x");
    uint64_t y = must_lookup(s, e, "y");
    uint64_t replaced = must_lookup(s, FUSE_ROOT_ID, "replaced");
    uint64_t hostmoved = must_lookup(s, FUSE_ROOT_ID, "hostmoved");
    /* The guest renames: the node follows its name. */
    req_begin(FUSE_RENAME, d);
    struct fuse_rename_in rn = {.newdir = e};
    req_add(&rn, sizeof(rn));
    req_str("moved");
    req_str("there");
    assert_int_equal(req_send(s), 0);
    req_begin(FUSE_RENAME2, d);
    struct fuse_rename2_in rx = {.newdir = e, .flags = RENAME_EXCHANGE};
    req_add(&rx, sizeof(rx));
    req_str("x");
    req_str("y");
    assert_int_equal(req_send(s), 0);
    /* The host replaces one file and moves another. */
    char p[512];
    host_path(p, sizeof(p), "replaced");
    assert_int_equal(unlink(p), 0);
    host_write("replaced", "new");
    host_rename("hostmoved", "e/hostmoved");
    lookup_many(s, "n", 10, true); /* everything closed */
    struct fuse_attr_out ao;
    assert_int_equal(getattr(s, moved, &ao), 0);
    assert_int_equal(ao.attr.size, 1);
    assert_int_equal(getattr(s, x, &ao), 0);
    assert_int_equal(ao.attr.size, 1);
    assert_int_equal(getattr(s, y, &ao), 0);
    assert_int_equal(ao.attr.size, 2);
    assert_int_equal(getattr(s, replaced, NULL), -ESTALE);
    assert_int_equal(getattr(s, hostmoved, NULL), -ESTALE);
    /* Looked up again, a moved file is found and usable by its new name. */
    assert_int_equal(must_lookup(s, e, "hostmoved"), hostmoved);
    lookup_many(s, "n", 10, false);
    assert_int_equal(getattr(s, hostmoved, NULL), 0);
    fsrv_close(s);
}

static void test_reopen_stays_beneath(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 4096, 8, 2);
    host_mkdir("sub");
    host_write("sub/secret", "inside");
    uint64_t sub = must_lookup(s, FUSE_ROOT_ID, "sub");
    uint64_t f = must_lookup(s, sub, "secret");
    lookup_many(s, "n", 10, true);
    /* The host swaps the directory for a symlink to the outside (where a
     * file of the same name waits): the reopen must not follow it. */
    char outdir[300], p[512];
    snprintf(outdir, sizeof(outdir), "%s.d", outside);
    assert_int_equal(mkdir(outdir, 0755), 0);
    snprintf(p, sizeof(p), "%s/secret", outdir);
    FILE *o = fopen(p, "w");
    assert_non_null(o);
    fputs("OUTSIDE", o);
    fclose(o);
    host_rename("sub", "sub.old");
    host_path(p, sizeof(p), "sub");
    assert_int_equal(symlink(outdir, p), 0);
    assert_int_equal(getattr(s, f, NULL), -ESTALE);
    assert_int_equal(getattr(s, sub, NULL), -ESTALE);
    struct fsrv_stats st;
    fsrv_get_stats(s, &st);
    assert_true(st.stale >= 2);
    fsrv_close(s);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", outdir);
    assert_int_equal(system(cmd), 0);
}

/* FORGET of a file frees it; a directory stays while a child names it. */
static void test_forget_parents(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 16, 8, 2);
    host_mkdir("p");
    host_write("p/c", "c");
    uint64_t p = must_lookup(s, FUSE_ROOT_ID, "p");
    uint64_t c = must_lookup(s, p, "c");
    req_begin(FUSE_FORGET, p);
    struct fuse_forget_in fi = {.nlookup = 1};
    req_add(&fi, sizeof(fi));
    assert_int_equal(req_send(s), 1);
    struct fsrv_stats st;
    fsrv_get_stats(s, &st);
    assert_int_equal(st.nodes, 3); /* the root, p (kept for c), c */
    lookup_many(s, "n", 4, true);
    assert_int_equal(getattr(s, c, NULL), 0);
    assert_int_equal(getattr(s, p, NULL), -ESTALE); /* the guest's id is gone */
    req_begin(FUSE_FORGET, c);
    req_add(&fi, sizeof(fi));
    assert_int_equal(req_send(s), 1);
    fsrv_get_stats(s, &st);
    assert_int_equal(st.nodes, 5); /* the root and n0..n3 */
    fsrv_close(s);
}

static void write_fh(struct fsrv *s, uint64_t node, uint64_t fh, uint64_t off, const char *text)
{
    req_begin(FUSE_WRITE, node);
    struct fuse_write_in wi = {.fh = fh, .offset = off, .size = (uint32_t)strlen(text)};
    req_add(&wi, sizeof(wi));
    req_add(text, strlen(text));
    assert_int_equal(req_send(s), 0);
}

static void test_snapshot(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 64, 8, 4);
    host_mkdir("a");
    host_write("a/f", "12345");
    host_write("gone", "g");
    uint64_t a = must_lookup(s, FUSE_ROOT_ID, "a");
    uint64_t f = must_lookup(s, a, "f");
    uint64_t gone = must_lookup(s, FUSE_ROOT_ID, "gone");
    int err;
    uint64_t fh = open_file(s, f, O_WRONLY, &err);
    assert_int_equal(err, 0);
    uint64_t gone_fh = open_file(s, gone, O_RDONLY, &err);
    assert_int_equal(err, 0);
    struct rec r = rec_new();
    fsrv_save(s, r);
    struct rec back = rec_copy(r);
    fsrv_close(s);
    char p[512];
    host_path(p, sizeof(p), "gone");
    assert_int_equal(unlink(p), 0);
    /* The same directory: the guest's ids and open files work on. */
    s = serve_lru(false, 64, 8, 4);
    assert_int_equal(fsrv_load(s, back), 0);
    struct fuse_attr_out ao;
    assert_int_equal(getattr(s, f, &ao), 0);
    assert_int_equal(ao.attr.size, 5);
    write_fh(s, f, fh, 5, "678");
    assert_string_equal(host_read("a/f"), "12345678");
    assert_int_equal(getattr(s, gone, NULL), -ESTALE);
    req_begin(FUSE_READ, gone);
    struct fuse_read_in rd = {.fh = gone_fh, .size = 10};
    req_add(&rd, sizeof(rd));
    assert_int_equal(req_send(s), -EBADF);
    assert_int_equal(release(s, gone, gone_fh, false), 0);
    assert_int_equal(release(s, f, fh, false), 0);
    must_lookup(s, a, "f"); /* the same node */
    fsrv_close(s);
    /* Another directory is refused. */
    char other[] = "/tmp/ember-fs-other-XXXXXX";
    assert_non_null(mkdtemp(other));
    struct fsrv_limits lim = {64, 8, 4};
    assert_int_equal(fsrv_open(&s, other, false, FS_CACHE_MODE_AUTO, &lim), 0);
    assert_int_equal(fsrv_load(s, back), -EINVAL);
    assert_non_null(strstr(err_msg(), "not the one snapshotted"));
    fsrv_close(s);
    rmdir(other);
    rec_free(back);
}

/* A record changed: each is refused, and the server is left empty. */
static void test_snapshot_hostile(void **state)
{
    (void)state;
    struct fsrv *s = serve_lru(false, 64, 8, 4);
    host_mkdir("a");
    host_write("a/f", "x");
    uint64_t a = must_lookup(s, FUSE_ROOT_ID, "a");
    must_lookup(s, a, "f");
    struct rec r = rec_new();
    fsrv_save(s, r);
    struct rec good = rec_copy(r);
    const char *nodes = rec_get_str_or_null(good, "nodes");
    assert_non_null(nodes);
    size_t len = strlen(nodes);
    struct { size_t at; char c; } edits[] = {
        {0, 'f'},             /* node a's slot beyond the table */
        {16, 'f'},            /* its parent likewise */
        {81, '0'},            /* its name's length 0 */
        {84, '2'},            /* a name with a '/' ("a" -> "/") -- byte 42, hex 2f */
        {len - 1, 'x'},       /* not hexadecimal */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *copy = strdup(nodes);
        copy[edits[i].at] = edits[i].c;
        if (i == 3)
            copy[edits[i].at + 1] = 'f';
        struct rec bad = rec_copy(rec_new());
        json_object_object_add(bad.obj, "root_ino",
                               json_object_get(json_object_object_get(good.obj, "root_ino")));
        json_object_object_add(bad.obj, "nodes_len",
                               json_object_get(json_object_object_get(good.obj, "nodes_len")));
        json_object_object_add(bad.obj, "handles_len", json_object_new_int(0));
        json_object_object_add(bad.obj, "handles", json_object_new_string(""));
        json_object_object_add(bad.obj, "nodes", json_object_new_string(copy));
        if (fsrv_load(s, bad) != -EINVAL)
            fail_msg("edit %zu was not refused", i);
        struct fsrv_stats st;
        fsrv_get_stats(s, &st);
        assert_int_equal(st.nodes, 1);
        rec_free(bad);
        free(copy);
    }
    rec_free(good);
    fsrv_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bounded_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_stays_beneath, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_parents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

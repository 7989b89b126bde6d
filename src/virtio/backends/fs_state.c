/* The virtio-fs server in a snapshot. What the guest holds is nodeids and
 * file handles; ember's side of them is host descriptors, which a snapshot
 * cannot carry. So a node is saved as what reopens it: its parent, its name
 * there, its inode number and birth time; a handle as its node and open
 * flags. A restore needs the same directory (the same inode, not a copy),
 * makes every node a closed one (reopened by name when the guest uses it,
 * ESTALE if its file is gone or another file has its name), and reopens
 * every open file at once (one that cannot be found answers EBADF). Saved
 * as two packed byte strings: a share may hold a quarter million nodes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/backends/fs_internal.h"

#define NODE_FIXED 42 /* slot, gen, parent, type: 4 each; ino, birth, nlookup: 8; name length: 2 */
#define HANDLE_SIZE 21 /* slot, gen, flags: 4 each; nodeid: 8; dir: 1 */
#define STATE_MAX (12u << 20)

struct packer {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
};

static void pack(struct packer *p, const void *data, size_t n)
{
    if (p->failed || n > p->cap - p->len) {
        size_t cap = p->cap ? p->cap * 2 : 65536;
        while (cap - p->len < n)
            cap *= 2;
        uint8_t *b = p->failed ? NULL : realloc(p->buf, cap);
        if (!b) {
            p->failed = true;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
}

static void pack32(struct packer *p, uint32_t v) { pack(p, &v, 4); }
static void pack64(struct packer *p, uint64_t v) { pack(p, &v, 8); }

static void put_blob(struct rec r, const char *key, const struct packer *p)
{
    char len_key[32];
    snprintf(len_key, sizeof(len_key), "%s_len", key);
    rec_put_u64(r, len_key, p->failed ? UINT64_MAX : p->len); /* read back as an error */
    rec_put_bytes(r, key, p->buf, p->failed ? 0 : p->len);
}

void fsrv_save(struct fsrv *s, struct rec r)
{
    struct fs_tables *t = &s->t;
    pthread_mutex_lock(&t->lock);
    rec_put_u64(r, "root_ino", t->nodes[0].ino);
    struct packer nodes = {0}, handles = {0};
    for (unsigned i = 1; i < t->max_nodes; i++) {
        const struct fs_node *n = &t->nodes[i];
        if (!n->live)
            continue;
        uint16_t len = (uint16_t)strlen(n->name);
        pack32(&nodes, i);
        pack32(&nodes, n->gen);
        pack32(&nodes, (uint32_t)n->parent);
        pack32(&nodes, n->type);
        pack64(&nodes, n->ino);
        pack64(&nodes, n->birth);
        pack64(&nodes, n->nlookup);
        pack(&nodes, &len, 2);
        pack(&nodes, n->name, len);
    }
    unsigned nameless = 0;
    for (unsigned i = 0; i < t->max_handles; i++) {
        const struct fs_handle *h = &t->handles[i];
        if (!h->live || h->released)
            continue;
        struct stat st;
        if (h->fd >= 0 && fstat(h->fd, &st) == 0 && st.st_nlink == 0)
            nameless++;
        uint8_t dir = h->dir;
        pack32(&handles, i);
        pack32(&handles, h->gen);
        pack32(&handles, (uint32_t)h->flags);
        pack64(&handles, h->nodeid);
        pack(&handles, &dir, 1);
    }
    pthread_mutex_unlock(&t->lock);
    if (nameless)
        log_warn("virtio-fs: the guest holds %u open file(s) deleted from the share: a restore "
                 "cannot reopen them (the guest will get EBADF on them)", nameless);
    put_blob(r, "nodes", &nodes);
    put_blob(r, "handles", &handles);
    free(nodes.buf);
    free(handles.buf);
}

static int get_blob(struct rec r, const char *key, uint8_t **out, size_t *len)
{
    char len_key[32];
    snprintf(len_key, sizeof(len_key), "%s_len", key);
    uint64_t n;
    int ret = rec_get_u64(r, len_key, STATE_MAX, &n);
    if (ret)
        return ret;
    *out = malloc(n ? n : 1);
    if (!*out)
        return err_set(-ENOMEM, "out of memory");
    *len = n;
    return rec_get_bytes(r, key, *out, n);
}

static int load_nodes(struct fs_tables *t, const uint8_t *b, size_t len)
{
    char name[256];
    for (size_t at = 0; at < len;) {
        uint32_t slot, gen, parent, type;
        uint64_t ino, birth, nlookup;
        uint16_t namelen;
        if (len - at < NODE_FIXED)
            return err_set(-EINVAL, "virtio-fs: a node is cut short");
        memcpy(&slot, b + at, 4);
        memcpy(&gen, b + at + 4, 4);
        memcpy(&parent, b + at + 8, 4);
        memcpy(&type, b + at + 12, 4);
        memcpy(&ino, b + at + 16, 8);
        memcpy(&birth, b + at + 24, 8);
        memcpy(&nlookup, b + at + 32, 8);
        memcpy(&namelen, b + at + 40, 2);
        at += NODE_FIXED;
        if (namelen == 0 || namelen > 255 || len - at < namelen)
            return err_set(-EINVAL, "virtio-fs: node %u's name is cut short or too long", slot);
        memcpy(name, b + at, namelen);
        name[namelen] = 0;
        at += namelen;
        if (strlen(name) != namelen)
            return err_set(-EINVAL, "virtio-fs: node %u's name holds a NUL", slot);
        int ret = fs_node_restore(t, slot, gen, (int32_t)parent, name, (ino_t)ino, birth,
                                  (mode_t)type, nlookup);
        if (ret)
            return ret;
    }
    return fs_tables_restored(t);
}

/* Reopen the guest's open files, as they were opened (never truncating
 * again); one that cannot be reopened stays, to be released. */
static int load_handles(struct fsrv *s, const uint8_t *b, size_t len, unsigned *lost)
{
    if (len % HANDLE_SIZE)
        return err_set(-EINVAL, "virtio-fs: the open files are cut short");
    for (size_t at = 0; at < len; at += HANDLE_SIZE) {
        uint32_t slot, gen, flags;
        uint64_t nodeid;
        memcpy(&slot, b + at, 4);
        memcpy(&gen, b + at + 4, 4);
        memcpy(&flags, b + at + 8, 4);
        memcpy(&nodeid, b + at + 12, 8);
        bool dir = b[at + 20] != 0;
        int clean = dir ? O_RDONLY | O_DIRECTORY
                        : (int)flags & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_NONBLOCK);
        struct fs_node *n = fs_node_get(&s->t, nodeid);
        int fd = !n ? -ESTALE
                 : (n->type == S_IFDIR) != dir ? -EINVAL
                 : s->read_only && (clean & O_ACCMODE) != O_RDONLY ? -EROFS
                                                                    : fs_reopen(s, n, clean);
        fs_node_put(&s->t, n);
        if (fd < 0)
            (*lost)++;
        int ret = fs_handle_restore(&s->t, ((uint64_t)gen << 32) | slot, fd < 0 ? -1 : fd, dir,
                                    nodeid, clean);
        if (ret) {
            if (fd >= 0)
                close(fd);
            return ret;
        }
    }
    return 0;
}

int fsrv_load(struct fsrv *s, struct rec r)
{
    uint64_t root_ino;
    int ret = rec_get_u64(r, "root_ino", UINT64_MAX, &root_ino);
    if (!ret && root_ino != (uint64_t)s->t.nodes[0].ino)
        ret = err_set(-EINVAL, "the shared directory is not the one snapshotted (inode %llu, "
                      "the snapshot's %llu): a restore needs the same directory, not a copy",
                      (unsigned long long)s->t.nodes[0].ino, (unsigned long long)root_ino);
    uint8_t *nodes = NULL, *handles = NULL;
    size_t nodes_len = 0, handles_len = 0;
    if (!ret)
        ret = get_blob(r, "nodes", &nodes, &nodes_len);
    if (!ret)
        ret = get_blob(r, "handles", &handles, &handles_len);
    fs_tables_reset(&s->t);
    if (!ret)
        ret = load_nodes(&s->t, nodes, nodes_len);
    unsigned lost = 0;
    if (!ret)
        ret = load_handles(s, handles, handles_len, &lost);
    free(nodes);
    free(handles);
    if (ret) {
        fs_tables_reset(&s->t);
        return ret;
    }
    if (lost)
        log_warn("virtio-fs: %u of the guest's open files are gone from the share since the "
                 "snapshot (the guest gets EBADF on them)", lost);
    return 0;
}

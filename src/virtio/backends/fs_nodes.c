/* The virtio-fs server's node and handle tables: fixed-size arrays with
 * free lists (the guest cannot make them grow), a hash from a host file's
 * (dev, ino) to its node so that a file the guest looks up twice is one
 * node, and reference counts so that a FORGET or RELEASE racing a request
 * on another worker never closes a descriptor in use. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "virtio/backends/fs_internal.h"

#define NODEID(slot, gen) (((uint64_t)(gen) << 32) | ((uint64_t)(slot) + 1))

static unsigned hash_of(const struct fs_tables *t, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
    return (unsigned)(h >> 32) & (t->nr_buckets - 1);
}

static void hash_insert(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    unsigned b = hash_of(t, n->dev, n->ino);
    n->hash_next = t->buckets[b];
    t->buckets[b] = slot;
}

static void hash_remove(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    int32_t *link = &t->buckets[hash_of(t, n->dev, n->ino)];
    while (*link >= 0 && *link != slot)
        link = &t->nodes[*link].hash_next;
    if (*link == slot)
        *link = n->hash_next;
}

int fs_tables_init(struct fs_tables *t, unsigned max_nodes, unsigned max_handles, int root_fd,
                   const struct stat *root)
{
    *t = (struct fs_tables){0};
    if (max_nodes < 2 || max_handles < 1 || max_nodes > (1u << 24))
        return err_set(-EINVAL, "virtio-fs: bad table sizes (%u nodes, %u handles)", max_nodes,
                       max_handles);
    t->nr_buckets = 1;
    while (t->nr_buckets < max_nodes)
        t->nr_buckets <<= 1;
    t->nodes = calloc(max_nodes, sizeof(*t->nodes));
    t->buckets = malloc(t->nr_buckets * sizeof(*t->buckets));
    t->handles = calloc(max_handles, sizeof(*t->handles));
    if (!t->nodes || !t->buckets || !t->handles) {
        fs_tables_destroy(t);
        return err_set(-ENOMEM, "virtio-fs: out of memory for the tables");
    }
    pthread_mutex_init(&t->lock, NULL);
    t->max_nodes = max_nodes;
    t->max_handles = max_handles;
    for (unsigned i = 0; i < t->nr_buckets; i++)
        t->buckets[i] = -1;
    for (unsigned i = 0; i < max_nodes; i++) {
        t->nodes[i].fd = -1;
        t->nodes[i].free_next = i + 1 < max_nodes ? (int32_t)i + 1 : -1;
    }
    for (unsigned i = 0; i < max_handles; i++) {
        t->handles[i].fd = -1;
        t->handles[i].free_next = i + 1 < max_handles ? (int32_t)i + 1 : -1;
        pthread_mutex_init(&t->handles[i].dir_lock, NULL);
    }
    /* The root: slot 0, generation 0 (FUSE_ROOT_ID), never forgotten. */
    struct fs_node *r = &t->nodes[0];
    r->fd = root_fd;
    r->dev = root->st_dev;
    r->ino = root->st_ino;
    r->type = root->st_mode & S_IFMT;
    r->nlookup = 1;
    hash_insert(t, 0);
    t->free_nodes = max_nodes > 1 ? 1 : -1;
    t->used_nodes = 1;
    t->free_handles = 0;
    return 0;
}

static void node_free(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    hash_remove(t, slot);
    close(n->fd);
    n->fd = -1;
    n->gen++;
    n->nlookup = 0;
    n->free_next = t->free_nodes;
    t->free_nodes = slot;
    t->used_nodes--;
}

static void handle_free(struct fs_tables *t, int32_t slot)
{
    struct fs_handle *h = &t->handles[slot];
    close(h->fd);
    h->fd = -1;
    h->gen++;
    h->released = false;
    h->free_next = t->free_handles;
    t->free_handles = slot;
    t->used_handles--;
}

void fs_tables_reset(struct fs_tables *t)
{
    pthread_mutex_lock(&t->lock);
    for (unsigned i = 1; i < t->max_nodes; i++)
        if (t->nodes[i].fd >= 0)
            node_free(t, (int32_t)i);
    for (unsigned i = 0; i < t->max_handles; i++)
        if (t->handles[i].fd >= 0)
            handle_free(t, (int32_t)i);
    t->nodes[0].nlookup = 1;
    pthread_mutex_unlock(&t->lock);
}

void fs_tables_destroy(struct fs_tables *t)
{
    if (t->nodes && t->handles) {
        fs_tables_reset(t);
        pthread_mutex_destroy(&t->lock);
        for (unsigned i = 0; i < t->max_handles; i++)
            pthread_mutex_destroy(&t->handles[i].dir_lock);
    }
    free(t->nodes);
    free(t->buckets);
    free(t->handles);
    t->nodes = NULL;
    t->buckets = NULL;
    t->handles = NULL;
}

/* The slot a guest's id names, or -1 (unlocked helpers: lock held). */
static int32_t node_slot(const struct fs_tables *t, uint64_t nodeid)
{
    uint64_t slot = (nodeid & 0xffffffffu) - 1;
    if ((nodeid & 0xffffffffu) == 0 || slot >= t->max_nodes)
        return -1;
    const struct fs_node *n = &t->nodes[slot];
    return n->fd >= 0 && n->gen == (uint32_t)(nodeid >> 32) ? (int32_t)slot : -1;
}

struct fs_node *fs_node_get(struct fs_tables *t, uint64_t nodeid)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = node_slot(t, nodeid);
    struct fs_node *n = slot >= 0 ? &t->nodes[slot] : NULL;
    if (n)
        n->refs++;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void node_maybe_free(struct fs_tables *t, struct fs_node *n)
{
    int32_t slot = (int32_t)(n - t->nodes);
    if (slot != 0 && n->refs == 0 && n->nlookup == 0)
        node_free(t, slot);
}

void fs_node_put(struct fs_tables *t, struct fs_node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&t->lock);
    n->refs--;
    node_maybe_free(t, n);
    pthread_mutex_unlock(&t->lock);
}

int fs_node_learn(struct fs_tables *t, int fd, const struct stat *st, uint64_t *nodeid)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = t->buckets[hash_of(t, st->st_dev, st->st_ino)];
    while (slot >= 0 && (t->nodes[slot].dev != st->st_dev || t->nodes[slot].ino != st->st_ino))
        slot = t->nodes[slot].hash_next;
    if (slot >= 0) {
        t->nodes[slot].nlookup++;
        *nodeid = NODEID(slot, t->nodes[slot].gen);
        pthread_mutex_unlock(&t->lock);
        close(fd);
        return 0;
    }
    slot = t->free_nodes;
    if (slot < 0) {
        pthread_mutex_unlock(&t->lock);
        close(fd);
        return -ENFILE;
    }
    struct fs_node *n = &t->nodes[slot];
    t->free_nodes = n->free_next;
    t->used_nodes++;
    n->fd = fd;
    n->dev = st->st_dev;
    n->ino = st->st_ino;
    n->type = st->st_mode & S_IFMT;
    n->nlookup = 1;
    n->refs = 0;
    hash_insert(t, slot);
    *nodeid = NODEID(slot, n->gen);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void fs_node_forget(struct fs_tables *t, uint64_t nodeid, uint64_t count)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = node_slot(t, nodeid);
    if (slot > 0) { /* the root stays */
        struct fs_node *n = &t->nodes[slot];
        n->nlookup -= count < n->nlookup ? count : n->nlookup;
        node_maybe_free(t, n);
    }
    pthread_mutex_unlock(&t->lock);
}

int fs_handle_add(struct fs_tables *t, int fd, bool dir, uint64_t *fh)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = t->free_handles;
    if (slot < 0) {
        pthread_mutex_unlock(&t->lock);
        close(fd);
        return -EMFILE;
    }
    struct fs_handle *h = &t->handles[slot];
    t->free_handles = h->free_next;
    t->used_handles++;
    h->fd = fd;
    h->dir = dir;
    h->refs = 0;
    h->released = false;
    *fh = ((uint64_t)h->gen << 32) | (uint64_t)slot;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static int32_t handle_slot(const struct fs_tables *t, uint64_t fh, bool dir)
{
    uint64_t slot = fh & 0xffffffffu;
    if (slot >= t->max_handles)
        return -1;
    const struct fs_handle *h = &t->handles[slot];
    bool ok = h->fd >= 0 && !h->released && h->dir == dir && h->gen == (uint32_t)(fh >> 32);
    return ok ? (int32_t)slot : -1;
}

struct fs_handle *fs_handle_get(struct fs_tables *t, uint64_t fh, bool dir)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = handle_slot(t, fh, dir);
    struct fs_handle *h = slot >= 0 ? &t->handles[slot] : NULL;
    if (h)
        h->refs++;
    pthread_mutex_unlock(&t->lock);
    return h;
}

void fs_handle_put(struct fs_tables *t, struct fs_handle *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&t->lock);
    if (--h->refs == 0 && h->released)
        handle_free(t, (int32_t)(h - t->handles));
    pthread_mutex_unlock(&t->lock);
}

int fs_handle_release(struct fs_tables *t, uint64_t fh, bool dir)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = handle_slot(t, fh, dir);
    if (slot >= 0) {
        t->handles[slot].released = true;
        if (t->handles[slot].refs == 0)
            handle_free(t, slot);
    }
    pthread_mutex_unlock(&t->lock);
    return slot >= 0 ? 0 : -EBADF;
}

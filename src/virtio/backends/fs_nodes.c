/* The virtio-fs server's node table: a fixed-size array with a free list
 * (the guest cannot make it grow), a hash from a host file's (dev, ino) to
 * its node so that a file the guest looks up twice is one node, reference
 * counts so that a FORGET racing a request on another worker never closes a
 * descriptor in use, and a least-recently-used list of the nodes holding a
 * descriptor: beyond 'max_open' the coldest is closed, and reopened from
 * its parent by name when the guest names it again. The handle table is in
 * fs_handles.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

static int32_t hash_find(const struct fs_tables *t, dev_t dev, ino_t ino)
{
    int32_t slot = t->buckets[hash_of(t, dev, ino)];
    while (slot >= 0 && (t->nodes[slot].dev != dev || t->nodes[slot].ino != ino))
        slot = t->nodes[slot].hash_next;
    return slot;
}

/* --- the open descriptors, most recently used first ------------------------------- */

static void lru_unlink(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    if (n->lru_prev >= 0)
        t->nodes[n->lru_prev].lru_next = n->lru_next;
    else
        t->lru_head = n->lru_next;
    if (n->lru_next >= 0)
        t->nodes[n->lru_next].lru_prev = n->lru_prev;
    else
        t->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = -1;
}

static void lru_push_front(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    n->lru_prev = -1;
    n->lru_next = t->lru_head;
    if (t->lru_head >= 0)
        t->nodes[t->lru_head].lru_prev = slot;
    t->lru_head = slot;
    if (t->lru_tail < 0)
        t->lru_tail = slot;
}

static void lru_touch(struct fs_tables *t, int32_t slot)
{
    if (slot == 0 || t->lru_head == slot)
        return; /* the root is never on the list: it is never closed */
    lru_unlink(t, slot);
    lru_push_front(t, slot);
}

/* A node takes descriptor 'fd'. */
static void node_set_fd(struct fs_tables *t, int32_t slot, int fd)
{
    t->nodes[slot].fd = fd;
    t->open_fds++;
    lru_push_front(t, slot);
}

static void node_close_fd(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    if (n->fd < 0)
        return;
    close(n->fd);
    n->fd = -1;
    t->open_fds--;
    lru_unlink(t, slot);
}

/* Close the least recently used descriptors beyond the limit; one in use
 * by a request stays (so the limit is exceeded by at most the requests in
 * flight, themselves bounded by the queue). */
static void evict(struct fs_tables *t)
{
    int32_t slot = t->lru_tail;
    while (t->open_fds > t->max_open && slot >= 0) {
        int32_t prev = t->nodes[slot].lru_prev;
        if (t->nodes[slot].refs == 0) {
            node_close_fd(t, slot);
            t->evictions++;
        }
        slot = prev;
    }
}

/* --- lifetime -------------------------------------------------------------------- */

static void node_free(struct fs_tables *t, int32_t slot);

/* Free the node if nothing needs it any more, then its parent likewise. */
static void node_maybe_free(struct fs_tables *t, int32_t slot)
{
    while (slot > 0) { /* the root stays */
        struct fs_node *n = &t->nodes[slot];
        if (n->refs || n->nlookup || n->kids)
            return;
        int32_t parent = n->parent;
        node_free(t, slot);
        slot = parent;
    }
}

static void set_parent(struct fs_tables *t, int32_t slot, int32_t parent)
{
    struct fs_node *n = &t->nodes[slot];
    int32_t old = n->parent;
    n->parent = parent;
    if (parent >= 0)
        t->nodes[parent].kids++;
    if (old >= 0) {
        t->nodes[old].kids--;
        node_maybe_free(t, old);
    }
}

static void node_free(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    hash_remove(t, slot);
    node_close_fd(t, slot);
    free(n->name);
    n->name = NULL;
    n->live = false;
    n->gen++;
    n->nlookup = 0;
    n->free_next = t->free_nodes;
    t->free_nodes = slot;
    t->used_nodes--;
    int32_t parent = n->parent;
    n->parent = -1;
    if (parent >= 0)
        t->nodes[parent].kids--; /* the caller frees the parent in turn */
}

int fs_tables_init(struct fs_tables *t, const struct fsrv_limits *lim, int root_fd,
                   const struct stat *root)
{
    *t = (struct fs_tables){0};
    unsigned max_nodes = lim->max_nodes, max_handles = lim->max_handles;
    unsigned max_open = lim->max_open ? lim->max_open : max_nodes;
    if (max_nodes < 2 || max_handles < 1 || max_open < 1 || max_nodes > (1u << 24))
        return err_set(-EINVAL, "virtio-fs: bad table sizes (%u nodes, %u open, %u handles)",
                       max_nodes, max_open, max_handles);
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
    t->max_open = max_open;
    t->lru_head = t->lru_tail = -1;
    for (unsigned i = 0; i < t->nr_buckets; i++)
        t->buckets[i] = -1;
    for (unsigned i = 0; i < max_nodes; i++) {
        t->nodes[i] = (struct fs_node){.fd = -1, .parent = -1, .lru_prev = -1, .lru_next = -1};
        t->nodes[i].free_next = i + 1 < max_nodes ? (int32_t)i + 1 : -1;
    }
    for (unsigned i = 0; i < max_handles; i++) {
        t->handles[i].fd = -1;
        t->handles[i].free_next = i + 1 < max_handles ? (int32_t)i + 1 : -1;
        pthread_mutex_init(&t->handles[i].dir_lock, NULL);
    }
    /* The root: slot 0, generation 0 (FUSE_ROOT_ID), never forgotten or
     * closed (its descriptor is the server's). */
    struct fs_node *r = &t->nodes[0];
    r->fd = root_fd;
    r->live = true;
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

void fs_tables_reset(struct fs_tables *t)
{
    pthread_mutex_lock(&t->lock);
    for (unsigned i = 1; i < t->max_nodes; i++) {
        if (t->nodes[i].live) {
            t->nodes[i].parent = -1; /* no parent bookkeeping: all go */
            node_free(t, (int32_t)i);
        }
    }
    t->nodes[0].nlookup = 1;
    t->nodes[0].kids = 0;
    fs_handles_reset(t);
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

/* --- reopening a closed node ------------------------------------------------------ */

/* Open 'slot' by name from its parent, whose descriptor is open. */
static int reopen_one(struct fs_tables *t, int32_t slot)
{
    struct fs_node *n = &t->nodes[slot];
    int fd = fs_open_beneath(t->nodes[n->parent].fd, n->name, O_PATH, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    uint64_t birth;
    if (fs_stat_fd(fd, &st, &birth) || st.st_dev != n->dev || st.st_ino != n->ino ||
        birth != n->birth || (st.st_mode & S_IFMT) != n->type) {
        close(fd); /* another file has the name now: the guest's is gone */
        return -ESTALE;
    }
    node_set_fd(t, slot, fd);
    t->reopens++;
    return 0;
}

/* Give 'slot' (in use by the caller) its descriptor again: open its
 * closed ancestors from the nearest open one down. Lock held. */
static int node_reopen(struct fs_tables *t, int32_t slot)
{
    int ret = 0;
    while (!ret && t->nodes[slot].fd < 0) {
        int32_t s = slot;
        unsigned depth = 0;
        /* The topmost closed one below an open parent. */
        while (t->nodes[s].parent >= 0 && t->nodes[t->nodes[s].parent].fd < 0 &&
               depth++ < t->max_nodes)
            s = t->nodes[s].parent;
        if (t->nodes[s].parent < 0 || depth > t->max_nodes)
            return -ESTALE; /* cannot happen: the root is always open */
        t->nodes[s].refs++; /* not evicted while its children open */
        ret = reopen_one(t, s);
        t->nodes[s].refs--;
    }
    evict(t);
    if (ret)
        t->stale++;
    return ret;
}

/* --- what the guest holds ---------------------------------------------------------- */

/* The slot a guest's id names, or -1 (unlocked helpers: lock held). */
static int32_t node_slot(const struct fs_tables *t, uint64_t nodeid)
{
    uint64_t slot = (nodeid & 0xffffffffu) - 1;
    if ((nodeid & 0xffffffffu) == 0 || slot >= t->max_nodes)
        return -1;
    const struct fs_node *n = &t->nodes[slot];
    /* A node the guest forgot but a child keeps is no longer the guest's. */
    bool ok = n->live && n->nlookup && n->gen == (uint32_t)(nodeid >> 32);
    return ok ? (int32_t)slot : -1;
}

struct fs_node *fs_node_get(struct fs_tables *t, uint64_t nodeid)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = node_slot(t, nodeid);
    struct fs_node *n = slot >= 0 ? &t->nodes[slot] : NULL;
    if (n) {
        n->refs++;
        if (n->fd >= 0) {
            lru_touch(t, slot);
        } else if (node_reopen(t, slot)) {
            n->refs--;
            node_maybe_free(t, slot);
            n = NULL;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

void fs_node_put(struct fs_tables *t, struct fs_node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&t->lock);
    n->refs--;
    node_maybe_free(t, (int32_t)(n - t->nodes));
    evict(t); /* descriptors kept past the limit while in use */
    pthread_mutex_unlock(&t->lock);
}

/* Would 'parent' (or one of its ancestors) be 'slot'? A rename on the host
 * the table has not seen could make a loop otherwise. */
static bool is_ancestor(const struct fs_tables *t, int32_t slot, int32_t parent)
{
    for (unsigned depth = 0; parent >= 0 && depth <= t->max_nodes; depth++) {
        if (parent == slot)
            return true;
        parent = t->nodes[parent].parent;
    }
    return parent >= 0;
}

/* The node is now known as 'name' in 'dir' (lock held). */
static int rename_node(struct fs_tables *t, int32_t slot, int32_t dir, const char *name)
{
    struct fs_node *n = &t->nodes[slot];
    if (slot == 0 || (n->parent == dir && n->name && !strcmp(n->name, name)))
        return 0;
    if (is_ancestor(t, slot, dir))
        return 0; /* keep the old name: it may still lead there */
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    free(n->name);
    n->name = copy;
    set_parent(t, slot, dir);
    return 0;
}

/* A closed node whose inode number now belongs to another file (the host
 * removed the guest's, and made a new one): it leaves the hash, and the
 * guest's id for it answers ESTALE until forgotten. */
static int32_t drop_if_reused(struct fs_tables *t, int32_t slot, uint64_t birth)
{
    struct fs_node *n = &t->nodes[slot];
    if (slot <= 0 || n->fd >= 0 || n->birth == birth)
        return slot;
    hash_remove(t, slot);
    n->ino = 0;
    n->dev = 0;
    n->hash_next = -1;
    t->stale++;
    return -1;
}

int fs_node_learn(struct fs_tables *t, struct fs_node *dir, const char *name, int fd,
                  const struct stat *st, uint64_t birth, uint64_t *nodeid)
{
    pthread_mutex_lock(&t->lock);
    int32_t dslot = (int32_t)(dir - t->nodes);
    int32_t slot = hash_find(t, st->st_dev, st->st_ino);
    if (slot >= 0)
        slot = drop_if_reused(t, slot, birth);
    int ret = 0;
    if (slot >= 0) {
        struct fs_node *n = &t->nodes[slot];
        ret = rename_node(t, slot, dslot, name);
        if (!ret && n->fd < 0) {
            node_set_fd(t, slot, fd); /* it was closed: this one will do */
            fd = -1;
        }
        if (!ret) {
            n->nlookup++;
            *nodeid = NODEID(slot, n->gen);
            lru_touch(t, slot);
        }
    } else if ((slot = t->free_nodes) < 0) {
        ret = -ENFILE;
    } else {
        struct fs_node *n = &t->nodes[slot];
        char *copy = strdup(name);
        if (!copy) {
            ret = -ENOMEM;
        } else {
            t->free_nodes = n->free_next;
            t->used_nodes++;
            *n = (struct fs_node){.fd = -1, .live = true, .gen = n->gen, .dev = st->st_dev,
                                  .ino = st->st_ino, .birth = birth,
                                  .type = st->st_mode & S_IFMT,
                                  .nlookup = 1, .parent = -1, .name = copy,
                                  .lru_prev = -1, .lru_next = -1};
            set_parent(t, slot, dslot);
            hash_insert(t, slot);
            node_set_fd(t, slot, fd);
            fd = -1;
            *nodeid = NODEID(slot, n->gen);
        }
    }
    evict(t);
    pthread_mutex_unlock(&t->lock);
    if (fd >= 0)
        close(fd);
    return ret;
}

void fs_node_forget(struct fs_tables *t, uint64_t nodeid, uint64_t count)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = node_slot(t, nodeid);
    if (slot > 0) { /* the root stays */
        struct fs_node *n = &t->nodes[slot];
        n->nlookup -= count < n->nlookup ? count : n->nlookup;
        node_maybe_free(t, slot);
    }
    pthread_mutex_unlock(&t->lock);
}

void fs_node_renamed(struct fs_tables *t, dev_t dev, ino_t ino, const struct fs_node *from,
                     const char *old, const struct fs_node *to, const char *new)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = hash_find(t, dev, ino);
    int32_t fslot = (int32_t)(from - t->nodes), tslot = (int32_t)(to - t->nodes);
    if (slot > 0 && t->nodes[slot].parent == fslot && !strcmp(t->nodes[slot].name, old) &&
        rename_node(t, slot, tslot, new))
        t->stale++; /* no memory for the name: the old one fails later (ESTALE) */
    pthread_mutex_unlock(&t->lock);
}

/* --- restoring --------------------------------------------------------------------- */

int fs_node_restore(struct fs_tables *t, uint32_t slot, uint32_t gen, int32_t parent,
                    const char *name, ino_t ino, uint64_t birth, mode_t type, uint64_t nlookup)
{
    if (slot == 0 || slot >= t->max_nodes || t->nodes[slot].live)
        return err_set(-EINVAL, "virtio-fs: node slot %u is out of range or repeated", slot);
    if (parent < 0 || (uint32_t)parent >= t->max_nodes || (uint32_t)parent == slot || !*name ||
        strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return err_set(-EINVAL, "virtio-fs: node %u has a bad parent or name", slot);
    struct fs_node *n = &t->nodes[slot];
    if (!(n->name = strdup(name)))
        return err_set(-ENOMEM, "out of memory");
    n->live = true;
    n->gen = gen;
    n->dev = t->nodes[0].dev; /* beneath the share: never another file system */
    n->ino = ino;
    n->birth = birth;
    n->type = type & S_IFMT;
    n->nlookup = nlookup;
    n->parent = parent;
    n->fd = -1;
    hash_insert(t, (int32_t)slot);
    t->used_nodes++;
    return 0;
}

int fs_tables_restored(struct fs_tables *t)
{
    t->free_nodes = -1;
    for (unsigned i = t->max_nodes; i-- > 1;) {
        struct fs_node *n = &t->nodes[i];
        if (!n->live) {
            n->free_next = t->free_nodes;
            t->free_nodes = (int32_t)i;
            continue;
        }
        const struct fs_node *p = &t->nodes[n->parent];
        if (!p->live || p->type != S_IFDIR || is_ancestor(t, (int32_t)i, n->parent))
            return err_set(-EINVAL, "virtio-fs: node %u's parent %d is not a directory", i,
                           n->parent);
        t->nodes[n->parent].kids++;
    }
    return 0;
}

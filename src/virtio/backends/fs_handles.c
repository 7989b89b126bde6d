/* The virtio-fs server's handle table: the files and directories the guest
 * holds open, each a descriptor of its own, in a fixed-size array with a
 * free list (beyond it the guest gets EMFILE), and reference counts so
 * that a RELEASE racing a READ on another worker never closes the
 * descriptor under it. */
#include <errno.h>
#include <unistd.h>

#include "virtio/backends/fs_internal.h"

static void handle_free(struct fs_tables *t, int32_t slot)
{
    struct fs_handle *h = &t->handles[slot];
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->live = false;
    h->gen++;
    h->released = false;
    h->free_next = t->free_handles;
    t->free_handles = slot;
    t->used_handles--;
}

void fs_handles_reset(struct fs_tables *t)
{
    for (unsigned i = 0; i < t->max_handles; i++)
        if (t->handles[i].live)
            handle_free(t, (int32_t)i);
}

static void handle_take(struct fs_tables *t, int32_t slot, int fd, bool dir, uint64_t nodeid,
                        int flags)
{
    struct fs_handle *h = &t->handles[slot];
    t->used_handles++;
    h->fd = fd;
    h->live = true;
    h->dir = dir;
    h->refs = 0;
    h->released = false;
    h->nodeid = nodeid;
    h->flags = flags;
}

int fs_handle_add(struct fs_tables *t, int fd, bool dir, uint64_t nodeid, int flags,
                  uint64_t *fh)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = t->free_handles;
    if (slot < 0) {
        pthread_mutex_unlock(&t->lock);
        close(fd);
        return -EMFILE;
    }
    t->free_handles = t->handles[slot].free_next;
    handle_take(t, slot, fd, dir, nodeid, flags);
    *fh = ((uint64_t)t->handles[slot].gen << 32) | (uint64_t)slot;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* Restoring: no request runs yet; the free list is rebuilt afterwards. */
int fs_handle_restore(struct fs_tables *t, uint64_t fh, int fd, bool dir, uint64_t nodeid,
                      int flags)
{
    uint64_t slot = fh & 0xffffffffu;
    if (slot >= t->max_handles || t->handles[slot].live)
        return err_set(-EINVAL, "virtio-fs: handle %llu is out of range or repeated",
                       (unsigned long long)fh);
    t->handles[slot].gen = (uint32_t)(fh >> 32);
    handle_take(t, (int32_t)slot, fd, dir, nodeid, flags);
    t->free_handles = -1;
    for (unsigned i = t->max_handles; i-- > 0;) {
        if (!t->handles[i].live) {
            t->handles[i].free_next = t->free_handles;
            t->free_handles = (int32_t)i;
        }
    }
    return 0;
}

static int32_t handle_slot(const struct fs_tables *t, uint64_t fh, bool dir)
{
    uint64_t slot = fh & 0xffffffffu;
    if (slot >= t->max_handles)
        return -1;
    const struct fs_handle *h = &t->handles[slot];
    bool ok = h->live && !h->released && h->dir == dir && h->gen == (uint32_t)(fh >> 32);
    return ok ? (int32_t)slot : -1;
}

struct fs_handle *fs_handle_get(struct fs_tables *t, uint64_t fh, bool dir)
{
    pthread_mutex_lock(&t->lock);
    int32_t slot = handle_slot(t, fh, dir);
    /* A handle a restore could not reopen is there only to be released. */
    struct fs_handle *h = slot >= 0 && t->handles[slot].fd >= 0 ? &t->handles[slot] : NULL;
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

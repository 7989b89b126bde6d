#include "virtio/virtq.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

#define DESC_SIZE 16
#define AVAIL_RING 4  /* flags, idx, then ring[size], then used_event */
#define USED_RING 4   /* flags, idx, then ring[size] of 8 bytes, avail_event */
#define USED_ELEM_SIZE 8

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static int virtq_fail(struct virtq *q, const char *fmt, ...) EMBER_PRINTF(2, 3);
static int virtq_fail(struct virtq *q, const char *fmt, ...)
{
    if (!q->broken) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->error, sizeof(q->error), fmt, ap);
        va_end(ap);
    }
    q->broken = true;
    return -EINVAL;
}

const char *virtq_error(const struct virtq *q)
{
    return q->error;
}

void virtq_mark_broken(struct virtq *q, const char *why)
{
    virtq_fail(q, "%s", why);
}

static uint64_t avail_size(uint16_t n)
{
    return AVAIL_RING + 2ull * n + 2;
}

static uint64_t used_size(uint16_t n)
{
    return USED_RING + (uint64_t)USED_ELEM_SIZE * n + 2;
}

int virtq_start(struct virtq *q, const struct guest_mem *gm)
{
    q->gm = gm;
    q->broken = false;
    q->error[0] = '\0';
    q->last_avail = q->used_idx = q->signalled_used = 0;
    q->signalled_valid = false;
    if (q->size == 0 || q->size > VIRTQ_MAX_SIZE || (q->size & (q->size - 1)))
        return virtq_fail(q, "queue size %u is not a power of two up to %u", q->size,
                          VIRTQ_MAX_SIZE);
    /* Alignment the split ring requires: 16, 2 and 4 bytes. */
    if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
        return virtq_fail(q, "misaligned rings");
    if (!gm_range_valid(gm, q->desc_gpa, (uint64_t)DESC_SIZE * q->size) ||
        !gm_range_valid(gm, q->avail_gpa, avail_size(q->size)) ||
        !gm_range_valid(gm, q->used_gpa, used_size(q->size)))
        return virtq_fail(q, "rings outside guest memory");
    q->ready = true;
    return 0;
}

void virtq_reset(struct virtq *q)
{
    uint16_t size = q->size;
    memset(q, 0, sizeof(*q));
    q->size = size;
}

static int read_desc(struct virtq *q, uint64_t table, uint16_t i, struct desc *d)
{
    uint8_t raw[DESC_SIZE];
    if (gm_read(q->gm, table + (uint64_t)i * DESC_SIZE, raw, sizeof(raw)))
        return virtq_fail(q, "descriptor %u outside guest memory", i);
    d->addr = le64_load(raw);
    d->len = le32_load(raw + 8);
    d->flags = le16_load(raw + 12);
    d->next = le16_load(raw + 14);
    return 0;
}

/* Append one buffer; device-writable buffers must come after readable ones. */
static int chain_add(struct virtq *q, struct virtq_chain *c, const struct desc *d)
{
    if (c->nr == VIRTQ_MAX_CHAIN)
        return virtq_fail(q, "chain longer than %u buffers", VIRTQ_MAX_CHAIN);
    bool writes = d->flags & VIRTQ_DESC_F_WRITE;
    if (!writes && c->nr > c->nr_readable)
        return virtq_fail(q, "readable buffer after a writable one");
    if (d->len && !gm_range_valid(q->gm, d->addr, d->len))
        return virtq_fail(q, "buffer %#llx+%u outside guest memory",
                          (unsigned long long)d->addr, d->len);
    uint64_t *total = writes ? &c->writable_bytes : &c->readable_bytes;
    if (*total + d->len > VIRTQ_MAX_CHAIN_BYTES)
        return virtq_fail(q, "chain longer than 4 GiB");
    *total += d->len;
    c->bufs[c->nr++] = (struct virtq_buf){d->addr, d->len, writes};
    if (!writes)
        c->nr_readable++;
    return 0;
}

/* Walk an indirect table: copied out first, never nested, its own indexes. */
static int walk_indirect(struct virtq *q, struct virtq_chain *c, const struct desc *ind)
{
    if (!q->indirect)
        return virtq_fail(q, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
    if (ind->flags & VIRTQ_DESC_F_NEXT)
        return virtq_fail(q, "indirect descriptor with NEXT set");
    if (ind->len == 0 || ind->len % DESC_SIZE)
        return virtq_fail(q, "indirect table of %u bytes", ind->len);
    uint32_t n = ind->len / DESC_SIZE;
    if (n > VIRTQ_MAX_CHAIN)
        return virtq_fail(q, "indirect table of %u entries", n);
    if (!gm_range_valid(q->gm, ind->addr, ind->len))
        return virtq_fail(q, "indirect table outside guest memory");
    uint16_t i = 0;
    for (uint32_t steps = 0;; steps++) {
        struct desc d;
        if (steps == n)
            return virtq_fail(q, "loop in an indirect table");
        int ret = read_desc(q, ind->addr, i, &d);
        if (ret)
            return ret;
        if (d.flags & VIRTQ_DESC_F_INDIRECT)
            return virtq_fail(q, "nested indirect table");
        ret = chain_add(q, c, &d);
        if (ret)
            return ret;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (d.next >= n)
            return virtq_fail(q, "indirect next index %u beyond the table's %u", d.next, n);
        i = d.next;
    }
}

static int walk_chain(struct virtq *q, struct virtq_chain *c, uint16_t head)
{
    uint16_t i = head;
    for (unsigned steps = 0;; steps++) {
        struct desc d;
        /* A chain visits each descriptor at most once: more steps than
         * descriptors means a loop. */
        if (steps == q->size)
            return virtq_fail(q, "loop in the descriptor chain from %u", head);
        int ret = read_desc(q, q->desc_gpa, i, &d);
        if (ret)
            return ret;
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (c->nr)
                return virtq_fail(q, "indirect descriptor inside a chain");
            return walk_indirect(q, c, &d);
        }
        ret = chain_add(q, c, &d);
        if (ret)
            return ret;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (d.next >= q->size)
            return virtq_fail(q, "next index %u beyond the queue's %u", d.next, q->size);
        i = d.next;
    }
}

static int read_avail_idx(struct virtq *q, uint16_t *idx)
{
    if (gm_read_u16(q->gm, q->avail_gpa + 2, idx))
        return virtq_fail(q, "available ring outside guest memory");
    /* The ring entries written before idx must be seen after it. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if ((uint16_t)(*idx - q->last_avail) > q->size)
        return virtq_fail(q, "available index moved %u entries in a queue of %u",
                          (uint16_t)(*idx - q->last_avail), q->size);
    return 0;
}

uint16_t virtq_available(struct virtq *q)
{
    uint16_t idx;
    if (!virtq_usable(q) || read_avail_idx(q, &idx))
        return 0;
    return (uint16_t)(idx - q->last_avail);
}

bool virtq_has_available(struct virtq *q)
{
    uint16_t idx;
    return virtq_usable(q) && read_avail_idx(q, &idx) == 0 && idx != q->last_avail;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    if (!virtq_usable(q))
        return q->broken ? -EINVAL : 0;
    uint16_t idx;
    int ret = read_avail_idx(q, &idx);
    if (ret)
        return ret;
    if (idx == q->last_avail)
        return 0;
    uint16_t head;
    uint64_t slot = q->avail_gpa + AVAIL_RING + 2ull * (q->last_avail % q->size);
    if (gm_read_u16(q->gm, slot, &head))
        return virtq_fail(q, "available ring outside guest memory");
    if (head >= q->size)
        return virtq_fail(q, "head index %u beyond the queue's %u", head, q->size);
    c->head = head;
    c->nr = c->nr_readable = 0;
    c->readable_bytes = c->writable_bytes = 0;
    ret = walk_chain(q, c, head);
    if (ret)
        return ret;
    q->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *q)
{
    q->last_avail--;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
    if (!virtq_usable(q))
        return -EINVAL;
    uint8_t elem[USED_ELEM_SIZE];
    le32_store(elem, head);
    le32_store(elem + 4, written);
    uint64_t slot = q->used_gpa + USED_RING + (uint64_t)USED_ELEM_SIZE * (q->used_idx % q->size);
    if (gm_write(q->gm, slot, elem, sizeof(elem)))
        return virtq_fail(q, "used ring outside guest memory");
    /* The element must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->used_idx++;
    q->pushed = true;
    if (gm_write_u16(q->gm, q->used_gpa + 2, q->used_idx))
        return virtq_fail(q, "used ring outside guest memory");
    return 0;
}

bool virtq_needs_interrupt(struct virtq *q)
{
    if (!virtq_usable(q))
        return false;
    /* Our used index must be visible before we read the guest's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx) {
        uint16_t flags;
        if (gm_read_u16(q->gm, q->avail_gpa, &flags))
            return true;
        return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    uint16_t used_event;
    if (gm_read_u16(q->gm, q->avail_gpa + AVAIL_RING + 2ull * q->size, &used_event))
        return true;
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    /* Interrupt if used_event lies in (old, now]: the guest asked to hear
     * when the index passed it. */
    return !valid || (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

void virtq_suppress_notifications(struct virtq *q, bool suppress)
{
    if (!virtq_usable(q))
        return;
    if (q->event_idx) {
        /* Ask to be notified of the next entry beyond the ones already
         * there: entries seen but left waiting (a receive frame that needs
         * more buffers) must not hide later additions. */
        uint16_t idx;
        if (!suppress && gm_read_u16(q->gm, q->avail_gpa + 2, &idx) == 0 &&
            gm_write_u16(q->gm, q->used_gpa + USED_RING + (uint64_t)USED_ELEM_SIZE * q->size,
                         idx))
            virtq_fail(q, "used ring outside guest memory");
    } else {
        uint16_t flags = suppress ? VIRTQ_USED_F_NO_NOTIFY : 0;
        if (gm_write_u16(q->gm, q->used_gpa, flags))
            virtq_fail(q, "used ring outside guest memory");
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_rearm(struct virtq *q)
{
    virtq_suppress_notifications(q, false);
    return virtq_has_available(q);
}

size_t virtq_chain_read(const struct virtq *q, const struct virtq_chain *c,
                        uint64_t offset, void *dst, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < c->nr_readable && done < len; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        size_t n = MIN(len - done, b->len - offset);
        if (gm_read(q->gm, b->gpa + offset, (uint8_t *)dst + done, n))
            break; /* validated at pop; the map cannot shrink, but be safe */
        done += n;
        offset = 0;
    }
    return done;
}

size_t virtq_chain_write(const struct virtq *q, const struct virtq_chain *c,
                         uint64_t offset, const void *src, size_t len)
{
    size_t done = 0;
    for (unsigned i = c->nr_readable; i < c->nr && done < len; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        size_t n = MIN(len - done, b->len - offset);
        if (gm_write(q->gm, b->gpa + offset, (const uint8_t *)src + done, n))
            break;
        done += n;
        offset = 0;
    }
    return done;
}

void virtq_describe(const struct virtq *q, char *out, size_t max)
{
    uint16_t avail_idx = 0, avail_flags = 0, used_idx = 0;
    bool readable = q->ready && q->gm && !gm_read_u16(q->gm, q->avail_gpa, &avail_flags) &&
                    !gm_read_u16(q->gm, q->avail_gpa + 2, &avail_idx) &&
                    !gm_read_u16(q->gm, q->used_gpa + 2, &used_idx);
    if (!q->ready) {
        snprintf(out, max, "not ready");
        return;
    }
    snprintf(out, max, "size %u, device: next avail %u, used %u, signalled %u%s; guest: "
             "avail idx %u flags %#x, used idx %u%s%s", q->size, q->last_avail, q->used_idx,
             q->signalled_used, q->signalled_valid ? "" : " (none yet)", avail_idx,
             avail_flags, used_idx, readable ? "" : " (rings unreadable)",
             q->broken ? ", BROKEN" : "");
}

void virtq_save(const struct virtq *q, struct rec r)
{
    rec_put_u64(r, "size", q->size);
    rec_put_u64(r, "desc", q->desc_gpa);
    rec_put_u64(r, "avail", q->avail_gpa);
    rec_put_u64(r, "used", q->used_gpa);
    rec_put_bool(r, "ready", q->ready);
    rec_put_bool(r, "broken", q->broken);
    rec_put_bool(r, "event_idx", q->event_idx);
    rec_put_bool(r, "indirect", q->indirect);
    rec_put_u64(r, "last_avail", q->last_avail);
    rec_put_u64(r, "used_idx", q->used_idx);
    rec_put_u64(r, "signalled_used", q->signalled_used);
    rec_put_bool(r, "signalled_valid", q->signalled_valid);
}

int virtq_load(struct virtq *q, const struct guest_mem *gm, uint16_t max_size, struct rec r)
{
    struct virtq s = {0};
    int ret = rec_get_u16(r, "size", max_size, &s.size);
    if (!ret)
        ret = rec_get_u64(r, "desc", UINT64_MAX, &s.desc_gpa);
    if (!ret)
        ret = rec_get_u64(r, "avail", UINT64_MAX, &s.avail_gpa);
    if (!ret)
        ret = rec_get_u64(r, "used", UINT64_MAX, &s.used_gpa);
    if (!ret)
        ret = rec_get_bool(r, "ready", &s.ready);
    if (!ret)
        ret = rec_get_bool(r, "broken", &s.broken);
    if (!ret)
        ret = rec_get_bool(r, "event_idx", &s.event_idx);
    if (!ret)
        ret = rec_get_bool(r, "indirect", &s.indirect);
    if (!ret)
        ret = rec_get_u16(r, "last_avail", UINT16_MAX, &s.last_avail);
    if (!ret)
        ret = rec_get_u16(r, "used_idx", UINT16_MAX, &s.used_idx);
    if (!ret)
        ret = rec_get_u16(r, "signalled_used", UINT16_MAX, &s.signalled_used);
    if (!ret)
        ret = rec_get_bool(r, "signalled_valid", &s.signalled_valid);
    if (ret)
        return ret;
    bool ready = s.ready, broken = s.broken;
    *q = s;
    q->gm = gm;
    if (!ready || broken) {
        if (broken)
            snprintf(q->error, sizeof(q->error), "broken before the snapshot");
        return 0;
    }
    if (virtq_start(q, gm)) /* checks size and placement; clears the indices */
        return err_set(-EINVAL, "queue: %s", virtq_error(q));
    q->last_avail = s.last_avail;
    q->used_idx = s.used_idx;
    q->signalled_used = s.signalled_used;
    q->signalled_valid = s.signalled_valid;
    return 0;
}

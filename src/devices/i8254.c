#include "devices/i8254.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define REFRESH_PERIOD_NS 15085
#define P61_GATE2 0x01
#define P61_SPEAKER 0x02
#define P61_WRITABLE 0x0f
#define P61_REFRESH 0x10
#define P61_OUT2 0x20

static uint64_t ticks_of(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * PIT_HZ / 1000000000u);
}

/* The first nanosecond of tick k. */
static uint64_t ns_of_tick(uint64_t k)
{
    unsigned __int128 v = ((unsigned __int128)k * 1000000000u + PIT_HZ - 1) / PIT_HZ;
    return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

static uint32_t modulus(const struct pit_channel *c)
{
    return c->bcd ? 10000 : 65536;
}

static uint32_t decode_count(uint16_t cr, bool bcd)
{
    uint32_t v = cr;
    if (bcd) {
        /* nibbles at face value, even above 9 */
        v = ((cr >> 12) & 15) * 1000u + ((cr >> 8) & 15) * 100u + ((cr >> 4) & 15) * 10u +
            (cr & 15);
        v %= 10000;
        return v ? v : 10000;
    }
    return v ? v : 65536;
}

static uint16_t encode_count(uint32_t v, bool bcd)
{
    if (!bcd)
        return (uint16_t)v;
    v %= 10000;
    return (uint16_t)((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10);
}

static bool gated_mode(const struct pit_channel *c)
{
    return c->mode != 1 && c->mode != 5; /* gate level enables counting */
}

static uint64_t elapsed(const struct pit_channel *c, uint64_t k)
{
    if (!c->loaded || k < c->load_tick)
        return 0;
    uint64_t e = c->acc;
    if (c->running && k > c->seg_start)
        e += k - c->seg_start;
    return e;
}

static bool loaded_at(const struct pit_channel *c, uint64_t k)
{
    return c->loaded && k >= c->load_tick;
}

/* Modes 2 and 3: a count written while counting takes over at the reload. */
static void normalize(struct pit_channel *c, uint64_t k)
{
    if (!c->pending || !c->loaded || !c->running)
        return;
    if (elapsed(c, k) < c->pending_e)
        return;
    uint64_t t = c->seg_start + (c->pending_e - c->acc);
    c->n = c->cr_n;
    c->load_tick = t;
    c->seg_start = t;
    c->acc = 0;
    c->pending = false;
}

static void load(struct pit_channel *c, uint64_t k)
{
    c->n = c->cr_n;
    c->loaded = true;
    c->load_tick = k + 1;
    c->seg_start = k + 1;
    c->acc = 0;
    c->running = gated_mode(c) ? c->gate : true;
    c->pending = false;
}

static uint32_t count_at(const struct pit_channel *c, uint64_t k)
{
    if (!loaded_at(c, k))
        return c->hold;
    uint64_t e = elapsed(c, k);
    uint32_t n = c->n, m = modulus(c);
    uint32_t v;
    switch (c->mode) {
    case 2:
        v = n - (uint32_t)(e % n);
        break;
    case 3: {
        uint32_t phase = (uint32_t)(e % n), high = (n + 1) / 2;
        if (n % 2 == 0)
            v = phase < n / 2 ? n - 2 * phase : n - 2 * (phase - n / 2);
        else if (phase < high)
            v = phase == 0 ? n : n + 1 - 2 * phase;
        else
            v = phase == high ? n : n - 1 - 2 * (phase - high);
        break;
    }
    default: /* 0, 1, 4, 5: down through 0 and on */
        v = (uint32_t)((n + (uint64_t)m - e % m) % m);
        break;
    }
    return v % m;
}

static bool out_at(const struct pit_channel *c, uint64_t k)
{
    uint64_t e = elapsed(c, k);
    switch (c->mode) {
    case 0:
        return loaded_at(c, k) && e >= c->n;
    case 1:
        return !loaded_at(c, k) || e >= c->n;
    case 2:
        if (!c->gate || !loaded_at(c, k))
            return true;
        return !(c->n > 1 && e % c->n == c->n - 1);
    case 3:
        if (!c->gate || !loaded_at(c, k))
            return true;
        return e % c->n < (c->n + 1) / 2;
    default: /* 4, 5: a one-tick strobe at the terminal count */
        return !loaded_at(c, k) || e != c->n;
    }
}

/* The tick of the first OUT rising edge after tick k0 from counting. */
static bool next_edge(const struct pit_channel *c, uint64_t k0, uint64_t *tick)
{
    if (!c->loaded || !c->running)
        return false;
    uint64_t e0 = elapsed(c, k0), er;
    switch (c->mode) {
    case 0:
    case 1:
        if (e0 >= c->n)
            return false;
        er = c->n;
        break;
    case 2:
    case 3:
        if (c->n < 2)
            return false;
        er = (e0 / c->n + 1) * c->n;
        break;
    default:
        if (e0 >= (uint64_t)c->n + 1)
            return false;
        er = (uint64_t)c->n + 1;
        break;
    }
    uint64_t from = k0 < c->seg_start ? c->acc : e0;
    uint64_t base = k0 < c->seg_start ? c->seg_start : k0;
    *tick = base + (er - from);
    return true;
}

/* --- channel 0 and IRQ 0 -------------------------------------------------------- */

static void irq_catch_up(struct pit *p, uint64_t now)
{
    uint64_t k = ticks_of(now), t;
    struct pit_channel *c = &p->ch[0];
    if (k <= p->irq_tick) {
        normalize(c, k);
        return;
    }
    if (next_edge(c, p->irq_tick, &t) && t <= k) {
        irq_line_pulse(&p->irq);
        p->irqs++;
        p->irq_last_ns = now;
    }
    p->irq_tick = k;
    normalize(c, k);
}

static void irq_rearm(struct pit *p, uint64_t now)
{
    struct pit_channel *c = &p->ch[0];
    uint64_t k = ticks_of(now), t;
    if (p->irq_tick < k)
        p->irq_tick = k;
    normalize(c, k);
    bool edge = next_edge(c, p->irq_tick, &t);
    if (edge && (c->mode == 2 || c->mode == 3) && ns_of_tick(t) < now + PIT_MIN_IRQ_GAP_NS) {
        uint64_t gap_k = ticks_of(now + PIT_MIN_IRQ_GAP_NS);
        if (gap_k > t)
            edge = next_edge(c, gap_k - 1, &t);
    }
    if (!edge) {
        if (p->deadline_ns) {
            p->deadline_ns = 0;
            vtimer_disarm(&p->timer);
        }
        return;
    }
    p->deadline_ns = ns_of_tick(t);
    vtimer_arm(&p->timer, p->deadline_ns);
}

void pit_timer_expired(struct pit *p, uint64_t now_ns)
{
    pthread_mutex_lock(&p->lock);
    irq_catch_up(p, now_ns);
    irq_rearm(p, now_ns);
    pthread_mutex_unlock(&p->lock);
}

/* --- registers ------------------------------------------------------------------------ */

static void channel_reset(struct pit_channel *c, bool gate)
{
    memset(c, 0, sizeof(*c));
    c->rw = 3;
    c->gate = gate;
}

static void reset_locked(struct pit *p)
{
    for (int i = 0; i < 3; i++)
        channel_reset(&p->ch[i], i != 2);
    p->port61 = 0;
    p->irq_tick = ticks_of(vclock_now_ns(&p->clock));
    if (p->deadline_ns) {
        p->deadline_ns = 0;
        vtimer_disarm(&p->timer);
    }
}

void pit_init(struct pit *p, struct irq_line irq, struct vclock clock, struct vtimer timer)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->irq = irq;
    p->clock = clock;
    p->timer = timer;
    reset_locked(p);
}

void pit_destroy(struct pit *p)
{
    pthread_mutex_destroy(&p->lock);
}

void pit_reset(struct pit *p)
{
    pthread_mutex_lock(&p->lock);
    reset_locked(p);
    pthread_mutex_unlock(&p->lock);
}

static uint8_t status_byte(struct pit_channel *c, uint64_t k)
{
    if (c->null_count && loaded_at(c, k) && !c->pending)
        c->null_count = false;
    return (uint8_t)((out_at(c, k) ? 0x80 : 0) | (c->null_count ? 0x40 : 0) | c->rw << 4 |
                     c->mode_bits << 1 | (c->bcd ? 1 : 0));
}

static void latch_count(struct pit_channel *c, uint64_t k)
{
    if (c->count_latched)
        return; /* a latched count not yet read stays */
    c->count_latched = true;
    c->latch_msb_next = false;
    c->latch = encode_count(count_at(c, k), c->bcd);
}

static void control_word(struct pit *p, uint8_t v, uint64_t k)
{
    unsigned sc = v >> 6;
    if (sc == 3) { /* read-back */
        for (unsigned i = 0; i < 3; i++) {
            if (!(v & (2u << i)))
                continue;
            struct pit_channel *c = &p->ch[i];
            normalize(c, k);
            if (!(v & 0x20))
                latch_count(c, k);
            if (!(v & 0x10) && !c->status_latched) {
                c->status = status_byte(c, k);
                c->status_latched = true;
            }
        }
        return;
    }
    struct pit_channel *c = &p->ch[sc];
    normalize(c, k);
    unsigned rw = (v >> 4) & 3;
    if (rw == 0) {
        latch_count(c, k);
        return;
    }
    if (c->loaded)
        c->hold = (uint16_t)count_at(c, k);
    c->mode_bits = (v >> 1) & 7;
    c->mode = c->mode_bits > 5 ? (uint8_t)(c->mode_bits - 4) : c->mode_bits;
    c->rw = (uint8_t)rw;
    c->bcd = v & 1;
    /* The latched count goes, and with it the half of it read so far. */
    c->write_msb_next = c->read_msb_next = c->latch_msb_next = false;
    c->count_latched = c->status_latched = false;
    c->has_count = c->loaded = c->pending = c->running = false;
    /* No count is loaded until the next one is written: a count loaded in
     * binary (up to 65536) must not stay behind in a BCD channel, where a
     * snapshot's load rightly refuses it above 10000. */
    c->n = 0;
    c->null_count = true;
    c->hold %= modulus(c);
}

static void count_written(struct pit_channel *c, uint64_t k)
{
    c->cr_n = decode_count(c->cr, c->bcd);
    c->null_count = true;
    c->has_count = true;
    switch (c->mode) {
    case 0:
    case 4:
        load(c, k);
        break;
    case 2:
    case 3:
        if (!c->loaded) {
            load(c, k);
        } else if (c->running) {
            uint64_t e = elapsed(c, k);
            c->pending = true;
            c->pending_e = (e / c->n + 1) * c->n;
        }
        /* loaded with the gate low: the rising gate reloads from cr_n */
        break;
    default: /* 1, 5: the next trigger loads it */
        break;
    }
}

static void counter_write(struct pit_channel *c, uint8_t v, uint64_t k)
{
    switch (c->rw) {
    case 1:
        c->cr = v;
        count_written(c, k);
        break;
    case 2:
        c->cr = (uint16_t)(v << 8);
        count_written(c, k);
        break;
    default:
        if (!c->write_msb_next) {
            c->write_lsb = v;
            c->write_msb_next = true;
            if (c->mode == 0 && c->loaded) {
                /* mode 0: the first byte stops the count, OUT goes low */
                c->hold = (uint16_t)count_at(c, k);
                c->loaded = c->running = false;
            }
        } else {
            c->cr = (uint16_t)(c->write_lsb | v << 8);
            c->write_msb_next = false;
            count_written(c, k);
        }
        break;
    }
}

static uint8_t counter_read(struct pit_channel *c, uint64_t k)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->count_latched) {
        uint16_t v = c->latch;
        if (c->rw == 1) {
            c->count_latched = false;
            return (uint8_t)v;
        }
        if (c->rw == 2) {
            c->count_latched = false;
            return (uint8_t)(v >> 8);
        }
        if (!c->latch_msb_next) {
            c->latch_msb_next = true;
            return (uint8_t)v;
        }
        c->count_latched = false;
        return (uint8_t)(v >> 8);
    }
    uint16_t v = encode_count(count_at(c, k), c->bcd);
    switch (c->rw) {
    case 1:
        return (uint8_t)v;
    case 2:
        return (uint8_t)(v >> 8);
    default:
        c->read_msb_next = !c->read_msb_next;
        return c->read_msb_next ? (uint8_t)v : (uint8_t)(v >> 8);
    }
}

static void set_gate(struct pit_channel *c, bool level, uint64_t k)
{
    if (level == c->gate)
        return;
    normalize(c, k);
    c->gate = level;
    switch (c->mode) {
    case 0:
    case 4:
        if (!c->loaded)
            break;
        if (!level) {
            c->acc = elapsed(c, k);
            c->running = false;
        } else {
            c->seg_start = MAX(k, c->load_tick);
            c->running = true;
        }
        break;
    case 2:
    case 3:
        if (!level) {
            if (c->loaded) {
                c->acc = elapsed(c, k);
                c->running = false;
            }
        } else if (c->has_count) {
            load(c, k); /* a rising gate reloads */
        }
        break;
    default: /* 1, 5: a rising gate triggers */
        if (level && c->has_count)
            load(c, k);
        break;
    }
}

static void pit_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct pit *p = dev;
    uint8_t *out = data;
    pthread_mutex_lock(&p->lock);
    uint64_t now = vclock_now_ns(&p->clock), k = ticks_of(now);
    irq_catch_up(p, now);
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        if (off < 3) {
            normalize(&p->ch[off], k);
            out[i] = counter_read(&p->ch[off], k);
        } else {
            out[i] = 0xff; /* the control word is write-only */
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static void pit_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct pit *p = dev;
    const uint8_t *in = data;
    pthread_mutex_lock(&p->lock);
    uint64_t now = vclock_now_ns(&p->clock), k = ticks_of(now);
    irq_catch_up(p, now);
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        if (off < 3) {
            normalize(&p->ch[off], k);
            counter_write(&p->ch[off], in[i], k);
        } else if (off == 3) {
            control_word(p, in[i], k);
        }
    }
    irq_rearm(p, now);
    pthread_mutex_unlock(&p->lock);
}

const struct bus_ops pit_bus_ops = {.read = pit_bus_read, .write = pit_bus_write};

static void port61_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct pit *p = dev;
    uint8_t *out = data;
    pthread_mutex_lock(&p->lock);
    uint64_t now = vclock_now_ns(&p->clock), k = ticks_of(now);
    struct pit_channel *c = &p->ch[2];
    normalize(c, k);
    uint8_t v = (uint8_t)((p->port61 & P61_WRITABLE) |
                          ((now / REFRESH_PERIOD_NS) & 1 ? P61_REFRESH : 0) |
                          (out_at(c, k) ? P61_OUT2 : 0));
    for (unsigned i = 0; i < len; i++)
        out[i] = offset + i == 0 ? v : 0xff;
    pthread_mutex_unlock(&p->lock);
}

static void port61_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct pit *p = dev;
    if (offset != 0 || len == 0)
        return;
    uint8_t v = *(const uint8_t *)data;
    pthread_mutex_lock(&p->lock);
    uint64_t k = ticks_of(vclock_now_ns(&p->clock));
    p->port61 = v & P61_WRITABLE;
    set_gate(&p->ch[2], v & P61_GATE2, k);
    pthread_mutex_unlock(&p->lock);
}

const struct bus_ops pit_port61_ops = {.read = port61_read, .write = port61_write};

/* --- snapshots ---------------------------------------------------------------------------- */

void pit_save(struct pit *p, struct rec r)
{
    pthread_mutex_lock(&p->lock);
    uint64_t now = vclock_now_ns(&p->clock), k = ticks_of(now), t;
    struct pit_channel *c0 = &p->ch[0];
    bool due = k > p->irq_tick && next_edge(c0, p->irq_tick, &t) && t <= k;
    rec_put_bool(r, "irq_due", due);
    rec_put_u64(r, "port61", p->port61);
    for (int i = 0; i < 3; i++) {
        struct pit_channel *c = &p->ch[i];
        normalize(c, k);
        struct rec cr = rec_put_item(r, "channels");
        rec_put_u64(cr, "mode_bits", c->mode_bits);
        rec_put_u64(cr, "rw", c->rw);
        rec_put_bool(cr, "bcd", c->bcd);
        rec_put_bool(cr, "write_msb_next", c->write_msb_next);
        rec_put_bool(cr, "read_msb_next", c->read_msb_next);
        rec_put_u64(cr, "write_lsb", c->write_lsb);
        rec_put_u64(cr, "cr", c->cr);
        rec_put_u64(cr, "n", c->n);
        rec_put_bool(cr, "count_latched", c->count_latched);
        rec_put_bool(cr, "latch_msb_next", c->latch_msb_next);
        rec_put_u64(cr, "latch", c->latch);
        rec_put_bool(cr, "status_latched", c->status_latched);
        rec_put_u64(cr, "status", c->status);
        rec_put_bool(cr, "null_count", c->null_count);
        rec_put_bool(cr, "gate", c->gate);
        rec_put_bool(cr, "has_count", c->has_count);
        rec_put_bool(cr, "loaded", c->loaded);
        rec_put_bool(cr, "load_pending", c->loaded && k < c->load_tick);
        rec_put_bool(cr, "running", c->running);
        rec_put_u64(cr, "elapsed", elapsed(c, k));
        rec_put_bool(cr, "pending", c->pending);
        rec_put_u64(cr, "pending_in", c->pending ? c->pending_e - elapsed(c, k) : 0);
        rec_put_u64(cr, "hold", c->hold);
    }
    pthread_mutex_unlock(&p->lock);
}

static int channel_load(struct pit_channel *c, struct rec r, uint64_t *e, bool *load_pending,
                        uint64_t *pending_in)
{
    int ret;
    uint64_t v;
    memset(c, 0, sizeof(*c));
    if ((ret = rec_get_u64(r, "mode_bits", 7, &v)))
        return ret;
    c->mode_bits = (uint8_t)v;
    c->mode = c->mode_bits > 5 ? (uint8_t)(c->mode_bits - 4) : c->mode_bits;
    if ((ret = rec_get_u64(r, "rw", 3, &v)))
        return ret;
    if (v == 0)
        return err_set(-EINVAL, "'rw' is 0");
    c->rw = (uint8_t)v;
    if ((ret = rec_get_bool(r, "bcd", &c->bcd)) ||
        (ret = rec_get_bool(r, "write_msb_next", &c->write_msb_next)) ||
        (ret = rec_get_bool(r, "read_msb_next", &c->read_msb_next)) ||
        (ret = rec_get_u8(r, "write_lsb", &c->write_lsb)) ||
        (ret = rec_get_u16(r, "cr", UINT16_MAX, &c->cr)) ||
        (ret = rec_get_u32(r, "n", modulus(c), &c->n)) ||
        (ret = rec_get_bool(r, "count_latched", &c->count_latched)) ||
        (ret = rec_get_bool(r, "latch_msb_next", &c->latch_msb_next)) ||
        (ret = rec_get_u16(r, "latch", UINT16_MAX, &c->latch)) ||
        (ret = rec_get_bool(r, "status_latched", &c->status_latched)) ||
        (ret = rec_get_u8(r, "status", &c->status)) ||
        (ret = rec_get_bool(r, "null_count", &c->null_count)) ||
        (ret = rec_get_bool(r, "gate", &c->gate)) ||
        (ret = rec_get_bool(r, "has_count", &c->has_count)) ||
        (ret = rec_get_bool(r, "loaded", &c->loaded)) ||
        (ret = rec_get_bool(r, "load_pending", load_pending)) ||
        (ret = rec_get_bool(r, "running", &c->running)) ||
        (ret = rec_get_u64(r, "elapsed", 1ull << 62, e)) ||
        (ret = rec_get_bool(r, "pending", &c->pending)) ||
        (ret = rec_get_u64(r, "pending_in", 65536, pending_in)) ||
        (ret = rec_get_u16(r, "hold", UINT16_MAX, &c->hold)))
        return ret;
    c->cr_n = decode_count(c->cr, c->bcd);
    if (c->hold >= modulus(c))
        return err_set(-EINVAL, "'hold' %u is not a count", c->hold);
    if (c->rw != 3 && (c->write_msb_next || c->read_msb_next || c->latch_msb_next))
        return err_set(-EINVAL, "byte order flags without 'rw' 3");
    if (c->loaded && (!c->has_count || c->n == 0))
        return err_set(-EINVAL, "'loaded' without a count");
    if (!c->loaded && (c->running || c->pending || *load_pending || *e))
        return err_set(-EINVAL, "counting state without 'loaded'");
    if (c->running && gated_mode(c) && !c->gate)
        return err_set(-EINVAL, "'running' with the gate low");
    /* (a count written while counting stays pending while the gate holds
     * the channel: the gate's rise reloads it) */
    if (c->pending && (!(c->mode == 2 || c->mode == 3) || (!c->running && c->gate) ||
                       *pending_in == 0 || *pending_in > c->n))
        return err_set(-EINVAL, "'pending' is inconsistent");
    if (*load_pending && *e)
        return err_set(-EINVAL, "'elapsed' before the load");
    if (c->status & 0x3e && ((c->status >> 4 & 3) == 0))
        return err_set(-EINVAL, "'status' has no access mode");
    return 0;
}

int pit_load(struct pit *p, struct rec r)
{
    struct pit_channel ch[3];
    uint64_t e[3], pending_in[3];
    bool load_pending[3], due;
    uint8_t port61;
    size_t n;
    int ret;
    if ((ret = rec_get_bool(r, "irq_due", &due)) || (ret = rec_get_u8(r, "port61", &port61)) ||
        (ret = rec_get_count(r, "channels", 3, &n)))
        return err_prefix(ret, "pit");
    if (port61 & ~P61_WRITABLE)
        return err_set(-EINVAL, "pit: 'port61' 0x%02x has read-only bits", port61);
    if (n != 3)
        return err_set(-EINVAL, "pit: %zu channels, expected 3", n);
    for (unsigned i = 0; i < 3; i++) {
        struct rec cr;
        if ((ret = rec_get_item(r, "channels", i, &cr)) ||
            (ret = channel_load(&ch[i], cr, &e[i], &load_pending[i], &pending_in[i])))
            return err_prefix(ret, "pit channel %u", i);
        if (i != 2 && !ch[i].gate)
            return err_set(-EINVAL, "pit channel %u: its gate is tied high", i);
    }
    if (ch[2].gate != (port61 & P61_GATE2))
        return err_set(-EINVAL, "pit: channel 2's gate disagrees with port 0x61");

    pthread_mutex_lock(&p->lock);
    uint64_t now = vclock_now_ns(&p->clock), k = ticks_of(now);
    for (unsigned i = 0; i < 3; i++) {
        struct pit_channel *c = &ch[i];
        if (c->loaded) {
            c->load_tick = c->seg_start = load_pending[i] ? k + 1 : k;
            c->acc = e[i];
            if (c->pending)
                c->pending_e = e[i] + pending_in[i];
        }
        p->ch[i] = *c;
    }
    p->port61 = port61;
    p->irq_tick = k;
    if (due) {
        irq_line_pulse(&p->irq);
        p->irqs++;
    }
    p->deadline_ns = 0;
    vtimer_disarm(&p->timer);
    irq_rearm(p, now);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

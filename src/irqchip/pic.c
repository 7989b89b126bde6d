#include "irqchip/pic.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define MASTER 0
#define SLAVE 1

#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_INIT 0x10
#define OCW3_SEL 0x08
#define OCW3_RIS 0x01
#define OCW3_RR 0x02
#define OCW3_POLL 0x04
#define OCW3_SMM 0x20
#define OCW3_ESMM 0x40
#define ICW4_AEOI 0x02
#define ICW4_SFNM 0x10
#define ICW4_MASK 0x1f

/* Fixed edge inputs: IRQ 0, 1, 2 on the master, 8 and 13 on the slave. */
#define ELCR_MASK_MASTER 0xf8
#define ELCR_MASK_SLAVE 0xde

/* Priority level (0 highest) of the highest-priority bit in 'mask', 8 if none. */
static int priority_of(const struct pic_chip *c, uint8_t mask)
{
    if (!mask)
        return 8;
    int p = 0;
    while (!(mask & (1u << ((p + c->priority_add) & 7))))
        p++;
    return p;
}

static int irq_of(const struct pic_chip *c, int priority)
{
    return (priority + c->priority_add) & 7;
}

/* The IR this chip would interrupt for now, or -1. */
static int chip_pending(const struct pic_chip *c, bool master)
{
    int prio = priority_of(c, c->irr & (uint8_t)~c->imr);
    if (prio == 8)
        return -1;
    uint8_t in_service = c->isr;
    /* Special mask mode: a masked IR in service holds back nobody. */
    if (c->special_mask)
        in_service &= (uint8_t)~c->imr;
    int cur = priority_of(c, in_service);
    if (prio < cur)
        return irq_of(c, prio);
    /* Special fully nested mode: the slave may interrupt again while its
     * cascade input is in service (the slave resolves its own priorities). */
    if (master && c->sfnm && prio == cur && irq_of(c, prio) == PIC_CASCADE_IRQ)
        return PIC_CASCADE_IRQ;
    return -1;
}

/* 'wire': the request also goes when the line falls before INTA, as the
 * datasheet requires of edge inputs; used for the cascade, whose both ends
 * are modelled exactly. Device inputs keep a latched edge instead. */
static void chip_set_input(struct pic_chip *c, int irq, bool level, bool wire)
{
    uint8_t m = (uint8_t)(1u << irq);
    bool old = c->lines & m;
    if (level)
        c->lines |= m;
    else
        c->lines &= (uint8_t)~m;
    if ((c->elcr & m) || (wire && !level)) {
        if (level)
            c->irr |= m;
        else
            c->irr &= (uint8_t)~m;
    } else if (level && !old) {
        c->irr |= m;
    }
}

static void chip_intack(struct pic_chip *c, int irq)
{
    uint8_t m = (uint8_t)(1u << irq);
    if (c->auto_eoi) {
        if (c->rotate_on_aeoi)
            c->priority_add = (uint8_t)((irq + 1) & 7);
    } else {
        c->isr |= m;
    }
    if (!(c->elcr & m))
        c->irr &= (uint8_t)~m;
}

/* Propagate the slave's INT to the master's IR2 and the master's INT out. */
static void pic_update(struct pic *p)
{
    chip_set_input(&p->chip[MASTER], PIC_CASCADE_IRQ, chip_pending(&p->chip[SLAVE], false) >= 0,
                   true);
    bool out = chip_pending(&p->chip[MASTER], true) >= 0;
    if (out != p->output) {
        p->output = out;
        if (p->ops && p->ops->set_output)
            p->ops->set_output(p->ctx, out);
    }
}

static void chip_icw1_reset(struct pic_chip *c)
{
    c->imr = 0;
    c->isr = 0;
    c->irr = c->lines & c->elcr; /* edge sense reset: edges need a new rise */
    c->priority_add = 0;
    c->special_mask = false;
    c->read_isr = false;
    c->poll = false;
    c->rotate_on_aeoi = false;
}

static void chip_bios_state(struct pic_chip *c, bool master)
{
    uint8_t lines = c->lines;
    memset(c, 0, sizeof(*c));
    c->lines = lines;
    c->elcr_mask = master ? ELCR_MASK_MASTER : ELCR_MASK_SLAVE;
    c->vector_base = master ? 0x08 : 0x70;
    c->icw3 = master ? 1u << PIC_CASCADE_IRQ : PIC_CASCADE_IRQ;
    c->icw4 = 0x01; /* 8086 mode */
    c->icw4_needed = true;
    c->imr = master ? (uint8_t)~(1u << PIC_CASCADE_IRQ) : 0xff;
}

void pic_init(struct pic *p, const struct pic_ops *ops, void *ctx)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->ops = ops;
    p->ctx = ctx;
    chip_bios_state(&p->chip[MASTER], true);
    chip_bios_state(&p->chip[SLAVE], false);
}

void pic_destroy(struct pic *p)
{
    pthread_mutex_destroy(&p->lock);
}

void pic_reset(struct pic *p)
{
    pthread_mutex_lock(&p->lock);
    chip_bios_state(&p->chip[MASTER], true);
    chip_bios_state(&p->chip[SLAVE], false);
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
}

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
    if (irq >= PIC_NR_IRQS || irq == PIC_CASCADE_IRQ)
        return;
    pthread_mutex_lock(&p->lock);
    chip_set_input(&p->chip[irq >> 3], (int)(irq & 7), level, false);
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
}

uint8_t pic_ack(struct pic *p)
{
    pthread_mutex_lock(&p->lock);
    struct pic_chip *m = &p->chip[MASTER], *s = &p->chip[SLAVE];
    uint8_t vector;
    int irq = chip_pending(m, true);
    if (irq < 0) {
        vector = (uint8_t)(m->vector_base + 7); /* spurious IRQ7 */
    } else {
        chip_intack(m, irq);
        if (irq == PIC_CASCADE_IRQ) {
            int irq2 = chip_pending(s, false);
            if (irq2 >= 0) {
                chip_intack(s, irq2);
                vector = (uint8_t)(s->vector_base + irq2);
            } else {
                vector = (uint8_t)(s->vector_base + 7); /* spurious IRQ15 */
            }
        } else {
            vector = (uint8_t)(m->vector_base + irq);
        }
    }
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
    return vector;
}

bool pic_output(struct pic *p)
{
    pthread_mutex_lock(&p->lock);
    bool out = p->output;
    pthread_mutex_unlock(&p->lock);
    return out;
}

/* Poll mode: this read is the chip's INTA; the byte is I000_0WWW. */
static uint8_t chip_poll(struct pic_chip *c, bool master)
{
    int irq = chip_pending(c, master);
    if (irq < 0)
        return 0;
    chip_intack(c, irq);
    return (uint8_t)(0x80 | irq);
}

static uint8_t chip_read(struct pic_chip *c, bool master, unsigned reg)
{
    if (c->poll) {
        c->poll = false;
        return chip_poll(c, master);
    }
    if (reg == 0)
        return c->read_isr ? c->isr : c->irr;
    return c->imr;
}

static void chip_eoi(struct pic_chip *c, uint8_t ocw2)
{
    unsigned cmd = ocw2 >> 5, level = ocw2 & 7;
    switch (cmd) {
    case 0: /* clear rotate in automatic EOI mode */
        c->rotate_on_aeoi = false;
        break;
    case 4: /* set rotate in automatic EOI mode */
        c->rotate_on_aeoi = true;
        break;
    case 1: /* non-specific EOI */
    case 5: { /* rotate on non-specific EOI */
        uint8_t in_service = c->isr;
        if (c->special_mask)
            in_service &= (uint8_t)~c->imr;
        int prio = priority_of(c, in_service);
        if (prio == 8)
            break;
        int irq = irq_of(c, prio);
        c->isr &= (uint8_t)~(1u << irq);
        if (cmd == 5)
            c->priority_add = (uint8_t)((irq + 1) & 7);
        break;
    }
    case 3: /* specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        break;
    case 7: /* rotate on specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        c->priority_add = (uint8_t)((level + 1) & 7);
        break;
    case 6: /* set priority: 'level' becomes the lowest */
        c->priority_add = (uint8_t)((level + 1) & 7);
        break;
    default: /* 2: no operation */
        break;
    }
}

static void chip_write(struct pic_chip *c, unsigned reg, uint8_t v)
{
    if (reg == 0) {
        if (v & ICW1_INIT) {
            chip_icw1_reset(c);
            c->icw4_needed = v & ICW1_IC4;
            c->single = v & ICW1_SNGL;
            if (!c->icw4_needed) {
                c->icw4 = 0;
                c->auto_eoi = false;
                c->sfnm = false;
            }
            c->init_state = 1;
        } else if (v & OCW3_SEL) {
            if (v & 0x80)
                return; /* not an OCW3 (bit 7 must be 0) */
            if (v & OCW3_POLL)
                c->poll = true;
            if (v & OCW3_RR)
                c->read_isr = v & OCW3_RIS;
            if (v & OCW3_ESMM)
                c->special_mask = v & OCW3_SMM;
        } else {
            chip_eoi(c, v);
        }
        return;
    }
    switch (c->init_state) {
    case 1: /* ICW2 */
        c->vector_base = v & 0xf8;
        c->init_state = c->single ? (c->icw4_needed ? 3 : 0) : 2;
        break;
    case 2: /* ICW3 */
        c->icw3 = v;
        c->init_state = c->icw4_needed ? 3 : 0;
        break;
    case 3: /* ICW4 */
        c->icw4 = v & ICW4_MASK;
        c->auto_eoi = v & ICW4_AEOI;
        c->sfnm = v & ICW4_SFNM;
        c->init_state = 0;
        break;
    default: /* OCW1 */
        c->imr = v;
        break;
    }
}

static void pic_io_read(struct pic *p, int idx, uint64_t offset, void *data, unsigned len)
{
    uint8_t *out = data;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < len; i++) {
        uint64_t reg = offset + i;
        out[i] = reg < PIC_RANGE_LEN ? chip_read(&p->chip[idx], idx == MASTER, (unsigned)reg)
                                     : 0xff;
    }
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
}

static void pic_io_write(struct pic *p, int idx, uint64_t offset, const void *data, unsigned len)
{
    const uint8_t *in = data;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < len; i++)
        if (offset + i < PIC_RANGE_LEN)
            chip_write(&p->chip[idx], (unsigned)(offset + i), in[i]);
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
}

static void master_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    pic_io_read(dev, MASTER, offset, data, len);
}

static void master_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    pic_io_write(dev, MASTER, offset, data, len);
}

static void slave_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    pic_io_read(dev, SLAVE, offset, data, len);
}

static void slave_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    pic_io_write(dev, SLAVE, offset, data, len);
}

static void elcr_set(struct pic_chip *c, uint8_t v)
{
    c->elcr = v & c->elcr_mask;
    /* Level inputs' IRR follows the line; edge inputs keep what they latched. */
    c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->lines & c->elcr));
}

static void elcr_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct pic *p = dev;
    uint8_t *out = data;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < len; i++)
        out[i] = offset + i < PIC_RANGE_LEN ? p->chip[offset + i].elcr : 0xff;
    pthread_mutex_unlock(&p->lock);
}

static void elcr_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct pic *p = dev;
    const uint8_t *in = data;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < len; i++)
        if (offset + i < PIC_RANGE_LEN)
            elcr_set(&p->chip[offset + i], in[i]);
    pic_update(p);
    pthread_mutex_unlock(&p->lock);
}

const struct bus_ops pic_master_bus_ops = {.read = master_read, .write = master_write};
const struct bus_ops pic_slave_bus_ops = {.read = slave_read, .write = slave_write};
const struct bus_ops pic_elcr_bus_ops = {.read = elcr_read, .write = elcr_write};

/* --- snapshots ------------------------------------------------------------ */

static const char *const chip_names[2] = {"master", "slave"};

static void chip_save(const struct pic_chip *c, struct rec r)
{
    rec_put_u64(r, "irr", c->irr);
    rec_put_u64(r, "isr", c->isr);
    rec_put_u64(r, "imr", c->imr);
    rec_put_u64(r, "lines", c->lines);
    rec_put_u64(r, "elcr", c->elcr);
    rec_put_u64(r, "vector_base", c->vector_base);
    rec_put_u64(r, "icw3", c->icw3);
    rec_put_u64(r, "icw4", c->icw4);
    rec_put_u64(r, "priority_add", c->priority_add);
    rec_put_u64(r, "init_state", c->init_state);
    rec_put_bool(r, "icw4_needed", c->icw4_needed);
    rec_put_bool(r, "single", c->single);
    rec_put_bool(r, "auto_eoi", c->auto_eoi);
    rec_put_bool(r, "rotate_on_aeoi", c->rotate_on_aeoi);
    rec_put_bool(r, "sfnm", c->sfnm);
    rec_put_bool(r, "special_mask", c->special_mask);
    rec_put_bool(r, "poll", c->poll);
    rec_put_bool(r, "read_isr", c->read_isr);
}

static int chip_load(struct pic_chip *c, struct rec r, bool master)
{
    int ret;
    uint64_t v;
    memset(c, 0, sizeof(*c));
    c->elcr_mask = master ? ELCR_MASK_MASTER : ELCR_MASK_SLAVE;
    if ((ret = rec_get_u8(r, "irr", &c->irr)) || (ret = rec_get_u8(r, "isr", &c->isr)) ||
        (ret = rec_get_u8(r, "imr", &c->imr)) || (ret = rec_get_u8(r, "lines", &c->lines)) ||
        (ret = rec_get_u8(r, "elcr", &c->elcr)) ||
        (ret = rec_get_u8(r, "vector_base", &c->vector_base)) ||
        (ret = rec_get_u8(r, "icw3", &c->icw3)) ||
        (ret = rec_get_u64(r, "icw4", ICW4_MASK, &v)))
        return ret;
    c->icw4 = (uint8_t)v;
    if ((ret = rec_get_u64(r, "priority_add", 7, &v)))
        return ret;
    c->priority_add = (uint8_t)v;
    if ((ret = rec_get_u64(r, "init_state", 3, &v)))
        return ret;
    c->init_state = (uint8_t)v;
    if ((ret = rec_get_bool(r, "icw4_needed", &c->icw4_needed)) ||
        (ret = rec_get_bool(r, "single", &c->single)) ||
        (ret = rec_get_bool(r, "auto_eoi", &c->auto_eoi)) ||
        (ret = rec_get_bool(r, "rotate_on_aeoi", &c->rotate_on_aeoi)) ||
        (ret = rec_get_bool(r, "sfnm", &c->sfnm)) ||
        (ret = rec_get_bool(r, "special_mask", &c->special_mask)) ||
        (ret = rec_get_bool(r, "poll", &c->poll)) ||
        (ret = rec_get_bool(r, "read_isr", &c->read_isr)))
        return ret;
    if (c->elcr & ~c->elcr_mask)
        return err_set(-EINVAL, "'elcr' 0x%02x sets fixed-edge inputs", c->elcr);
    if (c->vector_base & 7)
        return err_set(-EINVAL, "'vector_base' 0x%02x is not a multiple of 8", c->vector_base);
    if (c->auto_eoi != !!(c->icw4 & ICW4_AEOI) || c->sfnm != !!(c->icw4 & ICW4_SFNM))
        return err_set(-EINVAL, "'auto_eoi'/'sfnm' disagree with 'icw4'");
    /* A level input's IRR is its line. */
    c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->lines & c->elcr));
    return 0;
}

void pic_save(struct pic *p, struct rec r)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < 2; i++)
        chip_save(&p->chip[i], rec_put_child(r, chip_names[i]));
    rec_put_bool(r, "output", p->output);
    pthread_mutex_unlock(&p->lock);
}

int pic_load(struct pic *p, struct rec r)
{
    struct pic_chip chips[2];
    for (int i = 0; i < 2; i++) {
        struct rec child;
        int ret = rec_get_child(r, chip_names[i], &child);
        if (!ret)
            ret = chip_load(&chips[i], child, i == MASTER);
        if (ret)
            return err_prefix(ret, "pic %s", chip_names[i]);
    }
    pthread_mutex_lock(&p->lock);
    memcpy(p->chip, chips, sizeof(chips));
    /* Recompute the output and tell the CPU side whatever it was before. */
    p->output = false;
    chip_set_input(&p->chip[MASTER], PIC_CASCADE_IRQ, chip_pending(&p->chip[SLAVE], false) >= 0,
                   true);
    p->output = chip_pending(&p->chip[MASTER], true) >= 0;
    if (p->ops && p->ops->set_output)
        p->ops->set_output(p->ctx, p->output);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

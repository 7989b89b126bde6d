/* The local APIC's register interface: xAPIC MMIO reads and writes. */
#include "irqchip/lapic_internal.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

/* --- registers --------------------------------------------------------------------- */

static uint32_t reg_read(struct lapic *l, unsigned reg, struct after *a)
{
    if (reg >= REG_ISR && reg < REG_ISR + 0x80)
        return l->isr[(reg - REG_ISR) >> 4];
    if (reg >= REG_TMR && reg < REG_TMR + 0x80)
        return l->tmr[(reg - REG_TMR) >> 4];
    if (reg >= REG_IRR && reg < REG_IRR + 0x80)
        return l->irr[(reg - REG_IRR) >> 4];
    if (reg >= REG_LVT0 && reg < REG_LVT0 + 0x10 * LAPIC_NR_LVT)
        return l->lvt[(reg - REG_LVT0) >> 4];
    switch (reg) {
    case REG_ID:
        return l->id;
    case REG_VER:
        return LAPIC_VERSION;
    case REG_TPR:
        return l->tpr;
    case REG_APR:
        return lapic_apr(l);
    case REG_PPR:
        return lapic_ppr(l);
    case REG_EOI:
    case REG_RRD:
        return 0;
    case REG_LDR:
        return l->ldr;
    case REG_DFR:
        return l->dfr;
    case REG_SVR:
        return l->svr;
    case REG_ESR:
        return l->esr;
    case REG_ICR_LO:
        return l->icr_lo; /* delivery status: always idle */
    case REG_ICR_HI:
        return l->icr_hi;
    case REG_TMICT:
        return l->tmict;
    case REG_TMCCT:
        return lapic_timer_current(l, vclock_now_ns(&l->clock));
    case REG_TDCR:
        return l->tdcr;
    default:
        lapic_report_error(l, ESR_ILLEGAL_REGISTER, a);
        return 0;
    }
}

static void do_eoi(struct lapic *l, struct after *a)
{
    int v = lapic_vec_highest(l->isr);
    if (v < 0)
        return;
    lapic_vec_clear(l->isr, (unsigned)v);
    if (lapic_vec_test(l->tmr, (unsigned)v)) {
        a->eoi = v;
        /* A level LINT with this vector may fire again. */
        for (unsigned idx = LAPIC_LVT_LINT0; idx <= LAPIC_LVT_LINT1; idx++) {
            uint32_t *lvt = &l->lvt[idx];
            if ((*lvt & LVT_REMOTE_IRR) && (*lvt & 0xff) == (uint32_t)v) {
                *lvt &= ~LVT_REMOTE_IRR;
                if (l->lint[idx - LAPIC_LVT_LINT0])
                    lapic_lvt_deliver(l, idx, a);
            }
        }
    }
    a->kick = true;
}

static void send_icr(struct lapic *l, struct after *a)
{
    uint32_t lo = l->icr_lo;
    struct apic_msg m = {
        .dest = (uint8_t)(l->icr_hi >> 24),
        .dest_logical = (lo >> 11) & 1,
        .delivery_mode = LVT_DM(lo),
        .vector = (uint8_t)lo,
        .trigger_level = lo & ICR_TRIGGER_LEVEL,
        .shorthand = (lo >> 18) & 3,
        .source = (int)l->cfg.index,
    };
    m.deassert = m.delivery_mode == APIC_DM_INIT && m.trigger_level && !(lo & ICR_LEVEL_ASSERT);
    switch (m.delivery_mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        if (m.vector < 16) {
            lapic_report_error(l, ESR_SEND_ILLEGAL_VECTOR, a);
            return;
        }
        break;
    case APIC_DM_REMOTE_READ:
    case APIC_DM_EXTINT:
        return; /* not sent by a P6-and-later APIC */
    default:
        /* SMI, NMI, INIT, SIPI are not for the self shorthand */
        if (m.shorthand == APIC_SH_SELF)
            return;
        break;
    }
    a->ipi = true;
    a->msg = m;
}

static void write_lvt(struct lapic *l, unsigned idx, uint32_t v, struct after *a)
{
    uint32_t old = l->lvt[idx];
    v &= lapic_lvt_masks[idx];
    if (!lapic_sw_enabled(l))
        v |= LVT_MASKED;
    if (idx == LAPIC_LVT_TIMER && LVT_TIMER_MODE(v) == 3)
        v &= ~(3u << 17); /* reserved mode: one-shot */
    if (idx == LAPIC_LVT_LINT0 || idx == LAPIC_LVT_LINT1)
        v |= old & LVT_REMOTE_IRR;
    l->lvt[idx] = v;
    if (idx == LAPIC_LVT_TIMER) {
        unsigned om = LVT_TIMER_MODE(old), nm = LVT_TIMER_MODE(v);
        if (om != nm && (om == TIMER_TSCDEADLINE || nm == TIMER_TSCDEADLINE)) {
            lapic_timer_stop(l);
            l->tmict = 0;
        } else if (om != nm && l->timer_running) {
            /* one-shot <-> periodic: the next expiry keeps its place */
            uint64_t now = vclock_now_ns(&l->clock);
            uint64_t e = lapic_timer_elapsed(l, now);
            if (nm == TIMER_PERIODIC && e >= l->tmict)
                l->timer_target = lapic_next_periodic_target(l, e, now);
            else if (nm == TIMER_ONESHOT)
                l->timer_target = l->tmict;
            if (nm == TIMER_ONESHOT && e >= l->tmict) {
                l->timer_running = false;
                l->deadline_ns = 0;
                vtimer_disarm(&l->timer);
            } else {
                lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
            }
        }
    }
    if (idx == LAPIC_LVT_LINT0 && (old ^ v) & (LVT_MASKED | 0x700))
        a->kick = true; /* the 8259's path may open or close */
    if ((idx == LAPIC_LVT_LINT0 || idx == LAPIC_LVT_LINT1) && !(v & LVT_LEVEL))
        l->lvt[idx] &= ~LVT_REMOTE_IRR;
}

static void reg_write(struct lapic *l, unsigned reg, uint32_t v, struct after *a)
{
    if (reg >= REG_LVT0 && reg < REG_LVT0 + 0x10 * LAPIC_NR_LVT) {
        write_lvt(l, (reg - REG_LVT0) >> 4, v, a);
        return;
    }
    if (reg >= REG_ISR && reg < REG_IRR + 0x80)
        return; /* read-only */
    switch (reg) {
    case REG_ID:
        l->id = v & 0xff000000;
        break;
    case REG_TPR:
        l->tpr = v & 0xff;
        a->kick = true;
        break;
    case REG_EOI:
        do_eoi(l, a);
        break;
    case REG_LDR:
        l->ldr = v & 0xff000000;
        break;
    case REG_DFR:
        l->dfr = (v & 0xf0000000) | 0x0fffffff;
        break;
    case REG_SVR: {
        bool was = lapic_sw_enabled(l);
        l->svr = v & SVR_MASK;
        if (was && !lapic_sw_enabled(l))
            for (unsigned i = 0; i < LAPIC_NR_LVT; i++)
                l->lvt[i] |= LVT_MASKED;
        a->kick = true;
        break;
    }
    case REG_ESR:
        l->esr = l->esr_pending & ESR_MASK;
        l->esr_pending = 0;
        break;
    case REG_ICR_LO:
        l->icr_lo = v & ICR_LO_MASK;
        send_icr(l, a);
        break;
    case REG_ICR_HI:
        l->icr_hi = v & 0xff000000;
        break;
    case REG_TMICT:
        if (lapic_timer_mode(l) == TIMER_TSCDEADLINE)
            break; /* ignored in TSC-deadline mode */
        l->tmict = v;
        lapic_timer_start(l, vclock_now_ns(&l->clock));
        break;
    case REG_TDCR: {
        uint64_t now = vclock_now_ns(&l->clock);
        if (l->timer_running) {
            l->timer_base_ticks = lapic_timer_elapsed(l, now);
            l->timer_base_ns = now;
        }
        l->tdcr = v & 0xb;
        if (l->timer_running)
            lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
        break;
    }
    case REG_VER:
    case REG_APR:
    case REG_PPR:
    case REG_RRD:
    case REG_TMCCT:
        break; /* read-only */
    default:
        lapic_report_error(l, ESR_ILLEGAL_REGISTER, a);
        break;
    }
}

static void lapic_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct lapic *l = dev;
    uint8_t *out = data;
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    if (!lapic_hw_enabled(l)) {
        memset(out, 0xff, len);
        pthread_mutex_unlock(&l->lock);
        return;
    }
    uint64_t cached = UINT64_MAX;
    uint32_t value = 0;
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        if (off >= LAPIC_MMIO_LEN || (off & 0xf) >= 4) {
            out[i] = 0;
            continue;
        }
        if ((off & ~0xfull) != cached) {
            cached = off & ~0xfull;
            value = reg_read(l, (unsigned)cached, &a);
        }
        out[i] = (uint8_t)(value >> (8 * (off & 3)));
    }
    lapic_unlock_and_run(l, &a);
}

static void lapic_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct lapic *l = dev;
    if (len != 4 || (offset & 0xf) || offset >= LAPIC_MMIO_LEN) {
        log_guest("lapic: %u-byte write at 0x%llx ignored", len, (unsigned long long)offset);
        return;
    }
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    if (lapic_hw_enabled(l))
        reg_write(l, (unsigned)offset, le32_load(data), &a);
    lapic_unlock_and_run(l, &a);
}

const struct bus_ops lapic_bus_ops = {.read = lapic_bus_read, .write = lapic_bus_write};

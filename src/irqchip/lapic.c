#include "irqchip/lapic_internal.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

const uint32_t lapic_lvt_masks[LAPIC_NR_LVT] = {
    [LAPIC_LVT_TIMER] = 0x000700ff,   /* vector, mask, mode */
    [LAPIC_LVT_THERMAL] = 0x000107ff, /* vector, delivery mode, mask */
    [LAPIC_LVT_PERF] = 0x000107ff,
    [LAPIC_LVT_LINT0] = 0x0001a7ff,   /* + polarity, trigger */
    [LAPIC_LVT_LINT1] = 0x0001a7ff,
    [LAPIC_LVT_ERROR] = 0x000100ff,
};

/* --- errors and local delivery ----------------------------------------------- */

void lapic_report_error(struct lapic *l, uint32_t bit, struct after *a)
{
    if (l->esr_pending & bit)
        return;
    l->esr_pending |= bit;
    uint32_t lvt = l->lvt[LAPIC_LVT_ERROR];
    if (lvt & LVT_MASKED)
        return;
    unsigned vector = lvt & 0xff;
    if (vector < 16) {
        l->esr_pending |= ESR_RECV_ILLEGAL_VECTOR; /* no second interrupt */
        return;
    }
    lapic_set_irr(l, vector, false, a);
}

void lapic_set_irr(struct lapic *l, unsigned vector, bool level, struct after *a)
{
    if (vector < 16) {
        lapic_report_error(l, ESR_RECV_ILLEGAL_VECTOR, a);
        return;
    }
    lapic_vec_set(l->irr, vector);
    if (level)
        lapic_vec_set(l->tmr, vector);
    else
        lapic_vec_clear(l->tmr, vector);
    a->kick = true;
}

/* An LVT entry fires (timer, error, LINTn edge...). */
void lapic_lvt_deliver(struct lapic *l, unsigned idx, struct after *a)
{
    uint32_t lvt = l->lvt[idx];
    if (lvt & LVT_MASKED)
        return;
    bool has_mode = idx != LAPIC_LVT_TIMER && idx != LAPIC_LVT_ERROR;
    switch (has_mode ? LVT_DM(lvt) : APIC_DM_FIXED) {
    case APIC_DM_FIXED:
        if ((idx == LAPIC_LVT_LINT0 || idx == LAPIC_LVT_LINT1) && (lvt & LVT_LEVEL)) {
            if (lvt & LVT_REMOTE_IRR)
                return;
            l->lvt[idx] |= LVT_REMOTE_IRR;
            lapic_set_irr(l, lvt & 0xff, true, a);
        } else {
            lapic_set_irr(l, lvt & 0xff, false, a);
        }
        break;
    case APIC_DM_SMI:
        l->smi_pending = true;
        a->kick = true;
        break;
    case APIC_DM_NMI:
        l->nmi_pending = true;
        a->kick = true;
        break;
    case APIC_DM_INIT:
        if (idx == LAPIC_LVT_LINT0 || idx == LAPIC_LVT_LINT1) {
            l->init_pending = true;
            a->kick = true;
        }
        break;
    default: /* ExtINT is a level looked at by has_interrupt; others reserved */
        break;
    }
}

/* --- timer ------------------------------------------------------------------- */

static unsigned timer_divider(const struct lapic *l)
{
    unsigned d = (l->tdcr & 3) | ((l->tdcr & 8) >> 1);
    return 1u << ((d + 1) & 7);
}

unsigned lapic_timer_mode(const struct lapic *l)
{
    return LVT_TIMER_MODE(l->lvt[LAPIC_LVT_TIMER]);
}

uint64_t lapic_timer_elapsed(const struct lapic *l, uint64_t now)
{
    uint64_t dt = now > l->timer_base_ns ? now - l->timer_base_ns : 0;
    return l->timer_base_ticks + dt / timer_divider(l);
}

uint32_t lapic_timer_current(const struct lapic *l, uint64_t now)
{
    if (!l->timer_running || lapic_timer_mode(l) == TIMER_TSCDEADLINE || !l->tmict)
        return 0;
    uint64_t e = lapic_timer_elapsed(l, now);
    if (lapic_timer_mode(l) == TIMER_PERIODIC)
        return (uint32_t)(l->tmict - e % l->tmict);
    return e >= l->tmict ? 0 : (uint32_t)(l->tmict - e);
}

uint64_t lapic_ticks_to_deadline(const struct lapic *l, uint64_t target)
{
    uint64_t ticks = target > l->timer_base_ticks ? target - l->timer_base_ticks : 0;
    unsigned __int128 ns = (unsigned __int128)ticks * timer_divider(l) + l->timer_base_ns;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void lapic_timer_stop(struct lapic *l)
{
    l->timer_running = false;
    l->tsc_deadline = 0;
    if (l->deadline_ns) {
        l->deadline_ns = 0;
        vtimer_disarm(&l->timer);
    }
}

void lapic_timer_arm_ns(struct lapic *l, uint64_t deadline)
{
    l->deadline_ns = deadline ? deadline : 1;
    vtimer_arm(&l->timer, l->deadline_ns);
}

/* The next periodic target after 'e' ticks, no sooner than the gap. */
uint64_t lapic_next_periodic_target(const struct lapic *l, uint64_t e, uint64_t now)
{
    uint64_t target = (e / l->tmict + 1) * l->tmict;
    uint64_t period_ns = (uint64_t)l->tmict * timer_divider(l);
    if (period_ns < LAPIC_TIMER_MIN_GAP_NS) {
        uint64_t min_ticks = lapic_timer_elapsed(l, now + LAPIC_TIMER_MIN_GAP_NS);
        if (target < min_ticks)
            target = (min_ticks + l->tmict - 1) / l->tmict * l->tmict;
    }
    return target;
}

void lapic_timer_start(struct lapic *l, uint64_t now)
{
    lapic_timer_stop(l);
    if (!l->tmict || lapic_timer_mode(l) == TIMER_TSCDEADLINE)
        return;
    l->timer_running = true;
    l->timer_base_ns = now;
    l->timer_base_ticks = 0;
    l->timer_target = lapic_timer_mode(l) == TIMER_PERIODIC ? lapic_next_periodic_target(l, 0, now)
                                                      : l->tmict;
    lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
}

static void timer_fire(struct lapic *l, struct after *a)
{
    l->timer_interrupts++;
    lapic_lvt_deliver(l, LAPIC_LVT_TIMER, a);
}

void lapic_timer_check(struct lapic *l, uint64_t now, struct after *a)
{
    if (lapic_timer_mode(l) == TIMER_TSCDEADLINE) {
        if (!l->tsc_deadline || !l->deadline_ns)
            return;
        if (now < l->deadline_ns) {
            lapic_timer_arm_ns(l, l->deadline_ns);
            return;
        }
        l->tsc_deadline = 0;
        l->deadline_ns = 0;
        timer_fire(l, a);
        return;
    }
    if (!l->timer_running)
        return;
    uint64_t e = lapic_timer_elapsed(l, now);
    if (e < l->timer_target) {
        lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
        return;
    }
    timer_fire(l, a);
    if (lapic_timer_mode(l) == TIMER_PERIODIC && l->tmict) {
        l->timer_target = lapic_next_periodic_target(l, e, now);
        lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
    } else {
        l->timer_running = false;
        l->deadline_ns = 0;
    }
}

void lapic_timer_expired(struct lapic *l, uint64_t now_ns)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    lapic_timer_check(l, now_ns, &a);
    lapic_unlock_and_run(l, &a);
}

void lapic_set_tsc_deadline_locked(struct lapic *l, uint64_t tsc, struct after *a)
{
    if (lapic_timer_mode(l) != TIMER_TSCDEADLINE)
        return;
    lapic_timer_stop(l);
    if (!tsc)
        return;
    uint64_t now_tsc = vclock_now_tsc(&l->clock);
    uint64_t now = vclock_now_ns(&l->clock);
    if (tsc <= now_tsc) {
        timer_fire(l, a);
        return;
    }
    uint64_t hz = vclock_tsc_hz(&l->clock);
    unsigned __int128 dns = ((unsigned __int128)(tsc - now_tsc) * 1000000000u + hz - 1) / hz;
    unsigned __int128 deadline = dns + now;
    l->tsc_deadline = tsc;
    lapic_timer_arm_ns(l, deadline > UINT64_MAX ? UINT64_MAX : (uint64_t)deadline);
}

void lapic_set_tsc_deadline(struct lapic *l, uint64_t tsc)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    lapic_set_tsc_deadline_locked(l, tsc, &a);
    lapic_unlock_and_run(l, &a);
}

uint64_t lapic_get_tsc_deadline(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t v = lapic_timer_mode(l) == TIMER_TSCDEADLINE ? l->tsc_deadline : 0;
    pthread_mutex_unlock(&l->lock);
    return v;
}

/* --- reset --------------------------------------------------------------------- */

/* Register state after power-up, RESET, INIT or global disable. */
static void reset_registers(struct lapic *l, bool keep_id)
{
    lapic_timer_stop(l);
    if (!keep_id)
        l->id = (uint32_t)l->cfg.apic_id << 24;
    l->tpr = l->ldr = 0;
    l->dfr = 0xffffffff;
    l->svr = 0xff;
    l->esr = l->esr_pending = 0;
    l->icr_lo = l->icr_hi = 0;
    memset(l->irr, 0, sizeof(l->irr));
    memset(l->isr, 0, sizeof(l->isr));
    memset(l->tmr, 0, sizeof(l->tmr));
    for (unsigned i = 0; i < LAPIC_NR_LVT; i++)
        l->lvt[i] = LVT_MASKED;
    if (l->cfg.virtual_wire) {
        l->lvt[LAPIC_LVT_LINT0] = APIC_DM_EXTINT << 8;
        l->lvt[LAPIC_LVT_LINT1] = APIC_DM_NMI << 8;
    }
    l->tmict = l->tdcr = 0;
    l->timer_base_ns = l->timer_base_ticks = l->timer_target = 0;
    l->nmi_pending = l->smi_pending = l->init_pending = l->extint_msg = false;
}

void lapic_reset_locked(struct lapic *l)
{
    reset_registers(l, false);
    l->sipi_pending = false;
    l->sipi_vector = 0;
    l->base = LAPIC_DEFAULT_BASE | APICBASE_ENABLE | (l->cfg.bsp ? APICBASE_BSP : 0);
}

void lapic_init(struct lapic *l, const struct lapic_config *cfg, const struct lapic_ops *ops,
                void *ctx, struct vclock clock, struct vtimer timer)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
    l->cfg = *cfg;
    l->ops = ops;
    l->ctx = ctx;
    l->clock = clock;
    l->timer = timer;
    lapic_reset_locked(l);
}

void lapic_destroy(struct lapic *l)
{
    pthread_mutex_destroy(&l->lock);
}

void lapic_reset(struct lapic *l)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    lapic_reset_locked(l);
    a.kick = true;
    lapic_unlock_and_run(l, &a);
}

uint64_t lapic_get_base(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t v = l->base;
    pthread_mutex_unlock(&l->lock);
    return v;
}

int lapic_set_base(struct lapic *l, uint64_t value)
{
    if (value & APICBASE_RESERVED)
        return -EINVAL;
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    bool was = lapic_hw_enabled(l);
    l->base = (value & (APICBASE_ADDR_MASK | APICBASE_ENABLE)) | (l->base & APICBASE_BSP);
    if (was && !lapic_hw_enabled(l))
        reset_registers(l, false); /* all state is lost */
    a.kick = true;
    lapic_unlock_and_run(l, &a);
    return 0;
}

uint64_t lapic_get_cr8(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t v = (l->tpr >> 4) & 0xf;
    pthread_mutex_unlock(&l->lock);
    return v;
}

void lapic_set_cr8(struct lapic *l, uint64_t value)
{
    struct after a = {.kick = true, .eoi = -1};
    pthread_mutex_lock(&l->lock);
    l->tpr = (uint32_t)(value & 0xf) << 4;
    lapic_unlock_and_run(l, &a);
}

/* --- interrupt input ------------------------------------------------------------ */

static bool accept_locked(struct lapic *l, const struct apic_msg *m, struct after *a)
{
    if (!lapic_hw_enabled(l))
        return false;
    switch (m->delivery_mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        if (!lapic_sw_enabled(l))
            return false;
        if (m->vector < 16) {
            lapic_report_error(l, ESR_RECV_ILLEGAL_VECTOR, a);
            return false;
        }
        lapic_set_irr(l, m->vector, m->trigger_level, a);
        return true;
    case APIC_DM_SMI:
        l->smi_pending = true;
        break;
    case APIC_DM_NMI:
        l->nmi_pending = true;
        break;
    case APIC_DM_INIT:
        if (m->deassert)
            return true; /* INIT level de-assert: nothing on P6 and later */
        l->init_pending = true;
        break;
    case APIC_DM_SIPI:
        l->sipi_pending = true;
        l->sipi_vector = m->vector;
        break;
    case APIC_DM_EXTINT:
        l->extint_msg = true;
        break;
    default:
        return false;
    }
    a->kick = true;
    return true;
}

bool lapic_accept(struct lapic *l, const struct apic_msg *msg)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    bool ok = accept_locked(l, msg, &a);
    lapic_unlock_and_run(l, &a);
    return ok;
}

void lapic_set_lint(struct lapic *l, unsigned pin, bool level)
{
    if (pin > 1)
        return;
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    bool old = l->lint[pin];
    l->lint[pin] = level;
    unsigned idx = LAPIC_LVT_LINT0 + pin;
    uint32_t lvt = l->lvt[idx];
    if (!lapic_hw_enabled(l)) {
        /* The APIC is out of the way: LINT0 is INTR, LINT1 is NMI. */
        if (pin == 0 && level != old)
            a.kick = true;
        else if (pin == 1 && level && !old) {
            l->nmi_pending = true;
            a.kick = true;
        }
    } else if (LVT_DM(lvt) == APIC_DM_EXTINT) {
        if (level != old)
            a.kick = true;
    } else if (LVT_DM(lvt) == APIC_DM_FIXED && (lvt & LVT_LEVEL)) {
        if (level)
            lapic_lvt_deliver(l, idx, &a);
    } else if (level && !old) {
        lapic_lvt_deliver(l, idx, &a);
    }
    lapic_unlock_and_run(l, &a);
}

static bool extint_active(const struct lapic *l)
{
    if (!lapic_hw_enabled(l))
        return l->lint[0];
    if (l->extint_msg)
        return true;
    uint32_t lvt = l->lvt[LAPIC_LVT_LINT0];
    return l->lint[0] && !(lvt & LVT_MASKED) && LVT_DM(lvt) == APIC_DM_EXTINT;
}

static int deliverable(const struct lapic *l)
{
    if (!lapic_hw_enabled(l))
        return -1;
    int v = lapic_vec_highest(l->irr);
    if (v < 0 || ((uint32_t)v & 0xf0) <= (lapic_ppr(l) & 0xf0))
        return -1;
    return v;
}

int lapic_has_interrupt(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    int v = extint_active(l) ? LAPIC_EXTINT : deliverable(l);
    pthread_mutex_unlock(&l->lock);
    return v;
}

uint8_t lapic_ack(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    if (extint_active(l)) {
        l->extint_msg = false;
        pthread_mutex_unlock(&l->lock);
        /* The INTA cycle goes to the 8259 without our lock (it may call
         * lapic_set_lint() when its output drops). */
        return l->ops && l->ops->pic_ack ? l->ops->pic_ack(l->ctx) : 0xff;
    }
    int v = deliverable(l);
    uint8_t vector;
    if (v < 0) {
        vector = (uint8_t)l->svr; /* spurious: no ISR bit */
    } else {
        lapic_vec_clear(l->irr, (unsigned)v);
        lapic_vec_set(l->isr, (unsigned)v);
        vector = (uint8_t)v;
    }
    pthread_mutex_unlock(&l->lock);
    return vector;
}

uint32_t lapic_pending_events(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint32_t ev = 0;
    if (extint_active(l) || deliverable(l) >= 0)
        ev |= LAPIC_EV_INTR;
    if (l->nmi_pending)
        ev |= LAPIC_EV_NMI;
    if (l->smi_pending)
        ev |= LAPIC_EV_SMI;
    if (l->init_pending)
        ev |= LAPIC_EV_INIT;
    if (l->sipi_pending)
        ev |= LAPIC_EV_SIPI;
    pthread_mutex_unlock(&l->lock);
    return ev;
}

static bool take_flag(struct lapic *l, bool *flag)
{
    pthread_mutex_lock(&l->lock);
    bool v = *flag;
    *flag = false;
    pthread_mutex_unlock(&l->lock);
    return v;
}

bool lapic_take_nmi(struct lapic *l)
{
    return take_flag(l, &l->nmi_pending);
}

bool lapic_take_smi(struct lapic *l)
{
    return take_flag(l, &l->smi_pending);
}

bool lapic_take_init(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    bool v = l->init_pending;
    if (v)
        reset_registers(l, true);
    pthread_mutex_unlock(&l->lock);
    return v;
}

int lapic_take_sipi(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    int v = l->sipi_pending ? l->sipi_vector : -1;
    l->sipi_pending = false;
    pthread_mutex_unlock(&l->lock);
    return v;
}

/* --- routing --------------------------------------------------------------------- */

static bool match_locked(const struct lapic *l, const struct apic_msg *m)
{
    if (!lapic_hw_enabled(l))
        return false;
    if (!m->dest_logical)
        return m->dest == 0xff || m->dest == (uint8_t)(l->id >> 24);
    uint8_t ldr = (uint8_t)(l->ldr >> 24);
    switch (l->dfr >> 28) {
    case 0xf: /* flat */
        return (ldr & m->dest) != 0;
    case 0x0: /* cluster */
        if (m->dest == 0xff)
            return true;
        return (ldr >> 4) == (m->dest >> 4) && (ldr & m->dest & 0x0f) != 0;
    default:
        return false;
    }
}

bool lapic_match_dest(struct lapic *l, const struct apic_msg *msg)
{
    pthread_mutex_lock(&l->lock);
    bool v = match_locked(l, msg);
    pthread_mutex_unlock(&l->lock);
    return v;
}

uint8_t lapic_arb_priority(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint8_t v = (uint8_t)lapic_apr(l);
    pthread_mutex_unlock(&l->lock);
    return v;
}

int lapic_route(struct lapic *const *lapics, unsigned n, const struct apic_msg *msg)
{
    bool lowest = (msg->delivery_mode == APIC_DM_LOWEST ||
                   (msg->redir_hint && msg->delivery_mode == APIC_DM_FIXED)) &&
                  msg->shorthand == APIC_SH_NONE;
    int accepted = 0, best = -1;
    unsigned best_apr = 0x100;
    for (unsigned i = 0; i < n; i++) {
        bool self = msg->source >= 0 && (unsigned)msg->source == i;
        bool target;
        switch (msg->shorthand) {
        case APIC_SH_SELF:
            target = self;
            break;
        case APIC_SH_ALL:
            target = true;
            break;
        case APIC_SH_OTHERS:
            target = !self;
            break;
        default:
            target = lapic_match_dest(lapics[i], msg);
            break;
        }
        if (!target)
            continue;
        if (lowest) {
            unsigned p = lapic_arb_priority(lapics[i]);
            if (p < best_apr) {
                best_apr = p;
                best = (int)i;
            }
        } else if (lapic_accept(lapics[i], msg)) {
            accepted++;
        }
    }
    if (lowest && best >= 0 && lapic_accept(lapics[best], msg))
        accepted++;
    return accepted;
}

#include "irqchip/lapic.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define REG_ID 0x020
#define REG_VER 0x030
#define REG_TPR 0x080
#define REG_APR 0x090
#define REG_PPR 0x0a0
#define REG_EOI 0x0b0
#define REG_RRD 0x0c0
#define REG_LDR 0x0d0
#define REG_DFR 0x0e0
#define REG_SVR 0x0f0
#define REG_ISR 0x100
#define REG_TMR 0x180
#define REG_IRR 0x200
#define REG_ESR 0x280
#define REG_ICR_LO 0x300
#define REG_ICR_HI 0x310
#define REG_LVT0 0x320 /* timer; the others follow every 0x10 */
#define REG_TMICT 0x380
#define REG_TMCCT 0x390
#define REG_TDCR 0x3e0

#define SVR_ENABLE (1u << 8)
#define SVR_MASK 0x3ffu /* vector, enable, focus disable */

#define LVT_MASKED (1u << 16)
#define LVT_LEVEL (1u << 15)
#define LVT_REMOTE_IRR (1u << 14)
#define LVT_DM(v) (((v) >> 8) & 7)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSCDEADLINE 2

#define ICR_LO_MASK 0x000ccfffu /* vector, mode, dest mode, level, trigger, shorthand */
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)

#define ESR_SEND_ILLEGAL_VECTOR (1u << 5)
#define ESR_RECV_ILLEGAL_VECTOR (1u << 6)
#define ESR_ILLEGAL_REGISTER (1u << 7)
#define ESR_MASK 0xefu

#define APICBASE_ADDR_MASK 0x000ffffffffff000ull
#define APICBASE_RESERVED (~(APICBASE_ADDR_MASK | APICBASE_ENABLE | APICBASE_BSP))

static const uint32_t lvt_masks[LAPIC_NR_LVT] = {
    [LAPIC_LVT_TIMER] = 0x000700ff,   /* vector, mask, mode */
    [LAPIC_LVT_THERMAL] = 0x000107ff, /* vector, delivery mode, mask */
    [LAPIC_LVT_PERF] = 0x000107ff,
    [LAPIC_LVT_LINT0] = 0x0001a7ff,   /* + polarity, trigger */
    [LAPIC_LVT_LINT1] = 0x0001a7ff,
    [LAPIC_LVT_ERROR] = 0x000100ff,
};

/* What a locked section leaves for after the unlock. */
struct after {
    bool kick;
    int eoi; /* vector to broadcast, or -1 */
    bool ipi;
    struct apic_msg msg;
};

#define AFTER_INIT {.kick = false, .eoi = -1, .ipi = false}

static void run_after(struct lapic *l, const struct after *a)
{
    if (a->eoi >= 0 && l->ops && l->ops->eoi)
        l->ops->eoi(l->ctx, (uint8_t)a->eoi);
    if (a->ipi && l->ops && l->ops->send_ipi)
        l->ops->send_ipi(l->ctx, &a->msg);
    if (a->kick && l->ops && l->ops->kick)
        l->ops->kick(l->ctx);
}

static void unlock_and_run(struct lapic *l, const struct after *a)
{
    pthread_mutex_unlock(&l->lock);
    run_after(l, a);
}

/* --- 256-bit registers ------------------------------------------------------ */

static bool vec_test(const uint32_t *r, unsigned v)
{
    return r[v >> 5] >> (v & 31) & 1;
}

static void vec_set(uint32_t *r, unsigned v)
{
    r[v >> 5] |= 1u << (v & 31);
}

static void vec_clear(uint32_t *r, unsigned v)
{
    r[v >> 5] &= ~(1u << (v & 31));
}

static int vec_highest(const uint32_t *r)
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

static bool hw_enabled(const struct lapic *l)
{
    return l->base & APICBASE_ENABLE;
}

static bool sw_enabled(const struct lapic *l)
{
    return l->svr & SVR_ENABLE;
}

static uint32_t ppr(const struct lapic *l)
{
    int isrv = vec_highest(l->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    return (l->tpr & 0xf0) >= isr_class ? l->tpr : isr_class;
}

static uint32_t apr(const struct lapic *l)
{
    int irrv = vec_highest(l->irr), isrv = vec_highest(l->isr);
    uint32_t tpr_c = l->tpr & 0xf0;
    uint32_t irr_c = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
    uint32_t isr_c = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    if (tpr_c >= irr_c && tpr_c > isr_c)
        return l->tpr;
    return MAX(tpr_c, MAX(irr_c, isr_c));
}

/* --- errors and local delivery ----------------------------------------------- */

static void set_irr(struct lapic *l, unsigned vector, bool level, struct after *a);

static void report_error(struct lapic *l, uint32_t bit, struct after *a)
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
    set_irr(l, vector, false, a);
}

static void set_irr(struct lapic *l, unsigned vector, bool level, struct after *a)
{
    if (vector < 16) {
        report_error(l, ESR_RECV_ILLEGAL_VECTOR, a);
        return;
    }
    vec_set(l->irr, vector);
    if (level)
        vec_set(l->tmr, vector);
    else
        vec_clear(l->tmr, vector);
    a->kick = true;
}

/* An LVT entry fires (timer, error, LINTn edge...). */
static void lvt_deliver(struct lapic *l, unsigned idx, struct after *a)
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
            set_irr(l, lvt & 0xff, true, a);
        } else {
            set_irr(l, lvt & 0xff, false, a);
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

static unsigned timer_mode(const struct lapic *l)
{
    return LVT_TIMER_MODE(l->lvt[LAPIC_LVT_TIMER]);
}

static uint64_t timer_elapsed(const struct lapic *l, uint64_t now)
{
    uint64_t dt = now > l->timer_base_ns ? now - l->timer_base_ns : 0;
    return l->timer_base_ticks + dt / timer_divider(l);
}

static uint32_t timer_current(const struct lapic *l, uint64_t now)
{
    if (!l->timer_running || timer_mode(l) == TIMER_TSCDEADLINE || !l->tmict)
        return 0;
    uint64_t e = timer_elapsed(l, now);
    if (timer_mode(l) == TIMER_PERIODIC)
        return (uint32_t)(l->tmict - e % l->tmict);
    return e >= l->tmict ? 0 : (uint32_t)(l->tmict - e);
}

static uint64_t ticks_to_deadline(const struct lapic *l, uint64_t target)
{
    uint64_t ticks = target > l->timer_base_ticks ? target - l->timer_base_ticks : 0;
    unsigned __int128 ns = (unsigned __int128)ticks * timer_divider(l) + l->timer_base_ns;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static void timer_stop(struct lapic *l)
{
    l->timer_running = false;
    l->tsc_deadline = 0;
    if (l->deadline_ns) {
        l->deadline_ns = 0;
        vtimer_disarm(&l->timer);
    }
}

static void timer_arm_ns(struct lapic *l, uint64_t deadline)
{
    l->deadline_ns = deadline ? deadline : 1;
    vtimer_arm(&l->timer, l->deadline_ns);
}

/* The next periodic target after 'e' ticks, no sooner than the gap. */
static uint64_t next_periodic_target(const struct lapic *l, uint64_t e, uint64_t now)
{
    uint64_t target = (e / l->tmict + 1) * l->tmict;
    uint64_t period_ns = (uint64_t)l->tmict * timer_divider(l);
    if (period_ns < LAPIC_TIMER_MIN_GAP_NS) {
        uint64_t min_ticks = timer_elapsed(l, now + LAPIC_TIMER_MIN_GAP_NS);
        if (target < min_ticks)
            target = (min_ticks + l->tmict - 1) / l->tmict * l->tmict;
    }
    return target;
}

static void timer_start(struct lapic *l, uint64_t now)
{
    timer_stop(l);
    if (!l->tmict || timer_mode(l) == TIMER_TSCDEADLINE)
        return;
    l->timer_running = true;
    l->timer_base_ns = now;
    l->timer_base_ticks = 0;
    l->timer_target = timer_mode(l) == TIMER_PERIODIC ? next_periodic_target(l, 0, now)
                                                      : l->tmict;
    timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
}

static void timer_fire(struct lapic *l, struct after *a)
{
    l->timer_interrupts++;
    lvt_deliver(l, LAPIC_LVT_TIMER, a);
}

static void timer_check(struct lapic *l, uint64_t now, struct after *a)
{
    if (timer_mode(l) == TIMER_TSCDEADLINE) {
        if (!l->tsc_deadline || !l->deadline_ns)
            return;
        if (now < l->deadline_ns) {
            timer_arm_ns(l, l->deadline_ns);
            return;
        }
        l->tsc_deadline = 0;
        l->deadline_ns = 0;
        timer_fire(l, a);
        return;
    }
    if (!l->timer_running)
        return;
    uint64_t e = timer_elapsed(l, now);
    if (e < l->timer_target) {
        timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
        return;
    }
    timer_fire(l, a);
    if (timer_mode(l) == TIMER_PERIODIC && l->tmict) {
        l->timer_target = next_periodic_target(l, e, now);
        timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
    } else {
        l->timer_running = false;
        l->deadline_ns = 0;
    }
}

void lapic_timer_expired(struct lapic *l, uint64_t now_ns)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    timer_check(l, now_ns, &a);
    unlock_and_run(l, &a);
}

static void set_tsc_deadline_locked(struct lapic *l, uint64_t tsc, struct after *a)
{
    if (timer_mode(l) != TIMER_TSCDEADLINE)
        return;
    timer_stop(l);
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
    timer_arm_ns(l, deadline > UINT64_MAX ? UINT64_MAX : (uint64_t)deadline);
}

void lapic_set_tsc_deadline(struct lapic *l, uint64_t tsc)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    set_tsc_deadline_locked(l, tsc, &a);
    unlock_and_run(l, &a);
}

uint64_t lapic_get_tsc_deadline(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t v = timer_mode(l) == TIMER_TSCDEADLINE ? l->tsc_deadline : 0;
    pthread_mutex_unlock(&l->lock);
    return v;
}

/* --- reset --------------------------------------------------------------------- */

/* Register state after power-up, RESET, INIT or global disable. */
static void reset_registers(struct lapic *l, bool keep_id)
{
    timer_stop(l);
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

static void reset_locked(struct lapic *l)
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
    reset_locked(l);
}

void lapic_destroy(struct lapic *l)
{
    pthread_mutex_destroy(&l->lock);
}

void lapic_reset(struct lapic *l)
{
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    reset_locked(l);
    a.kick = true;
    unlock_and_run(l, &a);
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
    bool was = hw_enabled(l);
    l->base = (value & (APICBASE_ADDR_MASK | APICBASE_ENABLE)) | (l->base & APICBASE_BSP);
    if (was && !hw_enabled(l))
        reset_registers(l, false); /* all state is lost */
    a.kick = true;
    unlock_and_run(l, &a);
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
    unlock_and_run(l, &a);
}

/* --- interrupt input ------------------------------------------------------------ */

static bool accept_locked(struct lapic *l, const struct apic_msg *m, struct after *a)
{
    if (!hw_enabled(l))
        return false;
    switch (m->delivery_mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        if (!sw_enabled(l))
            return false;
        if (m->vector < 16) {
            report_error(l, ESR_RECV_ILLEGAL_VECTOR, a);
            return false;
        }
        set_irr(l, m->vector, m->trigger_level, a);
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
    unlock_and_run(l, &a);
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
    if (!hw_enabled(l)) {
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
            lvt_deliver(l, idx, &a);
    } else if (level && !old) {
        lvt_deliver(l, idx, &a);
    }
    unlock_and_run(l, &a);
}

static bool extint_active(const struct lapic *l)
{
    if (!hw_enabled(l))
        return l->lint[0];
    if (l->extint_msg)
        return true;
    uint32_t lvt = l->lvt[LAPIC_LVT_LINT0];
    return l->lint[0] && !(lvt & LVT_MASKED) && LVT_DM(lvt) == APIC_DM_EXTINT;
}

static int deliverable(const struct lapic *l)
{
    if (!hw_enabled(l))
        return -1;
    int v = vec_highest(l->irr);
    if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr(l) & 0xf0))
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
        vec_clear(l->irr, (unsigned)v);
        vec_set(l->isr, (unsigned)v);
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
    if (!hw_enabled(l))
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
    uint8_t v = (uint8_t)apr(l);
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
        return apr(l);
    case REG_PPR:
        return ppr(l);
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
        return timer_current(l, vclock_now_ns(&l->clock));
    case REG_TDCR:
        return l->tdcr;
    default:
        report_error(l, ESR_ILLEGAL_REGISTER, a);
        return 0;
    }
}

static void do_eoi(struct lapic *l, struct after *a)
{
    int v = vec_highest(l->isr);
    if (v < 0)
        return;
    vec_clear(l->isr, (unsigned)v);
    if (vec_test(l->tmr, (unsigned)v)) {
        a->eoi = v;
        /* A level LINT with this vector may fire again. */
        for (unsigned idx = LAPIC_LVT_LINT0; idx <= LAPIC_LVT_LINT1; idx++) {
            uint32_t *lvt = &l->lvt[idx];
            if ((*lvt & LVT_REMOTE_IRR) && (*lvt & 0xff) == (uint32_t)v) {
                *lvt &= ~LVT_REMOTE_IRR;
                if (l->lint[idx - LAPIC_LVT_LINT0])
                    lvt_deliver(l, idx, a);
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
            report_error(l, ESR_SEND_ILLEGAL_VECTOR, a);
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
    v &= lvt_masks[idx];
    if (!sw_enabled(l))
        v |= LVT_MASKED;
    if (idx == LAPIC_LVT_TIMER && LVT_TIMER_MODE(v) == 3)
        v &= ~(3u << 17); /* reserved mode: one-shot */
    if (idx == LAPIC_LVT_LINT0 || idx == LAPIC_LVT_LINT1)
        v |= old & LVT_REMOTE_IRR;
    l->lvt[idx] = v;
    if (idx == LAPIC_LVT_TIMER) {
        unsigned om = LVT_TIMER_MODE(old), nm = LVT_TIMER_MODE(v);
        if (om != nm && (om == TIMER_TSCDEADLINE || nm == TIMER_TSCDEADLINE)) {
            timer_stop(l);
            l->tmict = 0;
        } else if (om != nm && l->timer_running) {
            /* one-shot <-> periodic: the next expiry keeps its place */
            uint64_t now = vclock_now_ns(&l->clock);
            uint64_t e = timer_elapsed(l, now);
            if (nm == TIMER_PERIODIC && e >= l->tmict)
                l->timer_target = next_periodic_target(l, e, now);
            else if (nm == TIMER_ONESHOT)
                l->timer_target = l->tmict;
            if (nm == TIMER_ONESHOT && e >= l->tmict) {
                l->timer_running = false;
                l->deadline_ns = 0;
                vtimer_disarm(&l->timer);
            } else {
                timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
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
        bool was = sw_enabled(l);
        l->svr = v & SVR_MASK;
        if (was && !sw_enabled(l))
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
        if (timer_mode(l) == TIMER_TSCDEADLINE)
            break; /* ignored in TSC-deadline mode */
        l->tmict = v;
        timer_start(l, vclock_now_ns(&l->clock));
        break;
    case REG_TDCR: {
        uint64_t now = vclock_now_ns(&l->clock);
        if (l->timer_running) {
            l->timer_base_ticks = timer_elapsed(l, now);
            l->timer_base_ns = now;
        }
        l->tdcr = v & 0xb;
        if (l->timer_running)
            timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
        break;
    }
    case REG_VER:
    case REG_APR:
    case REG_PPR:
    case REG_RRD:
    case REG_TMCCT:
        break; /* read-only */
    default:
        report_error(l, ESR_ILLEGAL_REGISTER, a);
        break;
    }
}

static void lapic_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct lapic *l = dev;
    uint8_t *out = data;
    struct after a = AFTER_INIT;
    pthread_mutex_lock(&l->lock);
    if (!hw_enabled(l)) {
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
    unlock_and_run(l, &a);
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
    if (hw_enabled(l))
        reg_write(l, (unsigned)offset, le32_load(data), &a);
    unlock_and_run(l, &a);
}

const struct bus_ops lapic_bus_ops = {.read = lapic_bus_read, .write = lapic_bus_write};

/* --- snapshots ----------------------------------------------------------------------- */

static const char *const lvt_names[LAPIC_NR_LVT] = {"lvt_timer", "lvt_thermal", "lvt_perf",
                                                    "lvt_lint0", "lvt_lint1", "lvt_error"};

void lapic_save(struct lapic *l, struct rec r)
{
    pthread_mutex_lock(&l->lock);
    uint64_t now = vclock_now_ns(&l->clock);
    rec_put_u64(r, "base", l->base);
    rec_put_u64(r, "id", l->id);
    rec_put_u64(r, "tpr", l->tpr);
    rec_put_u64(r, "ldr", l->ldr);
    rec_put_u64(r, "dfr", l->dfr);
    rec_put_u64(r, "svr", l->svr);
    rec_put_u64(r, "esr", l->esr);
    rec_put_u64(r, "esr_pending", l->esr_pending);
    rec_put_u64(r, "icr_lo", l->icr_lo);
    rec_put_u64(r, "icr_hi", l->icr_hi);
    for (unsigned i = 0; i < LAPIC_NR_LVT; i++)
        rec_put_u64(r, lvt_names[i], l->lvt[i]);
    rec_put_bytes(r, "irr", l->irr, sizeof(l->irr));
    rec_put_bytes(r, "isr", l->isr, sizeof(l->isr));
    rec_put_bytes(r, "tmr", l->tmr, sizeof(l->tmr));
    rec_put_u64(r, "tmict", l->tmict);
    rec_put_u64(r, "tdcr", l->tdcr);
    rec_put_bool(r, "timer_running", l->timer_running);
    rec_put_u64(r, "timer_elapsed", l->timer_running ? timer_elapsed(l, now) : 0);
    rec_put_u64(r, "timer_target", l->timer_target);
    rec_put_u64(r, "tsc_deadline", l->tsc_deadline);
    rec_put_bool(r, "nmi_pending", l->nmi_pending);
    rec_put_bool(r, "smi_pending", l->smi_pending);
    rec_put_bool(r, "init_pending", l->init_pending);
    rec_put_bool(r, "sipi_pending", l->sipi_pending);
    rec_put_u64(r, "sipi_vector", l->sipi_vector);
    rec_put_bool(r, "extint_msg", l->extint_msg);
    rec_put_bool(r, "lint0", l->lint[0]);
    rec_put_bool(r, "lint1", l->lint[1]);
    pthread_mutex_unlock(&l->lock);
}

static int get_masked(struct rec r, const char *key, uint32_t mask, uint32_t *out)
{
    int ret = rec_get_u32(r, key, UINT32_MAX, out);
    if (!ret && (*out & ~mask))
        ret = err_set(-EINVAL, "'%s' 0x%08x sets bits outside 0x%08x", key, *out, mask);
    return ret;
}

int lapic_load(struct lapic *l, struct rec r)
{
    struct lapic s = {0};
    uint64_t elapsed = 0;
    int ret;
    if ((ret = rec_get_u64(r, "base", UINT64_MAX, &s.base)) ||
        (ret = get_masked(r, "id", 0xff000000, &s.id)) ||
        (ret = get_masked(r, "tpr", 0xff, &s.tpr)) ||
        (ret = get_masked(r, "ldr", 0xff000000, &s.ldr)) ||
        (ret = get_masked(r, "dfr", 0xffffffff, &s.dfr)) ||
        (ret = get_masked(r, "svr", SVR_MASK, &s.svr)) ||
        (ret = get_masked(r, "esr", ESR_MASK, &s.esr)) ||
        (ret = get_masked(r, "esr_pending", ESR_MASK, &s.esr_pending)) ||
        (ret = get_masked(r, "icr_lo", ICR_LO_MASK, &s.icr_lo)) ||
        (ret = get_masked(r, "icr_hi", 0xff000000, &s.icr_hi)))
        goto fail;
    for (unsigned i = 0; i < LAPIC_NR_LVT; i++) {
        uint32_t mask = lvt_masks[i];
        if (i == LAPIC_LVT_LINT0 || i == LAPIC_LVT_LINT1)
            mask |= LVT_REMOTE_IRR;
        if ((ret = get_masked(r, lvt_names[i], mask, &s.lvt[i])))
            goto fail;
    }
    if ((ret = rec_get_bytes(r, "irr", s.irr, sizeof(s.irr))) ||
        (ret = rec_get_bytes(r, "isr", s.isr, sizeof(s.isr))) ||
        (ret = rec_get_bytes(r, "tmr", s.tmr, sizeof(s.tmr))) ||
        (ret = rec_get_u32(r, "tmict", UINT32_MAX, &s.tmict)) ||
        (ret = get_masked(r, "tdcr", 0xb, &s.tdcr)) ||
        (ret = rec_get_bool(r, "timer_running", &s.timer_running)) ||
        (ret = rec_get_u64(r, "timer_elapsed", UINT64_MAX, &elapsed)) ||
        (ret = rec_get_u64(r, "timer_target", UINT64_MAX, &s.timer_target)) ||
        (ret = rec_get_u64(r, "tsc_deadline", UINT64_MAX, &s.tsc_deadline)) ||
        (ret = rec_get_bool(r, "nmi_pending", &s.nmi_pending)) ||
        (ret = rec_get_bool(r, "smi_pending", &s.smi_pending)) ||
        (ret = rec_get_bool(r, "init_pending", &s.init_pending)) ||
        (ret = rec_get_bool(r, "sipi_pending", &s.sipi_pending)) ||
        (ret = rec_get_u8(r, "sipi_vector", &s.sipi_vector)) ||
        (ret = rec_get_bool(r, "extint_msg", &s.extint_msg)) ||
        (ret = rec_get_bool(r, "lint0", &s.lint[0])) ||
        (ret = rec_get_bool(r, "lint1", &s.lint[1])))
        goto fail;
    if (s.base & APICBASE_RESERVED) {
        ret = err_set(-EINVAL, "'base' 0x%llx sets reserved bits", (unsigned long long)s.base);
        goto fail;
    }
    if ((s.dfr & 0x0fffffff) != 0x0fffffff) {
        ret = err_set(-EINVAL, "'dfr' 0x%08x: bits 27:0 must be ones", s.dfr);
        goto fail;
    }
    if (LVT_TIMER_MODE(s.lvt[LAPIC_LVT_TIMER]) == 3) {
        ret = err_set(-EINVAL, "'lvt_timer' has the reserved timer mode");
        goto fail;
    }
    bool tscd = LVT_TIMER_MODE(s.lvt[LAPIC_LVT_TIMER]) == TIMER_TSCDEADLINE;
    /* A running count is short of 2^62 ticks and its next expiry at most
     * 2^33 ticks ahead (a period is at most 2^32; the gap adds less). */
    if (s.timer_running && (tscd || !s.tmict || elapsed > (1ull << 62) ||
                            s.timer_target > elapsed + (1ull << 33))) {
        ret = err_set(-EINVAL, "timer state is inconsistent");
        goto fail;
    }
    if (s.tsc_deadline && !tscd) {
        ret = err_set(-EINVAL, "'tsc_deadline' set outside TSC-deadline mode");
        goto fail;
    }
    if ((s.base & APICBASE_BSP) != (l->cfg.bsp ? APICBASE_BSP : 0)) {
        ret = err_set(-EINVAL, "'base' BSP bit disagrees with this vCPU");
        goto fail;
    }

    struct after a = {.kick = true, .eoi = -1};
    pthread_mutex_lock(&l->lock);
    timer_stop(l);
    l->base = s.base;
    l->id = s.id, l->tpr = s.tpr, l->ldr = s.ldr, l->dfr = s.dfr, l->svr = s.svr;
    l->esr = s.esr, l->esr_pending = s.esr_pending;
    l->icr_lo = s.icr_lo, l->icr_hi = s.icr_hi;
    memcpy(l->lvt, s.lvt, sizeof(s.lvt));
    memcpy(l->irr, s.irr, sizeof(s.irr));
    memcpy(l->isr, s.isr, sizeof(s.isr));
    memcpy(l->tmr, s.tmr, sizeof(s.tmr));
    l->tmict = s.tmict, l->tdcr = s.tdcr;
    l->nmi_pending = s.nmi_pending, l->smi_pending = s.smi_pending;
    l->init_pending = s.init_pending, l->sipi_pending = s.sipi_pending;
    l->sipi_vector = s.sipi_vector, l->extint_msg = s.extint_msg;
    l->lint[0] = s.lint[0], l->lint[1] = s.lint[1];
    uint64_t now = vclock_now_ns(&l->clock);
    if (s.timer_running) {
        l->timer_running = true;
        l->timer_base_ns = now;
        l->timer_base_ticks = elapsed;
        l->timer_target = s.timer_target;
        timer_arm_ns(l, ticks_to_deadline(l, l->timer_target));
    } else if (s.tsc_deadline) {
        set_tsc_deadline_locked(l, s.tsc_deadline, &a);
    }
    unlock_and_run(l, &a);
    return 0;
fail:
    return err_prefix(ret, "lapic");
}

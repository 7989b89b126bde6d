/* The local APIC's internals shared by its files (lapic.c: delivery, timer,
 * input and routing; lapic_regs.c: the register interface; lapic_state.c:
 * snapshots). Private to irqchip/. Every function here expects l->lock held
 * unless its name says otherwise. */
#ifndef EMBER_IRQCHIP_LAPIC_INTERNAL_H
#define EMBER_IRQCHIP_LAPIC_INTERNAL_H

#include <pthread.h>

#include "irqchip/lapic.h"
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

extern const uint32_t lapic_lvt_masks[LAPIC_NR_LVT];

/* What a locked section leaves for after the unlock. */
struct after {
    bool kick;
    int eoi; /* vector to broadcast, or -1 */
    bool ipi;
    struct apic_msg msg;
};

#define AFTER_INIT {.kick = false, .eoi = -1, .ipi = false}

static inline void lapic_run_after(struct lapic *l, const struct after *a)
{
    if (a->eoi >= 0 && l->ops && l->ops->eoi)
        l->ops->eoi(l->ctx, (uint8_t)a->eoi);
    if (a->ipi && l->ops && l->ops->send_ipi)
        l->ops->send_ipi(l->ctx, &a->msg);
    if (a->kick && l->ops && l->ops->kick)
        l->ops->kick(l->ctx);
}

static inline void lapic_unlock_and_run(struct lapic *l, const struct after *a)
{
    pthread_mutex_unlock(&l->lock);
    lapic_run_after(l, a);
}

/* --- 256-bit registers ------------------------------------------------------ */

static inline bool lapic_vec_test(const uint32_t *r, unsigned v)
{
    return r[v >> 5] >> (v & 31) & 1;
}

static inline void lapic_vec_set(uint32_t *r, unsigned v)
{
    r[v >> 5] |= 1u << (v & 31);
}

static inline void lapic_vec_clear(uint32_t *r, unsigned v)
{
    r[v >> 5] &= ~(1u << (v & 31));
}

static inline int lapic_vec_highest(const uint32_t *r)
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

static inline bool lapic_hw_enabled(const struct lapic *l)
{
    return l->base & APICBASE_ENABLE;
}

static inline bool lapic_sw_enabled(const struct lapic *l)
{
    return l->svr & SVR_ENABLE;
}

static inline uint32_t lapic_ppr(const struct lapic *l)
{
    int isrv = lapic_vec_highest(l->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    return (l->tpr & 0xf0) >= isr_class ? l->tpr : isr_class;
}

static inline uint32_t lapic_apr(const struct lapic *l)
{
    int irrv = lapic_vec_highest(l->irr), isrv = lapic_vec_highest(l->isr);
    uint32_t tpr_c = l->tpr & 0xf0;
    uint32_t irr_c = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
    uint32_t isr_c = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    if (tpr_c >= irr_c && tpr_c > isr_c)
        return l->tpr;
    return MAX(tpr_c, MAX(irr_c, isr_c));
}

void lapic_set_irr(struct lapic *l, unsigned vector, bool level, struct after *a);
void lapic_report_error(struct lapic *l, uint32_t bit, struct after *a);
void lapic_lvt_deliver(struct lapic *l, unsigned idx, struct after *a);
unsigned lapic_timer_mode(const struct lapic *l);
uint64_t lapic_timer_elapsed(const struct lapic *l, uint64_t now);
uint32_t lapic_timer_current(const struct lapic *l, uint64_t now);
uint64_t lapic_ticks_to_deadline(const struct lapic *l, uint64_t target);
void lapic_timer_stop(struct lapic *l);
void lapic_timer_arm_ns(struct lapic *l, uint64_t deadline);
uint64_t lapic_next_periodic_target(const struct lapic *l, uint64_t e, uint64_t now);
void lapic_timer_start(struct lapic *l, uint64_t now);
void lapic_timer_check(struct lapic *l, uint64_t now, struct after *a);
void lapic_set_tsc_deadline_locked(struct lapic *l, uint64_t tsc, struct after *a);
void lapic_reset_locked(struct lapic *l);

#endif

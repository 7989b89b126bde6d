/* The local APIC in snapshots: saved as a record, checked before loaded. */
#include "irqchip/lapic_internal.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

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
    rec_put_u64(r, "timer_elapsed", l->timer_running ? lapic_timer_elapsed(l, now) : 0);
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
        uint32_t mask = lapic_lvt_masks[i];
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
    lapic_timer_stop(l);
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
        lapic_timer_arm_ns(l, lapic_ticks_to_deadline(l, l->timer_target));
    } else if (s.tsc_deadline) {
        lapic_set_tsc_deadline_locked(l, s.tsc_deadline, &a);
    }
    lapic_unlock_and_run(l, &a);
    return 0;
fail:
    return err_prefix(ret, "lapic");
}

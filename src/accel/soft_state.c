/* The soft backend's snapshots: each vCPU's engine state (registers,
 * MSRs, FPU/SSE, debug registers, pending events), its local APIC and
 * kvm-clock page, and the VM's interrupt controllers, PIT and guest clock,
 * as records (snapshot/record.h) checked value by value when taken back.
 * Decoded code, the soft TLB and timers are not state: they are rebuilt. */
#include <string.h>

#include "accel/soft_internal.h"
#include "snapshot/record.h"
#include "util/util.h"

#define SOFT_STATE_BACKEND "soft"
#define MAX_SAVED_MSRS 64

static int finish_save(struct rec r, struct buf *out)
{
    size_t len;
    const char *text = rec_text(r, &len);
    if (text)
        buf_put(out, text, len);
    int ret = text && !out->failed ? 0 : err_set(-ENOMEM, "out of memory");
    rec_free(r);
    return ret;
}

/* A record of this backend's, or an error naming what it is. */
static int parse_state(const void *data, size_t len, const char *what, struct rec *r)
{
    int ret = rec_parse(data, len, r);
    if (ret)
        return err_prefix(ret, "%s state", what);
    char backend[16];
    ret = rec_get_str(*r, "backend", backend, sizeof(backend));
    if (!ret && strcmp(backend, SOFT_STATE_BACKEND))
        ret = err_set(-EINVAL, "%s state of the %s backend, not ember's CPU engine", what,
                      backend);
    if (ret)
        rec_free(*r);
    return ret ? err_prefix(ret, "%s state", what) : 0;
}

int soft_vcpu_save(struct accel_vcpu *vcpu, struct buf *out)
{
    struct soft_vcpu *v = (struct soft_vcpu *)vcpu;
    struct rec r = rec_new();
    rec_put_str(r, "backend", SOFT_STATE_BACKEND);
    struct x86_regs regs;
    struct x86_sregs sregs;
    cpu_get_regs(v->cpu, &regs);
    cpu_get_sregs(v->cpu, &sregs);
    rec_put_bytes(r, "regs", &regs, sizeof(regs));
    rec_put_bytes(r, "sregs", &sregs, sizeof(sregs));
    uint8_t fx[512];
    cpu_get_fxsave(v->cpu, fx);
    rec_put_bytes(r, "fxsave", fx, sizeof(fx));
    struct cpu_debugregs dr;
    cpu_get_debugregs(v->cpu, &dr);
    rec_put_bytes(r, "debugregs", &dr, sizeof(dr));
    struct cpu_events_state ev;
    cpu_get_events_state(v->cpu, &ev);
    rec_put_bool(r, "halted", ev.halted);
    rec_put_bool(r, "nmi_pending", ev.nmi_pending);
    rec_put_bool(r, "nmi_masked", ev.nmi_masked);
    rec_put_u64(r, "int_shadow", ev.int_shadow);
    uint32_t idx[MAX_SAVED_MSRS];
    size_t n = cpu_msr_list(idx, MAX_SAVED_MSRS);
    for (size_t i = 0; i < n; i++) {
        uint64_t value;
        if (cpu_get_msr(v->cpu, idx[i], &value))
            continue;
        struct rec m = rec_put_item(r, "msrs");
        rec_put_u64(m, "index", idx[i]);
        rec_put_u64(m, "value", value);
    }
    rec_put_bool(r, "started", atomic_load(&v->started));
    rec_put_u64(r, "tsc", soft_tsc(v));
    rec_put_u64(r, "clock_ns", soft_clock_ns(v->vm));
    rec_put_u64(r, "pvclock_gpa", v->pvclock_gpa);
    rec_put_u64(r, "pvclock_version", v->pvclock_version);
    lapic_save(&v->lapic, rec_put_child(r, "lapic"));
    return finish_save(r, out);
}

static int restore_events(struct soft_vcpu *v, struct rec r)
{
    struct cpu_events_state ev;
    uint8_t shadow = 0;
    int ret = rec_get_bool(r, "halted", &ev.halted);
    if (!ret)
        ret = rec_get_bool(r, "nmi_pending", &ev.nmi_pending);
    if (!ret)
        ret = rec_get_bool(r, "nmi_masked", &ev.nmi_masked);
    if (!ret)
        ret = rec_get_u8(r, "int_shadow", &shadow);
    if (!ret && shadow > 2)
        ret = err_set(-EINVAL, "'int_shadow' %u", shadow);
    if (!ret) {
        ev.int_shadow = shadow;
        cpu_set_events_state(v->cpu, &ev);
    }
    return ret;
}

static int restore_msrs(struct soft_vcpu *v, struct rec r)
{
    size_t n;
    int ret = rec_get_count(r, "msrs", MAX_SAVED_MSRS, &n);
    for (size_t i = 0; !ret && i < n; i++) {
        struct rec m;
        uint32_t index;
        uint64_t value;
        ret = rec_get_item(r, "msrs", i, &m);
        if (!ret)
            ret = rec_get_u32(m, "index", UINT32_MAX, &index);
        if (!ret)
            ret = rec_get_u64(m, "value", UINT64_MAX, &value);
        if (!ret && cpu_set_msr(v->cpu, index, value))
            ret = err_set(-EINVAL, "MSR %#x = %#llx refused", index, (unsigned long long)value);
    }
    return ret;
}

/* An AP the guest has not woken yet: it waits for the mailbox again. */
static int restore_waiting_ap(struct soft_vcpu *v, struct rec r)
{
    struct rec lapic;
    int ret = v->index ? rec_get_child(r, "lapic", &lapic)
                       : err_set(-EINVAL, "the boot vCPU is not started");
    if (!ret)
        ret = lapic_load(&v->lapic, lapic);
    if (!ret && atomic_exchange(&v->started, false))
        atomic_fetch_add(&v->vm->aps_waiting, 1);
    return ret;
}

static int restore_vcpu(struct soft_vcpu *v, struct rec r)
{
    bool started = true; /* snapshots before SMP on the engine: one vCPU, started */
    if (rec_has(r, "started") && rec_get_bool(r, "started", &started))
        return err_set(-EINVAL, "'started' is not a boolean");
    if (!started)
        return restore_waiting_ap(v, r);
    if (!atomic_exchange(&v->started, true))
        atomic_fetch_sub(&v->vm->aps_waiting, 1);
    struct x86_regs regs;
    struct x86_sregs sregs;
    struct cpu_debugregs dr;
    uint8_t fx[512];
    uint64_t tsc, gpa, version, clock_ns;
    struct rec lapic;
    int ret = rec_get_bytes(r, "regs", &regs, sizeof(regs));
    if (!ret)
        ret = rec_get_bytes(r, "sregs", &sregs, sizeof(sregs));
    if (!ret)
        ret = rec_get_bytes(r, "fxsave", fx, sizeof(fx));
    if (!ret)
        ret = rec_get_bytes(r, "debugregs", &dr, sizeof(dr));
    if (!ret)
        ret = rec_get_u64(r, "tsc", UINT64_MAX, &tsc);
    if (!ret)
        ret = rec_get_u64(r, "pvclock_gpa", UINT64_MAX, &gpa);
    if (!ret)
        ret = rec_get_u64(r, "pvclock_version", UINT32_MAX, &version);
    if (!ret)
        ret = rec_get_u64(r, "clock_ns", UINT64_MAX / 2, &clock_ns);
    if (!ret)
        ret = rec_get_child(r, "lapic", &lapic);
    /* The guest clock and the TSC first: the APIC timer's deadline is
     * relative to them. */
    if (!ret) {
        atomic_store(&v->vm->clock_offset, soft_host_ns() - clock_ns);
        atomic_store(&v->tsc_base_ns, soft_host_ns() - tsc / (CPU_TSC_HZ / 1000000000ull));
    }
    if (!ret && cpu_set_sregs(v->cpu, &sregs))
        ret = err_set(-EINVAL, "special registers the engine cannot run");
    if (!ret && cpu_set_fxsave(v->cpu, fx))
        ret = err_set(-EINVAL, "an FPU state with a bad MXCSR");
    if (!ret)
        ret = restore_msrs(v, r);
    if (!ret)
        ret = restore_events(v, r);
    if (!ret)
        ret = lapic_load(&v->lapic, lapic);
    if (ret)
        return ret;
    cpu_set_regs(v->cpu, &regs);
    cpu_set_debugregs(v->cpu, &dr);
    v->pvclock_gpa = gpa;
    v->pvclock_version = (uint32_t)version;
    return 0;
}

int soft_vcpu_restore(struct accel_vcpu *vcpu, const void *data, size_t len)
{
    struct soft_vcpu *v = (struct soft_vcpu *)vcpu;
    struct rec r;
    int ret = parse_state(data, len, "vCPU", &r);
    if (ret)
        return ret;
    ret = restore_vcpu(v, r);
    rec_free(r);
    return ret ? err_prefix(ret, "vCPU %u state", v->index) : 0;
}

int soft_vm_save(struct accel_vm *avm, struct buf *out)
{
    struct soft_vm *vm = (struct soft_vm *)avm;
    struct rec r = rec_new();
    rec_put_str(r, "backend", SOFT_STATE_BACKEND);
    rec_put_u64(r, "clock_ns", soft_clock_ns(vm));
    pic_save(&vm->pic, rec_put_child(r, "pic"));
    ioapic_save(&vm->ioapic, rec_put_child(r, "ioapic"));
    pit_save(&vm->pit, rec_put_child(r, "pit"));
    return finish_save(r, out);
}

int soft_vm_restore(struct accel_vm *avm, const void *data, size_t len)
{
    struct soft_vm *vm = (struct soft_vm *)avm;
    struct rec r, pic, ioapic, pit;
    uint64_t ns;
    int ret = parse_state(data, len, "VM", &r);
    if (ret)
        return ret;
    ret = rec_get_u64(r, "clock_ns", UINT64_MAX / 2, &ns);
    if (!ret)
        ret = rec_get_child(r, "pic", &pic);
    if (!ret)
        ret = rec_get_child(r, "ioapic", &ioapic);
    if (!ret)
        ret = rec_get_child(r, "pit", &pit);
    /* The clock first: the timers' saved deadlines are relative to it. */
    if (!ret)
        atomic_store(&vm->clock_offset, soft_host_ns() - ns);
    if (!ret)
        ret = pic_load(&vm->pic, pic);
    if (!ret)
        ret = ioapic_load(&vm->ioapic, ioapic);
    if (!ret)
        ret = pit_load(&vm->pit, pit);
    rec_free(r);
    if (ret)
        return err_prefix(ret, "VM state");
    for (unsigned i = 0; i < vm->nr_created; i++)
        soft_pvclock_update(vm->vcpus[i]);
    soft_timers_poke(&vm->timers);
    return 0;
}

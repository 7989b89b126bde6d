/* KVM state for snapshots. A vCPU's or the VM's state is a list of records,
 * each a u32 tag, a u32 length and the kernel's own structure (the KVM
 * UAPI, which is stable), padded to 8 bytes. Restoring checks every record
 * is present once and exactly as long as this kernel's structure, and
 * replays them in the order KVM needs. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm_internal.h"
#include "util/util.h"

enum kvm_record {
    REC_CPUID = 1, REC_REGS, REC_SREGS, REC_XSAVE, REC_XCRS, REC_DEBUGREGS, REC_LAPIC,
    REC_MP_STATE, REC_EVENTS, REC_MSRS, REC_TSC_DEADLINE,
    REC_PIC_MASTER = 32, REC_PIC_SLAVE, REC_IOAPIC, REC_PIT, REC_CLOCK,
    REC_MAX,
};

#define MSR_TSC_DEADLINE 0x6e0

/* MSRs that make up a running Linux guest's CPU state beyond what the
 * register ioctls carry. Each is saved only if this KVM can read it. */
static const uint32_t saved_msrs[] = {
    0x10,                                         /* TSC */
    0x3b,                                         /* TSC_ADJUST */
    0x174, 0x175, 0x176,                          /* SYSENTER CS, ESP, EIP */
    0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, /* STAR, LSTAR, CSTAR, SFMASK */
    0xc0000102, 0xc0000103,                       /* KERNEL_GS_BASE, TSC_AUX */
    0x1a0, 0x277, 0x48, 0xda0,                    /* MISC_ENABLE, PAT, SPEC_CTRL, XSS */
    0x2ff, 0x250, 0x258, 0x259,                   /* MTRR default type, fixed ranges */
    0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
    0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, /* variable MTRRs */
    0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
    0x11, 0x12,                                   /* kvm-clock, old numbers */
    0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03, /* kvm-clock, async PF, steal time */
    0x4b564d04, 0x4b564d05, 0x4b564d06,           /* PV EOI, poll control, async PF int */
};

/* --- encoding ----------------------------------------------------------- */

static void put_record(struct buf *out, uint32_t tag, const void *data, size_t len)
{
    static const uint8_t pad[8];
    buf_put_u32(out, tag);
    buf_put_u32(out, (uint32_t)len);
    buf_put(out, data, len);
    buf_put(out, pad, ((len + 7) & ~(size_t)7) - len);
}

struct records {
    const uint8_t *data[REC_MAX];
    size_t len[REC_MAX];
};

static int split_records(const void *data, size_t len, struct records *recs)
{
    memset(recs, 0, sizeof(*recs));
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        if (len - off < 8)
            return err_set(-EINVAL, "KVM state: truncated record header");
        uint32_t tag = le32_load(p + off), n = le32_load(p + off + 4);
        off += 8;
        size_t padded = ((size_t)n + 7) & ~(size_t)7;
        if (padded > len - off)
            return err_set(-EINVAL, "KVM state: record %u runs past the end", tag);
        if (tag == 0 || tag >= REC_MAX)
            return err_set(-EINVAL, "KVM state: unknown record %u", tag);
        if (recs->data[tag])
            return err_set(-EINVAL, "KVM state: record %u appears twice", tag);
        recs->data[tag] = p + off;
        recs->len[tag] = n;
        off += padded;
    }
    return 0;
}

/* A record that must be exactly one structure of this kernel's size. */
static int take(const struct records *recs, uint32_t tag, void *out, size_t size,
                const char *what)
{
    if (!recs->data[tag])
        return err_set(-EINVAL, "KVM state: no %s", what);
    if (recs->len[tag] != size)
        return err_set(-EINVAL, "KVM state: %s is %zu bytes, this kernel's is %zu", what,
                       recs->len[tag], size);
    memcpy(out, recs->data[tag], size);
    return 0;
}

/* --- vCPU ---------------------------------------------------------------- */

static size_t xsave_size(struct accel_vcpu *vcpu)
{
    int n = ioctl(vcpu->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

static int save_fixed(struct accel_vcpu *vcpu, struct buf *out, uint32_t tag,
                      unsigned long req, size_t size, const char *what)
{
    void *p = calloc(1, size);
    if (!p)
        return err_set(-ENOMEM, "out of memory");
    int ret = kvm_ioctl_err(vcpu->fd, req, p, what);
    if (!ret)
        put_record(out, tag, p, size);
    free(p);
    return ret;
}

static int save_cpuid(struct accel_vcpu *vcpu, struct buf *out)
{
    size_t size = sizeof(struct kvm_cpuid2) +
                  KVM_MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, size);
    if (!c)
        return err_set(-ENOMEM, "out of memory");
    c->nent = KVM_MAX_CPUID_ENTRIES;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_CPUID2, c, "GET_CPUID2");
    if (!ret)
        put_record(out, REC_CPUID, c->entries, c->nent * sizeof(c->entries[0]));
    free(c);
    return ret;
}

static int read_msr(struct accel_vcpu *vcpu, uint32_t index, uint64_t *value)
{
    struct {
        struct kvm_msrs head;
        struct kvm_msr_entry entry;
    } m = {.head.nmsrs = 1, .entry.index = index};
    if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) != 1)
        return -1;
    *value = m.entry.data;
    return 0;
}

/* MSRs as (index, value) pairs of u64; TSC_DEADLINE goes in a record of its
 * own, as it must be written after the local APIC. */
static int save_msrs(struct accel_vcpu *vcpu, struct buf *out)
{
    struct buf msrs = {0};
    for (size_t i = 0; i < ARRAY_SIZE(saved_msrs); i++) {
        uint64_t v;
        if (read_msr(vcpu, saved_msrs[i], &v))
            continue; /* not offered by this KVM */
        buf_put_u64(&msrs, saved_msrs[i]);
        buf_put_u64(&msrs, v);
    }
    uint64_t deadline = 0;
    if (read_msr(vcpu, MSR_TSC_DEADLINE, &deadline) == 0)
        put_record(out, REC_TSC_DEADLINE, &deadline, sizeof(deadline));
    int ret = msrs.failed ? err_set(-ENOMEM, "out of memory") : 0;
    if (!ret)
        put_record(out, REC_MSRS, msrs.data, msrs.len);
    buf_free(&msrs);
    return ret;
}

int kvm_vcpu_save(struct accel_vcpu *vcpu, struct buf *out)
{
    int ret = save_cpuid(vcpu, out);
    if (!ret)
        ret = save_fixed(vcpu, out, REC_REGS, KVM_GET_REGS, sizeof(struct kvm_regs), "GET_REGS");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_SREGS, KVM_GET_SREGS, sizeof(struct kvm_sregs),
                         "GET_SREGS");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_XSAVE,
                         xsave_size(vcpu) > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2
                                                                     : KVM_GET_XSAVE,
                         xsave_size(vcpu), "GET_XSAVE");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_XCRS, KVM_GET_XCRS, sizeof(struct kvm_xcrs), "GET_XCRS");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_DEBUGREGS, KVM_GET_DEBUGREGS,
                         sizeof(struct kvm_debugregs), "GET_DEBUGREGS");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_LAPIC, KVM_GET_LAPIC, sizeof(struct kvm_lapic_state),
                         "GET_LAPIC");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_MP_STATE, KVM_GET_MP_STATE, sizeof(struct kvm_mp_state),
                         "GET_MP_STATE");
    if (!ret)
        ret = save_fixed(vcpu, out, REC_EVENTS, KVM_GET_VCPU_EVENTS,
                         sizeof(struct kvm_vcpu_events), "GET_VCPU_EVENTS");
    if (!ret)
        ret = save_msrs(vcpu, out);
    if (!ret && out->failed)
        ret = err_set(-ENOMEM, "out of memory");
    return ret ? err_prefix(ret, "vCPU %u", vcpu->index) : 0;
}

static int restore_cpuid(struct accel_vcpu *vcpu, const struct records *recs)
{
    size_t n = recs->len[REC_CPUID] / sizeof(struct kvm_cpuid_entry2);
    if (!recs->data[REC_CPUID] || recs->len[REC_CPUID] % sizeof(struct kvm_cpuid_entry2) ||
        n == 0 || n > KVM_MAX_CPUID_ENTRIES)
        return err_set(-EINVAL, "KVM state: malformed CPUID list");
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
    if (!c)
        return err_set(-ENOMEM, "out of memory");
    c->nent = (uint32_t)n;
    memcpy(c->entries, recs->data[REC_CPUID], n * sizeof(c->entries[0]));
    int ret = kvm_ioctl_err(vcpu->fd, KVM_SET_CPUID2, c, "SET_CPUID2");
    free(c);
    return ret;
}

static int restore_msrs(struct accel_vcpu *vcpu, const uint8_t *data, size_t len)
{
    if (len % 16 || len / 16 > ARRAY_SIZE(saved_msrs))
        return err_set(-EINVAL, "KVM state: malformed MSR list");
    size_t n = len / 16;
    struct kvm_msrs *m = calloc(1, sizeof(*m) + (n ? n : 1) * sizeof(m->entries[0]));
    if (!m)
        return err_set(-ENOMEM, "out of memory");
    m->nmsrs = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        uint64_t index = le64_load(data + 16 * i);
        if (index > UINT32_MAX) {
            free(m);
            return err_set(-EINVAL, "KVM state: MSR index %#llx is out of range",
                           (unsigned long long)index);
        }
        m->entries[i].index = (uint32_t)index;
        m->entries[i].data = le64_load(data + 16 * i + 8);
    }
    int set = ioctl(vcpu->fd, KVM_SET_MSRS, m);
    int ret = 0;
    if (set < 0)
        ret = err_errno(-errno, "KVM SET_MSRS failed");
    else if ((size_t)set != n)
        ret = err_set(-EINVAL, "KVM refused MSR %#x = %#llx", m->entries[set].index,
                      (unsigned long long)m->entries[set].data);
    free(m);
    return ret;
}

static int restore_fixed(struct accel_vcpu *vcpu, const struct records *recs, uint32_t tag,
                         unsigned long req, size_t size, const char *what)
{
    void *p = calloc(1, size);
    if (!p)
        return err_set(-ENOMEM, "out of memory");
    int ret = take(recs, tag, p, size, what);
    if (!ret)
        ret = kvm_ioctl_err(vcpu->fd, req, p, what);
    free(p);
    return ret;
}

/* Order matters: CPUID before anything that depends on features, special
 * registers (APIC base, EFER) before the local APIC, the APIC before the
 * TSC deadline it arms, and pending events last. */
int kvm_vcpu_restore(struct accel_vcpu *vcpu, const void *data, size_t len)
{
    struct records recs;
    int ret = split_records(data, len, &recs);
    if (!ret)
        ret = restore_cpuid(vcpu, &recs);
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs),
                            "SET_SREGS");
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_REGS, KVM_SET_REGS, sizeof(struct kvm_regs),
                            "SET_REGS");
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_XSAVE, KVM_SET_XSAVE, xsave_size(vcpu),
                            "SET_XSAVE");
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs),
                            "SET_XCRS");
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_DEBUGREGS, KVM_SET_DEBUGREGS,
                            sizeof(struct kvm_debugregs), "SET_DEBUGREGS");
    if (!ret && !recs.data[REC_MSRS])
        ret = err_set(-EINVAL, "KVM state: no MSRs");
    if (!ret)
        ret = restore_msrs(vcpu, recs.data[REC_MSRS], recs.len[REC_MSRS]);
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_LAPIC, KVM_SET_LAPIC,
                            sizeof(struct kvm_lapic_state), "SET_LAPIC");
    if (!ret && recs.data[REC_TSC_DEADLINE]) {
        uint8_t msr[16];
        uint64_t deadline;
        ret = take(&recs, REC_TSC_DEADLINE, &deadline, sizeof(deadline), "TSC deadline");
        le64_store(msr, MSR_TSC_DEADLINE);
        le64_store(msr + 8, deadline);
        if (!ret)
            ret = restore_msrs(vcpu, msr, sizeof(msr));
    }
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_MP_STATE, KVM_SET_MP_STATE,
                            sizeof(struct kvm_mp_state), "SET_MP_STATE");
    if (!ret)
        ret = restore_fixed(vcpu, &recs, REC_EVENTS, KVM_SET_VCPU_EVENTS,
                            sizeof(struct kvm_vcpu_events), "SET_VCPU_EVENTS");
    return ret ? err_prefix(ret, "vCPU %u", vcpu->index) : 0;
}

/* --- the VM: interrupt controllers, PIT, clock ---------------------------- */

static int save_irqchip(struct accel_vm *vm, struct buf *out, uint32_t chip, uint32_t tag)
{
    struct kvm_irqchip c;
    memset(&c, 0, sizeof(c));
    c.chip_id = chip;
    int ret = kvm_ioctl_err(vm->vm_fd, KVM_GET_IRQCHIP, &c, "GET_IRQCHIP");
    if (!ret)
        put_record(out, tag, &c, sizeof(c));
    return ret;
}

int kvm_vm_save(struct accel_vm *vm, struct buf *out)
{
    int ret = save_irqchip(vm, out, KVM_IRQCHIP_PIC_MASTER, REC_PIC_MASTER);
    if (!ret)
        ret = save_irqchip(vm, out, KVM_IRQCHIP_PIC_SLAVE, REC_PIC_SLAVE);
    if (!ret)
        ret = save_irqchip(vm, out, KVM_IRQCHIP_IOAPIC, REC_IOAPIC);
    struct kvm_pit_state2 pit;
    memset(&pit, 0, sizeof(pit));
    if (!ret && !(ret = kvm_ioctl_err(vm->vm_fd, KVM_GET_PIT2, &pit, "GET_PIT2")))
        put_record(out, REC_PIT, &pit, sizeof(pit));
    struct kvm_clock_data clock;
    memset(&clock, 0, sizeof(clock));
    if (!ret && !(ret = kvm_ioctl_err(vm->vm_fd, KVM_GET_CLOCK, &clock, "GET_CLOCK")))
        put_record(out, REC_CLOCK, &clock, sizeof(clock));
    if (!ret && out->failed)
        ret = err_set(-ENOMEM, "out of memory");
    return ret;
}

static int restore_irqchip(struct accel_vm *vm, const struct records *recs, uint32_t chip,
                           uint32_t tag)
{
    struct kvm_irqchip c;
    int ret = take(recs, tag, &c, sizeof(c), "interrupt controller");
    if (!ret && c.chip_id != chip)
        ret = err_set(-EINVAL, "KVM state: interrupt controller %u where %u belongs",
                      c.chip_id, chip);
    if (!ret)
        ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_IRQCHIP, &c, "SET_IRQCHIP");
    return ret;
}

/* After the vCPUs (their TSCs): kvm-clock is computed from them. */
int kvm_vm_restore(struct accel_vm *vm, const void *data, size_t len)
{
    struct records recs;
    int ret = split_records(data, len, &recs);
    if (!ret)
        ret = restore_irqchip(vm, &recs, KVM_IRQCHIP_PIC_MASTER, REC_PIC_MASTER);
    if (!ret)
        ret = restore_irqchip(vm, &recs, KVM_IRQCHIP_PIC_SLAVE, REC_PIC_SLAVE);
    if (!ret)
        ret = restore_irqchip(vm, &recs, KVM_IRQCHIP_IOAPIC, REC_IOAPIC);
    struct kvm_pit_state2 pit;
    if (!ret && !(ret = take(&recs, REC_PIT, &pit, sizeof(pit), "PIT")))
        ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_PIT2, &pit, "SET_PIT2");
    struct kvm_clock_data clock;
    if (!ret && !(ret = take(&recs, REC_CLOCK, &clock, sizeof(clock), "clock"))) {
        /* The guest's clock continues from where it stopped (no flags:
         * KVM_CLOCK_REALTIME would make it jump by the time in between). */
        struct kvm_clock_data set;
        memset(&set, 0, sizeof(set));
        set.clock = clock.clock;
        ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_CLOCK, &set, "SET_CLOCK");
    }
    return ret;
}

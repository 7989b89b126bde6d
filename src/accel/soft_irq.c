/* The soft backend's platform: the 8259 pair, the IOAPIC, a local APIC per
 * vCPU and the 8254 PIT (ember's own models, src/irqchip and
 * src/devices/i8254.c), wired as KVM wires its in-kernel ones; MSIs; and
 * kvm-clock, from the guest clock all these timers share. */
#include <string.h>
#include <time.h>

#include "accel/soft_internal.h"
#include "util/log.h"
#include "util/util.h"

#define PVCLOCK_TSC_STABLE 1u
#define PVCLOCK_SIZE 32
#define WALL_CLOCK_SIZE 12

/* --- the guest clock as the devices read it ---------------------------------------- */

static uint64_t clock_now_ns(void *ctx)
{
    return soft_clock_ns(ctx);
}

static const struct vclock_ops clock_ops = {.now_ns = clock_now_ns};

static uint64_t host_ns_at(void *ctx, uint64_t guest_ns)
{
    struct soft_vm *vm = ctx;
    return guest_ns + atomic_load(&vm->clock_offset);
}

/* --- wiring --------------------------------------------------------------------------- */

static void pic_int_changed(void *ctx, bool level)
{
    struct soft_vm *vm = ctx;
    if (vm->nr_created)
        lapic_set_lint(vm->lapics[0], 0, level); /* the BSP's LINT0, ExtINT */
}

static const struct pic_ops soft_pic_ops = {.set_output = pic_int_changed};

static int ioapic_deliver(void *ctx, const struct apic_msg *msg)
{
    struct soft_vm *vm = ctx;
    return lapic_route(vm->lapics, vm->nr_created, msg);
}

static const struct ioapic_ops soft_ioapic_ops = {.deliver = ioapic_deliver};

static void sink_set_line(void *ctx, uint32_t gsi, bool level)
{
    if (soft_irq_set_line(ctx, gsi, level))
        log_guest("%s", err_msg());
}

static const struct irq_sink_ops soft_sink_ops = {.set_line = sink_set_line};

static void pit_expired(void *dev, uint64_t now)
{
    pit_timer_expired(dev, now);
}

static void ioapic_expired(void *dev, uint64_t now)
{
    ioapic_timer_expired(dev, now);
}

static void lapic_expired(void *dev, uint64_t now)
{
    lapic_timer_expired(dev, now);
}

int soft_irq_vm_init(struct soft_vm *vm)
{
    vm->clock = (struct vclock){&clock_ops, vm, CPU_TSC_HZ};
    for (unsigned i = 0; i < SOFT_MAX_GSI; i++)
        vm->gsi_pic[i] = vm->gsi_ioapic[i] = -1;
    int ret = soft_timers_init(&vm->timers, &vm->clock, host_ns_at, vm);
    struct vtimer pit_timer, ioapic_timer;
    if (!ret)
        ret = soft_timers_add(&vm->timers, pit_expired, &vm->pit, &pit_timer);
    if (!ret)
        ret = soft_timers_add(&vm->timers, ioapic_expired, &vm->ioapic, &ioapic_timer);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
        ret = soft_timers_add(&vm->timers, lapic_expired, NULL, &vm->lapic_timers[i]);
    if (ret)
        return ret;
    vm->sink = (struct irq_sink){&soft_sink_ops, vm};
    pic_init(&vm->pic, &soft_pic_ops, vm);
    ioapic_init(&vm->ioapic, &soft_ioapic_ops, vm, vm->clock, ioapic_timer);
    pit_init(&vm->pit, (struct irq_line){&vm->sink, 0}, vm->clock, pit_timer);
    return soft_timers_start(&vm->timers);
}

void soft_irq_vm_destroy(struct soft_vm *vm)
{
    soft_timers_destroy(&vm->timers);
    pit_destroy(&vm->pit);
    ioapic_destroy(&vm->ioapic);
    pic_destroy(&vm->pic);
}

int soft_irq_create(struct soft_vm *vm, const struct accel_irq_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct accel_irq_route *r = &routes[i];
        if (r->gsi >= SOFT_MAX_GSI)
            return err_set(-EINVAL, "GSI %u: only %d are routed", r->gsi, SOFT_MAX_GSI);
        if (r->chip == ACCEL_IOAPIC && r->pin < IOAPIC_NR_PINS)
            vm->gsi_ioapic[r->gsi] = (int)r->pin;
        else if (r->chip != ACCEL_IOAPIC && r->pin < 8)
            vm->gsi_pic[r->gsi] = (int)(r->pin + (r->chip == ACCEL_PIC_SLAVE ? 8 : 0));
        else
            return err_set(-EINVAL, "GSI %u: no pin %u on that chip", r->gsi, r->pin);
    }
    vm->irqchip = true;
    return 0;
}

int soft_irq_set_line(struct soft_vm *vm, uint32_t gsi, bool level)
{
    if (gsi >= SOFT_MAX_GSI || !vm->irqchip)
        return err_set(-EINVAL, "interrupt line %u is not routed", gsi);
    if (vm->gsi_pic[gsi] >= 0)
        pic_set_irq(&vm->pic, (unsigned)vm->gsi_pic[gsi], level);
    if (vm->gsi_ioapic[gsi] >= 0)
        ioapic_set_irq(&vm->ioapic, (unsigned)vm->gsi_ioapic[gsi], level);
    return 0;
}

int soft_irq_msi(struct soft_vm *vm, uint64_t address, uint32_t data)
{
    struct apic_msg msg;
    if (!apic_msg_from_msi(address, data, &msg))
        return err_set(-EINVAL, "MSI address %#llx is not the local APICs'",
                       (unsigned long long)address);
    lapic_route(vm->lapics, vm->nr_created, &msg);
    return 0;
}

/* --- a vCPU's local APIC ----------------------------------------------------------- */

/* Something changed in the local APIC: let the engine look at it at its
 * next instruction boundary, and wake it if it halts. Any thread. */
static void lapic_kick(void *ctx)
{
    struct soft_vcpu *v = ctx;
    if (lapic_pending_events(&v->lapic) & LAPIC_EV_NMI && lapic_take_nmi(&v->lapic))
        cpu_signal(v->cpu, CPU_EVENT_NMI);
    cpu_signal(v->cpu, CPU_EVENT_INTERRUPT);
    pthread_mutex_lock(&v->halt_lock);
    pthread_cond_broadcast(&v->halt_cond);
    pthread_mutex_unlock(&v->halt_lock);
}

static void lapic_eoi(void *ctx, uint8_t vector)
{
    struct soft_vcpu *v = ctx;
    ioapic_eoi(&v->vm->ioapic, vector);
}

static void lapic_send_ipi(void *ctx, const struct apic_msg *msg)
{
    struct soft_vcpu *v = ctx;
    lapic_route(v->vm->lapics, v->vm->nr_created, msg);
}

static uint8_t lapic_pic_ack(void *ctx)
{
    struct soft_vcpu *v = ctx;
    return pic_ack(&v->vm->pic);
}

/* A local APIC's clock: the guest clock, and its own vCPU's TSC for the
 * TSC-deadline timer (the TSC does not follow the guest clock's jumps). */
static uint64_t lapic_now_ns(void *ctx)
{
    struct soft_vcpu *v = ctx;
    return soft_clock_ns(v->vm);
}

static uint64_t lapic_now_tsc(void *ctx)
{
    return soft_tsc(ctx);
}

static const struct vclock_ops lapic_clock_ops = {.now_ns = lapic_now_ns, .now_tsc = lapic_now_tsc};

static const struct lapic_ops soft_lapic_ops = {
    .kick = lapic_kick,
    .eoi = lapic_eoi,
    .send_ipi = lapic_send_ipi,
    .pic_ack = lapic_pic_ack,
};

int soft_irq_vcpu_init(struct soft_vcpu *v)
{
    struct soft_vm *vm = v->vm;
    const struct lapic_config cfg = {
        .index = v->index, .apic_id = (uint8_t)v->index, .bsp = v->index == 0,
        .virtual_wire = v->index == 0};
    struct vtimer timer = vm->lapic_timers[v->index];
    /* The timer exists since the VM was made; now it has its device (it
     * cannot fire before lapic_init arms it). */
    ((struct soft_timer *)timer.ctx)->dev = &v->lapic;
    const struct vclock clock = {&lapic_clock_ops, v, CPU_TSC_HZ};
    lapic_init(&v->lapic, &cfg, &soft_lapic_ops, v, clock, timer);
    return 0;
}

int soft_irq_intr(struct soft_vcpu *v)
{
    return lapic_has_interrupt(&v->lapic) < 0 ? -1 : lapic_ack(&v->lapic);
}

bool soft_irq_wakes(struct soft_vcpu *v)
{
    struct cpu_events_state ev;
    cpu_get_events_state(v->cpu, &ev);
    if (ev.nmi_pending)
        return true;
    struct x86_regs regs;
    cpu_get_regs(v->cpu, &regs);
    /* With interrupts off only an NMI ends HLT, as on hardware. */
    return (regs.rflags & (1u << 9)) && lapic_has_interrupt(&v->lapic) >= 0;
}

/* --- the backend's own ports and MMIO ------------------------------------------------ */

static bool in_range(uint64_t addr, unsigned len, uint64_t base, uint64_t size)
{
    return addr >= base && addr - base < size && len <= size - (addr - base);
}

bool soft_irq_pio(struct soft_vm *vm, uint16_t port, void *data, unsigned len, bool is_write)
{
    static const struct {
        uint16_t base, len;
        const struct bus_ops *ops;
        size_t dev; /* offset of the device in struct soft_vm */
    } ports[] = {
        {PIC_MASTER_BASE, PIC_RANGE_LEN, &pic_master_bus_ops, offsetof(struct soft_vm, pic)},
        {PIC_SLAVE_BASE, PIC_RANGE_LEN, &pic_slave_bus_ops, offsetof(struct soft_vm, pic)},
        {PIC_ELCR_BASE, PIC_RANGE_LEN, &pic_elcr_bus_ops, offsetof(struct soft_vm, pic)},
        {PIT_BASE, PIT_LEN, &pit_bus_ops, offsetof(struct soft_vm, pit)},
        {PIT_PORT61, 1, &pit_port61_ops, offsetof(struct soft_vm, pit)},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ports); i++) {
        if (!in_range(port, len, ports[i].base, ports[i].len))
            continue;
        void *dev = (char *)vm + ports[i].dev;
        if (is_write)
            ports[i].ops->write(dev, port - ports[i].base, data, len);
        else
            ports[i].ops->read(dev, port - ports[i].base, data, len);
        return true;
    }
    return false;
}

bool soft_irq_mmio(struct soft_vcpu *v, uint64_t gpa, void *data, unsigned len, bool is_write)
{
    const struct bus_ops *ops;
    void *dev;
    uint64_t base = lapic_get_base(&v->lapic);
    if ((base & APICBASE_ENABLE) && in_range(gpa, len, base & ~0xfffull, LAPIC_MMIO_LEN)) {
        ops = &lapic_bus_ops, dev = &v->lapic, base &= ~0xfffull;
    } else if (in_range(gpa, len, IOAPIC_BASE, IOAPIC_MMIO_LEN)) {
        ops = &ioapic_bus_ops, dev = &v->vm->ioapic, base = IOAPIC_BASE;
    } else {
        return false;
    }
    if (is_write)
        ops->write(dev, gpa - base, data, len);
    else
        ops->read(dev, gpa - base, data, len);
    return true;
}

/* --- kvm-clock ------------------------------------------------------------------------ */

/* The guest reads ns = system_time + ((tsc - tsc_timestamp) * mul >> 32):
 * with the TSC at CPU_TSC_HZ (2 GHz), mul is 2^32 / 2. The version is odd
 * while the fields change. */
void soft_pvclock_update(struct soft_vcpu *v)
{
    if (!(v->pvclock_gpa & 1))
        return;
    uint64_t gpa = v->pvclock_gpa & ~1ull;
    const struct guest_mem *gm = v->vm->mem;
    uint8_t t[PVCLOCK_SIZE] = {0};
    uint64_t tsc = soft_tsc(v), ns = soft_clock_ns(v->vm);
    le64_store(t + 8, tsc);
    le64_store(t + 16, ns);
    le32_store(t + 24, (uint32_t)((1ull << 32) * 1000000000ull / CPU_TSC_HZ));
    t[28] = 0; /* tsc_shift */
    t[29] = PVCLOCK_TSC_STABLE;
    uint32_t odd = v->pvclock_version | 1; /* readers retry while it is odd */
    le32_store(t, odd);
    v->pvclock_version = odd + 1;
    if (gm_write(gm, gpa, t, sizeof(t)) || gm_write_u32(gm, gpa, v->pvclock_version))
        log_guest("kvm-clock at %#llx is outside guest memory", (unsigned long long)gpa);
}

/* Wall-clock time at guest clock 0, for the guest's first reading. */
static void write_wall_clock(struct soft_vcpu *v, uint64_t gpa)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t real = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    uint64_t boot = real - soft_clock_ns(v->vm);
    uint8_t w[WALL_CLOCK_SIZE];
    le32_store(w, 2); /* an even version: stable */
    le32_store(w + 4, (uint32_t)(boot / 1000000000ull));
    le32_store(w + 8, (uint32_t)(boot % 1000000000ull));
    if (gm_write(v->vm->mem, gpa, w, sizeof(w)))
        log_guest("kvm wall clock at %#llx is outside guest memory", (unsigned long long)gpa);
}

bool soft_irq_msr(struct soft_vcpu *v, uint32_t index, uint64_t *value, bool is_write,
                  bool *ok)
{
    *ok = true;
    switch (index) {
    case MSR_IA32_APICBASE:
        if (is_write)
            *ok = lapic_set_base(&v->lapic, *value) == 0;
        else
            *value = lapic_get_base(&v->lapic);
        return true;
    case MSR_IA32_TSC_DEADLINE:
        if (is_write)
            lapic_set_tsc_deadline(&v->lapic, *value);
        else
            *value = lapic_get_tsc_deadline(&v->lapic);
        return true;
    case MSR_KVM_SYSTEM_TIME:
    case MSR_KVM_SYSTEM_TIME_NEW:
        if (!is_write) {
            *value = v->pvclock_gpa;
            return true;
        }
        v->pvclock_gpa = *value;
        soft_pvclock_update(v);
        return true;
    case MSR_KVM_WALL_CLOCK:
    case MSR_KVM_WALL_CLOCK_NEW:
        if (is_write)
            write_wall_clock(v, *value);
        else
            *value = 0;
        return true;
    default:
        return false;
    }
}

/* The soft backend: ember's own x86-64 engine (src/cpu) behind accel_ops,
 * for hosts without hardware virtualization. What KVM does in the kernel
 * this backend does itself: it runs the guest's instructions, gives device
 * accesses to ember's buses synchronously, supplies the PC's interrupt
 * controllers, PIT and clock (soft_irq.c), sleeps in HLT, and matches
 * ioeventfd addresses on the MMIO write path. Several vCPUs take turns
 * (soft_smp.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accel/soft_internal.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"

#define TSC_NS_MUL (CPU_TSC_HZ / 1000000000ull) /* TSC ticks per ns */

static struct soft_vm *to_vm(struct accel_vm *vm)
{
    return (struct soft_vm *)vm;
}

static struct soft_vcpu *to_vcpu(struct accel_vcpu *vcpu)
{
    return (struct soft_vcpu *)vcpu;
}

/* --- time ---------------------------------------------------------------------- */

uint64_t soft_host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t soft_clock_ns(struct soft_vm *vm)
{
    return soft_host_ns() - atomic_load(&vm->clock_offset);
}

uint64_t soft_tsc(struct soft_vcpu *v)
{
    return (soft_host_ns() - atomic_load(&v->tsc_base_ns)) * TSC_NS_MUL;
}

static int soft_get_clock(struct accel_vm *avm, uint64_t *ns)
{
    *ns = soft_clock_ns(to_vm(avm));
    return 0;
}

/* The guest clock continues from 'ns' (a resume, or a restore's
 * clock_realtime). The vCPUs' TSCs move by as much as the clock: the guest
 * keeps time with the TSC when it is invariant (as the engine's is), and
 * kvm-clock and the TSC must not drift apart. */
static int soft_set_clock(struct accel_vm *avm, uint64_t ns)
{
    struct soft_vm *vm = to_vm(avm);
    uint64_t shift = ns - soft_clock_ns(vm); /* modulo 2^64: back or forward */
    atomic_store(&vm->clock_offset, soft_host_ns() - ns);
    for (unsigned i = 0; i < vm->nr_created; i++) {
        atomic_fetch_sub(&vm->vcpus[i]->tsc_base_ns, shift);
        soft_pvclock_update(vm->vcpus[i]);
    }
    soft_timers_poke(&vm->timers);
    return 0;
}

/* --- the VM -------------------------------------------------------------------- */

/* EMBER_PERF_MAP=1: the engine's translated blocks named in perf's map
 * for generated code, so that a profile says which guest code its samples
 * in the translator's arena ran (README, "Benchmark"). Best effort. */
static FILE *perf_map_open(void)
{
    const char *v = getenv("EMBER_PERF_MAP");
    if (!v || strcmp(v, "1"))
        return NULL;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
    FILE *f = fopen(path, "we");
    if (!f)
        log_warn("EMBER_PERF_MAP: cannot create %s", path);
    return f;
}

static void soft_code_translated(void *ctx, const void *host, size_t len, uint64_t va)
{
    struct soft_vcpu *v = ctx;
    FILE *f = v->vm->perf_map;
    if (f) {
        fprintf(f, "%lx %zx guest_%llx\n", (unsigned long)(uintptr_t)host, len,
                (unsigned long long)va);
        fflush(f);
    }
}

static int soft_vm_create(const struct accel_vm_params *params, struct accel_vm **out)
{
    if (params->nr_vcpus > SOFT_MAX_VCPUS)
        return err_set(-EINVAL, "ember's CPU engine runs at most %d vCPUs, not %u",
                       SOFT_MAX_VCPUS, params->nr_vcpus);
    struct soft_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return err_set(-ENOMEM, "out of memory");
    vm->io = params->io;
    vm->mem = params->mem;
    vm->nr_vcpus = params->nr_vcpus;
    vm->perf_map = perf_map_open();
    soft_smp_vm_init(vm);
    vm->tsc_epoch_ns = soft_host_ns();
    atomic_init(&vm->clock_offset, vm->tsc_epoch_ns);
    pthread_rwlock_init(&vm->ioeventfd_lock, NULL);
    int ret = soft_irq_vm_init(vm);
    if (ret) {
        pthread_rwlock_destroy(&vm->ioeventfd_lock);
        soft_smp_vm_destroy(vm);
        if (vm->perf_map)
            fclose(vm->perf_map);
        free(vm);
        return ret;
    }
    *out = (struct accel_vm *)vm;
    return 0;
}

static void soft_vm_destroy(struct accel_vm *avm)
{
    struct soft_vm *vm = to_vm(avm);
    soft_irq_vm_destroy(vm);
    pthread_rwlock_destroy(&vm->ioeventfd_lock);
    soft_smp_vm_destroy(vm);
    if (vm->perf_map)
        fclose(vm->perf_map);
    free(vm);
}

static int soft_map_memory(struct accel_vm *avm, uint32_t slot, uint64_t gpa, uint64_t size,
                           void *hva, bool log_dirty)
{
    (void)avm, (void)slot, (void)gpa, (void)size, (void)hva, (void)log_dirty;
    return 0; /* the engine reads the regions from params->mem */
}

/* The engine marks the pages it writes in guest memory's own dirty bitmap
 * (which snapshot.c takes after this): here each vCPU only forgets its
 * writable TLB entries, so that its next write to a page marks it again.
 * The VM is paused; the flush happens before the next block. */
static int soft_get_dirty_log(struct accel_vm *avm, uint32_t slot, uint64_t size,
                              uint64_t *bitmap)
{
    (void)slot, (void)size, (void)bitmap;
    struct soft_vm *vm = to_vm(avm);
    for (unsigned i = 0; i < vm->nr_created; i++)
        cpu_signal(vm->vcpus[i]->cpu, CPU_EVENT_TLB_FLUSH);
    return 0;
}

static void soft_memory_written(struct accel_vm *avm, uint64_t gpa, uint64_t len)
{
    struct soft_vm *vm = to_vm(avm);
    for (unsigned i = 0; i < vm->nr_created; i++)
        cpu_notify_write(vm->vcpus[i]->cpu, gpa, len);
}

static int soft_create_irqchip(struct accel_vm *avm, const struct accel_irq_route *routes,
                               size_t n)
{
    return soft_irq_create(to_vm(avm), routes, n);
}

static int soft_set_irq_line(struct accel_vm *avm, uint32_t gsi, bool level)
{
    return soft_irq_set_line(to_vm(avm), gsi, level);
}

static int soft_msi_inject(struct accel_vm *avm, uint64_t address, uint32_t data)
{
    return soft_irq_msi(to_vm(avm), address, data);
}

static int soft_ioeventfd(struct accel_vm *avm, int fd, uint64_t address, unsigned len,
                          const uint64_t *datamatch, bool assign)
{
    struct soft_vm *vm = to_vm(avm);
    int ret = 0;
    pthread_rwlock_wrlock(&vm->ioeventfd_lock);
    if (assign && vm->nr_ioeventfds == SOFT_MAX_IOEVENTFDS)
        ret = err_set(-ENOSPC, "more than %d ioeventfds", SOFT_MAX_IOEVENTFDS);
    else if (assign)
        vm->ioeventfds[vm->nr_ioeventfds++] = (struct soft_ioeventfd){
            address, len, fd, datamatch != NULL, datamatch ? *datamatch : 0};
    for (unsigned i = 0; !assign && i < vm->nr_ioeventfds; i++) {
        if (vm->ioeventfds[i].fd == fd && vm->ioeventfds[i].addr == address) {
            vm->ioeventfds[i] = vm->ioeventfds[--vm->nr_ioeventfds];
            break;
        }
    }
    pthread_rwlock_unlock(&vm->ioeventfd_lock);
    return ret;
}

/* A guest write an ioeventfd catches signals it instead of reaching a
 * device, as KVM does: the device processes it on the event loop. */
static bool soft_ioeventfd_hit(struct soft_vm *vm, uint64_t gpa, const void *data, unsigned len)
{
    int fd = -1;
    uint64_t value = 0;
    memcpy(&value, data, MIN(len, sizeof(value))); /* little-endian, as the guest wrote it */
    pthread_rwlock_rdlock(&vm->ioeventfd_lock);
    for (unsigned i = 0; i < vm->nr_ioeventfds; i++) {
        const struct soft_ioeventfd *e = &vm->ioeventfds[i];
        if (e->addr == gpa && e->len == len && (!e->match || e->data == value)) {
            fd = vm->ioeventfds[i].fd;
            break;
        }
    }
    pthread_rwlock_unlock(&vm->ioeventfd_lock);
    if (fd >= 0)
        eventfd_signal(fd);
    return fd >= 0;
}

/* The engine's CPUID, with what this backend adds: the local APIC, the
 * TSC-deadline timer and kvm-clock. */
static int soft_supported_cpuid(struct accel_vm *avm, struct x86_cpuid_entry *entries,
                                size_t max, size_t *count)
{
    (void)avm;
    unsigned n = 0;
    if (cpu_supported_cpuid(entries, (unsigned)max, &n))
        return err_set(-E2BIG, "the engine's CPUID table needs %u entries", n);
    size_t out = 0;
    for (unsigned i = 0; i < n; i++) {
        struct x86_cpuid_entry *e = &entries[i];
        if (e->function >= 0x40000000 && e->function < 0x40000100)
            continue; /* replaced by KVM's paravirtual leaves below */
        if (e->function == 1) {
            e->edx |= 1u << 9;   /* APIC */
            e->ecx |= 1u << 24;  /* TSC deadline */
            e->ecx &= ~(1u << 21); /* no x2APIC */
        }
        entries[out++] = *e;
    }
    if (out + 2 > max)
        return err_set(-E2BIG, "no room for the paravirtual CPUID leaves");
    /* "KVMKVMKVM": Linux's kvmclock reads the time from the shared page
     * this backend writes (KVM_FEATURE_CLOCKSOURCE2, and the stable bit). */
    entries[out++] = (struct x86_cpuid_entry){.function = 0x40000000, .eax = 0x40000001,
                                              .ebx = 0x4b4d564b, .ecx = 0x564b4d56,
                                              .edx = 0x0000004d};
    entries[out++] = (struct x86_cpuid_entry){.function = 0x40000001,
                                              .eax = (1u << 3) | (1u << 24)};
    *count = out;
    return 0;
}

/* --- device access from the engine ------------------------------------------------ */

static void soft_pio(void *ctx, uint16_t port, void *data, unsigned len, bool is_write)
{
    struct soft_vcpu *v = ctx;
    struct soft_vm *vm = v->vm;
    if (!soft_irq_pio(vm, port, data, len, is_write))
        vm->io.pio(vm->io.ctx, port, data, len, is_write);
}

static bool soft_mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write)
{
    struct soft_vcpu *v = ctx;
    struct soft_vm *vm = v->vm;
    if (soft_irq_mmio(v, gpa, data, len, is_write))
        return true;
    if (is_write && soft_ioeventfd_hit(vm, gpa, data, len))
        return true;
    return vm->io.mmio(vm->io.ctx, gpa, data, len, is_write);
}

static bool soft_msr(void *ctx, uint32_t index, uint64_t *value, bool is_write)
{
    bool ok = false;
    return soft_irq_msr(ctx, index, value, is_write, &ok) && ok;
}

static int soft_intr(void *ctx)
{
    return soft_irq_intr(ctx);
}

static uint64_t soft_engine_clock(void *ctx)
{
    struct soft_vcpu *v = ctx;
    return soft_tsc(v) / TSC_NS_MUL;
}

static void soft_debug(void *ctx, const char *msg)
{
    struct soft_vcpu *v = ctx;
    log_debug("vCPU %u engine: %s", v->index, msg);
}

static void soft_warn(void *ctx, const char *msg)
{
    struct soft_vcpu *v = ctx;
    log_warn("vCPU %u engine: %s", v->index, msg);
}

/* --- vCPUs ------------------------------------------------------------------------ */

static int soft_vcpu_create(struct accel_vm *avm, unsigned index, struct accel_vcpu **out)
{
    struct soft_vm *vm = to_vm(avm);
    if (index >= vm->nr_vcpus || vm->nr_created != index)
        return err_set(-EINVAL, "vCPU %u out of order", index);
    struct soft_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return err_set(-ENOMEM, "out of memory");
    v->vm = vm;
    v->index = index;
    atomic_init(&v->tsc_base_ns, vm->tsc_epoch_ns);
    atomic_init(&v->started, index == 0); /* the APs wait for the mailbox */
    pthread_mutex_init(&v->halt_lock, NULL);
    pthread_cond_init(&v->halt_cond, NULL);
    bool smp = vm->nr_vcpus > 1;
    const struct cpu_config cfg = {
        .mem = vm->mem,
        .ops = {.ctx = v, .pio = soft_pio, .mmio = soft_mmio, .msr = soft_msr,
                .intr = soft_intr, .clock_ns = soft_engine_clock, .debug = soft_debug,
                .warn = soft_warn,
                .pause = smp ? soft_smp_pause : NULL,
                .code_page = smp ? soft_smp_code_page : NULL,
                .code_written = smp ? soft_smp_code_written : NULL,
                .code_translated = vm->perf_map ? soft_code_translated : NULL},
        .vcpu_id = index,
    };
    v->cpu = cpu_create(&cfg);
    int ret = v->cpu ? soft_irq_vcpu_init(v) : err_set(-ENOMEM, "cannot create the engine's vCPU");
    if (ret) {
        if (v->cpu)
            cpu_destroy(v->cpu);
        pthread_cond_destroy(&v->halt_cond);
        pthread_mutex_destroy(&v->halt_lock);
        free(v);
        return ret;
    }
    vm->vcpus[index] = v;
    vm->lapics[index] = &v->lapic;
    vm->nr_created++;
    *out = (struct accel_vcpu *)v;
    return 0;
}

static void soft_vcpu_destroy(struct accel_vcpu *vcpu)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    /* The timer thread fires into every vCPU's LAPIC and, through the PIT
     * and IOAPIC, kicks every vCPU: it ends before the first one goes (a
     * restore that fails after loading an armed LAPIC timer raced here). */
    soft_timers_stop(&v->vm->timers);
    lapic_destroy(&v->lapic);
    cpu_destroy(v->cpu);
    pthread_cond_destroy(&v->halt_cond);
    pthread_mutex_destroy(&v->halt_lock);
    free(v);
}

static int soft_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct x86_cpuid_entry *entries,
                               size_t count)
{
    int ret = cpu_set_cpuid(to_vcpu(vcpu)->cpu, entries, (unsigned)count);
    return ret ? err_errno(ret, "CPUID") : 0;
}

static int soft_vcpu_set_msrs(struct accel_vcpu *vcpu, const struct x86_msr *msrs, size_t count)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    for (size_t i = 0; i < count; i++) {
        uint64_t value = msrs[i].value;
        bool ok = true;
        if (msrs[i].index == MSR_IA32_TSC) {
            atomic_store(&v->tsc_base_ns, soft_host_ns() - value / TSC_NS_MUL);
        } else if (!soft_irq_msr(v, msrs[i].index, &value, true, &ok)) {
            int ret = cpu_set_msr(v->cpu, msrs[i].index, value);
            ok = ret == 0;
        }
        if (!ok)
            return err_set(-EINVAL, "MSR %#x: the engine refuses %#llx", msrs[i].index,
                           (unsigned long long)value);
    }
    return 0;
}

static int soft_vcpu_get_msrs(struct accel_vcpu *vcpu, struct x86_msr *msrs, size_t count)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    for (size_t i = 0; i < count; i++) {
        bool ok = true;
        if (msrs[i].index == MSR_IA32_TSC)
            msrs[i].value = soft_tsc(v);
        else if (!soft_irq_msr(v, msrs[i].index, &msrs[i].value, false, &ok))
            ok = cpu_get_msr(v->cpu, msrs[i].index, &msrs[i].value) == 0;
        if (!ok)
            return err_set(-EINVAL, "MSR %#x: not known to the engine", msrs[i].index);
    }
    return 0;
}

static int soft_vcpu_get_regs(struct accel_vcpu *vcpu, struct x86_regs *regs)
{
    cpu_get_regs(to_vcpu(vcpu)->cpu, regs);
    return 0;
}

static int soft_vcpu_set_regs(struct accel_vcpu *vcpu, const struct x86_regs *regs)
{
    cpu_set_regs(to_vcpu(vcpu)->cpu, regs);
    return 0;
}

static int soft_vcpu_get_sregs(struct accel_vcpu *vcpu, struct x86_sregs *sregs)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    cpu_get_sregs(v->cpu, sregs);
    sregs->apic_base = lapic_get_base(&v->lapic);
    return 0;
}

static int soft_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct x86_sregs *sregs)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    if (cpu_set_sregs(v->cpu, sregs))
        return err_set(-EINVAL, "the engine runs 64-bit long mode only (CR0 %#llx, EFER "
                                "%#llx, CS.L %d)", (unsigned long long)sregs->cr0,
                       (unsigned long long)sregs->efer, sregs->cs.l);
    if (sregs->apic_base && lapic_set_base(&v->lapic, sregs->apic_base))
        return err_set(-EINVAL, "APIC base %#llx refused", (unsigned long long)sregs->apic_base);
    return 0;
}

/* HLT: sleep until something can wake the vCPU. Returns false if a kick
 * (a pause, a stop) ended the wait instead. */
static bool soft_halt(struct soft_vcpu *v)
{
    pthread_mutex_lock(&v->halt_lock);
    while (!atomic_load(&v->kicked) && !soft_irq_wakes(v))
        pthread_cond_wait(&v->halt_cond, &v->halt_lock);
    pthread_mutex_unlock(&v->halt_lock);
    return !atomic_load(&v->kicked);
}

static void soft_error(struct accel_exit *exit, const struct cpu_exit *ce)
{
    int n = snprintf(exit->detail, sizeof(exit->detail), "engine error at RIP %#llx: %s",
                     (unsigned long long)ce->rip, ce->detail);
    for (unsigned i = 0; i < ce->insn_len && n > 0 && (size_t)n < sizeof(exit->detail) - 4; i++)
        n += snprintf(exit->detail + n, sizeof(exit->detail) - (size_t)n, "%s%02x",
                      i ? " " : " (bytes ", ce->insn[i]);
    if (ce->insn_len && n > 0 && (size_t)n < sizeof(exit->detail) - 1)
        snprintf(exit->detail + n, sizeof(exit->detail) - (size_t)n, ")");
}

static int soft_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    for (;;) {
        if (atomic_exchange(&v->kicked, false)) {
            exit->kind = ACCEL_EXIT_INTERRUPTED;
            return 0;
        }
        if (!atomic_load(&v->started)) {
            soft_ap_wait(v);
            continue;
        }
        struct cpu_exit ce;
        soft_turn_take(v->vm);
        if (v->vm->nr_vcpus > 1)
            cpu_set_insn_limit(v->cpu, SOFT_TURN_INSNS);
        int reason = cpu_run(v->cpu, &ce);
        soft_turn_give(v->vm);
        switch (reason) {
        case CPU_EXIT_HALT:
            if (soft_halt(v))
                cpu_signal(v->cpu, CPU_EVENT_INTERRUPT);
            continue;
        case CPU_EXIT_INTERRUPTED:
            continue; /* a kick is seen at the top; other reasons run on */
        case CPU_EXIT_SHUTDOWN:
            exit->kind = ACCEL_EXIT_SHUTDOWN;
            return 0;
        case CPU_EXIT_DEBUG:
            exit->kind = ACCEL_EXIT_DEBUG;
            exit->debug.vector = ce.vector;
            exit->debug.pc = ce.rip;
            exit->debug.dr6 = ce.dr6;
            return 0;
        case CPU_EXIT_ERROR:
        default:
            exit->kind = ACCEL_EXIT_ERROR;
            soft_error(exit, &ce);
            return 0;
        }
    }
}

/* The engine stops at instruction breakpoints and data watchpoints itself
 * (the debugger's DR7: R/W 0 execute, 1 write, 3 access; LEN 1, 2, 4, 8). */
static int soft_vcpu_set_debug(struct accel_vcpu *vcpu, const struct accel_debug *dbg)
{
    struct cpu_debug cd = {0};
    if (dbg->flags & ACCEL_DEBUG_SINGLESTEP)
        cd.flags |= CPU_DEBUG_STEP;
    if (dbg->flags & ACCEL_DEBUG_SW_BP)
        cd.flags |= CPU_DEBUG_SW_BP;
    cd.pass_int3 = (dbg->flags & ACCEL_DEBUG_INJECT_BP) != 0;
    for (unsigned n = 0; (dbg->flags & ACCEL_DEBUG_HW_BP) && n < 4; n++) {
        if (!(dbg->dr7 & (ACCEL_DR7_ENABLE(n) | ACCEL_DR7_ENABLE(n) >> 1)))
            continue;
        unsigned rw = (dbg->dr7 >> (16 + n * 4)) & 3, len = (dbg->dr7 >> (18 + n * 4)) & 3;
        if (rw == 2)
            return err_set(-EOPNOTSUPP, "the CPU engine watches no I/O ports");
        static const uint8_t bytes[4] = {1, 2, 8, 4};
        cd.watch[n] = (uint8_t)rw;
        cd.len[n] = rw ? bytes[len] : 1;
        cd.addr[n] = dbg->dr[n] & ~(uint64_t)(cd.len[n] - 1); /* as the hardware aligns */
        cd.enabled[n] = true;
        if (!rw)
            cd.addr[n] = dbg->dr[n];
        cd.flags |= CPU_DEBUG_HW_BP;
    }
    cpu_set_debug(to_vcpu(vcpu)->cpu, &cd);
    return 0;
}

static int soft_vcpu_get_fpu(struct accel_vcpu *vcpu, uint8_t fxsave[512])
{
    cpu_get_fxsave(to_vcpu(vcpu)->cpu, fxsave);
    return 0;
}

static int soft_vcpu_set_fpu(struct accel_vcpu *vcpu, const uint8_t fxsave[512])
{
    if (cpu_set_fxsave(to_vcpu(vcpu)->cpu, fxsave))
        return err_set(-EINVAL, "the x87/SSE state is invalid (MXCSR)");
    return 0;
}

static void soft_vcpu_kick(struct accel_vcpu *vcpu, pthread_t thread)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    (void)thread;
    atomic_store(&v->kicked, true);
    cpu_signal(v->cpu, CPU_EVENT_KICK);
    pthread_mutex_lock(&v->halt_lock);
    pthread_cond_broadcast(&v->halt_cond);
    pthread_mutex_unlock(&v->halt_lock);
}

static size_t soft_vcpu_counters(struct accel_vcpu *vcpu, struct accel_counter *out)
{
    struct soft_vcpu *v = to_vcpu(vcpu);
    struct cpu_stats st;
    cpu_get_stats(v->cpu, &st);
    uint64_t exceptions = 0;
    for (unsigned i = 0; i < 32; i++)
        exceptions += st.exceptions[i];
    const struct accel_counter c[] = {
        {"instructions", st.insns},          {"blocks_built", st.blocks_built},
        {"blocks_invalidated", st.blocks_invalidated}, {"tlb_misses", st.tlb_misses},
        {"exceptions", exceptions},          {"page_faults", st.exceptions[14]},
        {"interrupts", st.interrupts},       {"pio", st.pio},
        {"mmio", st.mmio},                   {"timer_interrupts", v->lapic.timer_interrupts},
        {"block_lookups", st.dispatches},    {"blocks_chained", st.chained},
        {"cache_flushes", st.cache_flushes}, {"host_exec", st.hostexec},
        {"jit_insns", st.jit_insns},         {"jit_executed", st.jit_executed},
        {"jit_bytes", st.jit_bytes},
    };
    _Static_assert(ARRAY_SIZE(c) <= ACCEL_MAX_COUNTERS, "room for the counters");
    memcpy(out, c, sizeof(c));
    return ARRAY_SIZE(c);
}

const struct accel_ops accel_soft_ops = {
    .name = "soft",
    .caps = ACCEL_CAP_WATCHPOINTS | ACCEL_CAP_MP_MAILBOX,
    .vm_create = soft_vm_create,
    .vm_destroy = soft_vm_destroy,
    .map_memory = soft_map_memory,
    .memory_written = soft_memory_written,
    .get_dirty_log = soft_get_dirty_log,
    .create_irqchip = soft_create_irqchip,
    .set_irq_line = soft_set_irq_line,
    .msi_inject = soft_msi_inject,
    .ioeventfd = soft_ioeventfd,
    .get_clock = soft_get_clock,
    .set_clock = soft_set_clock,
    .supported_cpuid = soft_supported_cpuid,
    .vcpu_create = soft_vcpu_create,
    .vcpu_destroy = soft_vcpu_destroy,
    .vcpu_set_cpuid = soft_vcpu_set_cpuid,
    .vcpu_set_msrs = soft_vcpu_set_msrs,
    .vcpu_get_msrs = soft_vcpu_get_msrs,
    .vcpu_get_regs = soft_vcpu_get_regs,
    .vcpu_set_regs = soft_vcpu_set_regs,
    .vcpu_get_sregs = soft_vcpu_get_sregs,
    .vcpu_set_sregs = soft_vcpu_set_sregs,
    .vcpu_get_fpu = soft_vcpu_get_fpu,
    .vcpu_set_fpu = soft_vcpu_set_fpu,
    .vcpu_set_debug = soft_vcpu_set_debug,
    .vcpu_run = soft_vcpu_run,
    .vcpu_kick = soft_vcpu_kick,
    .vcpu_counters = soft_vcpu_counters,
    .vcpu_save = soft_vcpu_save,
    .vcpu_restore = soft_vcpu_restore,
    .vm_save = soft_vm_save,
    .vm_restore = soft_vm_restore,
};

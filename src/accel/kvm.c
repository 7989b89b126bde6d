/* KVM implementation of the CPU backend. */
#include "accel/accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm_internal.h"
#include "arch/x86_64/layout.h"
#include "util/timeline.h"
#include "util/util.h"

int kvm_ioctl_err(int fd, unsigned long req, void *arg, const char *what)
{
    if (ioctl(fd, req, arg) < 0)
        return err_errno(-errno, "KVM %s failed", what);
    return 0;
}

static int kvm_vm_create(const struct accel_vm_params *params, struct accel_vm **out)
{
    struct accel_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return err_set(-ENOMEM, "out of memory");
    vm->vm_fd = -1;
    vm->io = params->io;
    pthread_mutex_init(&vm->routes_lock, NULL);
    pthread_mutex_init(&vm->posted_lock, NULL);
    vm->next_msi_gsi = KVM_FIRST_MSI_GSI;
    int ret;
    vm->routes = calloc(KVM_MAX_ROUTES, sizeof(*vm->routes));
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (!vm->routes) {
        ret = err_set(-ENOMEM, "out of memory");
        goto fail;
    }
    if (vm->kvm_fd < 0) {
        ret = err_errno(-errno, "cannot open /dev/kvm");
        goto fail;
    }
    int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        ret = err_set(-ENOTSUP, "/dev/kvm speaks API version %d, ember needs %d",
                      version, KVM_API_VERSION);
        goto fail;
    }
    static const struct { int cap; const char *name; } required[] = {
        {KVM_CAP_IRQCHIP, "in-kernel irqchip"},
        {KVM_CAP_USER_MEMORY, "user memory"},
        {KVM_CAP_SET_TSS_ADDR, "TSS address"},
        {KVM_CAP_EXT_CPUID, "CPUID2"},
        {KVM_CAP_PIT2, "PIT2"},
        {KVM_CAP_IRQ_ROUTING, "IRQ routing"},
        {KVM_CAP_IMMEDIATE_EXIT, "immediate exit"},
        {KVM_CAP_IOEVENTFD, "ioeventfd"},
        {KVM_CAP_IRQFD, "irqfd"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0) {
            ret = err_set(-ENOTSUP, "/dev/kvm lacks %s support", required[i].name);
            goto fail;
        }
    }
    vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
        ret = err_set(-ENOTSUP, "KVM reports a bad vCPU mmap size");
        goto fail;
    }
    do {
        vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    } while (vm->vm_fd < 0 && errno == EINTR);
    if (vm->vm_fd < 0) {
        ret = err_errno(-errno, "KVM_CREATE_VM failed");
        goto fail;
    }
    timeline_mark("KVM_CREATE_VM");
    kvm_posted_probe(vm);
    ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)LAYOUT_KVM_TSS,
                        "SET_TSS_ADDR");
    if (ret)
        goto fail;
    uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;
    ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity,
                        "SET_IDENTITY_MAP_ADDR");
    if (ret)
        goto fail;
    *out = vm;
    return 0;
fail:
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    pthread_mutex_destroy(&vm->posted_lock);
    pthread_mutex_destroy(&vm->routes_lock);
    free(vm->routes);
    free(vm);
    return ret;
}

static void kvm_vm_destroy(struct accel_vm *vm)
{
    if (!vm)
        return;
    kvm_posted_unmap(vm);
    close(vm->vm_fd);
    close(vm->kvm_fd);
    pthread_mutex_destroy(&vm->posted_lock);
    pthread_mutex_destroy(&vm->routes_lock);
    free(vm->routes);
    free(vm);
}

/* Caller holds routes_lock. */
static int kvm_commit_routes(struct accel_vm *vm)
{
    struct kvm_irq_routing *table =
        calloc(1, sizeof(*table) + vm->nr_routes * sizeof(table->entries[0]));
    if (!table)
        return err_set(-ENOMEM, "out of memory");
    table->nr = vm->nr_routes;
    memcpy(table->entries, vm->routes, vm->nr_routes * sizeof(table->entries[0]));
    int ret = kvm_ioctl_err(vm->vm_fd, KVM_SET_GSI_ROUTING, table, "SET_GSI_ROUTING");
    free(table);
    return ret;
}

static int kvm_map_memory(struct accel_vm *vm, uint32_t slot, uint64_t gpa,
                          uint64_t size, void *hva, bool log_dirty)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)hva,
    };
    return kvm_ioctl_err(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region,
                         "SET_USER_MEMORY_REGION");
}

static int kvm_get_dirty_log(struct accel_vm *vm, uint32_t slot, uint64_t size,
                             uint64_t *bitmap)
{
    size_t words = (size_t)((size / 4096 + 63) / 64);
    uint64_t *log = calloc(words ? words : 1, sizeof(uint64_t));
    if (!log)
        return err_set(-ENOMEM, "out of memory");
    struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = log};
    int ret = kvm_ioctl_err(vm->vm_fd, KVM_GET_DIRTY_LOG, &d, "GET_DIRTY_LOG");
    for (size_t i = 0; !ret && i < words; i++)
        bitmap[i] |= log[i];
    free(log);
    return ret;
}

static int kvm_create_irqchip(struct accel_vm *vm, const struct accel_irq_route *routes,
                              size_t nr_routes)
{
    int ret = kvm_ioctl_err(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL, "CREATE_IRQCHIP");
    if (ret)
        return ret;
    /* The speaker port (0x61) is then handled in the kernel too, which keeps
     * the guest's PIT-based calibration loops out of user space. */
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    ret = kvm_ioctl_err(vm->vm_fd, KVM_CREATE_PIT2, &pit, "CREATE_PIT2");
    if (ret)
        return ret;
    if (nr_routes > KVM_MAX_ROUTES / 2)
        return err_set(-E2BIG, "too many interrupt routes");
    static const uint32_t chips[] = {
        [ACCEL_PIC_MASTER] = KVM_IRQCHIP_PIC_MASTER,
        [ACCEL_PIC_SLAVE] = KVM_IRQCHIP_PIC_SLAVE,
        [ACCEL_IOAPIC] = KVM_IRQCHIP_IOAPIC,
    };
    pthread_mutex_lock(&vm->routes_lock);
    for (size_t i = 0; i < nr_routes; i++) {
        struct kvm_irq_routing_entry *e = &vm->routes[i];
        memset(e, 0, sizeof(*e));
        e->gsi = routes[i].gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = chips[routes[i].chip];
        e->u.irqchip.pin = routes[i].pin;
    }
    vm->nr_routes = (unsigned)nr_routes;
    ret = kvm_commit_routes(vm);
    pthread_mutex_unlock(&vm->routes_lock);
    return ret;
}

static int kvm_msi_route_add(struct accel_vm *vm, uint32_t *gsi)
{
    int ret = 0;
    pthread_mutex_lock(&vm->routes_lock);
    if (vm->nr_routes == KVM_MAX_ROUTES) {
        ret = err_set(-ENOSPC, "out of MSI routes");
    } else {
        /* A fresh route points nowhere useful until msi_route_set; it is
         * not committed to KVM yet, so it cannot fire. */
        *gsi = vm->next_msi_gsi++;
    }
    pthread_mutex_unlock(&vm->routes_lock);
    return ret;
}

static struct kvm_irq_routing_entry *kvm_find_route(struct accel_vm *vm, uint32_t gsi)
{
    for (unsigned i = 0; i < vm->nr_routes; i++)
        if (vm->routes[i].gsi == gsi && vm->routes[i].type == KVM_IRQ_ROUTING_MSI)
            return &vm->routes[i];
    return NULL;
}

/* An MSI route exists in KVM's table only while enabled: a disabled vector
 * (masked, or MSI-X off) then cannot be injected by its irqfd. */
static int kvm_msi_route_set(struct accel_vm *vm, uint32_t gsi, uint64_t address,
                             uint32_t data, bool enabled)
{
    pthread_mutex_lock(&vm->routes_lock);
    struct kvm_irq_routing_entry *e = kvm_find_route(vm, gsi);
    int ret = 0;
    if (enabled) {
        if (!e) {
            if (vm->nr_routes == KVM_MAX_ROUTES) {
                pthread_mutex_unlock(&vm->routes_lock);
                return err_set(-ENOSPC, "out of MSI routes");
            }
            e = &vm->routes[vm->nr_routes++];
        }
        memset(e, 0, sizeof(*e));
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_MSI;
        e->u.msi.address_lo = (uint32_t)address;
        e->u.msi.address_hi = (uint32_t)(address >> 32);
        e->u.msi.data = data;
    } else if (e) {
        *e = vm->routes[--vm->nr_routes];
    } else {
        pthread_mutex_unlock(&vm->routes_lock);
        return 0;
    }
    ret = kvm_commit_routes(vm);
    pthread_mutex_unlock(&vm->routes_lock);
    return ret;
}

static int kvm_irqfd(struct accel_vm *vm, int fd, uint32_t gsi, bool assign)
{
    struct kvm_irqfd irqfd = {
        .fd = (uint32_t)fd,
        .gsi = gsi,
        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };
    return kvm_ioctl_err(vm->vm_fd, KVM_IRQFD, &irqfd, "IRQFD");
}

static int kvm_ioeventfd(struct accel_vm *vm, int fd, uint64_t address, unsigned len,
                         const uint64_t *datamatch, bool assign)
{
    struct kvm_ioeventfd ev = {
        .datamatch = datamatch ? *datamatch : 0,
        .addr = address,
        .len = len,
        .fd = fd,
        .flags = (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN) |
                 (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
    };
    return kvm_ioctl_err(vm->vm_fd, KVM_IOEVENTFD, &ev, "IOEVENTFD");
}

static int kvm_set_irq_line(struct accel_vm *vm, uint32_t gsi, bool level)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = level};
    return kvm_ioctl_err(vm->vm_fd, KVM_IRQ_LINE, &irq, "IRQ_LINE");
}

static int kvm_get_clock(struct accel_vm *vm, uint64_t *ns)
{
    struct kvm_clock_data data;
    memset(&data, 0, sizeof(data));
    int ret = kvm_ioctl_err(vm->vm_fd, KVM_GET_CLOCK, &data, "GET_CLOCK");
    if (!ret)
        *ns = data.clock;
    return ret;
}

static int kvm_set_clock(struct accel_vm *vm, uint64_t ns)
{
    struct kvm_clock_data data;
    memset(&data, 0, sizeof(data));
    data.clock = ns;
    return kvm_ioctl_err(vm->vm_fd, KVM_SET_CLOCK, &data, "SET_CLOCK");
}

static int kvm_has_capability(struct accel_vm *vm, uint32_t cap)
{
    return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)cap) > 0;
}

static int kvm_supported_cpuid(struct accel_vm *vm, struct x86_cpuid_entry *entries,
                               size_t max, size_t *count)
{
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + KVM_MAX_CPUID_ENTRIES *
                                                             sizeof(cpuid->entries[0]));
    if (!cpuid)
        return err_set(-ENOMEM, "out of memory");
    cpuid->nent = KVM_MAX_CPUID_ENTRIES;
    int ret = kvm_ioctl_err(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid,
                            "GET_SUPPORTED_CPUID");
    if (!ret && cpuid->nent > max)
        ret = err_set(-E2BIG, "KVM offers %u CPUID leaves, ember takes %zu",
                      cpuid->nent, max);
    /* The in-kernel local APIC emulates the TSC-deadline timer, but KVM
     * leaves offering it to user space; without it Linux spends ~100 ms
     * calibrating the APIC timer. */
    bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    if (!ret) {
        for (uint32_t i = 0; i < cpuid->nent; i++) {
            struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
            if (e->function == 1 && tsc_deadline)
                e->ecx |= 1u << 24;
            entries[i] = (struct x86_cpuid_entry){
                .function = e->function,
                .index = e->index,
                .flags = (e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
                             ? X86_CPUID_FLAG_INDEXED : 0,
                .eax = e->eax, .ebx = e->ebx, .ecx = e->ecx, .edx = e->edx,
            };
        }
        *count = cpuid->nent;
    }
    free(cpuid);
    return ret;
}

/* Power-on state of a PC's local APIC: LINT0 takes the 8259's ExtINT, LINT1
 * takes NMI. */
static int kvm_vcpu_init_lapic(struct accel_vcpu *vcpu)
{
    struct kvm_lapic_state lapic;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_LAPIC, &lapic, "GET_LAPIC");
    if (ret)
        return ret;
    const unsigned lvt_lint0 = 0x350, lvt_lint1 = 0x360;
    const uint32_t mode_extint = 7u << 8, mode_nmi = 4u << 8, mode_mask = 7u << 8;
    uint32_t lint0 = le32_load(&lapic.regs[lvt_lint0]);
    uint32_t lint1 = le32_load(&lapic.regs[lvt_lint1]);
    le32_store(&lapic.regs[lvt_lint0], (lint0 & ~mode_mask) | mode_extint);
    le32_store(&lapic.regs[lvt_lint1], (lint1 & ~mode_mask) | mode_nmi);
    return kvm_ioctl_err(vcpu->fd, KVM_SET_LAPIC, &lapic, "SET_LAPIC");
}

static int kvm_vcpu_init_fpu(struct accel_vcpu *vcpu)
{
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    return kvm_ioctl_err(vcpu->fd, KVM_SET_FPU, &fpu, "SET_FPU");
}

static void kvm_vcpu_destroy(struct accel_vcpu *vcpu)
{
    if (!vcpu)
        return;
    if (vcpu->run)
        munmap(vcpu->run, (size_t)vcpu->vm->vcpu_mmap_size);
    if (vcpu->fd >= 0)
        close(vcpu->fd);
    kvm_stats_close(vcpu->stats);
    free(vcpu);
}

static size_t kvm_vcpu_counters(struct accel_vcpu *vcpu, struct accel_counter *out)
{
    return kvm_stats_read(vcpu->stats, out);
}

static int kvm_vcpu_create(struct accel_vm *vm, unsigned index, struct accel_vcpu **out)
{
    struct accel_vcpu *vcpu = calloc(1, sizeof(*vcpu));
    if (!vcpu)
        return err_set(-ENOMEM, "out of memory");
    vcpu->vm = vm;
    vcpu->index = index;
    vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    int ret;
    if (vcpu->fd < 0) {
        ret = err_errno(-errno, "KVM_CREATE_VCPU %u failed", index);
        goto fail;
    }
    vcpu->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE,
                     MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        ret = err_errno(-errno, "cannot map vCPU %u run area", index);
        goto fail;
    }
    kvm_posted_map(vm, vcpu->fd);
    ret = kvm_vcpu_init_lapic(vcpu);
    if (!ret)
        ret = kvm_vcpu_init_fpu(vcpu);
    if (ret)
        goto fail;
    vcpu->stats = kvm_stats_open(vcpu->fd); /* opened before seccomp; read at the end */
    *out = vcpu;
    return 0;
fail:
    kvm_vcpu_destroy(vcpu);
    return ret;
}

static int kvm_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct x86_cpuid_entry *entries,
                              size_t count)
{
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + count * sizeof(cpuid->entries[0]));
    if (!cpuid)
        return err_set(-ENOMEM, "out of memory");
    cpuid->nent = (uint32_t)count;
    for (size_t i = 0; i < count; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        e->function = entries[i].function;
        e->index = entries[i].index;
        e->flags = (entries[i].flags & X86_CPUID_FLAG_INDEXED)
                       ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
        e->eax = entries[i].eax;
        e->ebx = entries[i].ebx;
        e->ecx = entries[i].ecx;
        e->edx = entries[i].edx;
    }
    int ret = kvm_ioctl_err(vcpu->fd, KVM_SET_CPUID2, cpuid, "SET_CPUID2");
    free(cpuid);
    return ret;
}

static int kvm_vcpu_set_msrs(struct accel_vcpu *vcpu, const struct x86_msr *msrs,
                             size_t count)
{
    struct kvm_msrs *list = calloc(1, sizeof(*list) + count * sizeof(list->entries[0]));
    if (!list)
        return err_set(-ENOMEM, "out of memory");
    list->nmsrs = (uint32_t)count;
    for (size_t i = 0; i < count; i++) {
        list->entries[i].index = msrs[i].index;
        list->entries[i].data = msrs[i].value;
    }
    int set = ioctl(vcpu->fd, KVM_SET_MSRS, list);
    int ret = 0;
    if (set < 0)
        ret = err_errno(-errno, "KVM_SET_MSRS failed");
    else if ((size_t)set != count)
        ret = err_set(-EINVAL, "KVM refused MSR %#x", msrs[set].index);
    free(list);
    return ret;
}

static int kvm_vcpu_get_msrs(struct accel_vcpu *vcpu, struct x86_msr *msrs, size_t count)
{
    struct kvm_msrs *list = calloc(1, sizeof(*list) + count * sizeof(list->entries[0]));
    if (!list)
        return err_set(-ENOMEM, "out of memory");
    list->nmsrs = (uint32_t)count;
    for (size_t i = 0; i < count; i++)
        list->entries[i].index = msrs[i].index;
    int got = ioctl(vcpu->fd, KVM_GET_MSRS, list);
    int ret = 0;
    if (got < 0)
        ret = err_errno(-errno, "KVM_GET_MSRS failed");
    else if ((size_t)got != count)
        ret = err_set(-EINVAL, "KVM cannot read MSR %#x", msrs[got].index);
    for (size_t i = 0; !ret && i < count; i++)
        msrs[i].value = list->entries[i].data;
    free(list);
    return ret;
}

static void seg_to_kvm(const struct x86_segment *s, struct kvm_segment *k)
{
    *k = (struct kvm_segment){
        .base = s->base, .limit = s->limit, .selector = s->selector,
        .type = s->type, .present = s->present, .dpl = s->dpl, .db = s->db,
        .s = s->s, .l = s->l, .g = s->g, .avl = s->avl, .unusable = s->unusable,
    };
}

static void seg_from_kvm(const struct kvm_segment *k, struct x86_segment *s)
{
    *s = (struct x86_segment){
        .base = k->base, .limit = k->limit, .selector = k->selector,
        .type = k->type, .present = k->present, .dpl = k->dpl, .db = k->db,
        .s = k->s, .l = k->l, .g = k->g, .avl = k->avl, .unusable = k->unusable,
    };
}

static int kvm_vcpu_get_regs(struct accel_vcpu *vcpu, struct x86_regs *r)
{
    struct kvm_regs k;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_REGS, &k, "GET_REGS");
    if (ret)
        return ret;
    *r = (struct x86_regs){
        k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp,
        k.r8, k.r9, k.r10, k.r11, k.r12, k.r13, k.r14, k.r15, k.rip, k.rflags,
    };
    return 0;
}

static int kvm_vcpu_set_regs(struct accel_vcpu *vcpu, const struct x86_regs *r)
{
    struct kvm_regs k = {
        r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
        r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags,
    };
    return kvm_ioctl_err(vcpu->fd, KVM_SET_REGS, &k, "SET_REGS");
}

static int kvm_vcpu_get_sregs(struct accel_vcpu *vcpu, struct x86_sregs *s)
{
    struct kvm_sregs k;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_SREGS, &k, "GET_SREGS");
    if (ret)
        return ret;
    seg_from_kvm(&k.cs, &s->cs);
    seg_from_kvm(&k.ds, &s->ds);
    seg_from_kvm(&k.es, &s->es);
    seg_from_kvm(&k.fs, &s->fs);
    seg_from_kvm(&k.gs, &s->gs);
    seg_from_kvm(&k.ss, &s->ss);
    seg_from_kvm(&k.tr, &s->tr);
    seg_from_kvm(&k.ldt, &s->ldt);
    s->gdt = (struct x86_dtable){k.gdt.base, k.gdt.limit};
    s->idt = (struct x86_dtable){k.idt.base, k.idt.limit};
    s->cr0 = k.cr0;
    s->cr2 = k.cr2;
    s->cr3 = k.cr3;
    s->cr4 = k.cr4;
    s->cr8 = k.cr8;
    s->efer = k.efer;
    s->apic_base = k.apic_base;
    return 0;
}

static int kvm_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct x86_sregs *s)
{
    /* Read first so state ember does not describe (the pending-interrupt
     * bitmap) keeps KVM's values. */
    struct kvm_sregs k;
    int ret = kvm_ioctl_err(vcpu->fd, KVM_GET_SREGS, &k, "GET_SREGS");
    if (ret)
        return ret;
    seg_to_kvm(&s->cs, &k.cs);
    seg_to_kvm(&s->ds, &k.ds);
    seg_to_kvm(&s->es, &k.es);
    seg_to_kvm(&s->fs, &k.fs);
    seg_to_kvm(&s->gs, &k.gs);
    seg_to_kvm(&s->ss, &k.ss);
    seg_to_kvm(&s->tr, &k.tr);
    seg_to_kvm(&s->ldt, &k.ldt);
    k.gdt.base = s->gdt.base;
    k.gdt.limit = s->gdt.limit;
    k.idt.base = s->idt.base;
    k.idt.limit = s->idt.limit;
    k.cr0 = s->cr0;
    k.cr2 = s->cr2;
    k.cr3 = s->cr3;
    k.cr4 = s->cr4;
    k.cr8 = s->cr8;
    k.efer = s->efer;
    k.apic_base = s->apic_base;
    return kvm_ioctl_err(vcpu->fd, KVM_SET_SREGS, &k, "SET_SREGS");
}

static void kvm_describe_exit(struct accel_exit *exit, const struct kvm_run *run)
{
    switch (run->exit_reason) {
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(exit->detail, sizeof(exit->detail),
                 "VM entry failed (hardware reason %#llx)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        snprintf(exit->detail, sizeof(exit->detail),
                 "KVM internal error (suberror %u)", run->internal.suberror);
        break;
    default:
        snprintf(exit->detail, sizeof(exit->detail), "unexpected KVM exit %u",
                 run->exit_reason);
        break;
    }
}

static int kvm_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit)
{
    struct kvm_run *run = vcpu->run;
    exit->detail[0] = '\0';
    int ran = ioctl(vcpu->fd, KVM_RUN, 0);
    int run_errno = errno;
    kvm_flush_posted(vcpu->vm); /* writes before this exit reach their devices first */
    if (ran < 0) {
        errno = run_errno;
        if (errno == EINTR || errno == EAGAIN) {
            run->immediate_exit = 0;
            exit->kind = ACCEL_EXIT_INTERRUPTED;
            return 0;
        }
        return err_errno(-errno, "KVM_RUN on vCPU %u failed", vcpu->index);
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        exit->kind = ACCEL_EXIT_IO;
        exit->io.port = run->io.port;
        exit->io.size = run->io.size;
        exit->io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
        exit->io.count = run->io.count;
        exit->io.data = (uint8_t *)run + run->io.data_offset;
        break;
    case KVM_EXIT_MMIO:
        exit->kind = ACCEL_EXIT_MMIO;
        exit->mmio.gpa = run->mmio.phys_addr;
        exit->mmio.data = run->mmio.data;
        exit->mmio.len = (uint8_t)MIN(run->mmio.len, sizeof(run->mmio.data));
        exit->mmio.is_write = run->mmio.is_write;
        break;
    case KVM_EXIT_INTR:
        exit->kind = ACCEL_EXIT_INTERRUPTED;
        break;
    case KVM_EXIT_SHUTDOWN:
        exit->kind = ACCEL_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_HLT:
        exit->kind = ACCEL_EXIT_HALT;
        break;
    case KVM_EXIT_DEBUG:
        kvm_debug_exit(run, exit);
        break;
    default:
        exit->kind = ACCEL_EXIT_ERROR;
        kvm_describe_exit(exit, run);
        break;
    }
    return 0;
}

static void kvm_vcpu_kick(struct accel_vcpu *vcpu, pthread_t thread)
{
    /* immediate_exit covers the window before the thread enters KVM_RUN; the
     * signal interrupts a KVM_RUN already in progress. */
    atomic_store_explicit((_Atomic uint8_t *)&vcpu->run->immediate_exit, 1,
                          memory_order_seq_cst);
    pthread_kill(thread, ACCEL_KICK_SIGNAL);
}

const struct accel_ops accel_kvm_ops = {
    .name = "kvm",
    .caps = ACCEL_CAP_IRQFD | ACCEL_CAP_WATCHPOINTS,
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .map_memory = kvm_map_memory,
    .create_irqchip = kvm_create_irqchip,
    .set_irq_line = kvm_set_irq_line,
    .msi_route_add = kvm_msi_route_add,
    .msi_route_set = kvm_msi_route_set,
    .irqfd = kvm_irqfd,
    .ioeventfd = kvm_ioeventfd,
    .post_pio = kvm_post_pio,
    .flush_posted = kvm_flush_posted,
    .get_clock = kvm_get_clock,
    .set_clock = kvm_set_clock,
    .has_capability = kvm_has_capability,
    .supported_cpuid = kvm_supported_cpuid,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_set_cpuid = kvm_vcpu_set_cpuid,
    .vcpu_set_msrs = kvm_vcpu_set_msrs,
    .vcpu_get_msrs = kvm_vcpu_get_msrs,
    .vcpu_get_regs = kvm_vcpu_get_regs,
    .vcpu_set_regs = kvm_vcpu_set_regs,
    .vcpu_get_sregs = kvm_vcpu_get_sregs,
    .vcpu_set_sregs = kvm_vcpu_set_sregs,
    .vcpu_get_fpu = kvm_vcpu_get_fpu,
    .vcpu_set_fpu = kvm_vcpu_set_fpu,
    .vcpu_set_debug = kvm_vcpu_set_debug,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .vcpu_counters = kvm_vcpu_counters,
    .vcpu_save = kvm_vcpu_save,
    .vcpu_restore = kvm_vcpu_restore,
    .vm_save = kvm_vm_save,
    .vm_restore = kvm_vm_restore,
    .get_dirty_log = kvm_get_dirty_log,
};

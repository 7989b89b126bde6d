#include "vmm/vm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/util.h"

/* Map a whole file read-only; an empty file is an error for the caller. */
static int map_file(const char *path, const char *what, void **map, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "%s %s", what, path);
    struct stat st;
    int ret = 0;
    if (fstat(fd, &st) < 0)
        ret = err_errno(-errno, "%s %s", what, path);
    else if (!S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "%s %s: not a regular file", what, path);
    else if (st.st_size == 0)
        ret = err_set(-EINVAL, "%s %s: file is empty", what, path);
    if (!ret) {
        *size = (size_t)st.st_size;
        *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            *map = NULL;
            ret = err_errno(-errno, "%s %s: cannot map", what, path);
        }
    }
    close(fd);
    return ret;
}

static int open_disks(const struct vm_config *cfg, struct vm_boot_files *f)
{
    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        const struct disk_config *d = &cfg->disks[i];
        int ret = blockfile_open(&f->disks[i], d->path, d->read_only, d->cache_none);
        if (ret)
            return ret;
        f->nr_disks = i + 1;
    }
    return 0;
}

static int open_nets(const struct vm_config *cfg, struct vm_boot_files *f)
{
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        const struct nic_config *n = &cfg->nics[i];
        int ret = n->kind == NIC_TAP ? net_tap_open(n->tap_name, &f->nets[i])
                                     : net_slirp_open(n->hostfwd, n->nr_hostfwd, &f->nets[i]);
        if (ret)
            return ret;
        f->nr_nets = i + 1;
    }
    return 0;
}

int vm_restore_files_open(const struct vm_config *cfg, const char *mem_path,
                          struct vm_boot_files *f)
{
    memset(f, 0, sizeof(*f));
    f->mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int ret = f->mem_fd < 0 ? err_errno(-errno, "memory file %s", mem_path) : 0;
    if (!ret && fstat(f->mem_fd, &st) < 0)
        ret = err_errno(-errno, "memory file %s", mem_path);
    if (!ret && !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "memory file %s: not a regular file", mem_path);
    if (!ret && (uint64_t)st.st_size != cfg->mem_size)
        ret = err_set(-EINVAL, "memory file %s: %llu bytes, the snapshot's guest has %llu",
                      mem_path, (unsigned long long)st.st_size,
                      (unsigned long long)cfg->mem_size);
    if (!ret)
        ret = open_disks(cfg, f);
    if (!ret)
        ret = open_nets(cfg, f);
    if (ret)
        vm_boot_files_close(f);
    return ret;
}

int vm_boot_files_open(const struct vm_config *cfg, struct vm_boot_files *f)
{
    memset(f, 0, sizeof(*f));
    f->mem_fd = -1;
    int ret = map_file(cfg->kernel_path, "kernel", &f->kernel_map, &f->kernel_map_size);
    if (!ret && cfg->initrd_path)
        ret = map_file(cfg->initrd_path, "initrd", &f->initrd_map, &f->initrd_map_size);
    if (!ret)
        ret = open_disks(cfg, f);
    if (!ret)
        ret = open_nets(cfg, f);
    if (ret) {
        vm_boot_files_close(f);
        return ret;
    }
    f->boot = (struct boot_config){
        .kernel = {cfg->kernel_path, f->kernel_map, f->kernel_map_size},
        .initrd = {cfg->initrd_path, f->initrd_map, f->initrd_map_size},
        .cmdline = cfg->cmdline,
        .ram_size = cfg->mem_size,
    };
    ret = boot_prepare(&f->boot, &f->layout);
    if (ret) {
        vm_boot_files_close(f);
        return ret;
    }
    const struct kernel_image *k = &f->layout.kernel;
    static const char *const entries[] = {
        [ENTRY_LINUX64] = "64-bit", [ENTRY_LINUX32] = "32-bit", [ENTRY_PVH] = "PVH"};
    if (k->format == KERNEL_BZIMAGE)
        log_info("kernel: bzImage, boot protocol %u.%02u, %s entry at %#llx", k->protocol >> 8,
                 k->protocol & 0xff, entries[k->entry], (unsigned long long)k->entry_addr);
    else
        log_info("kernel: ELF, %s entry at %#llx", entries[k->entry],
                 (unsigned long long)k->entry_addr);
    if (f->layout.initrd_size)
        log_info("initrd: %llu bytes at %#llx", (unsigned long long)f->layout.initrd_size,
                 (unsigned long long)f->layout.initrd_gpa);
    return 0;
}

void vm_boot_files_close(struct vm_boot_files *f)
{
    for (unsigned i = 0; i < f->nr_nets; i++)
        if (f->nets[i])
            f->nets[i]->ops->destroy(f->nets[i]);
    for (unsigned i = 0; i < f->nr_disks; i++)
        if (!f->disk_taken[i])
            blockfile_close(&f->disks[i]);
    if (f->kernel_map)
        munmap(f->kernel_map, f->kernel_map_size);
    if (f->initrd_map)
        munmap(f->initrd_map, f->initrd_map_size);
    if (f->mem_fd >= 0)
        close(f->mem_fd);
    memset(f, 0, sizeof(*f));
    f->mem_fd = -1;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
{
    pthread_mutex_lock(&vm->stop_lock);
    if (vm->stop_reason == VM_STOP_NONE) {
        vm->stop_reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->stop_detail, sizeof(vm->stop_detail), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&vm->stop_lock);
    eventfd_signal(vm->stop_fd);
}

static void vm_irq_set_line(void *ctx, uint32_t gsi, bool level)
{
    struct vm *vm = ctx;
    if (vm->accel->set_irq_line(vm->avm, gsi, level))
        log_guest("cannot set interrupt line %u: %s", gsi, err_msg());
}

static const struct irq_sink_ops vm_irq_sink_ops = {
    .set_line = vm_irq_set_line,
};

/* GSI routing of a PC: ISA IRQs reach both 8259s and the IOAPIC, except that
 * IRQ 0 (the PIT) arrives on IOAPIC pin 2, as the MADT's override says. */
static size_t vm_irq_routes(struct accel_irq_route *routes)
{
    size_t n = 0;
    for (uint32_t gsi = 0; gsi < 16; gsi++) {
        if (gsi == 2)
            continue; /* the cascade */
        routes[n++] = (struct accel_irq_route){
            gsi, gsi < 8 ? ACCEL_PIC_MASTER : ACCEL_PIC_SLAVE, gsi % 8};
    }
    for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
        if (gsi == 2)
            continue;
        routes[n++] = (struct accel_irq_route){gsi, ACCEL_IOAPIC, gsi == 0 ? 2 : gsi};
    }
    return n;
}

static int vm_setup_memory(struct vm *vm)
{
    int ret = vm->files->mem_fd >= 0
                  ? gm_create_file(&vm->mem, vm->files->mem_fd, vm->cfg->mem_size,
                                   LAYOUT_PCI_HOLE_START)
                  : gm_create_anon(&vm->mem, vm->cfg->mem_size, LAYOUT_PCI_HOLE_START);
    if (!ret && vm->cfg->track_dirty_pages)
        ret = gm_track_dirty(&vm->mem);
    for (unsigned i = 0; !ret && i < vm->mem.nr_regions; i++) {
        const struct gm_region *r = &vm->mem.regions[i];
        ret = vm->accel->map_memory(vm->avm, i, r->gpa, r->size, r->hva,
                                    vm->cfg->track_dirty_pages);
    }
    return ret;
}

static int vm_setup_vcpus(struct vm *vm, const struct x86_regs *regs,
                          const struct x86_sregs *sregs)
{
    vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
    struct x86_cpuid_entry *cpuid = calloc(CPUID_MAX_ENTRIES, sizeof(*cpuid));
    size_t nr_cpuid = 0;
    int ret = (vm->vcpus && cpuid) ? 0 : err_set(-ENOMEM, "out of memory");
    if (!ret)
        ret = vm->accel->supported_cpuid(vm->avm, cpuid, CPUID_MAX_ENTRIES, &nr_cpuid);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
        ret = vcpu_create(vm, i, &vm->vcpus[i], cpuid, nr_cpuid);
    free(cpuid);
    if (!ret && sregs)
        ret = vm->accel->vcpu_set_sregs(vm->vcpus[0].accel_vcpu, sregs);
    if (!ret && regs)
        ret = vm->accel->vcpu_set_regs(vm->vcpus[0].accel_vcpu, regs);
    return ret;
}

static void vm_on_stop(void *ctx, uint32_t events)
{
    struct vm *vm = ctx;
    (void)events;
    eventfd_drain(vm->stop_fd);
    if (vm->on_stop)
        vm->on_stop(vm->on_stop_ctx);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct vm_boot_files *files,
              struct evloop *loop, struct console *console, void (*on_stop)(void *ctx),
              void *on_stop_ctx)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->files = files;
    vm->loop = loop;
    vm->console = console;
    vm->on_stop = on_stop;
    vm->on_stop_ctx = on_stop_ctx;
    vm->accel = &accel_kvm_ops;
    vm->nr_vcpus = cfg->nr_vcpus;
    vm->stop_fd = -1;
    pthread_mutex_init(&vm->stop_lock, NULL);
    bus_init(&vm->pio, "port I/O");
    bus_init(&vm->mmio, "MMIO");
    vm->irq_sink = (struct irq_sink){&vm_irq_sink_ops, vm};
    int ret = (vm->stop_fd = eventfd_create()) < 0 ? vm->stop_fd : 0;
    if (!ret && (ret = evloop_add(loop, vm->stop_fd, EPOLLIN, vm_on_stop, vm)))
        close(vm->stop_fd), vm->stop_fd = -1;
    if (!ret) {
        struct accel_vm_params params = {.nr_vcpus = cfg->nr_vcpus};
        ret = vm->accel->vm_create(&params, &vm->avm);
    }
    if (!ret)
        ret = vm_setup_memory(vm);
    struct accel_irq_route routes[48];
    if (!ret)
        ret = vm->accel->create_irqchip(vm->avm, routes, vm_irq_routes(routes));
    if (!ret) {
        platform_init(&vm->platform, vm->accel, vm->avm);
        vm->pci_platform = (struct pci_platform){
            .mmio = &vm->mmio,
            .loop = loop,
            .msi = &platform_msi_ops,
            .msi_ctx = &vm->platform,
            .ioeventfd = platform_ioeventfd,
            .ioeventfd_ctx = &vm->platform,
        };
    }
    if (!ret)
        ret = board_setup(vm);
    if (!ret && files->mem_fd >= 0) /* restoring: memory and state come from the snapshot */
        return vm_setup_vcpus(vm, NULL, NULL);
    if (!ret) {
        struct acpi_config acpi = {.nr_vcpus = cfg->nr_vcpus, .ioapic_id = 0};
        uint8_t *area = gm_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);
        ret = area ? acpi_build(&acpi, area, LAYOUT_ACPI_SIZE, LAYOUT_ACPI)
                   : err_set(-EFAULT, "no guest memory for ACPI tables");
    }
    struct x86_regs regs;
    struct x86_sregs sregs;
    if (!ret)
        ret = boot_load(&files->boot, &files->layout, &vm->mem, &regs, &sregs);
    if (!ret)
        ret = vm_setup_vcpus(vm, &regs, &sregs);
    return ret;
}

void vm_stop_by_signal(struct vm *vm, int signo)
{
    pthread_mutex_lock(&vm->stop_lock);
    if (vm->stop_reason == VM_STOP_NONE)
        vm->stop_signal = signo;
    pthread_mutex_unlock(&vm->stop_lock);
    vm_request_stop(vm, VM_STOP_SIGNAL, "stopped by signal %d (%s)", signo, strsignal(signo));
}

static void vm_on_user_quit(void *ctx)
{
    vm_request_stop(ctx, VM_STOP_USER_QUIT, "quit from the console (Ctrl-A x)");
}

int vm_start(struct vm *vm)
{
    int ret;
    if (vm->vconsole)
        ret = console_attach(vm->console, vm->loop, console_receive_virtio, vm->vconsole,
                             vm_on_user_quit, vm);
    else
        ret = console_attach(vm->console, vm->loop, console_receive_serial, &vm->serial,
                             vm_on_user_quit, vm);
    if (!ret)
        ret = console_enter_raw_mode(vm->console);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
        ret = vcpu_start(&vm->vcpus[i]);
    vm->started = true;
    return ret;
}

enum vm_stop_reason vm_halt(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_request_stop(&vm->vcpus[i]);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_join(&vm->vcpus[i]);
    console_restore_terminal();
    pthread_mutex_lock(&vm->stop_lock);
    enum vm_stop_reason reason = vm->stop_reason;
    pthread_mutex_unlock(&vm->stop_lock);
    return reason;
}

/* The guest's sense of time stops with it: each vCPU's TSC and the
 * kvm-clock are read at pause and written back at resume. Nothing is kept
 * unless every value was read. */
static int vm_save_clocks(struct vm *vm)
{
    uint64_t *tsc = calloc(vm->nr_vcpus, sizeof(uint64_t)), clock_ns;
    int ret = tsc ? 0 : err_set(-ENOMEM, "out of memory");
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
        struct x86_msr msr = {.index = MSR_IA32_TSC};
        ret = vm->accel->vcpu_get_msrs(vm->vcpus[i].accel_vcpu, &msr, 1);
        tsc[i] = msr.value;
    }
    if (!ret)
        ret = vm->accel->get_clock(vm->avm, &clock_ns);
    if (ret) {
        free(tsc);
        return ret;
    }
    free(vm->paused_tsc);
    vm->paused_tsc = tsc;
    vm->paused_clock_ns = clock_ns;
    vm->clocks_saved = true;
    return 0;
}

static int vm_restore_clocks(struct vm *vm)
{
    vm->clocks_saved = false;
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct x86_msr tsc = {.index = MSR_IA32_TSC, .value = vm->paused_tsc[i]};
        int ret = vm->accel->vcpu_set_msrs(vm->vcpus[i].accel_vcpu, &tsc, 1);
        if (ret)
            return ret;
    }
    return vm->accel->set_clock(vm->avm, vm->paused_clock_ns);
}

static void vm_unpark(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_virtio; i++)
        virtio_pci_set_paused(vm->virtio[i], false);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_resume(&vm->vcpus[i]);
    vm->paused = false;
}

int vm_pause(struct vm *vm)
{
    if (vm->paused)
        return 0;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_pause(&vm->vcpus[i]);
    for (unsigned i = 0; i < vm->nr_virtio; i++)
        virtio_pci_set_paused(vm->virtio[i], true);
    vm->paused = true;
    int ret = vm_save_clocks(vm);
    if (ret) {
        vm_unpark(vm); /* the clocks were not touched */
        return err_prefix(ret, "cannot save the guest's clocks");
    }
    return 0;
}

int vm_resume(struct vm *vm)
{
    if (!vm->paused)
        return 0;
    if (vm->clocks_saved && vm_restore_clocks(vm))
        log_error("cannot restore the guest's clocks (its time jumps ahead): %s", err_msg());
    vm_unpark(vm);
    return 0;
}

void vm_dump_state(struct vm *vm)
{
    log_warn("state dump: %u vCPUs%s", vm->nr_vcpus, vm->paused ? ", paused" : "");
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        log_warn("vCPU %u: exits I/O %llu, MMIO %llu, other %llu%s", i,
                 (unsigned long long)v->exits_io, (unsigned long long)v->exits_mmio,
                 (unsigned long long)v->exits_other, v->parked ? ", parked" : "");
    }
    for (unsigned i = 0; i < vm->nr_virtio; i++)
        virtio_pci_dump(vm->virtio[i]);
}

int vm_start_paused(struct vm *vm)
{
    int ret = vm_pause(vm); /* the threads do not exist yet: they start parked */
    return ret ? ret : vm_start(vm);
}

void vm_destroy(struct vm *vm)
{
    for (unsigned i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
        vcpu_destroy(&vm->vcpus[i]);
    free(vm->vcpus);
    vm->vcpus = NULL;
    board_teardown(vm);
    if (vm->avm) {
        platform_destroy(&vm->platform);
        vm->accel->vm_destroy(vm->avm);
    }
    gm_destroy(&vm->mem);
    if (vm->started)
        console_detach(vm->console);
    if (vm->stop_fd >= 0) {
        evloop_remove(vm->loop, vm->stop_fd);
        close(vm->stop_fd);
    }
    free(vm->paused_tsc);
    bus_destroy(&vm->pio);
    bus_destroy(&vm->mmio);
    pthread_mutex_destroy(&vm->stop_lock);
}

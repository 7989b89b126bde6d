#include "vmm/vm.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/cpu_template.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/seccomp.h"
#include "util/timeline.h"
#include "util/util.h"
#include "vmm/image_copy.h"
#include "vmm/pc.h"

const char *vm_state_name(enum vm_state state)
{
    static const char *const names[] = {
        [VM_CREATED] = "created", [VM_RUNNING] = "running",
        [VM_PAUSED] = "paused", [VM_HALTED] = "halted"};
    return state <= VM_HALTED ? names[state] : "?";
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

void vm_stop_by_signal(struct vm *vm, int signo)
{
    pthread_mutex_lock(&vm->stop_lock);
    if (vm->stop_reason == VM_STOP_NONE)
        vm->stop_signal = signo;
    pthread_mutex_unlock(&vm->stop_lock);
    vm_request_stop(vm, VM_STOP_SIGNAL, "stopped by signal %d (%s)", signo, strsignal(signo));
}

/* --- what the parts report --------------------------------------------------- */

static void vm_irq_set_line(void *ctx, uint32_t gsi, bool level)
{
    struct vm *vm = ctx;
    if (vm->accel->set_irq_line(vm->avm, gsi, level))
        log_guest("cannot set interrupt line %u: %s", gsi, err_msg());
}

static const struct irq_sink_ops vm_irq_sink_ops = {
    .set_line = vm_irq_set_line,
};

/* Device access for a backend that executes the guest itself. */
static void vm_io_pio(void *ctx, uint16_t port, void *data, unsigned len, bool is_write)
{
    struct vm *vm = ctx;
    if (is_write) {
        vm->engine_io_out++;
        bus_write(&vm->pio, port, data, len);
    } else {
        vm->engine_io_in++;
        bus_read(&vm->pio, port, data, len);
    }
}

static void vm_io_posted(void *ctx, uint16_t port, const void *data, unsigned len)
{
    struct vm *vm = ctx;
    vm->posted_writes++;
    bus_write(&vm->pio, port, data, len);
}

static bool vm_io_mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write)
{
    struct vm *vm = ctx;
    if (is_write) {
        vm->engine_mmio_write++;
        return bus_write(&vm->mmio, gpa, data, len);
    }
    vm->engine_mmio_read++;
    return bus_read(&vm->mmio, gpa, data, len);
}

static void vm_memory_written(void *ctx, uint64_t gpa, uint64_t len)
{
    struct vm *vm = ctx;
    vm->accel->memory_written(vm->avm, gpa, len);
}

static void vm_on_board_event(void *ctx, enum board_event event)
{
    switch (event) {
    case BOARD_RESET:
        vm_request_stop(ctx, VM_STOP_REBOOT, "the guest rebooted");
        break;
    case BOARD_POWER_OFF:
        vm_request_stop(ctx, VM_STOP_POWER_OFF, "the guest powered off");
        break;
    case BOARD_PANIC:
        vm_request_stop(ctx, VM_STOP_PANIC, "the guest panicked");
        break;
    }
}

static const struct board_host_ops vm_board_host_ops = {.event = vm_on_board_event};

static void vm_on_vcpu_end(void *ctx, enum vcpu_end why, const char *detail)
{
    vm_request_stop(ctx, why == VCPU_END_TRIPLE_FAULT ? VM_STOP_TRIPLE_FAULT : VM_STOP_ERROR,
                    "%s", detail);
}

static void vm_on_debug_stop(void *ctx, unsigned index, const struct accel_exit *exit)
{
    struct vm *vm = ctx;
    if (vm->debug_stop)
        vm->debug_stop(vm->debug_ctx, index, exit);
}

static void vm_on_stop(void *ctx, uint32_t events)
{
    struct vm *vm = ctx;
    (void)events;
    eventfd_drain(vm->stop_fd);
    if (vm->on_stop)
        vm->on_stop(vm->on_stop_ctx);
}

static void vm_on_user_quit(void *ctx)
{
    vm_request_stop(ctx, VM_STOP_USER_QUIT, "quit from the console (Ctrl-A x)");
}

/* --- building it -------------------------------------------------------------- */

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

/* virtio-pmem files after the RAM (and above 4 GiB), each 1 GiB-aligned
 * so that the guest can map them with large pages. */
static int vm_map_pmem(struct vm *vm)
{
    const struct gm_region *last = &vm->mem.regions[vm->mem.nr_regions - 1];
    uint64_t gpa = align_up(MAX(last->gpa + last->size, LAYOUT_4GIB), GiB(1));
    for (unsigned i = 0; i < vm->files->nr_pmem; i++) {
        struct pmem_backing *p = &vm->files->pmem[i];
        int ret = gm_map_file_region(&vm->mem, gpa, p->fd, p->file_size,
                                     vm->cfg->pmem[i].read_only, &p->size);
        if (ret)
            return err_prefix(ret, "pmem %s", vm->cfg->pmem[i].path);
        p->gpa = gpa;
        gpa = align_up(gpa + p->size, GiB(1));
    }
    return 0;
}

/* Guest RAM handed to a page-fault handler: anonymous, every page missing
 * until the handler copies it in (2 MiB at a time on hugetlbfs pages). */
static int vm_setup_uffd_memory(struct vm *vm)
{
    int ret = gm_create_anon_with(&vm->mem, vm->cfg->mem_size, LAYOUT_PCI_HOLE_START,
                                  &(struct gm_anon_options){vm->cfg->pages, vm->cfg->ksm});
    uint64_t page_size = vm->cfg->pages == GUEST_PAGES_HUGETLB ? MiB(2) : GM_PAGE_SIZE;
    if (!ret && (ret = uffd_backend_start(&vm->uffd, vm->files->uffd_path, &vm->mem, page_size)))
        vm->handler_refused = vm->uffd.uffd >= 0; /* the userfaultfd itself worked */
    return ret;
}

/* Guest RAM itself, before the VM exists, so that the kernel's copy into
 * it can start at once (vmm/image_copy.h). */
static int vm_alloc_memory(struct vm *vm)
{
    return vm->files->uffd_path ? vm_setup_uffd_memory(vm)
           : vm->files->mem_fd >= 0
               ? gm_create_file(&vm->mem, vm->files->mem_fd, vm->cfg->mem_size,
                                LAYOUT_PCI_HOLE_START, vm->cfg->ksm)
               : gm_create_anon_with(&vm->mem, vm->cfg->mem_size, LAYOUT_PCI_HOLE_START,
                                     &(struct gm_anon_options){vm->cfg->pages, vm->cfg->ksm});
}

/* The memory's observers and its slots in the backend's VM. */
static int vm_setup_memory(struct vm *vm)
{
    int ret = 0;
    if (vm->accel->memory_written) {
        vm->mem.write_hook = vm_memory_written;
        vm->mem.write_hook_ctx = vm;
    }
    if (vm->cfg->track_dirty_pages)
        ret = gm_track_dirty(&vm->mem);
    if (!ret)
        ret = vm_map_pmem(vm);
    for (unsigned i = 0; !ret && i < vm->mem.nr_regions; i++) {
        const struct gm_region *r = &vm->mem.regions[i];
        ret = vm->accel->map_memory(vm->avm, i, r->gpa, r->size, r->hva,
                                    vm->cfg->track_dirty_pages && i < vm->mem.nr_ram);
    }
    return ret;
}

static int vm_setup_board(struct vm *vm)
{
    platform_init(&vm->platform, vm->accel, vm->avm);
    vm->pci_platform = (struct pci_platform){
        .mmio = &vm->mmio,
        .loop = vm->loop,
        .msi = &platform_msi_ops,
        .msi_ctx = &vm->platform,
        .ioeventfd = platform_ioeventfd,
        .ioeventfd_ctx = &vm->platform,
        .irqfd = platform_irqfd,
        .irqfd_release = platform_irqfd_release,
        .irqfd_ctx = &vm->platform,
    };
    vm->board = (struct board){
        .cfg = vm->cfg,
        .mem = &vm->mem,
        .pio = &vm->pio,
        .mmio = &vm->mmio,
        .pci = &vm->pci,
        .irq = &vm->irq_sink,
        .loop = vm->loop,
        .pci_platform = &vm->pci_platform,
        .backends = {vm->files->disks, vm->files->disk_taken, vm->files->nets, &vm->files->vsock,
                     vm->files->pmem},
        .host = &vm_board_host_ops,
        .host_ctx = vm,
        .console = {&console_chardev_ops, vm->console},
    };
    if (vm->files->serial_out_fd >= 0) {
        vm->serial_out = (struct console_file_out){vm->files->serial_out_fd, vm->console, 0};
        vm->board.serial_out = (struct chardev_host){&console_file_out_ops, &vm->serial_out};
    }
    return pc_board_setup(&vm->board);
}

/* The template's KVM capabilities: the ones it adds must be there (ember's
 * own required ones stay required: it cannot run without them). */
static int vm_check_template_caps(struct vm *vm, const struct cpu_template *t)
{
    for (unsigned i = 0; i < t->nr_caps; i++) {
        const struct kvm_cap_change *c = &t->caps[i];
        if (c->drop) {
            log_debug("cpu template: KVM capability %u dropped from the checks (ember's own "
                      "checks stay)", c->cap);
        } else if (!vm->accel->has_capability) {
            log_warn("cpu template: KVM capability %u not checked: the %s backend is not KVM",
                     c->cap, vm->accel->name);
        } else if (!vm->accel->has_capability(vm->avm, c->cap)) {
            return err_set(-ENOTSUP, "cpu template: this host's KVM lacks capability %u",
                           c->cap);
        }
    }
    return 0;
}

/* Refused when it does not fit the vCPUs' vendor, as Firecracker refuses
 * it; then applied to the leaves every vCPU starts from. */
static int vm_apply_cpu_template(struct vm *vm, struct x86_cpuid_entry *cpuid, size_t n)
{
    const struct cpu_template *t = vm->cfg->cpu_template;
    int ret = cpu_template_check_vendor(t, cpuid_vendor(cpuid, n));
    if (!ret)
        ret = vm_check_template_caps(vm, t);
    if (!ret)
        ret = cpu_template_apply_cpuid(t, cpuid, n);
    if (ret)
        return err_prefix(ret, "the %s backend", vm->accel->name);
    log_info("CPU template %s applied", cpu_template_name(t->kind));
    return 0;
}

/* A vCPU's thread, its filter installed: the guest's first instruction
 * waits for the kernel's copy (vm_finish_loading). */
static void vm_wait_loaded(void *ctx)
{
    struct vm *vm = ctx;
    image_copy_wait(&vm->image_copy);
}

static int vm_setup_vcpus(struct vm *vm, const struct x86_regs *regs,
                          const struct x86_sregs *sregs)
{
    vm->vcpu_env = (struct vcpu_env){
        .accel = vm->accel, .avm = vm->avm, .pio = &vm->pio, .mmio = &vm->mmio,
        .nr_vcpus = vm->nr_vcpus, .threads_per_core = vm->cfg->smt ? 2 : 1,
        .cpu_template = vm->cfg->cpu_template, .ended = vm_on_vcpu_end, .ctx = vm,
        .debug_stop = vm_on_debug_stop, .before_first_entry = vm_wait_loaded};
    vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
    struct x86_cpuid_entry *cpuid = calloc(CPUID_MAX_ENTRIES, sizeof(*cpuid));
    size_t nr_cpuid = 0;
    int ret = (vm->vcpus && cpuid) ? 0 : err_set(-ENOMEM, "out of memory");
    if (!ret)
        ret = vm->accel->supported_cpuid(vm->avm, cpuid, CPUID_MAX_ENTRIES, &nr_cpuid);
    if (!ret && vm->cfg->cpu_template)
        ret = vm_apply_cpu_template(vm, cpuid, nr_cpuid);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
        ret = vcpu_create(&vm->vcpu_env, i, &vm->vcpus[i], cpuid, nr_cpuid);
    free(cpuid);
    if (!ret && sregs)
        ret = vm->accel->vcpu_set_sregs(vm->vcpus[0].accel_vcpu, sregs);
    if (!ret && regs)
        ret = vm->accel->vcpu_set_regs(vm->vcpus[0].accel_vcpu, regs);
    return ret;
}

/* A fresh boot: firmware tables and the kernel in memory, the boot vCPU at
 * the kernel's entry. */
/* The kernel command line as configured, then what the devices announce
 * there (virtio-mmio's). */
static int vm_build_cmdline(struct vm *vm)
{
    if (!vm->board.cmdline_len)
        return 0;
    const char *base = vm->files->boot.cmdline ? vm->files->boot.cmdline : "";
    size_t len = strlen(base) + 1 + vm->board.cmdline_len + 1;
    if (!(vm->cmdline = malloc(len)))
        return err_set(-ENOMEM, "out of memory");
    snprintf(vm->cmdline, len, "%s%s%s", base, *base ? " " : "", vm->board.cmdline);
    log_debug("kernel command line: %s", vm->cmdline);
    return boot_set_cmdline(&vm->files->boot, &vm->files->layout, vm->cmdline);
}

/* A set-up step's result, its end noted on the start-up timeline if it
 * succeeded. */
static int timed_step(int ret, const char *step)
{
    if (!ret)
        timeline_mark(step);
    return ret;
}

static int vm_load_guest(struct vm *vm)
{
    struct acpi_config acpi = {.nr_vcpus = vm->cfg->nr_vcpus, .ioapic_id = 0,
                               .devices = vm->board.acpi, .nr_devices = vm->board.nr_acpi,
                               .without_pci = vm->cfg->transport == TRANSPORT_MMIO};
    if ((vm->accel->caps & ACCEL_CAP_MP_MAILBOX) && vm->cfg->nr_vcpus > 1)
        acpi.mp_wakeup_mailbox = LAYOUT_AP_MAILBOX;
    uint8_t *area = gm_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);
    int ret = area ? acpi_build(&acpi, area, LAYOUT_ACPI_SIZE, LAYOUT_ACPI)
                   : err_set(-EFAULT, "no guest memory for ACPI tables");
    struct x86_regs regs;
    struct x86_sregs sregs;
    ret = timed_step(ret, "ACPI");
    if (!ret)
        ret = vm_build_cmdline(vm);
    if (!ret)
        ret = timed_step(boot_load_rest(&vm->files->boot, &vm->files->layout, &vm->mem, &regs,
                                        &sregs),
                         "boot parameters");
    return ret ? ret : timed_step(vm_setup_vcpus(vm, &regs, &sregs), "vCPUs");
}

/* Whatever a guest left queued without exiting again (the last byte of a
 * line before it idles) reaches its device within a tick: 50 ms while
 * posted writes arrive, doubling up to 1.6 s while none do, so that an
 * idle VM wakes the host about once a second for this, not 20 times. */
#define POSTED_TICK_MIN_NS 50000000ull
#define POSTED_TICK_MAX_NS 1600000000ull

static void vm_flush_posted(struct vm *vm)
{
    if (vm->avm && vm->accel->flush_posted)
        vm->accel->flush_posted(vm->avm);
}

static int vm_set_posted_tick(struct vm *vm, uint64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    struct itimerspec its = {.it_interval = t, .it_value = t};
    if (timerfd_settime(vm->posted_timer_fd, 0, &its, NULL) < 0)
        return err_errno(-errno, "cannot start the posted writes' timer");
    vm->posted_tick_ns = ns;
    return 0;
}

static void vm_on_posted_timer(void *ctx, uint32_t events)
{
    struct vm *vm = ctx;
    uint64_t expirations;
    (void)events;
    if (read(vm->posted_timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
        return;
    vm_flush_posted(vm);
    uint64_t delivered = vm->posted_writes; /* by the vCPUs' exits too */
    uint64_t tick = delivered != vm->posted_seen ? POSTED_TICK_MIN_NS
                                                 : MIN(vm->posted_tick_ns * 2, POSTED_TICK_MAX_NS);
    vm->posted_seen = delivered;
    if (tick != vm->posted_tick_ns)
        vm_set_posted_tick(vm, tick); /* if refused, the old tick goes on */
}

/* The devices' posted port writes, queued by the backend where it can. */
static int vm_post_writes(struct vm *vm)
{
    unsigned queued = 0;
    for (unsigned i = 0; vm->accel->post_pio && i < vm->board.nr_posted; i++) {
        const struct board_posted *p = &vm->board.posted[i];
        int ret = vm->accel->post_pio(vm->avm, p->port, p->len);
        if (ret == -ENOTSUP)
            break; /* they exit, as on a backend without the queue */
        if (ret)
            return ret;
        queued++;
    }
    log_debug("posted port writes: %u of %u ranges queued by the backend", queued,
              vm->board.nr_posted);
    if (!queued)
        return 0;
    vm->posted_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (vm->posted_timer_fd < 0)
        return err_errno(-errno, "cannot create the posted writes' timer");
    int ret = evloop_add(vm->loop, vm->posted_timer_fd, EPOLLIN, vm_on_posted_timer, vm);
    return ret ? ret : vm_set_posted_tick(vm, POSTED_TICK_MIN_NS);
}

/* The machine around the memory: the backend's VM, interrupt controllers,
 * devices, then the guest's boot state or (restoring) bare vCPUs. */
int vm_build(struct vm *vm)
{
    struct accel_vm_params params = {.nr_vcpus = vm->cfg->nr_vcpus, .mem = &vm->mem,
                                     .io = {vm_io_pio, vm_io_mmio, vm, vm_io_posted}};
    int ret = timed_step(vm->accel->vm_create(&params, &vm->avm), "backend's VM");
    if (!ret)
        ret = timed_step(vm_setup_memory(vm), "memory slots");
    struct accel_irq_route routes[48];
    if (!ret)
        ret = timed_step(vm->accel->create_irqchip(vm->avm, routes, vm_irq_routes(routes)),
                         "interrupt controllers");
    if (!ret)
        ret = timed_step(vm_setup_board(vm), "devices");
    if (ret)
        return ret;
    /* Restoring: memory and every part's state come from the snapshot. */
    ret = vm->files->restoring ? vm_setup_vcpus(vm, NULL, NULL) : vm_load_guest(vm);
    return ret ? ret : vm_post_writes(vm);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct vm_files *files,
              struct evloop *loop, struct console *console, void (*on_stop)(void *ctx),
              void *on_stop_ctx)
{
    memset(vm, 0, sizeof(*vm));
    uffd_backend_init(&vm->uffd);
    image_copy_init(&vm->image_copy);
    vm->cfg = cfg;
    vm->files = files;
    vm->loop = loop;
    vm->console = console;
    vm->on_stop = on_stop;
    vm->on_stop_ctx = on_stop_ctx;
    vm->accel = cfg->accel == ACCEL_SOFT ? &accel_soft_ops : &accel_kvm_ops;
    vm->nr_vcpus = cfg->nr_vcpus;
    vm->state = VM_CREATED;
    vm->stop_fd = vm->posted_timer_fd = -1;
    pthread_mutex_init(&vm->stop_lock, NULL);
    bus_init(&vm->pio, "port I/O");
    bus_init(&vm->mmio, "MMIO");
    pci_bus_init(&vm->pci);
    vm->irq_sink = (struct irq_sink){&vm_irq_sink_ops, vm};
    int ret = (vm->stop_fd = eventfd_create()) < 0 ? vm->stop_fd : 0;
    if (!ret && (ret = evloop_add(loop, vm->stop_fd, EPOLLIN, vm_on_stop, vm)))
        close(vm->stop_fd), vm->stop_fd = -1;
    if (!ret)
        ret = timed_step(vm_alloc_memory(vm), "guest memory");
    if (!ret && !files->restoring)
        ret = image_copy_start(&vm->image_copy, &files->boot, &files->layout, &vm->mem);
    return ret;
}

void vm_finish_loading(struct vm *vm)
{
    if (vm->image_copy.running) {
        image_copy_finish(&vm->image_copy, &vm->mem);
        timeline_mark("kernel and initrd");
        log_info("kernel and initrd: %.1f MiB in guest memory in %.2f ms (%s)",
                 (double)vm->image_copy.bytes / (1 << 20), vm->image_copy.copy_ms,
                 vm->image_copy.threaded ? "on a thread of their own" : "no thread to be had");
    }
    image_copy_open(&vm->image_copy); /* the guest may run while the images go */
    vm_files_release_images(vm->files);
    timeline_mark("images released");
}

/* --- running it ----------------------------------------------------------------- */

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
        return err_prefix(ret, "cannot save the guest's clocks");
    }
    free(vm->paused_tsc);
    vm->paused_tsc = tsc;
    vm->paused_clock_ns = clock_ns;
    return 0;
}

/* The clock first: a backend whose TSCs follow its clock (the engine's)
 * moves them with it, and the TSCs written after it must stay as written
 * (the other order set the engine's back by the pause's length, and the
 * guest's time stood still that long after each resume). */
static int vm_restore_clocks(struct vm *vm)
{
    int ret = vm->accel->set_clock(vm->avm, vm->paused_clock_ns);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
        struct x86_msr tsc = {.index = MSR_IA32_TSC, .value = vm->paused_tsc[i]};
        ret = vm->accel->vcpu_set_msrs(vm->vcpus[i].accel_vcpu, &tsc, 1);
    }
    return ret;
}

static void vm_unpark(struct vm *vm)
{
    board_pause(&vm->board, false);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_resume(&vm->vcpus[i]);
}

/* Park the vCPUs (before vm_start: they will park before they first run),
 * quiesce the devices, save the clocks. */
static int vm_park(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_pause(&vm->vcpus[i]);
    vm_flush_posted(vm); /* a snapshot sees every write the guest made */
    board_pause(&vm->board, true);
    int ret = vm_save_clocks(vm);
    if (ret)
        vm_unpark(vm); /* the clocks were not touched */
    return ret;
}

int vm_start(struct vm *vm, bool paused)
{
    if (vm->state != VM_CREATED)
        return err_set(-EINVAL, "the VM is %s, not created", vm_state_name(vm->state));
    if (!vm->board.console_input)
        return err_set(-EINVAL, "no device takes the console's input");
    int ret = paused ? vm_park(vm) : 0;
    if (!ret)
        ret = console_attach(vm->console, vm->loop, vm->board.console_input,
                             vm->board.console_input_dev, vm_on_user_quit, vm);
    if (!ret)
        ret = console_enter_raw_mode(vm->console);
    /* The loop's filter before any vCPU runs (they inherit it, and add
     * their own). */
    if (!ret)
        ret = seccomp_enter(SECCOMP_MAIN);
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
        ret = vcpu_start(&vm->vcpus[i]);
    if (!ret)
        vm->state = paused ? VM_PAUSED : VM_RUNNING;
    return ret; /* on failure, vm_halt ends the threads that did start */
}

int vm_pause(struct vm *vm)
{
    if (vm->state == VM_PAUSED)
        return 0;
    if (vm->state != VM_RUNNING)
        return err_set(-EINVAL, "the VM is %s, not running", vm_state_name(vm->state));
    int ret = vm_park(vm);
    if (!ret)
        vm->state = VM_PAUSED;
    return ret;
}

int vm_debug_resume(struct vm *vm, int only)
{
    if (vm->state == VM_RUNNING)
        return 0;
    if (vm->state != VM_PAUSED)
        return err_set(-EINVAL, "the VM is %s, not paused", vm_state_name(vm->state));
    if (vm_restore_clocks(vm))
        log_error("cannot restore the guest's clocks (its time jumps ahead): %s", err_msg());
    if (only < 0) {
        vm_unpark(vm);
    } else {
        board_pause(&vm->board, false);
        if ((unsigned)only < vm->nr_vcpus)
            vcpu_resume(&vm->vcpus[only]);
    }
    vm->state = VM_RUNNING;
    return 0;
}

int vm_resume(struct vm *vm)
{
    return vm_debug_resume(vm, -1);
}

static void log_backend_counters(struct vm *vm, unsigned i, enum log_level level)
{
    struct accel_counter c[ACCEL_MAX_COUNTERS];
    struct accel_vcpu *v = vm->vcpus[i].accel_vcpu; /* NULL: setup failed before it */
    size_t n = v && vm->accel->vcpu_counters ? vm->accel->vcpu_counters(v, c) : 0;
    char line[512];
    int len = 0;
    for (size_t k = 0; k < n && len >= 0 && (size_t)len < sizeof(line); k++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s %llu", k ? ", " : "",
                        c[k].name, (unsigned long long)c[k].value);
    if (n)
        log_msg(level, "vCPU %u %s backend: %s", i, vm->accel->name, line);
}

enum vm_stop_reason vm_halt(struct vm *vm)
{
    if (vm->state != VM_HALTED && vm->vcpus) {
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            vcpu_request_stop(&vm->vcpus[i]);
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            vcpu_join(&vm->vcpus[i]);
        vm_flush_posted(vm);
        if (vm->posted_writes)
            log_info("posted port writes: %llu delivered without an exit",
                     (unsigned long long)vm->posted_writes);
        if (vm->console) /* the guest's last words before ember's */
            console_flush(vm->console);
        console_restore_terminal();
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            log_backend_counters(vm, i, LOG_INFO);
        vm->state = VM_HALTED;
    }
    pthread_mutex_lock(&vm->stop_lock);
    enum vm_stop_reason reason = vm->stop_reason;
    pthread_mutex_unlock(&vm->stop_lock);
    return reason;
}

/* One line with the CPU backend's own counters for vCPU i, if it has any. */
void vm_dump_state(struct vm *vm)
{
    log_warn("state dump: %u vCPUs, VM %s", vm->nr_vcpus, vm_state_name(vm->state));
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        log_warn("vCPU %u: exits I/O %llu, MMIO %llu, other %llu, %s", i,
                 (unsigned long long)(v->exits_io_in + v->exits_io_out),
                 (unsigned long long)(v->exits_mmio_read + v->exits_mmio_write),
                 (unsigned long long)v->exits_other, vcpu_state_name(vcpu_get_state(v)));
        log_backend_counters(vm, i, LOG_WARN);
        vcpu_ask_where(v);
    }
    board_dump(&vm->board);
}

void vm_destroy(struct vm *vm)
{
    image_copy_end(&vm->image_copy, &vm->mem);
    vm_halt(vm);
    if (vm->posted_timer_fd >= 0) {
        evloop_remove(vm->loop, vm->posted_timer_fd);
        close(vm->posted_timer_fd);
        vm->posted_timer_fd = -1;
    }
    for (unsigned i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
        vcpu_destroy(&vm->vcpus[i]);
    free(vm->vcpus);
    vm->vcpus = NULL;
    board_destroy(&vm->board);
    pci_bus_destroy(&vm->pci);
    if (vm->avm) {
        platform_destroy(&vm->platform);
        vm->accel->vm_destroy(vm->avm);
        vm->avm = NULL;
    }
    uffd_backend_stop(&vm->uffd); /* watched the handler until nothing waits on it */
    gm_destroy(&vm->mem);
    console_detach(vm->console);
    if (vm->stop_fd >= 0) {
        evloop_remove(vm->loop, vm->stop_fd);
        close(vm->stop_fd);
        vm->stop_fd = -1;
    }
    free(vm->paused_tsc);
    vm->paused_tsc = NULL;
    free(vm->cmdline);
    vm->cmdline = NULL;
    bus_destroy(&vm->pio);
    bus_destroy(&vm->mmio);
    image_copy_destroy(&vm->image_copy);
    pthread_mutex_destroy(&vm->stop_lock);
}

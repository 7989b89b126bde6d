#include "vmm/vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "accel/hostcheck.h"
#include "devices/i8042.h"
#include "util/fileio.h"
#include "util/landlock.h"
#include "util/log.h"
#include "util/timeline.h"
#include "util/util.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/exit_codes.h"
#include "vmm/metrics.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Firecracker's latencies_us.vmm_NAME: the VMM's own part of a request. */
static int vmm_latency(struct vmm *vmm, const char *name, uint64_t t0_ns, int ret)
{
    if (!ret)
        metrics_store(&vmm->metrics, "latencies_us", name, (now_ns() - t0_ns) / 1000);
    return ret;
}

enum vmm_state vmm_state(const struct vmm *vmm)
{
    if (!vmm->vm)
        return VMM_NOT_STARTED;
    return vmm->vm->state == VM_PAUSED ? VMM_PAUSED : VMM_RUNNING;
}

static bool vmm_exiting(const struct vmm *vmm)
{
    return vmm->exit_code >= 0;
}

const char *vmm_state_name(enum vmm_state state)
{
    switch (state) {
    case VMM_RUNNING: return "Running";
    case VMM_PAUSED: return "Paused";
    case VMM_NOT_STARTED:
    default: return "Not started";
    }
}

int vmm_exit_code_for_fault(enum vmm_fault fault)
{
    switch (fault) {
    case VMM_FAULT_SETUP: return EMBER_EXIT_SETUP_ERROR;
    case VMM_FAULT_HOST: return EMBER_EXIT_HOST_UNSUITABLE;
    default: return EMBER_EXIT_VMM_ERROR;
    }
}

void vmm_exit(struct vmm *vmm, int code)
{
    vmm->exit_code = code;
    evloop_stop(&vmm->loop);
}

static int exit_code_for(const struct vm *vm, enum vm_stop_reason reason)
{
    switch (reason) {
    case VM_STOP_POWER_OFF:
        return EMBER_EXIT_OK;
    case VM_STOP_REBOOT:
    case VM_STOP_USER_QUIT:
        log_info("%s", vm->stop_detail);
        return EMBER_EXIT_OK;
    case VM_STOP_PANIC:
        log_error("%s", vm->stop_detail);
        return EMBER_EXIT_GUEST_PANIC;
    case VM_STOP_TRIPLE_FAULT:
        log_error("%s", vm->stop_detail);
        return EMBER_EXIT_TRIPLE_FAULT;
    case VM_STOP_SIGNAL:
        log_warn("%s", vm->stop_detail);
        return EMBER_EXIT_SIGNAL_BASE + vm->stop_signal;
    case VM_STOP_ERROR:
    case VM_STOP_NONE:
    default:
        log_error("%s", vm->stop_detail[0] ? vm->stop_detail : "the VM stopped unexpectedly");
        return EMBER_EXIT_VMM_ERROR;
    }
}

/* The VM asked to stop (guest power-off, reboot, panic, error or signal):
 * join its vCPUs, write the last metrics and end the loop. */
static void vmm_on_vm_stop(void *ctx)
{
    struct vmm *vmm = ctx;
    if (vmm_exiting(vmm))
        return;
    enum vm_stop_reason reason = vm_halt(vmm->vm);
    if (vmm->metrics_fd >= 0 && vmm_flush_metrics(vmm))
        log_warn("%s", err_msg());
    int code = exit_code_for(vmm->vm, reason);
    vm_gdb_vm_ended(vmm->gdb, code);
    vmm_exit(vmm, code);
}

static void vmm_on_signal(void *ctx, uint32_t events)
{
    struct vmm *vmm = ctx;
    struct signalfd_siginfo info;
    (void)events;
    if (read(vmm->signal_fd, &info, sizeof(info)) != sizeof(info))
        return;
    int signo = (int)info.ssi_signo;
    if (signo == SIGUSR2) {
        if (vmm->vm)
            vm_dump_state(vmm->vm);
        return;
    }
    if (vmm->vm) {
        vm_stop_by_signal(vmm->vm, signo);
        return;
    }
    log_warn("stopped by signal %d (%s)", signo, strsignal(signo));
    vmm_exit(vmm, EMBER_EXIT_SIGNAL_BASE + signo);
}

static void vmm_on_metrics_timer(void *ctx, uint32_t events)
{
    struct vmm *vmm = ctx;
    uint64_t expirations;
    (void)events;
    if (read(vmm->metrics_timer_fd, &expirations, sizeof(expirations)) < 0)
        return;
    if (vmm_flush_metrics(vmm))
        log_warn("%s", err_msg());
}

static int vmm_setup_signals(struct vmm *vmm)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2); /* a state dump (SIGUSR1 kicks vCPUs) */
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    vmm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (vmm->signal_fd < 0)
        return err_errno(-errno, "signalfd failed");
    return evloop_add(&vmm->loop, vmm->signal_fd, EPOLLIN, vmm_on_signal, vmm);
}

int vmm_init(struct vmm *vmm, const char *id, bool skip_host_check, enum accel_kind accel)
{
    memset(vmm, 0, sizeof(*vmm));
    vmm->signal_fd = vmm->metrics_fd = vmm->metrics_timer_fd = -1;
    vmm->exit_code = -1;
    vmm->console.wake_fd = -1;
    vmm->files.mem_fd = -1;
    vmm->start_ns = now_ns();
    vmm->skip_host_check = skip_host_check;
    vmm->accel = accel;
    metrics_init(&vmm->metrics);
    metrics_declare_api(&vmm->metrics);
    snprintf(vmm->id, sizeof(vmm->id), "%s", id ? id : "anonymous-instance");
    int ret = evloop_init(&vmm->loop);
    if (!ret)
        ret = vmm_setup_signals(vmm);
    if (!ret)
        ret = console_init(&vmm->console, STDIN_FILENO, STDOUT_FILENO);
    return ret;
}

static const char *keep_copy(struct vmm *vmm, const char *s)
{
    /* Sized for every override a request can carry; never past the array. */
    if (vmm->nr_override_copies == ARRAY_SIZE(vmm->override_copies))
        return NULL;
    char *copy = strdup(s);
    if (copy)
        vmm->override_copies[vmm->nr_override_copies++] = copy;
    return copy;
}

static void free_override_copies(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nr_override_copies; i++)
        free(vmm->override_copies[i]);
    vmm->nr_override_copies = 0;
}

/* Stop and free the VM (if any), close its files, and forget a snapshot it
 * came from: the VMM is back to having no VM. */
static void vmm_discard_vm(struct vmm *vmm)
{
    vm_gdb_destroy(vmm->gdb);
    vmm->gdb = NULL;
    if (vmm->vm) {
        vm_destroy(vmm->vm);
        free(vmm->vm);
        vmm->vm = NULL;
    }
    vm_files_close(&vmm->files);
    snapshot_close(&vmm->snapshot);
    free_override_copies(vmm);
}

void vmm_destroy(struct vmm *vmm)
{
    vmm_discard_vm(vmm);
    console_destroy(&vmm->console);
    if (vmm->metrics_timer_fd >= 0)
        close(vmm->metrics_timer_fd);
    if (vmm->metrics_fd >= 0)
        close(vmm->metrics_fd);
    if (vmm->signal_fd >= 0)
        close(vmm->signal_fd);
    metrics_destroy(&vmm->metrics);
    evloop_destroy(&vmm->loop);
}

/* Which CPU backend runs the VM: the one asked for (the VM's own choice,
 * else the command line's), or with "auto" KVM where this host has it and
 * ember's engine elsewhere. A snapshot runs on the backend that wrote it. */
static int vmm_choose_accel(struct vmm *vmm, bool restoring)
{
    struct vm_config *cfg = &vmm->cfg;
    if (restoring && vmm->accel != ACCEL_AUTO && vmm->accel != cfg->accel)
        return err_set(-EINVAL, "the snapshot was taken on the %s backend; it cannot be "
                                "restored with --accel %s", accel_kind_name(cfg->accel),
                       accel_kind_name(vmm->accel));
    if (cfg->accel == ACCEL_AUTO)
        cfg->accel = vmm->accel;
    if (cfg->accel == ACCEL_AUTO) {
        bool skip_check = cfg->skip_host_check || vmm->skip_host_check;
        enum host_kind host = skip_check ? HOST_HW_KVM : hostcheck_classify(&host_default_paths);
        cfg->accel = host == HOST_HW_KVM ? ACCEL_KVM : ACCEL_SOFT;
        vmm->hw_kvm_found = host == HOST_HW_KVM && !skip_check;
        if (cfg->accel == ACCEL_SOFT)
            log_info("no hardware KVM here (%s): running the guest on ember's CPU engine",
                     hostcheck_describe(host));
    }
    return 0;
}

/* What the chosen backend needs of the host and of the VM. */
static int vmm_check_accel(struct vmm *vmm, bool restoring, enum vmm_fault *fault)
{
    const struct vm_config *cfg = &vmm->cfg;
    bool skip_check = cfg->skip_host_check || vmm->skip_host_check;
    /* Once found by the choice above, hardware KVM is not looked for again
     * (each look reads /proc/cpuinfo, slow in a nested host). */
    if (cfg->accel == ACCEL_KVM && !skip_check && !vmm->hw_kvm_found &&
        hostcheck_require_hw(&host_default_paths)) {
        *fault = VMM_FAULT_HOST;
        return -ENODEV;
    }
    if (cfg->accel == ACCEL_SOFT && cfg->nr_vcpus > ACCEL_SOFT_MAX_VCPUS)
        return err_set(-EINVAL, "ember's CPU engine runs at most %d vCPUs; --cpus %u needs "
                                "hardware KVM (--accel kvm)", ACCEL_SOFT_MAX_VCPUS, cfg->nr_vcpus);
    if (cfg->accel == ACCEL_SOFT && !restoring &&
        vmm->files.layout.kernel.entry != ENTRY_LINUX64)
        return err_set(-EINVAL, "kernel %s: ember's CPU engine enters kernels at their 64-bit "
                                "entry, and this one offers only a 32-bit entry",
                       cfg->kernel_path);
    log_info("CPU backend: %s", cfg->accel == ACCEL_KVM ? "KVM" : "ember's CPU engine");
    return 0;
}

/* A host that cannot give the guest its memory (or the hugetlbfs pool
 * asked for) is told at setup: a smaller --mem or more memory is the
 * answer, not a report of a failing VM. So is a page-fault handler that
 * cannot be reached or refuses the handshake. */
static int vm_create_failed(struct vmm *vmm, int ret, enum vmm_fault *fault)
{
    if (ret == -ENOMEM || vmm->vm->handler_refused)
        *fault = VMM_FAULT_SETUP;
    return err_prefix(ret, "cannot create the VM");
}

/* The one way a VM comes to life, booted or restored: open its files,
 * choose the backend, build it, give it a snapshot's state if there is one,
 * and start it. On failure nothing is left and *fault says what went wrong. */
static int vmm_bring_up(struct vmm *vmm, const char *mem_path, bool mem_uffd, bool paused,
                        enum vmm_fault *fault)
{
    bool restoring = mem_path != NULL;
    *fault = VMM_FAULT_SETUP;
    /* pci=off (Firecracker's guests) means virtio-mmio, unless chosen. */
    bool chosen = vmm->cfg.transport != TRANSPORT_AUTO;
    vmm->cfg.transport = transport_resolve(vmm->cfg.transport, vmm->cfg.cmdline);
    log_info("virtio devices: %s%s", transport_name(vmm->cfg.transport) ,
             vmm->cfg.transport == TRANSPORT_MMIO && !chosen
                 ? " (the command line says pci=off)" : "");
    int ret = balloon_config_check(&vmm->cfg.balloon, vmm->cfg.mem_size);
    /* The balloon gives back 4 KiB pages (and free page reporting the
     * guest's free blocks): neither can return part of a hugetlbfs page. */
    if (!ret && vmm->cfg.balloon.enabled && vmm->cfg.pages == GUEST_PAGES_HUGETLB)
        ret = err_set(-EINVAL, "the balloon cannot give back 2 MiB huge pages: use "
                      "--huge-pages thp (or none) with a balloon");
    if (!ret)
        ret = vmm_choose_accel(vmm, restoring);
    if (!ret)
        ret = restoring ? vm_files_open_restore(&vmm->cfg, mem_path, mem_uffd, &vmm->files)
                        : vm_files_open_boot(&vmm->cfg, &vmm->files);
    if (!ret) {
        timeline_mark("files");
        ret = vmm_check_accel(vmm, restoring, fault);
    }
    if (ret)
        return ret;
    timeline_mark("host check");
    *fault = VMM_FAULT_RUNTIME;
    if (!(vmm->vm = calloc(1, sizeof(*vmm->vm))))
        return err_set(-ENOMEM, "out of memory");
    if ((ret = vm_create(vmm->vm, &vmm->cfg, &vmm->files, &vmm->loop, &vmm->console,
                         vmm_on_vm_stop, vmm)))
        return vm_create_failed(vmm, ret, fault);
    /* Landlock while the kernel is being copied: the copy's thread, started
     * before it, only moves bytes between two mappings and ends before the
     * guest's first instruction. */
    if ((ret = vm_files_sandbox(&vmm->cfg, mem_path))) {
        *fault = VMM_FAULT_SETUP;
        return ret;
    }
    timeline_mark("Landlock");
    if ((ret = vm_build(vmm->vm)))
        return vm_create_failed(vmm, ret, fault);
    if (restoring && (ret = snapshot_apply(&vmm->snapshot, vmm->vm))) {
        *fault = VMM_FAULT_SETUP; /* the state file does not fit */
        return ret;
    }
    if (vmm->cfg.gdb_address) {
        *fault = VMM_FAULT_SETUP; /* an address that cannot be served */
        if ((ret = vm_gdb_create(vmm->vm, vmm->cfg.gdb_address, vmm->cfg.gdb_wait, &vmm->gdb)))
            return ret;
        *fault = VMM_FAULT_RUNTIME;
        paused = paused || vmm->cfg.gdb_wait;
    }
    /* The vCPUs start (their threads and filters) while the kernel is
     * still being copied; the first entry waits for it. */
    ret = vm_start(vmm->vm, paused);
    vm_finish_loading(vmm->vm);
    return ret ? err_prefix(ret, "cannot start the VM") : 0;
}

int vmm_start(struct vmm *vmm, const struct vm_config *cfg, enum vmm_fault *fault)
{
    *fault = VMM_FAULT_NONE;
    if (vmm->vm)
        return err_set(-EBUSY, "the VM is already running");
    vmm->cfg = *cfg;
    int ret = vmm_bring_up(vmm, NULL, false, false, fault);
    if (ret)
        vmm_discard_vm(vmm);
    return ret;
}

int vmm_snapshot(struct vmm *vmm, enum snapshot_type type, const char *state_path,
                 const char *mem_path)
{
    if (vmm_state(vmm) != VMM_PAUSED)
        return err_set(-EINVAL, "the VM must be paused to take a snapshot");
    uint64_t t0 = now_ns();
    /* a snapshot never holds a debugger's breakpoint */
    vm_gdb_lift_breakpoints(vmm->gdb, true);
    int ret = landlock_explain(snapshot_create(vmm->vm, type, state_path, mem_path));
    vm_gdb_lift_breakpoints(vmm->gdb, false);
    return vmm_latency(vmm, type == SNAPSHOT_DIFF ? "vmm_diff_create_snapshot"
                                                  : "vmm_full_create_snapshot", t0, ret);
}

static bool override_matches(const char *want, const char *id, const char *prefix, unsigned i)
{
    char positional[8];
    snprintf(positional, sizeof(positional), "%s%c", prefix, 'a' + i);
    if (!strcmp(prefix, "eth"))
        snprintf(positional, sizeof(positional), "eth%u", i);
    return (id && !strcmp(want, id)) || !strcmp(want, positional);
}

static int apply_overrides(struct vmm *vmm, const struct vm_overrides *o)
{
    struct vm_config *cfg = &vmm->cfg;
    if (o && o->expect_vcpus && o->expect_vcpus != cfg->nr_vcpus)
        return err_set(-EINVAL, "the snapshot is of a machine with %u vCPUs, not %u",
                       cfg->nr_vcpus, o->expect_vcpus);
    if (o && o->expect_mem && o->expect_mem != cfg->mem_size)
        return err_set(-EINVAL, "the snapshot is of a machine with %llu MiB, not %llu",
                       (unsigned long long)(cfg->mem_size >> 20),
                       (unsigned long long)(o->expect_mem >> 20));
    if (o && o->track_dirty_pages)
        cfg->track_dirty_pages = true;
    vmm->snapshot.clock_realtime = o && o->clock_realtime;
    if (o && o->serial_out_path && !(cfg->serial_out_path = keep_copy(vmm, o->serial_out_path)))
        return err_set(-ENOMEM, "out of memory");
    if (o)
        cfg->serial_limit = o->serial_limit;
    if (o && o->gdb_address && !(cfg->gdb_address = keep_copy(vmm, o->gdb_address)))
        return err_set(-ENOMEM, "out of memory");
    if (o)
        cfg->gdb_wait = o->gdb_wait;
    for (unsigned k = 0; o && k < o->nr_disks; k++) {
        unsigned i = 0;
        while (i < cfg->nr_disks && !override_matches(o->disks[k].id, cfg->disks[i].id, "vd", i))
            i++;
        if (i == cfg->nr_disks)
            return err_set(-EINVAL, "the snapshot has no disk '%s'", o->disks[k].id);
        if (!(cfg->disks[i].path = keep_copy(vmm, o->disks[k].value)))
            return err_set(-ENOMEM, "out of memory");
    }
    for (unsigned k = 0; o && k < o->nr_nics; k++) {
        unsigned i = 0;
        while (i < cfg->nr_nics && !override_matches(o->nics[k].id, cfg->nics[i].id, "eth", i))
            i++;
        if (i == cfg->nr_nics)
            return err_set(-EINVAL, "the snapshot has no network interface '%s'",
                           o->nics[k].id);
        if (cfg->nics[i].kind != NIC_TAP)
            return err_set(-EINVAL, "network interface '%s' is not a TAP interface",
                           o->nics[k].id);
        if (!(cfg->nics[i].tap_name = keep_copy(vmm, o->nics[k].value)))
            return err_set(-ENOMEM, "out of memory");
    }
    bool mmds = false;
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        mmds |= cfg->nics[i].mmds;
    if (mmds && (!o || !o->start_mmds))
        return err_set(-EINVAL, "the snapshot's network interfaces serve the metadata service, "
                                "which this restore cannot start");
    int ret = mmds ? o->start_mmds(o->mmds_ctx, cfg) : 0;
    if (ret)
        return ret;
    if (o && o->vsock_uds) {
        if (!cfg->vsock.uds_path)
            return err_set(-EINVAL, "the snapshot has no vsock device to give a new socket");
        if (!(cfg->vsock.uds_path = keep_copy(vmm, o->vsock_uds)))
            return err_set(-ENOMEM, "out of memory");
    }
    return 0;
}

int vmm_restore(struct vmm *vmm, const char *state_path, const char *mem_path, bool mem_uffd,
                const struct vm_overrides *overrides, bool resume, enum vmm_fault *fault)
{
    *fault = VMM_FAULT_SETUP;
    if (vmm->vm)
        return err_set(-EBUSY, "a VM is already running");
    uint64_t t0 = now_ns();
    int ret = snapshot_open(&vmm->snapshot, state_path);
    if (ret)
        return ret;
    vmm->cfg = vmm->snapshot.cfg;
    if (vmm->snapshot.type == SNAPSHOT_DIFF)
        log_warn("%s is a Diff snapshot: its memory file must be the full one rebuilt with "
                 "'ember merge-memory'", state_path);
    ret = apply_overrides(vmm, overrides);
    if (!ret) /* snapshots are often written beside the one restored */
        ret = landlock_allow_dir_of(state_path, LANDLOCK_FILES);
    if (!ret)
        ret = vmm_bring_up(vmm, mem_path, mem_uffd, !resume, fault);
    if (ret) {
        vmm_discard_vm(vmm);
        memset(&vmm->cfg, 0, sizeof(vmm->cfg)); /* it pointed into the snapshot */
    }
    return vmm_latency(vmm, "vmm_load_snapshot", t0, ret);
}

int vmm_pause(struct vmm *vmm)
{
    if (!vmm->vm)
        return err_set(-EINVAL, "the VM is not running");
    uint64_t t0 = now_ns();
    return vmm_latency(vmm, "vmm_pause_vm", t0, vm_pause(vmm->vm));
}

int vmm_resume(struct vmm *vmm)
{
    if (!vmm->vm)
        return err_set(-EINVAL, "the VM is not running");
    uint64_t t0 = now_ns();
    return vmm_latency(vmm, "vmm_resume_vm", t0, vm_resume(vmm->vm));
}

int vmm_send_ctrl_alt_del(struct vmm *vmm)
{
    struct i8042 *kbd = vmm->vm ? i8042_on_board(&vmm->vm->board) : NULL;
    if (!kbd)
        return err_set(-EINVAL, "the VM is not running");
    i8042_send_ctrl_alt_del(kbd);
    return 0;
}

int vmm_replace_disk(struct vmm *vmm, unsigned index, const char *path)
{
    if (!vmm->vm)
        return err_set(-EINVAL, "the VM is not running");
    struct virtio_blk *blk = virtio_blk_on_board(&vmm->vm->board, index);
    if (!blk)
        return err_set(-ENOENT, "no disk %u", index);
    struct disk_config *d = &vmm->cfg.disks[index];
    struct blockfile bf;
    int ret = blockfile_open(&bf, path, d->read_only, d->cache_none);
    if (ret)
        return landlock_explain(ret);
    ret = virtio_blk_replace_file(blk, &bf);
    if (ret) {
        blockfile_close(&bf);
        return ret;
    }
    d->path = path;
    return 0;
}

struct virtio_balloon *vmm_balloon(struct vmm *vmm)
{
    return vmm->vm ? virtio_balloon_on_board(&vmm->vm->board) : NULL;
}

int vmm_set_disk_rate_limit(struct vmm *vmm, unsigned index,
                            const struct rate_limit_config *update)
{
    if (!vmm->vm)
        return err_set(-EINVAL, "the VM is not running");
    struct virtio_blk *blk = virtio_blk_on_board(&vmm->vm->board, index);
    if (!blk)
        return err_set(-EINVAL, "no disk %u", index);
    int ret = virtio_blk_set_rate_limit(blk, update);
    if (!ret) /* a restart from this configuration keeps it */
        rate_limit_config_merge(&vmm->cfg.disks[index].rate_limit, update);
    return ret;
}

int vmm_set_nic_rate_limits(struct vmm *vmm, unsigned index, const struct rate_limit_config *rx,
                            const struct rate_limit_config *tx)
{
    if (!vmm->vm)
        return err_set(-EINVAL, "the VM is not running");
    struct virtio_net *vn = virtio_net_on_board(&vmm->vm->board, index);
    if (!vn)
        return err_set(-EINVAL, "no network interface %u", index);
    int ret = virtio_net_set_rate_limits(vn, rx, tx);
    if (!ret) {
        rate_limit_config_merge(&vmm->cfg.nics[index].rx_limit, rx);
        rate_limit_config_merge(&vmm->cfg.nics[index].tx_limit, tx);
    }
    return ret;
}

int vmm_set_metrics_path(struct vmm *vmm, const char *path)
{
    /* As Firecracker opens it: a FIFO nobody reads yet opens at once, and a
     * full one drops a line instead of stalling the VMM. */
    int fd = open_sink(path);
    if (fd < 0)
        return err_errno(fd, "cannot open metrics file %s", path);
    int timer = vmm->metrics_timer_fd;
    if (timer < 0) {
        timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec period = {{VMM_METRICS_PERIOD_S, 0}, {VMM_METRICS_PERIOD_S, 0}};
        int ret = timer < 0 ? err_errno(-errno, "timerfd_create failed") : 0;
        if (!ret && timerfd_settime(timer, 0, &period, NULL) < 0)
            ret = err_errno(-errno, "timerfd_settime failed");
        if (!ret)
            ret = evloop_add(&vmm->loop, timer, EPOLLIN, vmm_on_metrics_timer, vmm);
        if (ret) {
            if (timer >= 0)
                close(timer);
            close(fd);
            return ret;
        }
        vmm->metrics_timer_fd = timer;
    }
    if (vmm->metrics_fd >= 0)
        close(vmm->metrics_fd);
    vmm->metrics_fd = fd;
    return 0;
}

int vmm_flush_metrics(struct vmm *vmm)
{
    if (vmm->metrics_fd < 0)
        return err_set(-EINVAL, "no metrics path is set (PUT /metrics)");
    const struct metrics_vmm info = {
        .id = vmm->id,
        .state = vmm_state_name(vmm_state(vmm)),
        .uptime_ns = now_ns() - vmm->start_ns,
        .api_requests = vmm->api_stats.requests,
        .api_bad_requests = vmm->api_stats.bad_requests,
        .api_connections = vmm->api_stats.connections,
        .api_connections_refused = vmm->api_stats.connections_refused,
    };
    return metrics_write(&vmm->metrics, vmm->metrics_fd, &info, vmm->vm);
}

int vmm_run(struct vmm *vmm)
{
    while (!vmm_exiting(vmm)) {
        int ret = evloop_run(&vmm->loop);
        if (ret && !vmm_exiting(vmm)) {
            log_error("%s", err_msg());
            if (vmm->vm) {
                vm_request_stop(vmm->vm, VM_STOP_ERROR, "%s", err_msg());
                vmm_on_vm_stop(vmm);
            } else {
                vmm_exit(vmm, EMBER_EXIT_VMM_ERROR);
            }
        }
    }
    return vmm->exit_code;
}

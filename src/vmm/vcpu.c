#include "vmm/vcpu.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/cpuid.h"
#include "util/log.h"
#include "util/util.h"
#include "vmm/vm.h"

static void kick_handler(int sig)
{
    (void)sig; /* only interrupts KVM_RUN */
}

int vcpu_signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(ACCEL_KICK_SIGNAL, &sa, NULL) < 0)
        return err_errno(-errno, "cannot install the vCPU kick handler");
    return 0;
}

int vcpu_create(struct vm *vm, unsigned index, struct vcpu *vcpu,
                const struct x86_cpuid_entry *cpuid, size_t nr_cpuid)
{
    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->vm = vm;
    vcpu->index = index;
    atomic_init(&vcpu->stop, false);
    atomic_init(&vcpu->pause_requested, false);
    pthread_mutex_init(&vcpu->mbox_lock, NULL);
    pthread_cond_init(&vcpu->mbox_cond, NULL);
    int ret = vm->accel->vcpu_create(vm->avm, index, &vcpu->accel_vcpu);
    if (ret)
        return ret;
    struct x86_cpuid_entry *mine = calloc(CPUID_MAX_ENTRIES, sizeof(*mine));
    if (!mine)
        return err_set(-ENOMEM, "out of memory");
    size_t n = 0;
    ret = cpuid_for_vcpu(cpuid, nr_cpuid, index, vm->nr_vcpus, mine, CPUID_MAX_ENTRIES, &n);
    if (!ret)
        ret = vm->accel->vcpu_set_cpuid(vcpu->accel_vcpu, mine, n);
    free(mine);
    if (ret)
        return err_prefix(ret, "vCPU %u", index);
    struct x86_msr msrs[32];
    size_t nr_msrs = cpu_boot_msrs(msrs, ARRAY_SIZE(msrs));
    ret = vm->accel->vcpu_set_msrs(vcpu->accel_vcpu, msrs, nr_msrs);
    return ret ? err_prefix(ret, "vCPU %u", index) : 0;
}

static void vcpu_handle_io(struct vcpu *vcpu, const struct accel_exit *exit)
{
    struct bus *pio = &vcpu->vm->pio;
    for (uint32_t i = 0; i < exit->io.count; i++) {
        uint8_t *data = exit->io.data + (size_t)i * exit->io.size;
        if (exit->io.is_write)
            bus_write(pio, exit->io.port, data, exit->io.size);
        else
            bus_read(pio, exit->io.port, data, exit->io.size);
    }
}

static void vcpu_handle_mmio(struct vcpu *vcpu, const struct accel_exit *exit)
{
    struct bus *mmio = &vcpu->vm->mmio;
    bool claimed = exit->mmio.is_write
                       ? bus_write(mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len)
                       : bus_read(mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len);
    if (!claimed)
        log_debug("vCPU %u: %s of %u bytes at unclaimed %#llx", vcpu->index,
                  exit->mmio.is_write ? "write" : "read", exit->mmio.len,
                  (unsigned long long)exit->mmio.gpa);
}

static void vcpu_report_triple_fault(struct vcpu *vcpu)
{
    struct x86_regs regs;
    struct vm *vm = vcpu->vm;
    if (vm->accel->vcpu_get_regs(vcpu->accel_vcpu, &regs) == 0)
        vm_request_stop(vm, VM_STOP_TRIPLE_FAULT, "vCPU %u triple-faulted at RIP %#llx",
                        vcpu->index, (unsigned long long)regs.rip);
    else
        vm_request_stop(vm, VM_STOP_TRIPLE_FAULT, "vCPU %u triple-faulted", vcpu->index);
}

/* Returns false when the loop must end. */
static bool vcpu_dispatch(struct vcpu *vcpu, const struct accel_exit *exit)
{
    switch (exit->kind) {
    case ACCEL_EXIT_IO:
        vcpu->exits_io++;
        vcpu_handle_io(vcpu, exit);
        return true;
    case ACCEL_EXIT_MMIO:
        vcpu->exits_mmio++;
        vcpu_handle_mmio(vcpu, exit);
        return true;
    case ACCEL_EXIT_INTERRUPTED:
        vcpu->exits_other++;
        return true;
    case ACCEL_EXIT_SHUTDOWN:
        vcpu_report_triple_fault(vcpu);
        return false;
    case ACCEL_EXIT_HALT:
        vm_request_stop(vcpu->vm, VM_STOP_ERROR,
                        "vCPU %u halted with no interrupt controller to wake it",
                        vcpu->index);
        return false;
    case ACCEL_EXIT_ERROR:
    default:
        vm_request_stop(vcpu->vm, VM_STOP_ERROR, "vCPU %u: %s", vcpu->index, exit->detail);
        return false;
    }
}

/* Returns true if the thread was parked (and is now released). */
static bool vcpu_park_if_asked(struct vcpu *vcpu)
{
    if (!atomic_load(&vcpu->pause_requested))
        return false;
    pthread_mutex_lock(&vcpu->mbox_lock);
    bool parked = vcpu->pause_requested;
    if (parked) {
        vcpu->parked = true;
        pthread_cond_broadcast(&vcpu->mbox_cond);
        while (vcpu->pause_requested && !atomic_load(&vcpu->stop))
            pthread_cond_wait(&vcpu->mbox_cond, &vcpu->mbox_lock);
        vcpu->parked = false;
    }
    pthread_mutex_unlock(&vcpu->mbox_lock);
    return parked;
}

static void vcpu_mark_exited(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    vcpu->exited = true;
    pthread_cond_broadcast(&vcpu->mbox_cond);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *vcpu = arg;
    struct vm *vm = vcpu->vm;
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, ACCEL_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

    struct accel_exit exit;
    while (!atomic_load(&vcpu->stop)) {
        if (vcpu_park_if_asked(vcpu))
            continue;
        int ret = vm->accel->vcpu_run(vcpu->accel_vcpu, &exit);
        if (ret) {
            vm_request_stop(vm, VM_STOP_ERROR, "%s", err_msg());
            break;
        }
        if (!vcpu_dispatch(vcpu, &exit))
            break;
    }
    vcpu_mark_exited(vcpu);
    return NULL;
}

void vcpu_pause(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    vcpu->pause_requested = true;
    pthread_mutex_unlock(&vcpu->mbox_lock);
    if (!vcpu->thread_started)
        return;
    vcpu->vm->accel->vcpu_kick(vcpu->accel_vcpu, vcpu->thread);
    pthread_mutex_lock(&vcpu->mbox_lock);
    while (!vcpu->parked && !vcpu->exited)
        pthread_cond_wait(&vcpu->mbox_cond, &vcpu->mbox_lock);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

void vcpu_resume(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    vcpu->pause_requested = false;
    pthread_cond_broadcast(&vcpu->mbox_cond);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

int vcpu_start(struct vcpu *vcpu)
{
    char name[16];
    int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
    if (ret)
        return err_errno(-ret, "cannot start the thread of vCPU %u", vcpu->index);
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(vcpu->thread, name);
    vcpu->thread_started = true;
    return 0;
}

void vcpu_request_stop(struct vcpu *vcpu)
{
    atomic_store(&vcpu->stop, true);
    pthread_mutex_lock(&vcpu->mbox_lock);
    pthread_cond_broadcast(&vcpu->mbox_cond); /* a parked thread must see it */
    pthread_mutex_unlock(&vcpu->mbox_lock);
    if (vcpu->thread_started)
        vcpu->vm->accel->vcpu_kick(vcpu->accel_vcpu, vcpu->thread);
}

void vcpu_join(struct vcpu *vcpu)
{
    if (vcpu->thread_started) {
        pthread_join(vcpu->thread, NULL);
        vcpu->thread_started = false;
    }
}

void vcpu_destroy(struct vcpu *vcpu)
{
    if (vcpu->vm && vcpu->accel_vcpu)
        vcpu->vm->accel->vcpu_destroy(vcpu->accel_vcpu);
    vcpu->accel_vcpu = NULL;
    if (vcpu->vm) {
        pthread_mutex_destroy(&vcpu->mbox_lock);
        pthread_cond_destroy(&vcpu->mbox_cond);
    }
}

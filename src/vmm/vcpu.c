#include "vmm/vcpu.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/cpu_template.h"
#include "arch/x86_64/cpuid.h"
#include "util/log.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/timeline.h"
#include "util/util.h"

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

const char *vcpu_state_name(enum vcpu_state state)
{
    static const char *const names[] = {
        [VCPU_CREATED] = "created", [VCPU_RUNNING] = "running",
        [VCPU_PAUSED] = "paused", [VCPU_EXITED] = "exited"};
    return state <= VCPU_EXITED ? names[state] : "?";
}

/* The transitions the state machine allows (see vcpu.h). */
static bool transition_allowed(enum vcpu_state from, enum vcpu_state to)
{
    switch (from) {
    case VCPU_CREATED: return to == VCPU_RUNNING;
    case VCPU_RUNNING: return to == VCPU_PAUSED || to == VCPU_EXITED;
    case VCPU_PAUSED: return to == VCPU_RUNNING || to == VCPU_EXITED;
    default: return false;
    }
}

/* Mailbox lock held. A refused transition is a bug in ember: say so and
 * keep the state the thread is really in. */
static void set_state(struct vcpu *vcpu, enum vcpu_state to)
{
    if (!transition_allowed(vcpu->state, to)) {
        log_error("vCPU %u: no transition from %s to %s", vcpu->index,
                  vcpu_state_name(vcpu->state), vcpu_state_name(to));
        if (to != VCPU_EXITED)
            return;
    }
    vcpu->state = to;
    pthread_cond_broadcast(&vcpu->mbox_cond);
}

enum vcpu_state vcpu_get_state(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    enum vcpu_state state = vcpu->state;
    pthread_mutex_unlock(&vcpu->mbox_lock);
    return state;
}

/* Each MSR a template names, read from the backend (the value it starts
 * with, or the boot value set just before) and written back modified. */
static int vcpu_template_msrs(struct vcpu *vcpu, const struct cpu_template *t)
{
    const struct accel_ops *accel = vcpu->env->accel;
    for (unsigned i = 0; i < t->nr_msr; i++) {
        struct x86_msr msr = {.index = t->msr[i].addr};
        int ret = accel->vcpu_get_msrs(vcpu->accel_vcpu, &msr, 1);
        if (ret)
            return err_prefix(ret, "cpu template: MSR %#x cannot be read", msr.index);
        msr.value = cpu_template_apply_msr(t, msr.index, msr.value);
        ret = accel->vcpu_set_msrs(vcpu->accel_vcpu, &msr, 1);
        if (ret)
            return err_prefix(ret, "cpu template: MSR %#x cannot be set to %#llx", msr.index,
                              (unsigned long long)msr.value);
    }
    return 0;
}

int vcpu_create(const struct vcpu_env *env, unsigned index, struct vcpu *vcpu,
                const struct x86_cpuid_entry *cpuid, size_t nr_cpuid)
{
    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->env = env;
    vcpu->index = index;
    vcpu->state = VCPU_CREATED;
    atomic_init(&vcpu->request, VCPU_REQ_RUN);
    pthread_mutex_init(&vcpu->mbox_lock, NULL);
    pthread_cond_init(&vcpu->mbox_cond, NULL);
    const struct accel_ops *accel = env->accel;
    int ret = accel->vcpu_create(env->avm, index, &vcpu->accel_vcpu);
    if (ret)
        return ret;
    struct x86_cpuid_entry *mine = calloc(CPUID_MAX_ENTRIES, sizeof(*mine));
    if (!mine)
        return err_set(-ENOMEM, "out of memory");
    size_t n = 0;
    const struct cpuid_config cc = {env->nr_vcpus, env->threads_per_core ? env->threads_per_core : 1};
    ret = cpuid_for_vcpu(cpuid, nr_cpuid, index, &cc, mine, CPUID_MAX_ENTRIES, &n);
    if (!ret)
        ret = accel->vcpu_set_cpuid(vcpu->accel_vcpu, mine, n);
    free(mine);
    if (ret)
        return err_prefix(ret, "vCPU %u", index);
    struct x86_msr msrs[32];
    size_t nr_msrs = cpu_boot_msrs(msrs, ARRAY_SIZE(msrs));
    ret = accel->vcpu_set_msrs(vcpu->accel_vcpu, msrs, nr_msrs);
    if (!ret && env->cpu_template)
        ret = vcpu_template_msrs(vcpu, env->cpu_template);
    return ret ? err_prefix(ret, "vCPU %u", index) : 0;
}

static void vcpu_handle_io(struct vcpu *vcpu, const struct accel_exit *exit)
{
    struct bus *pio = vcpu->env->pio;
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
    struct bus *mmio = vcpu->env->mmio;
    bool claimed = exit->mmio.is_write
                       ? bus_write(mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len)
                       : bus_read(mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len);
    if (!claimed)
        log_debug("vCPU %u: %s of %u bytes at unclaimed %#llx", vcpu->index,
                  exit->mmio.is_write ? "write" : "read", exit->mmio.len,
                  (unsigned long long)exit->mmio.gpa);
}

static void vcpu_end(struct vcpu *vcpu, enum vcpu_end why, const char *fmt, ...)
    EMBER_PRINTF(3, 4);

static void vcpu_end(struct vcpu *vcpu, enum vcpu_end why, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    vcpu->env->ended(vcpu->env->ctx, why, detail);
}

static void vcpu_report_triple_fault(struct vcpu *vcpu)
{
    struct x86_regs regs;
    if (vcpu->env->accel->vcpu_get_regs(vcpu->accel_vcpu, &regs) == 0)
        vcpu_end(vcpu, VCPU_END_TRIPLE_FAULT, "vCPU %u triple-faulted at RIP %#llx",
                 vcpu->index, (unsigned long long)regs.rip);
    else
        vcpu_end(vcpu, VCPU_END_TRIPLE_FAULT, "vCPU %u triple-faulted", vcpu->index);
}

static void set_request(struct vcpu *vcpu, enum vcpu_request req);

/* A debugger's stop: report it, then park before running the guest again
 * (the debugger's side resumes the vCPU). */
static void vcpu_debug_stop(struct vcpu *vcpu, const struct accel_exit *exit)
{
    if (!vcpu->env->debug_stop)
        return;
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_request(vcpu, VCPU_REQ_PAUSE);
    pthread_mutex_unlock(&vcpu->mbox_lock);
    vcpu->env->debug_stop(vcpu->env->ctx, vcpu->index, exit);
}

static const char *exit_kind_name(const struct accel_exit *exit, char *buf, size_t size)
{
    switch (exit->kind) {
    case ACCEL_EXIT_IO:
        snprintf(buf, size, "port %s %#x", exit->io.is_write ? "write" : "read", exit->io.port);
        return buf;
    case ACCEL_EXIT_MMIO:
        snprintf(buf, size, "MMIO %s %#llx", exit->mmio.is_write ? "write" : "read",
                 (unsigned long long)exit->mmio.gpa);
        return buf;
    case ACCEL_EXIT_INTERRUPTED:
        return "a kick";
    default:
        return "another reason";
    }
}

static void vcpu_log_where(struct vcpu *vcpu, const struct accel_exit *exit)
{
    struct x86_regs regs;
    char why[64];
    if (vcpu->env->accel->vcpu_get_regs(vcpu->accel_vcpu, &regs) == 0)
        log_warn("vCPU %u: at RIP %#llx RSP %#llx RFLAGS %#llx, left the guest for %s",
                 vcpu->index, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
                 (unsigned long long)regs.rflags, exit_kind_name(exit, why, sizeof(why)));
}

/* Returns false when the loop must end. */
static bool vcpu_dispatch(struct vcpu *vcpu, const struct accel_exit *exit)
{
    switch (exit->kind) {
    case ACCEL_EXIT_IO:
        if (exit->io.is_write)
            vcpu->exits_io_out++;
        else
            vcpu->exits_io_in++;
        vcpu_handle_io(vcpu, exit);
        return true;
    case ACCEL_EXIT_MMIO:
        if (exit->mmio.is_write)
            vcpu->exits_mmio_write++;
        else
            vcpu->exits_mmio_read++;
        vcpu_handle_mmio(vcpu, exit);
        return true;
    case ACCEL_EXIT_INTERRUPTED:
        vcpu->exits_other++;
        return true;
    case ACCEL_EXIT_DEBUG:
        vcpu->exits_other++;
        vcpu_debug_stop(vcpu, exit);
        return true;
    case ACCEL_EXIT_SHUTDOWN:
        vcpu_report_triple_fault(vcpu);
        return false;
    case ACCEL_EXIT_HALT:
        vcpu_end(vcpu, VCPU_END_ERROR, "vCPU %u halted with no interrupt controller to wake it",
                 vcpu->index);
        return false;
    case ACCEL_EXIT_ERROR:
    default:
        vcpu_end(vcpu, VCPU_END_ERROR, "vCPU %u: %s", vcpu->index, exit->detail);
        return false;
    }
}

/* The request, read without the lock: the exit path takes the lock only
 * when something is asked. Returns false when the thread must end. */
static bool vcpu_follow_request(struct vcpu *vcpu)
{
    int req = atomic_load(&vcpu->request);
    if (req == VCPU_REQ_RUN)
        return true;
    pthread_mutex_lock(&vcpu->mbox_lock);
    if (vcpu->request == VCPU_REQ_PAUSE) {
        set_state(vcpu, VCPU_PAUSED);
        while (vcpu->request == VCPU_REQ_PAUSE)
            pthread_cond_wait(&vcpu->mbox_cond, &vcpu->mbox_lock);
        if (vcpu->request == VCPU_REQ_RUN)
            set_state(vcpu, VCPU_RUNNING);
    }
    bool go_on = vcpu->request != VCPU_REQ_STOP;
    pthread_mutex_unlock(&vcpu->mbox_lock);
    return go_on;
}

/* Run the guest, handling its exits, until told to stop or an error. */
static void vcpu_run_guest(struct vcpu *vcpu)
{
    const struct accel_ops *accel = vcpu->env->accel;
    struct accel_exit exit;
    bool entered = vcpu->index != 0; /* vCPU 0's first entry ends the start-up */
    while (vcpu_follow_request(vcpu)) {
        if (!entered) {
            entered = true;
            timeline_report("first guest entry");
        }
        if (accel->vcpu_run(vcpu->accel_vcpu, &exit)) {
            vcpu_end(vcpu, VCPU_END_ERROR, "%s", err_msg());
            break;
        }
        /* A plain load on every exit; the exchange only when asked. */
        if (atomic_load_explicit(&vcpu->where_asked, memory_order_relaxed) &&
            atomic_exchange(&vcpu->where_asked, false))
            vcpu_log_where(vcpu, &exit);
        if (!vcpu_dispatch(vcpu, &exit))
            break;
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *vcpu = arg;
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, ACCEL_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

    /* The filter is in place before the guest's first instruction. */
    if (seccomp_enter(SECCOMP_VCPU)) {
        vcpu_end(vcpu, VCPU_END_ERROR, "vCPU %u: %s", vcpu->index, err_msg());
    } else {
        if (vcpu->env->before_first_entry)
            vcpu->env->before_first_entry(vcpu->env->ctx);
        vcpu_run_guest(vcpu);
    }
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_state(vcpu, VCPU_EXITED);
    pthread_mutex_unlock(&vcpu->mbox_lock);
    return NULL;
}

/* Mailbox lock held; a stop request is never taken back. */
static void set_request(struct vcpu *vcpu, enum vcpu_request req)
{
    if (vcpu->request != VCPU_REQ_STOP)
        atomic_store(&vcpu->request, req);
    pthread_cond_broadcast(&vcpu->mbox_cond);
}

static void kick(struct vcpu *vcpu)
{
    if (vcpu->state == VCPU_RUNNING)
        vcpu->env->accel->vcpu_kick(vcpu->accel_vcpu, vcpu->thread);
}

void vcpu_ask_where(struct vcpu *vcpu)
{
    atomic_store(&vcpu->where_asked, true);
    pthread_mutex_lock(&vcpu->mbox_lock);
    kick(vcpu);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

void vcpu_pause(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_request(vcpu, VCPU_REQ_PAUSE);
    kick(vcpu);
    while (vcpu->state == VCPU_RUNNING)
        pthread_cond_wait(&vcpu->mbox_cond, &vcpu->mbox_lock);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

void vcpu_resume(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_request(vcpu, VCPU_REQ_RUN);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

int vcpu_start(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_state(vcpu, VCPU_RUNNING);
    int ret = thread_create(&vcpu->thread, vcpu_thread, vcpu);
    if (ret)
        vcpu->state = VCPU_CREATED; /* no thread: back to where it was */
    pthread_mutex_unlock(&vcpu->mbox_lock);
    if (ret)
        return err_errno(-ret, "cannot start the thread of vCPU %u", vcpu->index);
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(vcpu->thread, name);
    return 0;
}

void vcpu_request_stop(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    set_request(vcpu, VCPU_REQ_STOP);
    kick(vcpu);
    pthread_mutex_unlock(&vcpu->mbox_lock);
}

void vcpu_join(struct vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->mbox_lock);
    bool has_thread = vcpu->state != VCPU_CREATED;
    pthread_mutex_unlock(&vcpu->mbox_lock);
    if (has_thread)
        pthread_join(vcpu->thread, NULL);
}

void vcpu_destroy(struct vcpu *vcpu)
{
    if (!vcpu->env)
        return; /* never created */
    if (vcpu->accel_vcpu)
        vcpu->env->accel->vcpu_destroy(vcpu->accel_vcpu);
    vcpu->accel_vcpu = NULL;
    pthread_mutex_destroy(&vcpu->mbox_lock);
    pthread_cond_destroy(&vcpu->mbox_cond);
    vcpu->env = NULL;
}

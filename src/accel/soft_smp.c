/* Several vCPUs on ember's engine.
 *
 * They take turns: one thread at a time runs guest code (a ticket lock,
 * first come first served), so the engine's per-vCPU caches need no locks
 * and a LOCKed instruction is atomic as it stands. A turn ends at HLT, at an
 * exit, after SOFT_TURN_INSNS instructions, or at a PAUSE while another vCPU
 * waits for its turn: a spin-wait waits for someone else, who should run.
 * What one vCPU writes over code another one has decoded reaches that one
 * through the engine's code_page and code_written hooks.
 *
 * The APs do not start with INIT and SIPI (their real-mode trampoline is not
 * the engine's to run): as with TDX's firmware, the MADT lists an ACPI
 * multiprocessor wakeup mailbox (ACPI 6.4, 5.2.12.19). An AP's thread
 * watches it; when the OS writes the AP's APIC ID, a wakeup vector and the
 * wakeup command there, the AP starts at the vector in 64-bit mode on an
 * identity map, as the spec's firmware leaves it, and clears the command,
 * which the OS waits for. Linux 5.16 and later wake their APs this way when
 * the MADT offers the mailbox. */
#include <string.h>
#include <time.h>

#include "accel/soft_internal.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"
#include "util/util.h"

#define MAILBOX_CMD_WAKEUP 1
#define MAILBOX_BYTES 16          /* command, reserved, APIC ID, wakeup vector */
#define AP_POLL_FIRST_NS 50000ull /* then doubling, up to ... */
#define AP_POLL_MAX_NS 20000000ull

void soft_smp_vm_init(struct soft_vm *vm)
{
    pthread_mutex_init(&vm->turn_lock, NULL);
    pthread_cond_init(&vm->turn_cond, NULL);
    atomic_init(&vm->aps_waiting, vm->nr_vcpus ? vm->nr_vcpus - 1 : 0);
}

void soft_smp_vm_destroy(struct soft_vm *vm)
{
    pthread_cond_destroy(&vm->turn_cond);
    pthread_mutex_destroy(&vm->turn_lock);
}

void soft_turn_take(struct soft_vm *vm)
{
    if (vm->nr_vcpus < 2)
        return;
    atomic_fetch_add(&vm->turn_waiting, 1);
    pthread_mutex_lock(&vm->turn_lock);
    uint64_t mine = vm->turn_next++;
    while (vm->turn_serving != mine)
        pthread_cond_wait(&vm->turn_cond, &vm->turn_lock);
    pthread_mutex_unlock(&vm->turn_lock);
    atomic_fetch_sub(&vm->turn_waiting, 1);
}

void soft_turn_give(struct soft_vm *vm)
{
    if (vm->nr_vcpus < 2)
        return;
    pthread_mutex_lock(&vm->turn_lock);
    vm->turn_serving++;
    pthread_cond_broadcast(&vm->turn_cond);
    pthread_mutex_unlock(&vm->turn_lock);
}

/* --- the engine's hooks (called inside a turn) --------------------------------------- */

static void wake_mailbox_watchers(struct soft_vm *vm)
{
    for (unsigned i = 1; i < vm->nr_created; i++) {
        struct soft_vcpu *o = vm->vcpus[i];
        if (atomic_load(&o->started))
            continue;
        pthread_mutex_lock(&o->halt_lock);
        pthread_cond_broadcast(&o->halt_cond);
        pthread_mutex_unlock(&o->halt_lock);
    }
}

bool soft_smp_pause(void *ctx)
{
    struct soft_vcpu *v = ctx;
    /* the OS may be spinning on the mailbox, waiting for an AP to wake */
    if (atomic_load(&v->vm->aps_waiting))
        wake_mailbox_watchers(v->vm);
    return atomic_load(&v->vm->turn_waiting) > 0;
}

/* The other vCPUs are outside cpu_run (waiting for a turn, halted, woken or
 * paused): their engines may be told about this one's code. */
void soft_smp_code_page(void *ctx, uint64_t page, bool on)
{
    struct soft_vcpu *v = ctx;
    for (unsigned i = 0; i < v->vm->nr_created; i++)
        if (v->vm->vcpus[i] != v)
            cpu_foreign_code(v->vm->vcpus[i]->cpu, page, on);
}

void soft_smp_code_written(void *ctx, uint64_t gpa, uint64_t len)
{
    struct soft_vcpu *v = ctx;
    for (unsigned i = 0; i < v->vm->nr_created; i++)
        if (v->vm->vcpus[i] != v)
            cpu_notify_write(v->vm->vcpus[i]->cpu, gpa, len);
}

/* --- starting the APs ------------------------------------------------------------- */

/* The mailbox holds a wakeup command for this AP (read with the OS's
 * release order: the APIC ID and vector were written before the command). */
static bool ap_called(struct soft_vcpu *v, uint64_t *vector)
{
    uint8_t *mb = gm_ptr(v->vm->mem, LAYOUT_AP_MAILBOX, MAILBOX_BYTES);
    if (!mb)
        return false;
    uint16_t cmd = __atomic_load_n((uint16_t *)mb, __ATOMIC_ACQUIRE);
    if (cmd != MAILBOX_CMD_WAKEUP || le32_load(mb + 4) != v->index)
        return false;
    *vector = le64_load(mb + 8);
    return true;
}

static void deadline_after(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_REALTIME, ts); /* the condition variable's clock */
    ns += (uint64_t)ts->tv_nsec;
    ts->tv_sec += (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* The AP's state as the mailbox's firmware leaves it, the command cleared
 * (inside a turn: the engine is this thread's now). */
static bool ap_start(struct soft_vcpu *v, uint64_t vector)
{
    struct x86_regs regs;
    struct x86_sregs sregs;
    uint8_t *mb = gm_ptr(v->vm->mem, LAYOUT_AP_MAILBOX, MAILBOX_BYTES);
    if (!mb || cpu_boot_ap_long_mode(v->vm->mem, vector, &regs, &sregs) ||
        cpu_set_sregs(v->cpu, &sregs)) {
        log_guest("vCPU %u: cannot start at the wakeup vector %#llx", v->index,
                  (unsigned long long)vector);
        return false;
    }
    cpu_set_regs(v->cpu, &regs);
    atomic_store(&v->started, true);
    atomic_fetch_sub(&v->vm->aps_waiting, 1);
    __atomic_store_n((uint16_t *)mb, 0, __ATOMIC_RELEASE);
    log_debug("vCPU %u woken through the mailbox at %#llx", v->index,
              (unsigned long long)vector);
    return true;
}

void soft_ap_wait(struct soft_vcpu *v)
{
    uint64_t vector = 0, poll = AP_POLL_FIRST_NS;
    pthread_mutex_lock(&v->halt_lock);
    while (!atomic_load(&v->kicked) && !ap_called(v, &vector)) {
        struct timespec ts;
        deadline_after(&ts, poll);
        pthread_cond_timedwait(&v->halt_cond, &v->halt_lock, &ts);
        poll = MIN(poll * 2, AP_POLL_MAX_NS);
    }
    pthread_mutex_unlock(&v->halt_lock);
    if (atomic_load(&v->kicked))
        return;
    soft_turn_take(v->vm);
    /* read again inside the turn, where the OS cannot be changing it */
    if (ap_called(v, &vector))
        ap_start(v, vector);
    soft_turn_give(v->vm);
}

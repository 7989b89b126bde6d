/* The soft backend's own structures, shared by soft.c (the VM, vCPUs and
 * their run loop), soft_irq.c (interrupt controllers, PIT, MSIs and the
 * clock) and soft_state.c (snapshots). */
#ifndef EMBER_ACCEL_SOFT_INTERNAL_H
#define EMBER_ACCEL_SOFT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "accel/accel.h"
#include "accel/soft_timer.h"
#include "cpu/cpu.h"
#include "devices/i8254.h"
#include "devices/irq.h"
#include "devices/vclock.h"
#include "irqchip/ioapic.h"
#include "irqchip/lapic.h"
#include "irqchip/pic.h"

#define SOFT_MAX_VCPUS ACCEL_SOFT_MAX_VCPUS
_Static_assert(SOFT_MAX_TIMERS >= SOFT_MAX_VCPUS + 2, "a timer per local APIC, the PIT's, the IOAPIC's");
/* Several vCPUs take turns on the engine (one inside cpu_run at a time);
 * a turn ends at HLT, at an exit, at a spin-wait's PAUSE while another vCPU
 * waits, or after this many instructions. */
#define SOFT_TURN_INSNS 2000000
#define SOFT_MAX_GSI 24
#define SOFT_MAX_IOEVENTFDS 64

/* kvm-clock, as Linux's kvmclock driver reads it. */
#define MSR_KVM_WALL_CLOCK 0x11
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

struct soft_vm;

struct soft_vcpu {
    struct soft_vm *vm;
    unsigned index;
    struct cpu *cpu;
    struct lapic lapic;
    /* The TSC reads (host ns - tsc_base_ns) * TSC rate: the guest clock's
     * jumps at resume do not move it (the VMM sets it itself). */
    _Atomic uint64_t tsc_base_ns;
    /* HLT: the thread sleeps here until an interrupt, an NMI or a kick. */
    pthread_mutex_t halt_lock;
    pthread_cond_t halt_cond;
    atomic_bool kicked;
    /* An AP waits for the wakeup mailbox (soft_smp.c) until this is set. */
    atomic_bool started;
    /* kvm-clock: where the guest wants its time information (0: off). */
    uint64_t pvclock_gpa;
    uint32_t pvclock_version;
};

struct soft_ioeventfd {
    uint64_t addr;
    unsigned len;
    int fd;
    bool match;      /* only writes of 'data' */
    uint64_t data;
};

struct soft_vm {
    struct accel_io io;
    const struct guest_mem *mem;
    unsigned nr_vcpus;
    struct soft_vcpu *vcpus[SOFT_MAX_VCPUS];
    struct lapic *lapics[SOFT_MAX_VCPUS];
    unsigned nr_created;

    /* Every vCPU's TSC starts from this host time: their TSCs agree, as
     * Linux checks when it brings the APs up (a warp marks them unstable). */
    uint64_t tsc_epoch_ns;
    /* The guest clock: host CLOCK_MONOTONIC ns minus clock_offset. */
    _Atomic uint64_t clock_offset;
    struct vclock clock;
    struct soft_timers timers;

    FILE *perf_map; /* EMBER_PERF_MAP=1: /tmp/perf-PID.map, translated code named */

    bool irqchip;
    struct pic pic;
    struct ioapic ioapic;
    struct pit pit;
    struct irq_sink sink; /* the PIT's line, routed like every other GSI */
    struct vtimer lapic_timers[SOFT_MAX_VCPUS];
    int gsi_pic[SOFT_MAX_GSI];    /* PIC input of each GSI, or -1 */
    int gsi_ioapic[SOFT_MAX_GSI]; /* IOAPIC pin of each GSI, or -1 */

    /* Turns (soft_smp.c): a ticket lock, first come first served. */
    pthread_mutex_t turn_lock;
    pthread_cond_t turn_cond;
    uint64_t turn_next, turn_serving;
    _Atomic unsigned turn_waiting;  /* vCPUs queued for a turn */
    _Atomic unsigned aps_waiting;   /* APs not yet woken through the mailbox */

    pthread_rwlock_t ioeventfd_lock;
    struct soft_ioeventfd ioeventfds[SOFT_MAX_IOEVENTFDS];
    unsigned nr_ioeventfds;
};

uint64_t soft_host_ns(void);
uint64_t soft_clock_ns(struct soft_vm *vm);
uint64_t soft_tsc(struct soft_vcpu *v);

/* soft_irq.c: the interrupt controllers and the PIT. */
int soft_irq_vm_init(struct soft_vm *vm) EMBER_MUST_CHECK;
void soft_irq_vm_destroy(struct soft_vm *vm);
int soft_irq_create(struct soft_vm *vm, const struct accel_irq_route *routes, size_t n)
    EMBER_MUST_CHECK;
int soft_irq_set_line(struct soft_vm *vm, uint32_t gsi, bool level) EMBER_MUST_CHECK;
int soft_irq_msi(struct soft_vm *vm, uint64_t address, uint32_t data) EMBER_MUST_CHECK;
int soft_irq_vcpu_init(struct soft_vcpu *v) EMBER_MUST_CHECK;
/* At an instruction boundary with IF=1: the vector to take, or -1. */
int soft_irq_intr(struct soft_vcpu *v);
/* Whether a halted vCPU must wake (an interrupt it can take, an NMI). */
bool soft_irq_wakes(struct soft_vcpu *v);
/* Port and MMIO accesses the backend's own devices claim. */
bool soft_irq_pio(struct soft_vm *vm, uint16_t port, void *data, unsigned len, bool is_write);
bool soft_irq_mmio(struct soft_vcpu *v, uint64_t gpa, void *data, unsigned len, bool is_write);
/* MSRs of the local APIC and kvm-clock; false: not one of them. */
bool soft_irq_msr(struct soft_vcpu *v, uint32_t index, uint64_t *value, bool is_write,
                  bool *ok);
/* kvm-clock's time information for a vCPU, written again (the guest clock
 * moved, or a snapshot was restored). */
void soft_pvclock_update(struct soft_vcpu *v);

/* soft_smp.c: several vCPUs on the engine, taking turns; the APs start
 * through the ACPI multiprocessor wakeup mailbox. */
void soft_smp_vm_init(struct soft_vm *vm);
void soft_smp_vm_destroy(struct soft_vm *vm);
void soft_turn_take(struct soft_vm *vm);
void soft_turn_give(struct soft_vm *vm);
/* An AP not yet started: wait for its wakeup command and start, or for a
 * kick (v->kicked, left for the caller). */
void soft_ap_wait(struct soft_vcpu *v);
/* The engine's hooks for vCPUs taking turns (cpu_ops.pause, code_page,
 * code_written); ctx is the soft_vcpu. */
bool soft_smp_pause(void *ctx);
void soft_smp_code_page(void *ctx, uint64_t page, bool on);
void soft_smp_code_written(void *ctx, uint64_t gpa, uint64_t len);

/* soft_state.c: snapshots. */
int soft_vcpu_save(struct accel_vcpu *vcpu, struct buf *out);
int soft_vcpu_restore(struct accel_vcpu *vcpu, const void *data, size_t len);
int soft_vm_save(struct accel_vm *vm, struct buf *out);
int soft_vm_restore(struct accel_vm *vm, const void *data, size_t len);

#endif

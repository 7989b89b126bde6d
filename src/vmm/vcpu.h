/* One thread per vCPU: run the guest, dispatch its port and MMIO exits to the
 * buses, and stop when told to. */
#ifndef EMBER_VMM_VCPU_H
#define EMBER_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned index;
    struct accel_vcpu *accel_vcpu;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    /* The mailbox: a pause request, and the thread's answer that it is
     * parked outside the CPU backend's run call. */
    pthread_mutex_t mbox_lock;
    pthread_cond_t mbox_cond;
    /* Written under the lock; read without it on every run-loop turn, so
     * the exit path takes the lock only when a pause is asked. */
    atomic_bool pause_requested;
    bool parked;
    bool exited;
    /* Exit counters for metrics (written by the vCPU thread only). */
    _Atomic uint64_t exits_io, exits_mmio, exits_other;
};

/* 'cpuid' is the backend's supported list, adjusted here for this vCPU. */
int vcpu_create(struct vm *vm, unsigned index, struct vcpu *vcpu,
                const struct x86_cpuid_entry *cpuid, size_t nr_cpuid) EMBER_MUST_CHECK;
int vcpu_start(struct vcpu *vcpu) EMBER_MUST_CHECK;
/* Ask the thread to leave its run loop (from any thread). */
void vcpu_request_stop(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
/* Park the thread outside the backend's run call and wait until it is
 * (returns at once if the thread has ended; before vcpu_start, the thread
 * parks before it first runs the guest); resume lets it run again. */
void vcpu_pause(struct vcpu *vcpu);
void vcpu_resume(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

/* Process-wide setup of the kick signal; call before any vCPU thread. */
int vcpu_signals_init(void) EMBER_MUST_CHECK;

#endif

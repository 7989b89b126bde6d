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
    uint64_t exits_io, exits_mmio;
};

/* 'cpuid' is the backend's supported list, adjusted here for this vCPU. */
int vcpu_create(struct vm *vm, unsigned index, struct vcpu *vcpu,
                const struct x86_cpuid_entry *cpuid, size_t nr_cpuid) EMBER_MUST_CHECK;
int vcpu_start(struct vcpu *vcpu) EMBER_MUST_CHECK;
/* Ask the thread to leave its run loop (from any thread). */
void vcpu_request_stop(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

/* Process-wide setup of the kick signal; call before any vCPU thread. */
int vcpu_signals_init(void) EMBER_MUST_CHECK;

#endif

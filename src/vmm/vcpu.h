/* One thread per vCPU: run the guest, dispatch its port and MMIO exits to the
 * buses, and park or stop when told to.
 *
 * The thread's life is a state machine, driven by one request word (the
 * mailbox) that other threads set:
 *
 *   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *                         |                          |
 *                         +---- stop, or an end ---> EXITED
 *
 * 'state' is written by the vCPU thread (and by vcpu_start before the thread
 * exists) under the mailbox lock; 'request' by anyone under it, and read by
 * the thread without the lock on every turn of its loop. */
#ifndef EMBER_VMM_VCPU_H
#define EMBER_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "bus/bus.h"
#include "config/cpu_template.h"

enum vcpu_state { VCPU_CREATED, VCPU_RUNNING, VCPU_PAUSED, VCPU_EXITED };
enum vcpu_request { VCPU_REQ_RUN, VCPU_REQ_PAUSE, VCPU_REQ_STOP };

/* Why a vCPU ended on its own. */
enum vcpu_end { VCPU_END_TRIPLE_FAULT, VCPU_END_ERROR };

/* What a vCPU needs of its VM. */
struct vcpu_env {
    const struct accel_ops *accel;
    struct accel_vm *avm;
    struct bus *pio, *mmio;
    unsigned nr_vcpus;
    unsigned threads_per_core; /* 2 with SMT */
    /* MSR modifiers applied to each vCPU (its CPUID ones are already in the
     * leaves vcpu_create takes); NULL: none. */
    const struct cpu_template *cpu_template;
    /* The vCPU ended (from its thread); 'detail' says why. */
    void (*ended)(void *ctx, enum vcpu_end why, const char *detail);
    void *ctx;
    /* A debugger's stop (ACCEL_EXIT_DEBUG), from the vCPU's thread, which
     * then parks itself until resumed (NULL: no debugger, never happens). */
    void (*debug_stop)(void *ctx, unsigned index, const struct accel_exit *exit);
    /* Once, in the vCPU's thread before it first runs the guest (NULL: none). */
    void (*before_first_entry)(void *ctx);
};

struct vcpu {
    const struct vcpu_env *env;
    unsigned index;
    struct accel_vcpu *accel_vcpu;
    pthread_t thread;
    pthread_mutex_t mbox_lock;
    pthread_cond_t mbox_cond;
    enum vcpu_state state;
    _Atomic int request; /* enum vcpu_request */
    /* Exit counters for metrics (written by the vCPU thread only). */
    _Atomic uint64_t exits_io_in, exits_io_out, exits_mmio_read, exits_mmio_write, exits_other;
    _Atomic bool where_asked; /* the state dump: log RIP at the next exit */
};

/* 'cpuid' is the backend's supported list, adjusted here for this vCPU. */
int vcpu_create(const struct vcpu_env *env, unsigned index, struct vcpu *vcpu,
                const struct x86_cpuid_entry *cpuid, size_t nr_cpuid) EMBER_MUST_CHECK;
int vcpu_start(struct vcpu *vcpu) EMBER_MUST_CHECK;
/* Ask the thread to end (from any thread); vcpu_join waits for it. */
void vcpu_request_stop(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
/* Park the thread outside the backend's run call and wait until it is
 * (at once if it has ended; before vcpu_start, the thread will park before
 * it first runs the guest); resume lets it run again. */
void vcpu_pause(struct vcpu *vcpu);
void vcpu_resume(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
enum vcpu_state vcpu_get_state(struct vcpu *vcpu);
/* Log, from the vCPU's thread at its next exit (it is kicked for one),
 * where the guest runs and why it left: a stalled guest's state dump. */
void vcpu_ask_where(struct vcpu *vcpu);
const char *vcpu_state_name(enum vcpu_state state);

/* Process-wide setup of the kick signal; call before any vCPU thread. */
int vcpu_signals_init(void) EMBER_MUST_CHECK;

#endif

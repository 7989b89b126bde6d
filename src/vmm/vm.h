/* A virtual machine: guest memory, the CPU backend's VM, the buses, the
 * board and its devices, the vCPUs, and why it stopped.
 *
 * Its life is one state machine:
 *
 *   CREATED --vm_start--> RUNNING <--vm_pause/vm_resume--> PAUSED
 *      |                     |                                |
 *      +--vm_start(paused)---|------------------------------> |
 *                            +------------vm_halt-------------+--> HALTED
 *
 * All transitions happen on the event loop's thread. */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "bus/bus.h"
#include "bus/pci/pci.h"
#include "bus/pci/platform.h"
#include "config/config.h"
#include "devices/board.h"
#include "devices/irq.h"
#include "mem/guest_mem.h"
#include "util/evloop.h"
#include "vmm/console.h"
#include "vmm/files.h"
#include "vmm/image_copy.h"
#include "vmm/platform.h"
#include "vmm/uffd.h"
#include "vmm/vcpu.h"

enum vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED, VM_HALTED };

enum vm_stop_reason {
    VM_STOP_NONE,
    VM_STOP_POWER_OFF,
    VM_STOP_REBOOT,
    VM_STOP_PANIC,
    VM_STOP_TRIPLE_FAULT,
    VM_STOP_USER_QUIT,
    VM_STOP_SIGNAL,
    VM_STOP_ERROR,
};

struct vm {
    const struct vm_config *cfg;
    const struct accel_ops *accel;
    struct accel_vm *avm;
    struct guest_mem mem;
    struct uffd_backend uffd;  /* restoring through a page-fault handler */
    bool handler_refused;      /* vm_create failed on the handler (not the host) */
    struct bus pio;
    struct bus mmio;
    struct pci_bus pci;
    struct irq_sink irq_sink;
    struct evloop *loop;       /* the process's, shared with the API */
    struct console *console;   /* ember's stdin/stdout */
    struct console_file_out serial_out; /* COM1's output file (PUT /serial) */
    struct platform platform;
    struct pci_platform pci_platform;
    struct board board;
    struct vm_files *files;
    struct image_copy image_copy; /* a fresh boot's kernel and initrd, while vm_create runs */
    char *cmdline;             /* the configuration's, with the devices' words */

    struct vcpu_env vcpu_env;
    struct vcpu *vcpus;
    unsigned nr_vcpus;
    /* Device accesses by a backend that runs the guest itself (the CPU
     * engine has no exits; metrics count these as its exits). */
    _Atomic uint64_t engine_io_in, engine_io_out, engine_mmio_read, engine_mmio_write;
    /* Port writes the backend queued instead of exiting (board_post_writes),
     * and the timer that delivers what a guest leaves queued. */
    _Atomic uint64_t posted_writes;
    int posted_timer_fd;
    uint64_t posted_tick_ns, posted_seen; /* the timer's period; the count it last saw */

    enum vm_state state;
    /* While PAUSED: the guest's clocks as they stopped (kvm-clock and each
     * vCPU's TSC), given back at resume. */
    uint64_t paused_clock_ns;
    uint64_t *paused_tsc;

    pthread_mutex_t stop_lock;
    enum vm_stop_reason stop_reason;
    int stop_signal;
    char stop_detail[256];
    int stop_fd; /* wakes the event loop when the VM must stop */
    void (*on_stop)(void *ctx); /* runs in the loop's thread */
    void *on_stop_ctx;
    /* A debugger's stops (vmm/gdb.c), from the vCPU threads. */
    void (*debug_stop)(void *ctx, unsigned index, const struct accel_exit *exit);
    void *debug_ctx;
};

/* A VM in two steps, neither running it. vm_create: the VM and its
 * memory; a fresh boot's kernel and initrd start being copied into it at
 * once (vmm/image_copy.h), so that whatever the caller does before
 * vm_build (the sandbox, for one) overlaps the copy. vm_build: the machine
 * around the memory (board, vCPUs), from the boot files, or — when
 * files->restoring — as the shell a snapshot's state is loaded into.
 * 'on_stop' is called from 'loop' once the VM must stop. After a failure
 * of either, vm_destroy. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct vm_files *files,
              struct evloop *loop, struct console *console, void (*on_stop)(void *ctx),
              void *on_stop_ctx) EMBER_MUST_CHECK;
int vm_build(struct vm *vm) EMBER_MUST_CHECK;
/* The copy is still running when vm_build returns, and the vCPUs wait
 * before their first entry. This waits for the copy, lets the vCPUs in
 * and unmaps the images; on the thread that called vm_create, after
 * vm_start. */
void vm_finish_loading(struct vm *vm);
/* Attach the console and start the vCPU threads: CREATED -> RUNNING, or
 * with 'paused' -> PAUSED (every vCPU parked before it runs the guest). */
int vm_start(struct vm *vm, bool paused) EMBER_MUST_CHECK;
/* RUNNING -> PAUSED: park every vCPU outside the CPU backend, finish and
 * stop device work, and freeze the guest's clocks; resume undoes it. */
int vm_pause(struct vm *vm) EMBER_MUST_CHECK;
int vm_resume(struct vm *vm) EMBER_MUST_CHECK;
/* A debugger lets the guest run again after vm_pause: like vm_resume, but
 * with 'only' >= 0 just that vCPU runs (a single step), the others stay
 * parked. */
int vm_debug_resume(struct vm *vm, int only) EMBER_MUST_CHECK;
/* -> HALTED: stop and join the vCPU threads; returns why the VM stopped. */
enum vm_stop_reason vm_halt(struct vm *vm);
void vm_destroy(struct vm *vm);
const char *vm_state_name(enum vm_state state);

/* From any thread: the VM must stop for 'reason' (the first reason wins). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
    EMBER_PRINTF(3, 4);
/* Record a signal as the stop reason (VM_STOP_SIGNAL). */
void vm_stop_by_signal(struct vm *vm, int signo);

/* Log each vCPU's and each device's state: what a stalled guest waits for
 * (SIGUSR2). */
void vm_dump_state(struct vm *vm);

#endif

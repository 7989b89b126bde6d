/* The VMM process: one event loop on the main thread serves the console,
 * signals, the control API and the device backends, for at most one VM.
 * The command line, the config file and the control API all end here, with
 * the same internal configuration (struct vm_config). */
#ifndef EMBER_VMM_VMM_H
#define EMBER_VMM_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "util/evloop.h"
#include "vmm/console.h"
#include "vmm/files.h"
#include "vmm/gdb.h"
#include "vmm/metrics.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

/* As the control API reports it; derived from the VM's state. */
enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_PAUSED };

/* What kind of problem stopped a start: it decides the exit status of a
 * command-line run and is reported to API clients in the message. */
enum vmm_fault { VMM_FAULT_NONE, VMM_FAULT_SETUP, VMM_FAULT_HOST, VMM_FAULT_RUNTIME };

#define VMM_ID_MAX 64
#define VMM_METRICS_PERIOD_S 60

/* Counters kept by the control API, reported with the metrics. */
struct vmm_api_stats {
    uint64_t requests, bad_requests, connections, connections_refused;
};

struct vmm {
    struct evloop loop;
    struct console console;
    int signal_fd;
    char id[VMM_ID_MAX + 1];
    bool skip_host_check;
    bool hw_kvm_found;      /* the host check found hardware KVM for an "auto" VM */
    enum accel_kind accel;  /* the command line's choice, for VMs that leave it to "auto" */
    uint64_t start_ns;

    struct vm_config cfg;          /* the running VM's; strings owned by the caller */
    struct vm_files files;
    struct vm *vm;                 /* NULL until started */
    struct vm_gdb *gdb;            /* the GDB stub (--gdb), NULL if none */
    int exit_code;                 /* -1 until vmm_exit ends the loop */

    struct snapshot snapshot;      /* restored from (if open): its strings back cfg */
    /* New disk paths and TAP names given at restore, copied: the caller's
     * request does not outlive the call. */
    char *override_copies[CONFIG_MAX_DISKS + CONFIG_MAX_NICS + 3]; /* + vsock, serial_out_path, gdb */
    unsigned nr_override_copies;

    int metrics_fd;                /* -1 until a metrics path is set */
    int metrics_timer_fd;
    struct metrics metrics;        /* counters kept outside devices; what was reported */
    struct vmm_api_stats api_stats;
};

int vmm_init(struct vmm *vmm, const char *id, bool skip_host_check, enum accel_kind accel)
    EMBER_MUST_CHECK;
void vmm_destroy(struct vmm *vmm);

/* The VM's balloon device, or NULL (none, or no VM). */
struct virtio_balloon;
struct virtio_balloon *vmm_balloon(struct vmm *vmm);

/* Open the files, check the host, build and start the VM. On failure
 * nothing is left behind, *fault says what kind of problem it was, and the
 * VMM can be configured and started again. 'cfg' is copied; the strings it
 * points to must outlive the VM. */
int vmm_start(struct vmm *vmm, const struct vm_config *cfg, enum vmm_fault *fault)
    EMBER_MUST_CHECK;
int vmm_pause(struct vmm *vmm) EMBER_MUST_CHECK;
int vmm_resume(struct vmm *vmm) EMBER_MUST_CHECK;
int vmm_send_ctrl_alt_del(struct vmm *vmm) EMBER_MUST_CHECK;
/* Swap a running VM's disk for another image (same read-only mode); the
 * guest is told the new capacity. */
int vmm_replace_disk(struct vmm *vmm, unsigned index, const char *path) EMBER_MUST_CHECK;

/* Change a running VM's rate limiters (the buckets the updates name). */
int vmm_set_disk_rate_limit(struct vmm *vmm, unsigned index,
                            const struct rate_limit_config *update) EMBER_MUST_CHECK;
int vmm_set_nic_rate_limits(struct vmm *vmm, unsigned index, const struct rate_limit_config *rx,
                            const struct rate_limit_config *tx) EMBER_MUST_CHECK;

/* A paused VM to a state file and a memory file. */
int vmm_snapshot(struct vmm *vmm, enum snapshot_type type, const char *state_path,
                 const char *mem_path) EMBER_MUST_CHECK;

/* Build the snapshot's machine, map its memory file (or, with 'mem_uffd',
 * hand its memory to the page-fault handler listening on mem_path: uffd.h),
 * give back every part's state, and run it (or leave it paused). Like
 * vmm_start, a failure leaves nothing behind. */
int vmm_restore(struct vmm *vmm, const char *state_path, const char *mem_path, bool mem_uffd,
                const struct vm_overrides *overrides, bool resume, enum vmm_fault *fault)
    EMBER_MUST_CHECK;

/* Metrics: JSON lines appended to 'path' (a file or a FIFO) on every flush
 * and every VMM_METRICS_PERIOD_S seconds. */
int vmm_set_metrics_path(struct vmm *vmm, const char *path) EMBER_MUST_CHECK;
int vmm_flush_metrics(struct vmm *vmm) EMBER_MUST_CHECK;

/* Serve events until the VM stops (or, before a VM exists, until a
 * signal); returns the process's exit status. */
int vmm_run(struct vmm *vmm);
/* End vmm_run with 'code' (for a VM that cannot start from a config file). */
void vmm_exit(struct vmm *vmm, int code);

enum vmm_state vmm_state(const struct vmm *vmm);
const char *vmm_state_name(enum vmm_state state);
int vmm_exit_code_for_fault(enum vmm_fault fault);

#endif

/* Snapshots of a paused VM: a state file (the machine configuration, the
 * CPU backend's vCPU and VM state, every device's state; see format.h) and
 * a memory file (guest RAM as is, regions back to back). A restore builds
 * the same machine from the configuration, maps the memory file privately
 * (copy-on-write, loaded lazily) and hands each part its state back. */
#ifndef EMBER_VMM_SNAPSHOT_H
#define EMBER_VMM_SNAPSHOT_H

#include "snapshot/format.h"
#include "snapshot/record.h"
#include "config/config.h"
#include "config/cpu_template.h"

struct vm;

enum snapshot_type { SNAPSHOT_FULL, SNAPSHOT_DIFF };

/* Save a paused VM. A Diff snapshot needs dirty-page tracking
 * (track_dirty_pages) and writes only the pages written since the last
 * snapshot (the rest of the memory file is holes). */
int snapshot_create(struct vm *vm, enum snapshot_type type, const char *state_path,
                    const char *mem_path) EMBER_MUST_CHECK;

struct snapshot {
    struct snap_reader reader;
    struct rec config;
    struct rec devices;
    enum snapshot_type type;
    struct vm_config cfg; /* strings point into 'config' */
    struct cpu_template template; /* cfg's, if it has one */
    uint64_t realtime_ns;  /* CLOCK_REALTIME when it was taken (0: not recorded) */
    /* Set before snapshot_apply: advance the guest's clock (kvm-clock) by the
     * wall-clock time since the snapshot, as Firecracker's clock_realtime. */
    bool clock_realtime;
};

/* Read and check a state file: the container, the configuration and that
 * every part the configuration implies is there. */
int snapshot_open(struct snapshot *s, const char *state_path) EMBER_MUST_CHECK;
/* Give a VM built from s->cfg (with the memory file, not yet started) its
 * saved CPU, interrupt controller, clock and device state. */
int snapshot_apply(struct snapshot *s, struct vm *vm) EMBER_MUST_CHECK;
void snapshot_close(struct snapshot *s);

/* Rebuild a full memory file: write the pages a Diff snapshot saved (its
 * state file says which) from its memory file over the base memory file. */
int snapshot_merge_memory(const char *diff_state_path, const char *diff_mem_path,
                          const char *base_mem_path) EMBER_MUST_CHECK;

#endif

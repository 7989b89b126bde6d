/* The VM as a GDB stub sees it (--gdb): the stub's target interface
 * implemented with the vCPU threads, the CPU backend's debug interface and
 * guest memory, and the vCPUs' debug stops carried to the event loop. */
#ifndef EMBER_VMM_GDB_H
#define EMBER_VMM_GDB_H

#include <stdbool.h>

#include "util/err.h"
#include "vmm/vm.h"

struct vm_gdb;

/* Listen on 'address' for a debugger of 'vm' (created, not started). With
 * 'wait' the VM must be started paused: it stays so until the debugger
 * continues it. */
int vm_gdb_create(struct vm *vm, const char *address, bool wait, struct vm_gdb **out)
    EMBER_MUST_CHECK;
void vm_gdb_destroy(struct vm_gdb *g);
/* The guest ended: tell the debugger (its exit status, 'W'). */
void vm_gdb_vm_ended(struct vm_gdb *g, int status);
/* Around a snapshot: the debugger's INT3s out of guest memory, then back. */
void vm_gdb_lift_breakpoints(struct vm_gdb *g, bool lift);

#endif

/* Building the jail and running the program in it, in the order
 * Firecracker's jailer does (docs in README "Jailer"): the jail's
 * directory and the program's copy (with its libraries), the network
 * namespace, resource limits, cgroups, a new mount namespace whose root is
 * the jail (pivot_root), the device nodes, then daemonizing or a new PID
 * namespace, the privilege drop and the exec. */
#ifndef EMBER_JAILER_JAIL_H
#define EMBER_JAILER_JAIL_H

#include <limits.h>
#include <stdint.h>

#include "jailer/args.h"

struct jail {
    const struct jailer_args *args;
    char exec_path[PATH_MAX]; /* the program, resolved */
    const char *exec_name;    /* its base name, inside exec_path */
    char chroot_dir[PATH_MAX]; /* <base>/<exec name>/<id>/root */
    uint64_t start_us;         /* CLOCK_MONOTONIC when the jailer started */
    uint64_t start_cpu_us;     /* the jailer's CPU time then */
    int uffd_minor;            /* /dev/userfaultfd's minor, -1: none */
};

uint64_t jail_clock_us(int clock);
/* Check the paths and work out the jail's place. */
int jail_prepare(struct jail *j, const struct jailer_args *args) EMBER_MUST_CHECK;
/* Build the jail and exec the program: returns only on failure. */
int jail_run(struct jail *j) EMBER_MUST_CHECK;
/* Firecracker's first step: every descriptor above 2 closed, the
 * environment emptied. */
void jail_sanitize_process(void);

#endif

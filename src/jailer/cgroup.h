/* The jail's cgroups, as Firecracker's jailer places them: each --cgroup
 * FILE=VALUE is written in <hierarchy>/<parent>/<id>/FILE and the process
 * joins that cgroup. With cgroup v1, <hierarchy> is where FILE's controller
 * is mounted (found in /proc/mounts) and an empty setting (cpuset.cpus,
 * cpuset.mems) is first filled in from the nearest ancestor that has it;
 * with v2 it is the unified mount, and the controller is enabled in the
 * subtree_control of every ancestor. With v2 and no --cgroup, the process
 * only moves into <parent> if that exists (for cgroups made beforehand). */
#ifndef EMBER_JAILER_CGROUP_H
#define EMBER_JAILER_CGROUP_H

#include <sys/types.h>

#include "jailer/args.h"

/* Apply the settings of args to process pid; mounts is normally
 * "/proc/mounts" (a test passes its own). parent is --parent-cgroup or the
 * exec file's name. */
int jail_cgroups(const struct jailer_args *args, const char *parent, const char *mounts,
                 pid_t pid) EMBER_MUST_CHECK;

#endif

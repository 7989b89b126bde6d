/* ember-jailer's command line, as Firecracker's jailer takes it:
 *
 *   ember-jailer --id ID --exec-file FILE --uid U --gid G
 *                [--chroot-base-dir DIR] [--netns PATH] [--daemonize]
 *                [--new-pid-ns] [--cgroup-version 1|2] [--cgroup FILE=VALUE]...
 *                [--parent-cgroup PATH] [--resource-limit NAME=VALUE]...
 *                [-- ARGS FOR THE JAILED PROGRAM]
 *
 * Parsing has no side effects (no file is looked at), so it is unit-tested
 * directly; the jail (jail.c) checks the paths. */
#ifndef EMBER_JAILER_ARGS_H
#define EMBER_JAILER_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

#define JAILER_DEFAULT_CHROOT_BASE "/srv/jailer"
#define JAILER_MAX_ID_LEN 64
#define JAILER_MAX_CGROUPS 32
/* Firecracker's jailer bounds the descriptors when no limit is given. */
#define JAILER_DEFAULT_NO_FILE 2048

enum jailer_command { JAILER_RUN, JAILER_HELP, JAILER_VERSION };

struct jailer_cgroup {
    const char *file;  /* "cpuset.cpus": CONTROLLER.SETTING */
    const char *value; /* written as is */
};

struct jailer_args {
    enum jailer_command command;
    const char *id;
    const char *exec_file;
    uid_t uid;
    gid_t gid;
    const char *chroot_base;
    const char *netns;
    bool daemonize;
    bool new_pid_ns;
    unsigned cgroup_version;   /* 1 (Firecracker's default) or 2 */
    const char *parent_cgroup; /* NULL: the exec file's name */
    struct jailer_cgroup cgroups[JAILER_MAX_CGROUPS];
    unsigned nr_cgroups;
    /* --node N: an older jailer's NUMA node (Kata still passes it);
     * accepted and ignored, as cpuset cgroups (--cgroup) now say it. */
    bool has_node;
    bool has_fsize;
    uint64_t fsize;   /* RLIMIT_FSIZE, bytes */
    uint64_t no_file; /* RLIMIT_NOFILE */
    /* What follows "--", passed on after the arguments the jailer adds. */
    char **extra;
    int nr_extra;
};

/* 0, or -EINVAL with err_msg() naming the argument and what is wrong.
 * Strings in args point into argv (which --cgroup splits at its '='). */
int jailer_parse(int argc, char **argv, struct jailer_args *args) EMBER_MUST_CHECK;
/* Firecracker's rule: 1 to 64 characters, ASCII letters, digits and '-'. */
int jailer_check_id(const char *id) EMBER_MUST_CHECK;
void jailer_print_usage(void);

#endif

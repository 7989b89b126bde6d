/* Command-line parsing: argv -> a request (what to do) with the VM
 * configuration filled in. No side effects, so it is unit-tested directly. */
#ifndef EMBER_CLI_OPTIONS_H
#define EMBER_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/err.h"
#include "config/config.h"
#include "config/cpu_template.h"

/* CLI_RUN: 'ember run' boots a VM from options. CLI_SERVE: Firecracker's
 * command line (--api-sock, --config-file, --no-api). */
enum cli_command { CLI_RUN, CLI_SERVE, CLI_RESTORE, CLI_SNAPSHOT, CLI_MERGE, CLI_HELP, CLI_VERSION,
                   CLI_SNAPSHOT_VERSION, CLI_DESCRIBE_SNAPSHOT };

/* Where Firecracker serves its API when --api-sock is not given. */
#define CLI_DEFAULT_API_SOCK "/run/firecracker.socket"
/* Whoever can connect to the API controls the VM: its owner only, unless
 * --api-sock-mode says otherwise. */
#define CLI_DEFAULT_API_SOCK_MODE 0600

/* The logger as Firecracker's command line sets it (--log-path, --level,
 * --module, --show-level, --show-log-origin). */
struct cli_logger {
    bool set;
    const char *path, *level, *module;
    bool show_level, show_origin;
};

struct cli_request {
    enum cli_command command;
    struct vm_config vm;
    int verbosity; /* -v per step above warnings */
    const char *api_sock;
    unsigned api_sock_mode; /* the socket file's permission bits */
    bool no_seccomp;        /* --no-seccomp: no per-thread syscall filters */
    const char *seccomp_filter; /* --seccomp-filter: the filters from a file */
    bool no_landlock;       /* --no-landlock: no file-system restriction */
    bool landlock;          /* --landlock: the restriction with an API too */
    /* Tests only (hidden): the thread kind that makes a forbidden call
     * right after installing its filter. */
    const char *seccomp_selftest;
    const char *id;
    const char *config_file;
    bool no_api;
    size_t max_body;
    /* Invoked under Firecracker's name (argv[0] "firecracker..."): --version
     * answers as Firecracker does, and no arguments serve the default socket. */
    bool as_firecracker;
    /* Firecracker's command line (jailer and launcher arguments). */
    bool boot_timer;
    struct cli_logger logger;
    const char *metrics_path;
    const char *metadata_path; /* --metadata: the MMDS store's first contents */
    bool has_mmds_size_limit;
    uint64_t mmds_size_limit;
    bool has_start_time_us, has_start_time_cpu_us;
    uint64_t start_time_us, start_time_cpu_us, parent_cpu_time_us;
    /* restore and merge-memory */
    const char *snapshot_path, *mem_path, *base_mem_path;
    bool mem_uffd; /* restore: mem_path is a page-fault handler's socket */
    struct vm_overrides overrides;
    bool paused;
    bool diff, keep_paused; /* snapshot */
    /* run --rootfs DIR[,ro] [-- COMMAND ARGS...] */
    const char *rootfs;
    bool rootfs_ro;
    char **rootfs_argv; /* NULL: a login shell */
    int rootfs_argc;
    struct cpu_template cpu_template; /* --cpu-template's, vm.cpu_template points here */
};

/* 0, or -EINVAL with err_msg() naming the option and what is wrong.
 * argv[0]'s base name decides as_firecracker. */
int cli_parse(int argc, char **argv, struct cli_request *req) EMBER_MUST_CHECK;
void cli_print_usage(FILE *out);

#endif

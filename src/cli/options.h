/* Command-line parsing: argv -> a request (what to do) with the VM
 * configuration filled in. No side effects, so it is unit-tested directly. */
#ifndef EMBER_CLI_OPTIONS_H
#define EMBER_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/err.h"
#include "config/config.h"

/* CLI_RUN: 'ember run' boots a VM from options. CLI_SERVE: Firecracker's
 * command line (--api-sock, --config-file, --no-api). */
enum cli_command { CLI_RUN, CLI_SERVE, CLI_RESTORE, CLI_SNAPSHOT, CLI_MERGE, CLI_HELP, CLI_VERSION };

struct cli_request {
    enum cli_command command;
    struct vm_config vm;
    int verbosity; /* -v per step above warnings */
    const char *api_sock;
    const char *id;
    const char *config_file;
    bool no_api;
    size_t max_body;
    /* restore and merge-memory */
    const char *snapshot_path, *mem_path, *base_mem_path;
    struct vm_overrides overrides;
    bool paused;
    bool diff, keep_paused; /* snapshot */
};

/* 0, or -EINVAL with err_msg() naming the option and what is wrong. */
int cli_parse(int argc, char **argv, struct cli_request *req) EMBER_MUST_CHECK;
void cli_print_usage(FILE *out);

#endif

/* What --seccomp-filter's file says, shared by its parser (seccomp_file.c)
 * and the code that installs filters (seccomp.c). */
#ifndef EMBER_UTIL_SECCOMP_RULES_H
#define EMBER_UTIL_SECCOMP_RULES_H

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/seccomp.h"

#define SECCOMP_MAX_ARGS 6

struct seccomp_rule {
    int nr; /* the system call's number on this architecture */
    unsigned nr_args;
    struct scmp_arg_cmp args[SECCOMP_MAX_ARGS]; /* and-bound */
};

/* One thread kind's filter from the file. */
struct seccomp_custom {
    bool set;
    uint32_t default_action, filter_action; /* SCMP_ACT_* */
    struct seccomp_rule *rules;
    size_t nr_rules;
};

extern struct seccomp_custom seccomp_custom[SECCOMP_NR_THREADS];

#endif

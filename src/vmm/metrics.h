/* Metrics: one JSON object per line with running totals since the VMM
 * started: each vCPU's exits by kind, each device's counters under its
 * metrics group, the control API's requests. */
#ifndef EMBER_VMM_METRICS_H
#define EMBER_VMM_METRICS_H

#include <stdint.h>

#include "util/err.h"
#include "vmm/vm.h"

/* What the VMM reports about itself. */
struct metrics_vmm {
    const char *id;
    const char *state;
    uint64_t uptime_ns; /* since the VMM started */
    uint64_t flushes;
    uint64_t api_requests, api_bad_requests, api_connections, api_connections_refused;
};

/* Append one line to 'fd'; 'vm' may be NULL (not started). */
int metrics_write(int fd, const struct metrics_vmm *vmm, struct vm *vm) EMBER_MUST_CHECK;

#endif

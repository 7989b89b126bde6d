/* Metrics: one JSON object per line with running totals since the VMM
 * started: each vCPU's exits by kind, each device's requests, bytes and
 * errors, the control API's requests. */
#ifndef EMBER_VMM_METRICS_H
#define EMBER_VMM_METRICS_H

#include <stdint.h>

#include "util/err.h"

struct vmm;

/* Append one line to 'fd'; 'uptime_ns' is the time since the VMM started. */
int metrics_write(struct vmm *vmm, int fd, uint64_t uptime_ns) EMBER_MUST_CHECK;

#endif

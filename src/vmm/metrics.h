/* Metrics: one JSON object per line, in Firecracker's structure and field
 * names (Kata Containers and other clients decode it as Firecracker's):
 * counters ("SharedIncMetric") report what happened since the previous
 * line, values ("SharedStoreMetric": latencies, startup times) their last
 * value. Groups: api_server, get/put/patch_api_requests, latencies_us,
 * logger, vcpu (all vCPUs together), uart, block and block_<drive id>, net
 * and net_<iface id>, entropy — and "ember", ember's own running totals
 * (per-vCPU exits, the CPU engine's counters, the API's connections). */
#ifndef EMBER_VMM_METRICS_H
#define EMBER_VMM_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/err.h"
#include "vmm/vm.h"

/* Counters and values kept outside devices (the API's requests, latencies),
 * and the totals each counter had at the previous line. */
struct metrics_entry {
    char group[32];
    char name[48];
    uint64_t value;    /* running total (counter) or last value (store) */
    uint64_t reported; /* counters: the total at the previous line */
    bool store;
};

struct metrics {
    struct metrics_entry *entries;
    unsigned nr, cap;
    uint64_t flushes;
    bool failed; /* an allocation failed: counters may be missing */
    /* Firecracker's emit_id and properties: a top-level "id" and a
     * "properties" object on every line. */
    char *id;
    struct json_object *properties;
};

void metrics_init(struct metrics *m);
void metrics_destroy(struct metrics *m);
/* Add 'n' to counter group.name (created at 0 if new). */
void metrics_add(struct metrics *m, const char *group, const char *name, uint64_t n);
/* Set value group.name. */
void metrics_store(struct metrics *m, const char *group, const char *name, uint64_t value);
/* 'id' (NULL: none) and 'properties' (a JSON object of strings, or NULL),
 * both copied. */
void metrics_set_extras(struct metrics *m, const char *id, struct json_object *properties);
/* Declare the counters Firecracker always reports for the control API, at 0. */
void metrics_declare_api(struct metrics *m);

/* What the VMM reports about itself in the "ember" group. */
struct metrics_vmm {
    const char *id;
    const char *state;
    uint64_t uptime_ns; /* since the VMM started */
    uint64_t api_requests, api_bad_requests, api_connections, api_connections_refused;
};

/* Append one line to 'fd'; 'vm' may be NULL (not started). Counters
 * reported count as reported even when the write fails (as Firecracker's). */
int metrics_write(struct metrics *m, int fd, const struct metrics_vmm *vmm, struct vm *vm)
    EMBER_MUST_CHECK;

#endif

/* PUT /snapshot/create and PUT /snapshot/load bodies, checked strictly.
 * Strings point into the request's JSON. */
#ifndef EMBER_API_SNAPSHOT_REQUESTS_H
#define EMBER_API_SNAPSHOT_REQUESTS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "vmm/snapshot.h"
#include "vmm/vmm.h"

struct snapshot_create_req {
    enum snapshot_type type;
    const char *state_path, *mem_path;
};

struct snapshot_load_req {
    const char *state_path, *mem_path; /* mem_path: the handler's socket with mem_uffd */
    bool mem_uffd;
    bool resume;
    struct vm_overrides overrides;
};

int api_parse_snapshot_create(struct json_object *body, struct snapshot_create_req *out)
    EMBER_MUST_CHECK;
int api_parse_snapshot_load(struct json_object *body, struct snapshot_load_req *out)
    EMBER_MUST_CHECK;

#endif

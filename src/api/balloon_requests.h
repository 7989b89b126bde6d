/* Firecracker's balloon resources: PUT/PATCH/GET /balloon and
 * GET/PATCH /balloon/statistics, before the start (stored in the API's
 * resources) and at run time (applied to the device). */
#ifndef EMBER_API_BALLOON_REQUESTS_H
#define EMBER_API_BALLOON_REQUESTS_H

#include <json-c/json.h>

#include "api/resources.h"
#include "vmm/vmm.h"

/* The requests, on the API's resources and (once it runs) the VM. */
int api_put_balloon(struct api_resources *res, struct json_object *body) EMBER_MUST_CHECK;
int api_patch_balloon(struct api_resources *res, struct vmm *vmm, struct json_object *body)
    EMBER_MUST_CHECK;
int api_get_balloon(const struct api_resources *res, struct json_object **out) EMBER_MUST_CHECK;
int api_get_balloon_stats(const struct api_resources *res, struct vmm *vmm,
                          struct json_object **out) EMBER_MUST_CHECK;
int api_patch_balloon_stats(struct api_resources *res, struct vmm *vmm,
                            struct json_object *body) EMBER_MUST_CHECK;
/* Free page hinting (PATCH /balloon/hinting/start and stop, GET .../status). */
int api_start_balloon_hinting(const struct api_resources *res, struct vmm *vmm,
                              struct json_object *body) EMBER_MUST_CHECK;
int api_stop_balloon_hinting(const struct api_resources *res, struct vmm *vmm) EMBER_MUST_CHECK;
int api_get_balloon_hinting(const struct api_resources *res, struct vmm *vmm,
                            struct json_object **out) EMBER_MUST_CHECK;

#endif

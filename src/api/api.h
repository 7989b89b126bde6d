/* The control API: Firecracker's REST resources on ember's VMM. Requests
 * are routed here, checked against the VM's phase (pre-boot or running),
 * applied to the resource model or the VMM, and answered 204, 200 with a
 * JSON body, or 400 with {"fault_message": ...}. */
#ifndef EMBER_API_API_H
#define EMBER_API_API_H

#include <stddef.h>

#include "api/http_server.h"
#include "api/resources.h"
#include "api/version.h"
#include "vmm/vmm.h"

struct api {
    struct vmm *vmm;
    struct api_resources res;
    struct http_server *server;
};

void api_init(struct api *api, struct vmm *vmm);
/* Close the socket and its connections (before the VMM goes). */
void api_stop(struct api *api);
/* Free the resources (after the VM that points into them is gone). */
void api_destroy(struct api *api);
/* Serve the API on a Unix socket at 'path'. */
int api_listen(struct api *api, const char *path, unsigned mode, size_t max_body) EMBER_MUST_CHECK;
/* A VM configured on the command line: show its configuration through the
 * API's resources (GET /vm/config, GET /machine-config). */
int api_adopt_config(struct api *api, const struct vm_config *cfg) EMBER_MUST_CHECK;

/* Apply a Firecracker-style config file and start the VM. On failure
 * *fault says what kind of problem it was (VMM_FAULT_SETUP for the file). */
int api_boot_from_file(struct api *api, const char *path, enum vmm_fault *fault)
    EMBER_MUST_CHECK;
/* A config file's text applied to the API's resources and built into *cfg,
 * without starting anything or opening the files its logger, metrics or
 * cpu-config name (the fuzzer's entry). */
int api_config_check_text(struct api *api, const char *text, size_t len, struct vm_config *cfg)
    EMBER_MUST_CHECK;

/* PUT /metrics (also the config file's "metrics"). */
int api_put_metrics(struct api *api, struct json_object *body) EMBER_MUST_CHECK;

/* One request, as the HTTP server delivers it (exposed for unit tests). */
void api_handle(void *ctx, const struct http_request *req, struct http_response *resp);

#endif

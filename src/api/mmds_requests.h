/* The control API's metadata-service requests that need the rest of the
 * resource model (PUT /mmds/config names network interfaces). */
#ifndef EMBER_API_MMDS_REQUESTS_H
#define EMBER_API_MMDS_REQUESTS_H

#include <json-c/json.h>

#include "api/resources.h"

/* PUT /mmds/config (and the config file's "mmds-config"): its interfaces
 * are among those configured so far. */
int api_put_mmds_config(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;

#endif

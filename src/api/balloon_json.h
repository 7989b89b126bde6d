/* The balloon's configuration and statistics as Firecracker's API and
 * config file spell them. */
#ifndef EMBER_API_BALLOON_JSON_H
#define EMBER_API_BALLOON_JSON_H

#include <json-c/json.h>

#include "config/config.h"
#include "virtio/balloon.h"

/* PUT /balloon's body (also the config file's "balloon"). */
int api_parse_balloon(struct json_object *body, struct balloon_config *out) EMBER_MUST_CHECK;
/* The configuration as GET /balloon and GET /vm/config show it. */
struct json_object *api_balloon_json(const struct balloon_config *b);
/* GET /balloon/statistics. */
struct json_object *api_balloon_stats_json(const struct balloon_stats *st);
/* GET /balloon/hinting/status: {"host_cmd", "guest_cmd"}. */
struct json_object *api_balloon_hinting_json(const struct balloon_hinting *h);

#endif

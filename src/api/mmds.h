/* The metadata service as the control API sees it: the store behind
 * PUT/PATCH/GET /mmds, the configuration of PUT /mmds/config (and the
 * config file's "mmds-config", Firecracker's --metadata and
 * --mmds-size-limit, ember's --mmds), and the guest-facing HTTP server it
 * starts with the VM. That server runs on a thread of its own, on a Unix
 * socket in a private directory: each TCP connection the guest opens to
 * the service's address becomes one connection to it (the NIC's libslirp
 * stack makes it), so a guest flooding the service never holds up the
 * control API, and the store is shared under a lock. */
#ifndef EMBER_API_MMDS_H
#define EMBER_API_MMDS_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/http_server.h"
#include "api/mmds_store.h"
#include "config/config.h"
#include "util/evloop.h"

struct api_mmds {
    pthread_mutex_t lock; /* the store: the API's thread and the service's */
    struct mmds_store store;
    bool configured;      /* PUT /mmds/config (or the config file) */
    char *ifaces[CONFIG_MAX_NICS];
    unsigned nr_ifaces;
    uint32_t ipv4;        /* network byte order */
    /* The running service. */
    struct evloop loop;
    bool loop_ready;
    struct http_server *server;
    pthread_t thread;
    bool thread_started;
    int wake_fd;
    char dir[64];
    char sock_path[MMDS_SOCK_PATH_MAX];
};

void api_mmds_init(struct api_mmds *m);
/* Stop the service (removing its socket) and free everything. */
void api_mmds_free(struct api_mmds *m);

/* The store's limit (--mmds-size-limit; Firecracker's default is the API's
 * payload limit). */
void api_mmds_set_limit(struct api_mmds *m, size_t limit);

/* PUT, PATCH, GET /mmds. -EFBIG (413) past the size limit. */
int api_mmds_put(struct api_mmds *m, struct json_object *body) EMBER_MUST_CHECK;
int api_mmds_patch(struct api_mmds *m, struct json_object *body) EMBER_MUST_CHECK;
struct json_object *api_mmds_get(struct api_mmds *m);
/* --metadata FILE / --mmds data=FILE: the store's contents from a file. */
int api_mmds_put_file(struct api_mmds *m, const char *path) EMBER_MUST_CHECK;

/* PUT /mmds/config: {version, network_interfaces, ipv4_address,
 * imds_compat}; the interfaces must be among 'nic_ids'. */
int api_mmds_set_config(struct api_mmds *m, struct json_object *body,
                        const char *const *nic_ids, unsigned nr_nics) EMBER_MUST_CHECK;
/* GET /vm/config's "mmds-config" (NULL when not configured). */
struct json_object *api_mmds_config_json(const struct api_mmds *m);

/* At start from the API: mark the configured NICs of 'cfg' (they carry
 * their ids) and start the service if any serves it. */
int api_mmds_start(struct api_mmds *m, struct vm_config *cfg) EMBER_MUST_CHECK;
/* A restore's vm_overrides.start_mmds (ctx: the api_mmds): the snapshot's
 * address, version and interfaces; the store starts empty. */
int api_mmds_start_restored(void *ctx, struct vm_config *cfg) EMBER_MUST_CHECK;
/* At start from ember's options (--net ...,mmds and --mmds). */
int api_mmds_start_from_options(struct api_mmds *m, struct vm_config *cfg) EMBER_MUST_CHECK;

#endif

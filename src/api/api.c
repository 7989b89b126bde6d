#include "api/api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_fields.h"
#include "api/balloon_requests.h"
#include "api/mmds_requests.h"
#include "api/snapshot_requests.h"
#include "util/log.h"
#include "util/util.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "unknown"
#endif

/* When a request may be made. */
enum phase { ANY_TIME, PRE_BOOT, RUNTIME };

/* A handler answers with *status and, for 200, *out (a new reference); on
 * failure it returns a negative errno with err_msg() for the client. */
typedef int (*route_fn)(struct api *api, const char *id, struct json_object *body,
                        struct json_object **out);

struct route {
    const char *method;
    const char *path;     /* a trailing "/{id}" matches one path segment */
    enum phase phase;
    route_fn fn;
    /* Firecracker's metrics name for it ("drive": put_api_requests.drive_count
     * and drive_fails), or NULL. */
    const char *metric;
    /* A JSON body: always (PUT, PATCH), never (GET), or only if one came
     * (Firecracker's hinting PATCHes). */
    enum { BODY, NO_BODY, BODY_OPTIONAL } body;
};

/* --- handlers ------------------------------------------------------------ */

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Firecracker's latencies_us.NAME: how long a request took (as the API
 * sees it; the vmm_NAME values are the VMM's own part). Passes 'ret' on. */
static int latency(struct api *api, const char *name, uint64_t t0, int ret)
{
    if (!ret)
        metrics_store(&api->vmm->metrics, "latencies_us", name, monotonic_us() - t0);
    return ret;
}

static int get_info(struct api *api, const char *id, struct json_object *body,
                    struct json_object **out)
{
    (void)id, (void)body;
    *out = json_object_new_object();
    json_object_object_add(*out, "id", json_object_new_string(api->vmm->id));
    json_object_object_add(*out, "state",
                           json_object_new_string(vmm_state_name(vmm_state(api->vmm))));
    json_object_object_add(*out, "vmm_version", json_object_new_string(EMBER_VERSION));
    json_object_object_add(*out, "app_name", json_object_new_string("ember"));
    return 0;
}

static int get_version(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)api, (void)id, (void)body;
    *out = json_object_new_object();
    json_object_object_add(*out, "firecracker_version",
                           json_object_new_string(API_FIRECRACKER_VERSION));
    json_object_object_add(*out, "ember_version", json_object_new_string(EMBER_VERSION));
    return 0;
}

static int get_machine_config(struct api *api, const char *id, struct json_object *body,
                              struct json_object **out)
{
    (void)id, (void)body;
    *out = api_machine_config_json(&api->res);
    return 0;
}

static int get_vm_config(struct api *api, const char *id, struct json_object *body,
                         struct json_object **out)
{
    (void)id, (void)body;
    *out = api_vm_config_json(&api->res);
    return 0;
}

static int put_boot_source(struct api *api, const char *id, struct json_object *body,
                           struct json_object **out)
{
    (void)id, (void)out;
    return api_set_boot_source(&api->res, body);
}

static int put_machine_config(struct api *api, const char *id, struct json_object *body,
                              struct json_object **out)
{
    (void)id, (void)out;
    return api_set_machine_config(&api->res, body, false);
}

static int patch_machine_config(struct api *api, const char *id, struct json_object *body,
                                struct json_object **out)
{
    (void)id, (void)out;
    return api_set_machine_config(&api->res, body, true);
}

static int put_drive(struct api *api, const char *id, struct json_object *body,
                     struct json_object **out)
{
    (void)out;
    return api_set_drive(&api->res, id, body);
}

/* The limiter a device now has, in the debug log (what PATCH changed). */
static void log_limit(const char *what, const char *id, const struct rate_limit_config *c)
{
    log_debug("%s '%s': bandwidth %llu B per %llu ms (burst %llu), ops %llu per %llu ms "
              "(burst %llu)", what, id, (unsigned long long)c->bandwidth.size,
              (unsigned long long)c->bandwidth.refill_time_ms,
              (unsigned long long)c->bandwidth.one_time_burst,
              (unsigned long long)c->ops.size, (unsigned long long)c->ops.refill_time_ms,
              (unsigned long long)c->ops.one_time_burst);
}

static int patch_drive(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)out;
    unsigned index;
    const char *path;
    struct rate_limit_config limit;
    int ret = api_check_drive_patch(&api->res, id, body, &index, &path, &limit);
    if (ret)
        return ret;
    struct api_drive *d = &api->res.drives[index];
    if (limit.bandwidth_set || limit.ops_set) {
        if ((ret = vmm_set_disk_rate_limit(api->vmm, d->vm_disk, &limit)))
            return err_prefix(ret, "drive '%s'", d->id);
        rate_limit_config_merge(&d->rate_limit, &limit);
        log_info("drive '%s': rate limiter updated", d->id);
        log_limit("drive", d->id, &d->rate_limit);
    }
    if (!path)
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return err_set(-ENOMEM, "out of memory");
    const char *drive_id = api->res.drives[index].id;
    ret = vmm_replace_disk(api->vmm, api->res.drives[index].vm_disk, copy);
    if (ret) {
        free(copy);
        return err_prefix(ret, "drive '%s'", drive_id);
    }
    free(api->res.drives[index].path);
    api->res.drives[index].path = copy;
    log_info("drive '%s' now uses %s", drive_id, copy);
    return 0;
}

static int put_nic(struct api *api, const char *id, struct json_object *body,
                   struct json_object **out)
{
    (void)out;
    return api_set_nic(&api->res, id, body);
}

static int patch_nic(struct api *api, const char *id, struct json_object *body,
                     struct json_object **out)
{
    (void)out;
    unsigned index;
    struct rate_limit_config rx, tx;
    int ret = api_check_nic_patch(&api->res, id, body, &index, &rx, &tx);
    if (ret)
        return ret;
    struct api_nic *n = &api->res.nics[index];
    if ((ret = vmm_set_nic_rate_limits(api->vmm, index, &rx, &tx)))
        return err_prefix(ret, "network interface '%s'", n->id);
    rate_limit_config_merge(&n->rx_limit, &rx);
    rate_limit_config_merge(&n->tx_limit, &tx);
    log_info("network interface '%s': rate limiters updated", n->id);
    log_limit("rx of", n->id, &n->rx_limit);
    log_limit("tx of", n->id, &n->tx_limit);
    return 0;
}

static int put_serial(struct api *api, const char *id, struct json_object *body,
                      struct json_object **out)
{
    (void)id, (void)out;
    return api_set_serial(&api->res, body);
}

static int put_pmem(struct api *api, const char *id, struct json_object *body,
                    struct json_object **out)
{
    (void)out;
    return api_set_pmem(&api->res, id, body);
}

static int put_fs(struct api *api, const char *id, struct json_object *body,
                  struct json_object **out)
{
    (void)out;
    return api_set_fs(&api->res, id, body);
}

static int put_entropy(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)out;
    return api_set_entropy(&api->res, body);
}

static int put_cpu_config(struct api *api, const char *id, struct json_object *body,
                          struct json_object **out)
{
    (void)id, (void)out;
    return api_set_cpu_config(&api->res, body);
}

static int put_logger(struct api *api, const char *id, struct json_object *body,
                      struct json_object **out)
{
    (void)id, (void)out;
    return api_set_logger(&api->res, body);
}

int api_put_metrics(struct api *api, struct json_object *body)
{
    const char *path;
    int ret = api_check_metrics(body, &path);
    char *copy = ret ? NULL : strdup(path);
    if (!ret && !copy)
        ret = err_set(-ENOMEM, "out of memory");
    if (!ret)
        ret = vmm_set_metrics_path(api->vmm, copy);
    if (ret) {
        free(copy);
        return ret;
    }
    metrics_set_extras(&api->vmm->metrics, jf_bool(body, "emit_id", false) ? api->vmm->id : NULL,
                       jf_get(body, "properties"));
    free(api->res.metrics_path);
    api->res.metrics_path = copy;
    return 0;
}

static int put_metrics(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)out;
    return api_put_metrics(api, body);
}

static int not_supported(struct api *api, const char *id, struct json_object *body,
                         struct json_object **out)
{
    (void)api, (void)id, (void)body, (void)out;
    return err_set(-EINVAL, "this resource is not supported by ember yet");
}

static int put_vsock(struct api *api, const char *id, struct json_object *body,
                     struct json_object **out)
{
    (void)id, (void)out;
    return api_set_vsock(&api->res, body);
}

static int put_balloon(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)out;
    return api_put_balloon(&api->res, body);
}

static int patch_balloon(struct api *api, const char *id, struct json_object *body,
                         struct json_object **out)
{
    (void)id, (void)out;
    return api_patch_balloon(&api->res, api->vmm, body);
}

static int get_balloon(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)body;
    return api_get_balloon(&api->res, out);
}

static int get_balloon_stats(struct api *api, const char *id, struct json_object *body,
                             struct json_object **out)
{
    (void)id, (void)body;
    return api_get_balloon_stats(&api->res, api->vmm, out);
}

static int patch_balloon_stats(struct api *api, const char *id, struct json_object *body,
                               struct json_object **out)
{
    (void)id, (void)out;
    return api_patch_balloon_stats(&api->res, api->vmm, body);
}

static int start_hinting(struct api *api, const char *id, struct json_object *body,
                         struct json_object **out)
{
    (void)id, (void)out;
    return api_start_balloon_hinting(&api->res, api->vmm, body);
}

static int stop_hinting(struct api *api, const char *id, struct json_object *body,
                        struct json_object **out)
{
    (void)id, (void)body, (void)out;
    return api_stop_balloon_hinting(&api->res, api->vmm);
}

static int get_hinting(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)body;
    return api_get_balloon_hinting(&api->res, api->vmm, out);
}

static int put_snapshot_create(struct api *api, const char *id, struct json_object *body,
                               struct json_object **out)
{
    (void)id, (void)out;
    struct snapshot_create_req req;
    uint64_t t0 = monotonic_us();
    int ret = api_parse_snapshot_create(body, &req);
    if (!ret)
        ret = latency(api, req.type == SNAPSHOT_DIFF ? "diff_create_snapshot"
                                                     : "full_create_snapshot", t0,
                      vmm_snapshot(api->vmm, req.type, req.state_path, req.mem_path));
    if (!ret)
        log_info("snapshot (%s) written to %s and %s",
                 req.type == SNAPSHOT_DIFF ? "Diff" : "Full", req.state_path, req.mem_path);
    return ret;
}

static int put_snapshot_load(struct api *api, const char *id, struct json_object *body,
                             struct json_object **out)
{
    (void)id, (void)out;
    if (api->res.configured)
        return err_set(-EINVAL, "a snapshot loads into a fresh ember: boot resources were "
                                "configured already");
    struct snapshot_load_req req;
    int ret = api_parse_snapshot_load(body, &req);
    if (!ret) { /* PUT /serial before the load: not part of the snapshot */
        req.overrides.serial_out_path = api->res.serial_out_path;
        req.overrides.serial_limit = api->res.serial_limit;
    }
    req.overrides.start_mmds = api_mmds_start_restored;
    req.overrides.mmds_ctx = &api->res.mmds;
    if (!ret && api->res.machine_set) { /* the client said what machine it expects */
        req.overrides.expect_vcpus = api->res.vcpus;
        req.overrides.expect_mem = (uint64_t)api->res.mem_mib << 20;
        req.overrides.track_dirty_pages |= api->res.track_dirty_pages;
    }
    enum vmm_fault fault;
    uint64_t t0 = monotonic_us();
    if (!ret && (ret = latency(api, "load_snapshot", t0,
                               vmm_restore(api->vmm, req.state_path, req.mem_path,
                                           req.mem_uffd, &req.overrides, req.resume, &fault))))
        err_prefix(ret, "cannot load the snapshot");
    if (!ret) /* GET /vm/config and PATCH /drives see the restored machine */
        ret = api_adopt_config(api, &api->vmm->cfg);
    return ret;
}

static int start_instance(struct api *api)
{
    if (vmm_state(api->vmm) != VMM_NOT_STARTED)
        return err_set(-EINVAL, "the microVM is already running");
    struct vm_config cfg;
    int ret = api_build_config(&api->res, &cfg);
    enum vmm_fault fault;
    if (!ret)
        log_info("InstanceStart: starting the microVM (%u vCPUs, %llu MiB)", cfg.nr_vcpus,
                 (unsigned long long)(cfg.mem_size >> 20));
    if (!ret && (ret = vmm_start(api->vmm, &cfg, &fault)))
        err_prefix(ret, "cannot start the microVM");
    return ret;
}

static int put_actions(struct api *api, const char *id, struct json_object *body,
                       struct json_object **out)
{
    (void)id, (void)out;
    static const struct jf_field fields[] = {{"action_type", JF_STRING, true, false}};
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "actions");
    if (ret)
        return ret;
    const char *action = jf_string(body, "action_type", "");
    if (!strcmp(action, "InstanceStart"))
        return start_instance(api);
    if (!strcmp(action, "SendCtrlAltDel"))
        return vmm_send_ctrl_alt_del(api->vmm);
    if (!strcmp(action, "FlushMetrics"))
        return vmm_flush_metrics(api->vmm);
    return err_set(-EINVAL, "actions: action_type must be InstanceStart, SendCtrlAltDel or "
                            "FlushMetrics, got '%s'", action);
}

static int patch_vm(struct api *api, const char *id, struct json_object *body,
                    struct json_object **out)
{
    (void)id, (void)out;
    static const struct jf_field fields[] = {{"state", JF_STRING, true, false}};
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "vm");
    if (ret)
        return ret;
    const char *state = jf_string(body, "state", "");
    uint64_t t0 = monotonic_us();
    if (!strcmp(state, "Paused"))
        return latency(api, "pause_vm", t0, vmm_pause(api->vmm));
    if (!strcmp(state, "Resumed"))
        return latency(api, "resume_vm", t0, vmm_resume(api->vmm));
    return err_set(-EINVAL, "vm: state must be \"Paused\" or \"Resumed\", got '%s'", state);
}

static int put_mmds(struct api *api, const char *id, struct json_object *body,
                    struct json_object **out)
{
    (void)id, (void)out;
    return api_mmds_put(&api->res.mmds, body);
}

static int patch_mmds(struct api *api, const char *id, struct json_object *body,
                      struct json_object **out)
{
    (void)id, (void)out;
    return api_mmds_patch(&api->res.mmds, body);
}

static int get_mmds(struct api *api, const char *id, struct json_object *body,
                    struct json_object **out)
{
    (void)id, (void)body;
    *out = api_mmds_get(&api->res.mmds);
    return 0;
}

static int put_mmds_config(struct api *api, const char *id, struct json_object *body,
                           struct json_object **out)
{
    (void)id, (void)out;
    return api_put_mmds_config(&api->res, body);
}

/* --- routing ------------------------------------------------------------- */

static const struct route routes[] = {
    {"GET", "/", ANY_TIME, get_info, "instance_info", NO_BODY},
    {"GET", "/version", ANY_TIME, get_version, "vmm_version", NO_BODY},
    {"GET", "/machine-config", ANY_TIME, get_machine_config, "machine_cfg", NO_BODY},
    {"GET", "/vm/config", ANY_TIME, get_vm_config, NULL, NO_BODY},
    {"PUT", "/boot-source", PRE_BOOT, put_boot_source, "boot_source", BODY},
    {"PUT", "/machine-config", PRE_BOOT, put_machine_config, "machine_cfg", BODY},
    {"PATCH", "/machine-config", PRE_BOOT, patch_machine_config, "machine_cfg", BODY},
    {"PUT", "/drives/{id}", PRE_BOOT, put_drive, "drive", BODY},
    {"PATCH", "/drives/{id}", RUNTIME, patch_drive, "drive", BODY},
    {"PUT", "/network-interfaces/{id}", PRE_BOOT, put_nic, "network", BODY},
    {"PATCH", "/network-interfaces/{id}", RUNTIME, patch_nic, "network", BODY},
    {"PUT", "/entropy", PRE_BOOT, put_entropy, NULL, BODY},
    {"PUT", "/serial", PRE_BOOT, put_serial, "serial", BODY},
    {"PUT", "/pmem/{id}", PRE_BOOT, put_pmem, "pmem", BODY},
    /* An ember extension: no Firecracker metric. */
    {"PUT", "/fs/{id}", PRE_BOOT, put_fs, NULL, BODY},
    {"PUT", "/vsock", PRE_BOOT, put_vsock, "vsock", BODY},
    {"PUT", "/logger", PRE_BOOT, put_logger, "logger", BODY},
    {"PUT", "/metrics", PRE_BOOT, put_metrics, "metrics", BODY},
    {"PUT", "/actions", ANY_TIME, put_actions, "actions", BODY},
    {"PATCH", "/vm", RUNTIME, patch_vm, NULL, BODY},
    {"PUT", "/balloon", PRE_BOOT, put_balloon, "balloon", BODY},
    {"PATCH", "/balloon", ANY_TIME, patch_balloon, "balloon", BODY},
    {"GET", "/balloon", ANY_TIME, get_balloon, "balloon", NO_BODY},
    {"PUT", "/mmds", ANY_TIME, put_mmds, "mmds", BODY},
    {"PATCH", "/mmds", ANY_TIME, patch_mmds, "mmds", BODY},
    {"GET", "/mmds", ANY_TIME, get_mmds, "mmds", NO_BODY},
    {"PUT", "/mmds/config", PRE_BOOT, put_mmds_config, "mmds", BODY},
    {"PUT", "/cpu-config", PRE_BOOT, put_cpu_config, "cpu_cfg", BODY},
    /* Firecracker resources ember does not have yet: a clear refusal. */
    {"PUT", "/hotplug/memory", ANY_TIME, not_supported, "hotplug_memory", BODY},
    {"PATCH", "/hotplug/memory", ANY_TIME, not_supported, "hotplug_memory", BODY},
    {"GET", "/hotplug/memory", ANY_TIME, not_supported, "hotplug_memory", NO_BODY},
    {"PATCH", "/balloon/statistics", ANY_TIME, patch_balloon_stats, "balloon", BODY},
    {"GET", "/balloon/statistics", ANY_TIME, get_balloon_stats, "balloon", NO_BODY},
    {"PATCH", "/balloon/hinting/start", RUNTIME, start_hinting, "balloon", BODY_OPTIONAL},
    {"GET", "/balloon/hinting/status", RUNTIME, get_hinting, "balloon", NO_BODY},
    {"PATCH", "/balloon/hinting/stop", RUNTIME, stop_hinting, "balloon", BODY_OPTIONAL},
    {"PUT", "/snapshot/create", RUNTIME, put_snapshot_create, NULL, BODY},
    {"PUT", "/snapshot/load", PRE_BOOT, put_snapshot_load, NULL, BODY},
};

/* Does 'path' match 'pattern'? A "{id}" segment is copied to id[] (left
 * empty when too long, so that the id check rejects it). */
static bool path_matches(const char *pattern, const char *path, char *id, size_t id_size)
{
    const char *brace = strstr(pattern, "{id}");
    if (!brace)
        return !strcmp(pattern, path);
    size_t prefix = (size_t)(brace - pattern);
    if (strncmp(pattern, path, prefix))
        return false;
    const char *rest = path + prefix;
    size_t len = strlen(rest);
    if (len == 0 || strchr(rest, '/'))
        return false;
    if (len < id_size)
        memcpy(id, rest, len + 1);
    return true;
}

static const struct route *find_route(const char *method, const char *path, char *id,
                                      size_t id_size, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        id[0] = '\0';
        if (!path_matches(routes[i].path, path, id, id_size))
            continue;
        *path_known = true;
        if (!strcmp(routes[i].method, method))
            return &routes[i];
    }
    return NULL;
}

static void respond_fault(struct http_response *resp, int status, const char *msg)
{
    resp->status = status;
    resp->body = http_fault_body(msg);
}

static int check_phase(const struct api *api, const struct route *r, const char *path)
{
    bool started = vmm_state(api->vmm) != VMM_NOT_STARTED;
    if (r->phase == PRE_BOOT && started)
        return err_set(-EINVAL, "%s %s is only allowed before the microVM starts", r->method,
                       path);
    if (r->phase == RUNTIME && !started)
        return err_set(-EINVAL, "%s %s is only allowed once the microVM is running", r->method,
                       path);
    return 0;
}

/* Firecracker's request counters: get_api_requests.NAME_count, and
 * put/patch_api_requests.NAME_count and NAME_fails. */
static void count_request(struct api *api, const struct route *r, bool failed)
{
    if (!r->metric)
        return;
    char group[32], name[48];
    for (size_t i = 0; r->method[i] && i < 8; i++)
        group[i] = (char)tolower((unsigned char)r->method[i]), group[i + 1] = '\0';
    snprintf(group + strlen(group), sizeof(group) - strlen(group), "_api_requests");
    snprintf(name, sizeof(name), "%s_count", r->metric);
    metrics_add(&api->vmm->metrics, group, name, 1);
    if (failed && strcmp(r->method, "GET")) {
        snprintf(name, sizeof(name), "%s_fails", r->metric);
        metrics_add(&api->vmm->metrics, group, name, 1);
    }
}

void api_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct api *api = ctx;
    char id[API_ID_MAX + 2];
    bool path_known;
    const struct route *r = find_route(req->method, req->path, id, sizeof(id), &path_known);
    char msg[600];
    if (!r) {
        if (path_known)
            snprintf(msg, sizeof(msg), "%s is not a method of %s", req->method, req->path);
        else
            snprintf(msg, sizeof(msg), "no such resource: %s %s", req->method, req->path);
        respond_fault(resp, 400, msg);
        return;
    }
    if (strstr(r->path, "{id}") && !api_id_valid(id)) {
        snprintf(msg, sizeof(msg), "invalid id in %s (1-%d letters, digits or '_')", req->path,
                 API_ID_MAX);
        respond_fault(resp, 400, msg);
        return;
    }
    struct json_object *body = NULL, *out = NULL;
    bool wants_body = r->body == BODY || (r->body == BODY_OPTIONAL && req->body_len);
    int ret = check_phase(api, r, req->path);
    if (!ret && wants_body)
        ret = jf_parse(req->body, req->body_len, &body);
    if (!ret)
        ret = r->fn(api, id[0] ? id : NULL, body, &out);
    json_object_put(body);
    count_request(api, r, ret != 0);
    if (ret) {
        log_info("API %s %s: %s", req->method, req->path, err_msg());
        respond_fault(resp, ret == -EFBIG ? 413 : 400, err_msg());
    } else if (out) {
        resp->status = 200;
        resp->body = strdup(json_object_to_json_string_ext(
            out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(out);
    } else {
        resp->status = 204;
    }
    if (api->server) {
        const struct http_stats *st = http_server_stats(api->server);
        api->vmm->api_stats = (struct vmm_api_stats){st->requests, st->bad_requests + (ret != 0),
                                                     st->connections, st->connections_refused};
    }
}

/* --- lifecycle ----------------------------------------------------------- */

void api_init(struct api *api, struct vmm *vmm)
{
    memset(api, 0, sizeof(*api));
    api->vmm = vmm;
    api_resources_init(&api->res);
}

void api_stop(struct api *api)
{
    http_server_destroy(api->server);
    api->server = NULL;
}

void api_destroy(struct api *api)
{
    api_stop(api);
    api_resources_free(&api->res);
}

int api_listen(struct api *api, const char *path, unsigned mode, size_t max_body)
{
    return http_server_create(path, (mode_t)mode, max_body, &api->vmm->loop, api_handle, api, &api->server);
}

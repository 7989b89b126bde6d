/* libFuzzer target: hostile request bodies against the control API's
 * resource model — what a client sends to PUT/PATCH /boot-source,
 * /machine-config, /drives, /network-interfaces, /entropy, /vsock, /pmem,
 * /balloon, /snapshot/create|load, rate limiters and the metrics body, and
 * what a config file's items feed the same setters. The input is a series
 * of requests, each [resource byte][length, 2 bytes LE][JSON text]; after
 * them the configuration is built and reported back as GET would. Every
 * body must be refused or applied whole (the setters' contract), never
 * crash, leak or read past its text. The logger and serial setters open
 * the paths they name, so they are left out: a fuzzer must not create files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/balloon_json.h"
#include "api/resources.h"
#include "api/snapshot_requests.h"
#include "util/json_fields.h"

enum resource {
    R_BOOT, R_MACHINE_PUT, R_MACHINE_PATCH, R_DRIVE, R_DRIVE_PATCH, R_NIC, R_NIC_PATCH,
    R_ENTROPY, R_VSOCK, R_PMEM, R_BALLOON, R_SNAP_CREATE, R_SNAP_LOAD, R_LIMITER, R_BUCKET,
    R_METRICS, R_COUNT
};

static const char *const path_ids[] = {"rootfs", "d1", NULL, "x/y", ""};

static void apply(struct api_resources *r, enum resource what, const char *id,
                  struct json_object *body)
{
    unsigned index;
    const char *path;
    struct rate_limit_config a, b;
    struct bucket_config bucket;
    struct balloon_config balloon;
    struct snapshot_create_req create;
    struct snapshot_load_req load;
    int ret = 0;
    switch (what) {
    case R_BOOT: ret = api_set_boot_source(r, body); break;
    case R_MACHINE_PUT: ret = api_set_machine_config(r, body, false); break;
    case R_MACHINE_PATCH: ret = api_set_machine_config(r, body, true); break;
    case R_DRIVE: ret = api_set_drive(r, id, body); break;
    case R_DRIVE_PATCH: ret = api_check_drive_patch(r, id, body, &index, &path, &a); break;
    case R_NIC: ret = api_set_nic(r, id, body); break;
    case R_NIC_PATCH: ret = api_check_nic_patch(r, id, body, &index, &a, &b); break;
    case R_ENTROPY: ret = api_set_entropy(r, body); break;
    case R_VSOCK: ret = api_set_vsock(r, body); break;
    case R_PMEM: ret = api_set_pmem(r, id, body); break;
    case R_BALLOON: ret = api_parse_balloon(body, &balloon); break;
    case R_SNAP_CREATE: ret = api_parse_snapshot_create(body, &create); break;
    case R_SNAP_LOAD: ret = api_parse_snapshot_load(body, &load); break;
    case R_LIMITER: ret = api_parse_rate_limiter(body, "fuzz", &a); break;
    case R_BUCKET: ret = api_parse_bucket(body, "fuzz", &bucket); break;
    case R_METRICS: ret = api_check_metrics(body, &path); break;
    case R_COUNT: break;
    }
    (void)ret; /* refused or applied: both are fine, a crash is not */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_resources r;
    api_resources_init(&r);
    size_t off = 0;
    while (off + 3 <= size) {
        enum resource what = (enum resource)(data[off] % R_COUNT);
        const char *id = path_ids[(data[off] / R_COUNT) % (sizeof(path_ids) /
                                                            sizeof(path_ids[0]))];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off)
            len = size - off;
        struct json_object *body = NULL;
        /* Not NUL-terminated on purpose: the parser gets a length. */
        char *text = malloc(len ? len : 1);
        if (!text)
            abort();
        memcpy(text, data + off, len);
        off += len;
        if (jf_parse(text, len, &body) == 0) {
            apply(&r, what, id, body);
            json_object_put(body);
        }
        free(text);
    }
    struct vm_config cfg;
    if (api_build_config(&r, &cfg) == 0)
        (void)cfg;
    json_object_put(api_machine_config_json(&r));
    json_object_put(api_vm_config_json(&r));
    json_object_put(api_pmem_json(&r));
    api_resources_free(&r);
    return 0;
}

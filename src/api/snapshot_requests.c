#include "api/snapshot_requests.h"

#include <stdio.h>
#include <string.h>

#include "api/version.h"
#include "snapshot/format.h"

#include "util/json_fields.h"
#include "util/util.h"

int api_parse_snapshot_create(struct json_object *body, struct snapshot_create_req *out)
{
    static const struct jf_field fields[] = {
        {"snapshot_type", JF_STRING, false, true},
        {"snapshot_path", JF_STRING, true, false},
        {"mem_file_path", JF_STRING, true, false},
        {"version", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "snapshot/create");
    if (ret)
        return ret;
    const char *type = jf_string(body, "snapshot_type", "Full");
    if (strcmp(type, "Full") && strcmp(type, "Diff"))
        return err_set(-EINVAL, "snapshot/create: snapshot_type must be \"Full\" or \"Diff\", "
                                "got '%s'", type);
    /* Older Firecrackers' 'version': the release that must be able to load
     * the snapshot. ember writes one format, the one it loads itself. */
    const char *version = jf_string(body, "version", NULL);
    char own[16];
    snprintf(own, sizeof(own), "%u.0.0", SNAP_FORMAT_VERSION);
    if (version && *version == 'v')
        version++;
    if (version && strcmp(version, API_FIRECRACKER_VERSION) && strcmp(version, own))
        return err_set(-EINVAL, "snapshot/create: version '%s': ember writes its snapshot "
                                "format v%s, for itself (Firecracker API %s), and cannot "
                                "target another release", jf_string(body, "version", ""), own,
                       API_FIRECRACKER_VERSION);
    out->type = strcmp(type, "Diff") ? SNAPSHOT_FULL : SNAPSHOT_DIFF;
    out->state_path = jf_string(body, "snapshot_path", "");
    out->mem_path = jf_string(body, "mem_file_path", "");
    if (!*out->state_path || !*out->mem_path)
        return err_set(-EINVAL, "snapshot/create: empty path");
    if (!strcmp(out->state_path, out->mem_path))
        return err_set(-EINVAL, "snapshot/create: the state and memory files must differ");
    return 0;
}

static int parse_mem_backend(struct json_object *body, const char **path, bool *uffd)
{
    struct json_object *backend = jf_get(body, "mem_backend");
    const char *legacy = jf_string(body, "mem_file_path", NULL);
    if (backend && legacy)
        return err_set(-EINVAL, "snapshot/load: give mem_backend or mem_file_path, not both");
    if (legacy) {
        *path = legacy;
        return 0;
    }
    if (!backend)
        return err_set(-EINVAL, "snapshot/load: missing required field 'mem_backend'");
    static const struct jf_field fields[] = {
        {"backend_type", JF_STRING, true, false},
        {"backend_path", JF_STRING, true, false},
    };
    int ret = jf_check(backend, fields, ARRAY_SIZE(fields), "snapshot/load: mem_backend");
    if (ret)
        return ret;
    const char *type = jf_string(backend, "backend_type", "");
    if (strcmp(type, "File") && strcmp(type, "Uffd"))
        return err_set(-EINVAL, "snapshot/load: backend_type '%s' is not supported (\"File\" "
                                "or \"Uffd\")", type);
    *uffd = !strcmp(type, "Uffd");
    *path = jf_string(backend, "backend_path", "");
    if (!**path)
        return err_set(-EINVAL, "snapshot/load: mem_backend: empty backend_path");
    return 0;
}

/* [{"<id_key>": ..., "<value_key>": ...}, ...] */
static int parse_overrides(struct json_object *list, const char *what, const char *id_key,
                           const char *value_key, unsigned max,
                           struct vm_override *out, unsigned *n)
{
    size_t count = list ? json_object_array_length(list) : 0;
    if (count > max)
        return err_set(-EINVAL, "snapshot/load: more than %u %s", max, what);
    for (size_t i = 0; i < count; i++) {
        struct json_object *item = json_object_array_get_idx(list, i);
        const struct jf_field fields[] = {{id_key, JF_STRING, true, false},
                                          {value_key, JF_STRING, true, false}};
        int ret = jf_check(item, fields, 2, what);
        if (ret)
            return err_prefix(ret, "snapshot/load");
        out[i].id = jf_string(item, id_key, "");
        out[i].value = jf_string(item, value_key, "");
    }
    *n = (unsigned)count;
    return 0;
}

int api_parse_snapshot_load(struct json_object *body, struct snapshot_load_req *out)
{
    static const struct jf_field fields[] = {
        {"snapshot_path", JF_STRING, true, false},
        {"mem_backend", JF_OBJECT, false, true},
        {"mem_file_path", JF_STRING, false, true},
        {"enable_diff_snapshots", JF_BOOL, false, true},
        {"track_dirty_pages", JF_BOOL, false, true},
        {"resume_vm", JF_BOOL, false, true},
        {"network_overrides", JF_ARRAY, false, true},
        {"drive_overrides", JF_ARRAY, false, true}, /* ember's */
        {"vsock_override", JF_OBJECT, false, true},
        {"clock_realtime", JF_BOOL, false, true},
        {"huge_pages", JF_STRING, false, true},
    };
    memset(out, 0, sizeof(*out));
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "snapshot/load");
    if (!ret)
        ret = parse_mem_backend(body, &out->mem_path, &out->mem_uffd);
    if (!ret)
        ret = parse_overrides(jf_get(body, "network_overrides"), "network overrides",
                              "iface_id", "host_dev_name", CONFIG_MAX_NICS,
                              out->overrides.nics, &out->overrides.nr_nics);
    if (!ret)
        ret = parse_overrides(jf_get(body, "drive_overrides"), "drive overrides", "drive_id",
                              "path_on_host", CONFIG_MAX_DISKS, out->overrides.disks,
                              &out->overrides.nr_disks);
    struct json_object *vsock = jf_get(body, "vsock_override");
    if (!ret && vsock) {
        static const struct jf_field vfields[] = {{"uds_path", JF_STRING, true, false}};
        ret = jf_check(vsock, vfields, ARRAY_SIZE(vfields), "snapshot/load: vsock_override");
        const char *path = jf_string(vsock, "uds_path", "");
        if (!ret && (!*path || strlen(path) >= VSOCK_UDS_PATH_LIMIT))
            ret = err_set(-EINVAL, "snapshot/load: vsock_override: uds_path '%s' is empty or "
                                   "longer than %d bytes", path, VSOCK_UDS_PATH_LIMIT - 1);
        out->overrides.vsock_uds = path;
    }
    /* Guest memory always asks for transparent huge pages (and what the
     * snapshot had is what ember would reuse); hugetlbfs is not used. */
    const char *huge = jf_string(body, "huge_pages", "Snapshot");
    if (!ret && strcmp(huge, "Snapshot") && strcmp(huge, "None") && strcmp(huge, "Transparent"))
        ret = err_set(-EINVAL, "snapshot/load: huge_pages '%s' is not supported (Snapshot, "
                               "None or Transparent; hugetlbfs is not used)", huge);
    if (ret)
        return ret;
    out->state_path = jf_string(body, "snapshot_path", "");
    out->resume = jf_bool(body, "resume_vm", false);
    /* enable_diff_snapshots is the older name of track_dirty_pages. */
    out->overrides.track_dirty_pages = jf_bool(body, "enable_diff_snapshots", false) ||
                                       jf_bool(body, "track_dirty_pages", false);
    out->overrides.clock_realtime = jf_bool(body, "clock_realtime", false);
    return 0;
}

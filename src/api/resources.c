#include "api/resources.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/balloon_json.h"
#include "util/fileio.h"
#include "util/json_fields.h"
#include "util/log.h"
#include "util/util.h"

void api_resources_init(struct api_resources *r)
{
    memset(r, 0, sizeof(*r));
    r->vcpus = 1;
    r->mem_mib = API_DEFAULT_MEM_MIB;
    api_mmds_init(&r->mmds);
}

static void drive_free(struct api_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

static void nic_free(struct api_nic *n)
{
    free(n->id);
    free(n->host_dev);
    memset(n, 0, sizeof(*n));
}

static void vsock_free(struct api_vsock *v)
{
    free(v->id);
    free(v->uds_path);
    memset(v, 0, sizeof(*v));
}

void api_resources_free(struct api_resources *r)
{
    free(r->kernel);
    free(r->initrd);
    free(r->boot_args);
    for (unsigned i = 0; i < r->nr_drives; i++)
        drive_free(&r->drives[i]);
    for (unsigned i = 0; i < r->nr_nics; i++)
        nic_free(&r->nics[i]);
    vsock_free(&r->vsock);
    api_pmem_free(r);
    api_fs_free(r);
    json_object_put(r->logger);
    free(r->metrics_path);
    api_mmds_free(&r->mmds);
    free(r->serial_out_path);
    free(r->cmdline);
    free(r->cpu_template);
    free(r->gdb_socket_path);
    free(r->gdb_address);
    memset(r, 0, sizeof(*r));
}

bool api_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > API_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(id[i] == '_' || (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
              (id[i] >= 'A' && id[i] <= 'Z')))
            return false;
    return true;
}

/* strdup that treats NULL as NULL; *failed is set when memory runs out. */
static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

/* A host file the VM will open later: fail now, with the path, if it is
 * missing, unreadable or not a regular file. */
int api_check_host_file(const char *what, const char *path, bool need_write)
{
    if (!*path)
        return err_set(-EINVAL, "%s: the path is empty", what);
    struct stat st;
    if (stat(path, &st) < 0)
        return err_errno(-errno, "%s %s", what, path);
    if (S_ISDIR(st.st_mode))
        return err_set(-EINVAL, "%s %s: is a directory", what, path);
    if (access(path, need_write ? R_OK | W_OK : R_OK) < 0)
        return err_errno(-errno, "%s %s", what, path);
    return 0;
}

int api_parse_bucket(struct json_object *body, const char *what, struct bucket_config *out)
{
    static const struct jf_field fields[] = {
        {"size", JF_UINT, true, false},
        {"refill_time", JF_UINT, true, false},
        {"one_time_burst", JF_UINT, false, true},
    };
    memset(out, 0, sizeof(*out));
    if (!body)
        return 0;
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), what);
    if (ret)
        return ret;
    out->size = jf_uint(body, "size", 0);
    out->refill_time_ms = jf_uint(body, "refill_time", 0);
    out->one_time_burst = jf_uint(body, "one_time_burst", 0);
    /* Tokens per ms are computed in 64 bits: keep the products in range. */
    if (out->refill_time_ms > (1ull << 32) || out->size > (1ull << 50) ||
        out->one_time_burst > (1ull << 50))
        return err_set(-EINVAL, "%s: size, one_time_burst or refill_time is too large", what);
    return 0;
}

int api_parse_rate_limiter(struct json_object *body, const char *what,
                           struct rate_limit_config *out)
{
    static const struct jf_field fields[] = {
        {"bandwidth", JF_OBJECT, false, true},
        {"ops", JF_OBJECT, false, true},
    };
    memset(out, 0, sizeof(*out));
    if (!body)
        return 0;
    char name[96];
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), what);
    if (!ret) {
        snprintf(name, sizeof(name), "%s: bandwidth", what);
        ret = api_parse_bucket(jf_get(body, "bandwidth"), name, &out->bandwidth);
        out->bandwidth_set = jf_get(body, "bandwidth") != NULL;
    }
    if (!ret) {
        snprintf(name, sizeof(name), "%s: ops", what);
        ret = api_parse_bucket(jf_get(body, "ops"), name, &out->ops);
        out->ops_set = jf_get(body, "ops") != NULL;
    }
    return ret;
}

/* Check a rate limiter field (a clear 400 before anything changes). */
static int check_rate_limiter(struct json_object *body, const char *what, const char *field)
{
    struct rate_limit_config rl;
    char name[96];
    snprintf(name, sizeof(name), "%s: %s", what, field);
    return api_parse_rate_limiter(jf_get(body, field), name, &rl);
}

/* Fields Firecracker defines for features ember does not have yet: null is
 * fine, anything else is refused by name. */
static int refuse_unsupported(struct json_object *body, const char *what, const char *field,
                              const char *feature)
{
    if (jf_get(body, field))
        return err_set(-EINVAL, "%s: %s is not supported by ember yet", what, feature);
    return 0;
}

int api_set_boot_source(struct api_resources *r, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"kernel_image_path", JF_STRING, true, false},
        {"boot_args", JF_STRING, false, true},
        {"initrd_path", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "boot-source");
    const char *kernel = jf_string(body, "kernel_image_path", NULL);
    const char *initrd = jf_string(body, "initrd_path", NULL);
    if (!ret)
        ret = api_check_host_file("kernel image", kernel, false);
    if (!ret && initrd)
        ret = api_check_host_file("initrd", initrd, false);
    if (ret)
        return ret;
    bool oom = false;
    char *k = dup_or_null(kernel, &oom), *i = dup_or_null(initrd, &oom);
    char *a = dup_or_null(jf_string(body, "boot_args", NULL), &oom);
    if (oom) {
        free(k), free(i), free(a);
        return err_set(-ENOMEM, "out of memory");
    }
    free(r->kernel), free(r->initrd), free(r->boot_args);
    r->kernel = k, r->initrd = i, r->boot_args = a;
    r->have_boot_source = r->configured = true;
    return 0;
}

/* gdb_socket_path: a path a Unix socket can be bound at (sun_path holds
 * 107 bytes and the NUL). Absent: *path stays NULL. */
static int gdb_socket_parse(struct json_object *body, char **path, char **address)
{
    const char *p = jf_string(body, "gdb_socket_path", NULL);
    if (!p)
        return 0;
    if (!*p || strlen(p) > 107)
        return err_set(-EINVAL, "machine-config: gdb_socket_path must be a path of 1 to 107 "
                                "bytes, got %zu", strlen(p));
    *path = strdup(p);
    if (*path && asprintf(address, "unix:%s", p) < 0)
        *address = NULL;
    if (!*path || !*address) {
        free(*path);
        *path = NULL;
        return err_set(-ENOMEM, "out of memory");
    }
    return 0;
}

int api_set_machine_config(struct api_resources *r, struct json_object *body, bool patch)
{
    static const struct jf_field fields[] = {
        {"vcpu_count", JF_UINT, true, false},
        {"mem_size_mib", JF_UINT, true, false},
        {"smt", JF_BOOL, false, true},
        {"track_dirty_pages", JF_BOOL, false, true},
        {"cpu_template", JF_STRING, false, true},
        {"huge_pages", JF_STRING, false, true},
        {"accel", JF_STRING, false, true}, /* ember's: kvm, soft or auto */
        {"ksm", JF_BOOL, false, true},     /* ember's: guest RAM offered to KSM */
        {"gdb_socket_path", JF_STRING, false, true},
    };
    struct jf_field checked[ARRAY_SIZE(fields)];
    memcpy(checked, fields, sizeof(fields));
    for (size_t i = 0; patch && i < ARRAY_SIZE(checked); i++)
        checked[i].required = false; /* PATCH: any subset */
    int ret = jf_check(body, checked, ARRAY_SIZE(checked), "machine-config");
    if (ret)
        return ret;
    uint64_t vcpus = jf_uint(body, "vcpu_count", r->vcpus);
    uint64_t mib = jf_uint(body, "mem_size_mib", r->mem_mib);
    const char *tmpl = jf_string(body, "cpu_template", NULL);
    const char *huge = jf_string(body, "huge_pages", "None");
    enum accel_kind accel = r->accel;
    const char *accel_name = jf_string(body, "accel", NULL);
    if (accel_name && !accel_kind_parse(accel_name, &accel))
        return err_set(-EINVAL, "machine-config: accel must be \"kvm\", \"soft\" or \"auto\", "
                                "got '%s'", accel_name);
    if (vcpus < 1 || vcpus > CONFIG_MAX_CPUS)
        return err_set(-EINVAL, "machine-config: vcpu_count must be from 1 to %d, got %llu",
                       CONFIG_MAX_CPUS, (unsigned long long)vcpus);
    if (mib < (CONFIG_MIN_MEM >> 20) || mib > (CONFIG_MAX_MEM >> 20))
        return err_set(-EINVAL, "machine-config: mem_size_mib must be from %llu to %llu, got %llu",
                       CONFIG_MIN_MEM >> 20, CONFIG_MAX_MEM >> 20, (unsigned long long)mib);
    /* PUT replaces the whole configuration (absent fields take their
     * defaults), PATCH only what it names — as Firecracker does. */
    bool smt = jf_bool(body, "smt", patch ? r->smt : false);
    if (smt && vcpus > 1 && vcpus % 2)
        return err_set(-EINVAL, "machine-config: with smt the vcpu_count must be 1 or even "
                                "(two threads per core), got %llu", (unsigned long long)vcpus);
    char *gdb_path = NULL, *gdb_address = NULL;
    if ((ret = gdb_socket_parse(body, &gdb_path, &gdb_address)))
        return ret;
    struct cpu_template *template = NULL;
    ret = tmpl ? api_static_cpu_template(tmpl, &template) : 0;
    if (ret) {
        free(gdb_path), free(gdb_address);
        return ret;
    }
    enum guest_pages pages;
    if (!api_huge_pages_parse(huge, &pages)) {
        free(template), free(gdb_path), free(gdb_address);
        return err_set(-EINVAL, "machine-config: huge_pages must be \"None\" (transparent huge "
                                "pages asked for), \"2M\" (hugetlbfs), or ember's \"Small\" "
                                "(4 KiB pages only), got '%s'", huge);
    }
    if (jf_get(body, "huge_pages"))
        r->pages = pages;
    else if (!patch)
        r->pages = GUEST_PAGES_THP; /* ember's default when not named */
    if (tmpl) { /* absent: the template stays, as in Firecracker */
        free(r->cpu_template);
        r->cpu_template = template;
    }
    r->smt = smt;
    r->vcpus = (unsigned)vcpus;
    r->mem_mib = (unsigned)mib;
    r->track_dirty_pages = jf_bool(body, "track_dirty_pages", r->track_dirty_pages);
    r->ksm = jf_bool(body, "ksm", patch ? r->ksm : false);
    if (gdb_path || !patch) { /* PATCH without it keeps the stub */
        free(r->gdb_socket_path), free(r->gdb_address);
        r->gdb_socket_path = gdb_path, r->gdb_address = gdb_address;
    }
    r->accel = accel;
    r->machine_set = true;
    return 0;
}

/* The body's id must match the path's, as Firecracker requires. */
int api_check_body_id(const char *what, const char *field, const char *path_id,
                      const char *body_id)
{
    if (!api_id_valid(body_id))
        return err_set(-EINVAL, "%s: %s '%s' is invalid (1-%d letters, digits or '_')", what,
                       field, body_id, API_ID_MAX);
    if (path_id && strcmp(path_id, body_id))
        return err_set(-EINVAL, "%s: %s '%s' in the body does not match '%s' in the path", what,
                       field, body_id, path_id);
    return 0;
}

/* It goes on the kernel command line: nothing that could end the word. */
static bool partuuid_valid(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF-");
    if (n == 0 || n > 36)
        return false;
    if (!s[n])
        return true;
    const char *off = s + n;
    return !strncmp(off, "/PARTNROFF=", 11) && off[11] &&
           strspn(off + 11, "0123456789") == strlen(off + 11) && strlen(off + 11) <= 4;
}

static int check_drive_fields(struct api_resources *r, const char *path_id,
                              struct json_object *body, const char **id)
{
    static const struct jf_field fields[] = {
        {"drive_id", JF_STRING, true, false},
        {"path_on_host", JF_STRING, false, true},
        {"is_root_device", JF_BOOL, true, false},
        {"is_read_only", JF_BOOL, false, true},
        {"partuuid", JF_STRING, false, true},
        {"cache_type", JF_STRING, false, true},
        {"io_engine", JF_STRING, false, true},
        {"rate_limiter", JF_OBJECT, false, true},
        {"socket", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "drive");
    if (!ret)
        ret = api_check_body_id("drive", "drive_id", path_id, *id = jf_string(body, "drive_id", ""));
    if (!ret)
        ret = check_rate_limiter(body, "drive", "rate_limiter");
    if (!ret)
        ret = refuse_unsupported(body, "drive", "socket", "vhost-user-blk");
    if (ret)
        return ret;
    const char *path = jf_string(body, "path_on_host", NULL);
    if (!path)
        return err_set(-EINVAL, "drive: missing required field 'path_on_host'");
    const char *cache = jf_string(body, "cache_type", "Unsafe");
    if (strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
        return err_set(-EINVAL, "drive: cache_type must be \"Unsafe\" or \"Writeback\", got '%s'",
                       cache);
    const char *partuuid = jf_string(body, "partuuid", NULL);
    if (partuuid && !partuuid_valid(partuuid))
        return err_set(-EINVAL, "drive: partuuid '%s' is not a partition UUID (hex digits and "
                                "'-', at most 36, optionally /PARTNROFF=N)", partuuid);
    const char *engine = jf_string(body, "io_engine", "Sync");
    if (strcmp(engine, "Sync") && strcmp(engine, "Async"))
        return err_set(-EINVAL, "drive: io_engine must be \"Sync\" or \"Async\", got '%s'",
                       engine);
    bool root = jf_bool(body, "is_root_device", false);
    for (unsigned i = 0; root && i < r->nr_drives; i++)
        if (r->drives[i].root && strcmp(r->drives[i].id, *id))
            return err_set(-EINVAL, "drive: '%s' is already the root device; there can be one",
                           r->drives[i].id);
    for (unsigned i = 0; root && i < r->nr_pmem; i++)
        if (r->pmem[i].root)
            return err_set(-EINVAL, "drive: pmem '%s' is already the root device; there can "
                                    "be one", r->pmem[i].id);
    return api_check_host_file("drive", path, !jf_bool(body, "is_read_only", false));
}

static struct api_drive *find_drive(struct api_resources *r, const char *id)
{
    for (unsigned i = 0; i < r->nr_drives; i++)
        if (!strcmp(r->drives[i].id, id))
            return &r->drives[i];
    return NULL;
}

int api_set_drive(struct api_resources *r, const char *path_id, struct json_object *body)
{
    const char *id = NULL;
    int ret = check_drive_fields(r, path_id, body, &id);
    if (ret)
        return ret;
    struct api_drive *d = find_drive(r, id);
    if (!d && r->nr_drives == CONFIG_MAX_DISKS)
        return err_set(-EINVAL, "drive: at most %d drives", CONFIG_MAX_DISKS);
    bool oom = false;
    struct api_drive nd = {
        .id = dup_or_null(id, &oom),
        .path = dup_or_null(jf_string(body, "path_on_host", NULL), &oom),
        .partuuid = dup_or_null(jf_string(body, "partuuid", NULL), &oom),
        .root = jf_bool(body, "is_root_device", false),
        .read_only = jf_bool(body, "is_read_only", false),
    };
    snprintf(nd.cache_type, sizeof(nd.cache_type), "%s",
             jf_string(body, "cache_type", "Unsafe"));
    snprintf(nd.io_engine, sizeof(nd.io_engine), "%s", jf_string(body, "io_engine", "Sync"));
    if (api_parse_rate_limiter(jf_get(body, "rate_limiter"), "drive: rate_limiter",
                               &nd.rate_limit))
        oom = true; /* checked already: cannot fail */
    if (oom) {
        drive_free(&nd);
        return err_set(-ENOMEM, "out of memory");
    }
    if (d)
        drive_free(d);
    else
        d = &r->drives[r->nr_drives++];
    *d = nd;
    r->configured = true;
    return 0;
}

int api_check_drive_patch(struct api_resources *r, const char *path_id,
                          struct json_object *body, unsigned *index, const char **path,
                          struct rate_limit_config *limit)
{
    static const struct jf_field fields[] = {
        {"drive_id", JF_STRING, true, false},
        {"path_on_host", JF_STRING, false, true},
        {"rate_limiter", JF_OBJECT, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "drive");
    const char *id = jf_string(body, "drive_id", "");
    if (!ret)
        ret = api_check_body_id("drive", "drive_id", path_id, id);
    if (!ret)
        ret = api_parse_rate_limiter(jf_get(body, "rate_limiter"), "drive: rate_limiter", limit);
    if (ret)
        return ret;
    struct api_drive *d = find_drive(r, id);
    if (!d)
        return err_set(-EINVAL, "drive: no drive '%s'", id);
    *index = (unsigned)(d - r->drives);
    *path = jf_string(body, "path_on_host", NULL);
    if (*path)
        return api_check_host_file("drive", *path, !d->read_only);
    return 0;
}

static int parse_mac(const char *text, uint8_t mac[6])
{
    unsigned b[6];
    char end;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
               &end) != 6 || strlen(text) != 17)
        return err_set(-EINVAL, "network interface: guest_mac '%s' is not six hex pairs like "
                                "06:00:AC:10:00:02", text);
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    if (mac[0] & 1)
        return err_set(-EINVAL, "network interface: guest_mac '%s' is a multicast address",
                       text);
    return 0;
}

int api_set_nic(struct api_resources *r, const char *path_id, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"iface_id", JF_STRING, true, false},
        {"host_dev_name", JF_STRING, true, false},
        {"guest_mac", JF_STRING, false, true},
        {"rx_rate_limiter", JF_OBJECT, false, true},
        {"tx_rate_limiter", JF_OBJECT, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "network interface");
    const char *id = jf_string(body, "iface_id", "");
    if (!ret)
        ret = api_check_body_id("network interface", "iface_id", path_id, id);
    if (!ret)
        ret = check_rate_limiter(body, "network interface", "rx_rate_limiter");
    if (!ret)
        ret = check_rate_limiter(body, "network interface", "tx_rate_limiter");
    if (ret)
        return ret;
    const char *dev = jf_string(body, "host_dev_name", "");
    if (!*dev || strlen(dev) >= 16)
        return err_set(-EINVAL, "network interface: host_dev_name '%s' is not a TAP device "
                                "name (1-15 characters)", dev);
    struct api_nic nn = {0};
    const char *mac = jf_string(body, "guest_mac", NULL);
    if (mac && (ret = parse_mac(mac, nn.mac)))
        return ret;
    nn.has_mac = mac != NULL;
    if (api_parse_rate_limiter(jf_get(body, "rx_rate_limiter"), "rx", &nn.rx_limit) ||
        api_parse_rate_limiter(jf_get(body, "tx_rate_limiter"), "tx", &nn.tx_limit))
        return -EINVAL; /* checked already */
    struct api_nic *n = NULL;
    for (unsigned i = 0; i < r->nr_nics; i++) {
        if (!strcmp(r->nics[i].id, id))
            n = &r->nics[i];
        else if (!strcmp(r->nics[i].host_dev, dev))
            return err_set(-EINVAL, "network interface: TAP device %s is already used by '%s'",
                           dev, r->nics[i].id);
        else if (mac && r->nics[i].has_mac && !memcmp(r->nics[i].mac, nn.mac, 6))
            return err_set(-EINVAL, "network interface: guest_mac %s is already used by '%s'",
                           mac, r->nics[i].id);
    }
    if (!n && r->nr_nics == CONFIG_MAX_NICS)
        return err_set(-EINVAL, "network interface: at most %d interfaces", CONFIG_MAX_NICS);
    bool oom = false;
    nn.id = dup_or_null(id, &oom);
    nn.host_dev = dup_or_null(dev, &oom);
    if (oom) {
        nic_free(&nn);
        return err_set(-ENOMEM, "out of memory");
    }
    if (n)
        nic_free(n);
    else
        n = &r->nics[r->nr_nics++];
    *n = nn;
    r->configured = true;
    return 0;
}

int api_check_nic_patch(struct api_resources *r, const char *path_id, struct json_object *body,
                        unsigned *index, struct rate_limit_config *rx,
                        struct rate_limit_config *tx)
{
    static const struct jf_field fields[] = {
        {"iface_id", JF_STRING, true, false},
        {"rx_rate_limiter", JF_OBJECT, false, true},
        {"tx_rate_limiter", JF_OBJECT, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "network interface");
    const char *id = jf_string(body, "iface_id", "");
    if (!ret)
        ret = api_check_body_id("network interface", "iface_id", path_id, id);
    if (!ret)
        ret = api_parse_rate_limiter(jf_get(body, "rx_rate_limiter"),
                                     "network interface: rx_rate_limiter", rx);
    if (!ret)
        ret = api_parse_rate_limiter(jf_get(body, "tx_rate_limiter"),
                                     "network interface: tx_rate_limiter", tx);
    if (ret)
        return ret;
    for (unsigned i = 0; i < r->nr_nics; i++) {
        if (!strcmp(r->nics[i].id, id)) {
            *index = i; /* the VM's NICs are the API's, in order */
            return 0;
        }
    }
    return err_set(-EINVAL, "network interface: no interface '%s'", id);
}

int api_set_entropy(struct api_resources *r, struct json_object *body)
{
    static const struct jf_field fields[] = {{"rate_limiter", JF_OBJECT, false, true}};
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "entropy");
    if (!ret)
        ret = check_rate_limiter(body, "entropy", "rate_limiter");
    struct rate_limit_config rl;
    if (!ret)
        ret = api_parse_rate_limiter(jf_get(body, "rate_limiter"), "entropy: rate_limiter", &rl);
    if (!ret) {
        r->entropy_limit = rl;
        r->entropy = r->configured = true;
    }
    return ret;
}

int api_set_vsock(struct api_resources *r, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"guest_cid", JF_UINT, true, false},
        {"uds_path", JF_STRING, true, false},
        {"vsock_id", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "vsock");
    if (ret)
        return ret;
    uint64_t cid = jf_uint(body, "guest_cid", 0);
    const char *path = jf_string(body, "uds_path", "");
    const char *id = jf_string(body, "vsock_id", NULL);
    if (cid < CONFIG_VSOCK_MIN_CID || cid > CONFIG_VSOCK_MAX_CID)
        return err_set(-EINVAL, "vsock: guest_cid must be from %u to %u (0-2 are reserved), "
                                "got %llu", CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID,
                       (unsigned long long)cid);
    if (!*path || strlen(path) >= VSOCK_UDS_PATH_LIMIT)
        return err_set(-EINVAL, "vsock: uds_path '%s' is empty or longer than %d bytes", path,
                       VSOCK_UDS_PATH_LIMIT - 1);
    /* The socket is bound at InstanceStart; its directory must exist now. */
    char *dir = strdup(path);
    if (!dir)
        return err_set(-ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    struct stat st;
    if (slash && slash != dir)
        *slash = '\0';
    else if (slash)
        strcpy(dir, "/");
    ret = slash && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
              ? err_set(-ENOENT, "vsock: uds_path %s: the directory %s does not exist", path,
                        dir)
              : 0;
    free(dir);
    if (ret)
        return ret;
    bool oom = false;
    struct api_vsock nv = {.id = dup_or_null(id, &oom), .uds_path = dup_or_null(path, &oom),
                           .cid = (uint32_t)cid};
    if (oom) {
        vsock_free(&nv);
        return err_set(-ENOMEM, "out of memory");
    }
    vsock_free(&r->vsock);
    r->vsock = nv;
    r->configured = true;
    return 0;
}

static int parse_level(const char *name, enum log_level *level, bool *off)
{
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {{"Error", LOG_ERROR}, {"Warning", LOG_WARN}, {"Warn", LOG_WARN},
                  {"Info", LOG_INFO},   {"Debug", LOG_DEBUG},  {"Trace", LOG_DEBUG}};
    *off = !strcasecmp(name, "Off");
    *level = LOG_ERROR;
    for (size_t i = 0; i < ARRAY_SIZE(levels) && !*off; i++)
        if (!strcasecmp(name, levels[i].name)) {
            *level = levels[i].level;
            return 0;
        }
    if (*off)
        return 0;
    return err_set(-EINVAL, "logger: level must be one of Error, Warning, Info, Debug, Trace, "
                            "Off; got '%s'", name);
}

int api_set_logger(struct api_resources *r, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"log_path", JF_STRING, false, true},
        {"level", JF_STRING, false, true},
        {"show_level", JF_BOOL, false, true},
        {"show_log_origin", JF_BOOL, false, true},
        {"module", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "logger");
    enum log_level level;
    bool off;
    if (!ret)
        ret = parse_level(jf_string(body, "level", "Warning"), &level, &off);
    if (ret)
        return ret;
    const char *path = jf_string(body, "log_path", NULL);
    int fd = 2;
    /* As Firecracker opens it: a FIFO without a reader yet works. */
    if (path && (fd = open_sink(path)) < 0)
        return err_errno(fd, "logger: cannot open %s", path);
    const struct log_config cfg = {
        .fd = fd,
        .level = level,
        .off = off,
        .show_level = jf_bool(body, "show_level", false),
        .show_origin = jf_bool(body, "show_log_origin", false),
        .module = jf_string(body, "module", NULL),
    };
    log_configure(&cfg);
    json_object_put(r->logger);
    r->logger = json_object_get(body);
    return 0;
}

int api_set_serial(struct api_resources *r, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"serial_out_path", JF_STRING, false, true},
        {"rate_limiter", JF_OBJECT, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "serial");
    struct bucket_config limit;
    if (!ret)
        ret = api_parse_bucket(jf_get(body, "rate_limiter"), "serial: rate_limiter", &limit);
    const char *path = jf_string(body, "serial_out_path", NULL);
    if (!ret && path && !*path)
        ret = err_set(-EINVAL, "serial: serial_out_path is empty");
    if (ret)
        return ret;
    char *copy = NULL;
    if (path && !(copy = strdup(path)))
        return err_set(-ENOMEM, "out of memory");
    free(r->serial_out_path);
    r->serial_out_path = copy;
    r->serial_limit = limit;
    return 0;
}

int api_check_metrics(struct json_object *body, const char **path)
{
    static const struct jf_field fields[] = {
        {"metrics_path", JF_STRING, true, false},
        {"emit_id", JF_BOOL, false, true},
        {"properties", JF_OBJECT, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "metrics");
    *path = jf_string(body, "metrics_path", "");
    if (!ret && !**path)
        ret = err_set(-EINVAL, "metrics: metrics_path is empty");
    struct json_object *props = jf_get(body, "properties");
    if (!ret && props) {
        json_object_object_foreach(props, key, value) {
            if (!json_object_is_type(value, json_type_string))
                return err_set(-EINVAL, "metrics: properties: '%s' must be a string", key);
        }
    }
    return ret;
}

/* boot_args plus the root device. (A pci=off there gives the VM virtio-mmio
 * devices, as Firecracker's guests expect: config.h, transport_resolve.) */
static char *build_cmdline(const struct api_resources *r)
{
    const char *args = r->boot_args ? r->boot_args : CONFIG_DEFAULT_CMDLINE;
    size_t cap = strlen(args) + 128;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = (size_t)snprintf(out, cap, "%s", args);
    for (unsigned i = 0; i < r->nr_drives; i++) {
        const struct api_drive *d = &r->drives[i];
        if (!d->root)
            continue;
        if (d->partuuid)
            snprintf(out + n, cap - n, " root=PARTUUID=%s %s", d->partuuid,
                     d->read_only ? "ro" : "rw");
        else
            snprintf(out + n, cap - n, " root=/dev/vda %s", d->read_only ? "ro" : "rw");
    }
    n = strlen(out);
    for (unsigned i = 0; i < r->nr_pmem; i++) /* the root pmem becomes pmem0 */
        if (r->pmem[i].root)
            snprintf(out + n, cap - n, " root=/dev/pmem0 %s", r->pmem[i].read_only ? "ro" : "rw");
    return out;
}

/* The root device becomes vda (the first disk), the others follow in the
 * order they were added, as Firecracker orders them. */
static void add_disks(struct api_resources *r, struct vm_config *cfg)
{
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < r->nr_drives; i++) {
            struct api_drive *d = &r->drives[i];
            if (d->root != (pass == 0))
                continue;
            d->vm_disk = cfg->nr_disks;
            cfg->disks[cfg->nr_disks++] = (struct disk_config){
                .path = d->path, .id = d->id, .read_only = d->read_only,
                .no_flush = strcmp(d->cache_type, "Writeback") != 0,
                .rate_limit = d->rate_limit};
        }
}

int api_build_config(struct api_resources *r, struct vm_config *cfg)
{
    if (!r->have_boot_source)
        return err_set(-EINVAL, "cannot start the microVM without a boot source "
                                "(PUT /boot-source first)");
    for (unsigned i = 0; i < r->nr_drives; i++)
        if (r->drives[i].partuuid && !r->drives[i].root)
            return err_set(-EINVAL, "drive '%s': partuuid applies to the root device only",
                           r->drives[i].id);
    free(r->cmdline);
    if (!(r->cmdline = build_cmdline(r)))
        return err_set(-ENOMEM, "out of memory");
    vm_config_defaults(cfg);
    cfg->kernel_path = r->kernel;
    cfg->initrd_path = r->initrd;
    cfg->cmdline = r->cmdline;
    cfg->nr_vcpus = r->vcpus;
    cfg->mem_size = (uint64_t)r->mem_mib << 20;
    cfg->rng = r->entropy;
    cfg->rng_limit = r->entropy_limit;
    cfg->track_dirty_pages = r->track_dirty_pages;
    cfg->pages = r->pages;
    cfg->ksm = r->ksm;
    cfg->smt = r->smt;
    cfg->cpu_template = r->cpu_template;
    cfg->accel = r->accel;
    cfg->gdb_address = r->gdb_address;
    cfg->gdb_wait = r->gdb_address != NULL; /* as Firecracker: gdb first, then the boot */
    cfg->vsock = (struct vsock_config){r->vsock.uds_path, r->vsock.id, r->vsock.cid};
    cfg->balloon = r->balloon;
    cfg->boot_timer = r->boot_timer;
    cfg->transport = r->transport;
    cfg->serial_out_path = r->serial_out_path;
    cfg->serial_limit = r->serial_limit;
    add_disks(r, cfg);
    api_pmem_config(r, cfg);
    api_fs_config(r, cfg);
    for (unsigned i = 0; i < r->nr_nics; i++) {
        struct nic_config *n = &cfg->nics[cfg->nr_nics++];
        *n = (struct nic_config){.kind = NIC_TAP, .tap_name = r->nics[i].host_dev,
                                 .id = r->nics[i].id, .rx_limit = r->nics[i].rx_limit,
                                 .tx_limit = r->nics[i].tx_limit};
        if (r->nics[i].has_mac)
            memcpy(n->mac, r->nics[i].mac, 6);
        else
            config_generate_mac(n, i, n->mac);
    }
    return api_mmds_start(&r->mmds, cfg);
}

/* The resource model rendered back (GET /machine-config, GET /vm/config)
 * and machine-config's huge_pages names: the JSON ember answers with, kept
 * apart from the setters that check what clients send (resources.c). */
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

/* machine-config's huge_pages: Firecracker's "None" (no hugetlbfs: ember's
 * default, transparent huge pages asked for — what Firecracker's clients
 * send by default, so their guests boot as fast as ember's own) and "2M"
 * (hugetlbfs); ember's "Transparent" (the same as "None") and "Small" (4 KiB
 * pages only). GET shows "None" for the default. */
static const struct {
    const char *name;
    enum guest_pages pages;
} huge_pages_names[] = {{"None", GUEST_PAGES_THP}, {"2M", GUEST_PAGES_HUGETLB},
                        {"Transparent", GUEST_PAGES_THP}, {"Small", GUEST_PAGES_SMALL}};

bool api_huge_pages_parse(const char *name, enum guest_pages *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(huge_pages_names); i++) {
        if (!strcmp(name, huge_pages_names[i].name)) {
            *out = huge_pages_names[i].pages;
            return true;
        }
    }
    return false;
}

const char *api_huge_pages_name(enum guest_pages pages)
{
    for (size_t i = 0; i < ARRAY_SIZE(huge_pages_names); i++)
        if (huge_pages_names[i].pages == pages)
            return huge_pages_names[i].name;
    return "?";
}

struct json_object *api_machine_config_json(const struct api_resources *r)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "vcpu_count", json_object_new_int(r->vcpus));
    json_object_object_add(o, "mem_size_mib", json_object_new_int(r->mem_mib));
    json_object_object_add(o, "smt", json_object_new_boolean(r->smt));
    if (r->cpu_template && r->cpu_template->kind != CPU_TEMPLATE_CUSTOM)
        json_object_object_add(o, "cpu_template",
                               json_object_new_string(cpu_template_name(r->cpu_template->kind)));
    json_object_object_add(o, "track_dirty_pages", json_object_new_boolean(r->track_dirty_pages));
    json_object_object_add(o, "huge_pages", json_object_new_string(api_huge_pages_name(r->pages)));
    json_object_object_add(o, "ksm", json_object_new_boolean(r->ksm));
    json_object_object_add(o, "accel", json_object_new_string(accel_kind_name(r->accel)));
    if (r->gdb_socket_path)
        json_object_object_add(o, "gdb_socket_path", json_object_new_string(r->gdb_socket_path));
    return o;
}

static void add_string_or_null(struct json_object *o, const char *key, const char *value)
{
    json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

static struct json_object *bucket_json(const struct bucket_config *b)
{
    if (!b->size && !b->refill_time_ms && !b->one_time_burst)
        return NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "size", json_object_new_uint64(b->size));
    if (b->one_time_burst)
        json_object_object_add(o, "one_time_burst", json_object_new_uint64(b->one_time_burst));
    json_object_object_add(o, "refill_time", json_object_new_uint64(b->refill_time_ms));
    return o;
}

/* null when it limits nothing, as Firecracker reports an absent limiter. */
static struct json_object *rate_limiter_json(const struct rate_limit_config *r)
{
    struct json_object *bw = bucket_json(&r->bandwidth), *ops = bucket_json(&r->ops);
    if (!bw && !ops)
        return NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "bandwidth", bw);
    json_object_object_add(o, "ops", ops);
    return o;
}

static struct json_object *drives_json(const struct api_resources *r)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < r->nr_drives; i++) {
        const struct api_drive *d = &r->drives[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "drive_id", json_object_new_string(d->id));
        json_object_object_add(o, "path_on_host", json_object_new_string(d->path));
        json_object_object_add(o, "is_root_device", json_object_new_boolean(d->root));
        json_object_object_add(o, "is_read_only", json_object_new_boolean(d->read_only));
        add_string_or_null(o, "partuuid", d->partuuid);
        json_object_object_add(o, "cache_type", json_object_new_string(d->cache_type));
        json_object_object_add(o, "io_engine", json_object_new_string(d->io_engine));
        json_object_object_add(o, "rate_limiter", rate_limiter_json(&d->rate_limit));
        json_object_array_add(list, o);
    }
    return list;
}

static struct json_object *nics_json(const struct api_resources *r)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < r->nr_nics; i++) {
        const struct api_nic *n = &r->nics[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "iface_id", json_object_new_string(n->id));
        json_object_object_add(o, "host_dev_name", json_object_new_string(n->host_dev));
        if (n->has_mac) {
            char mac[18];
            snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
                     n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
            json_object_object_add(o, "guest_mac", json_object_new_string(mac));
        }
        json_object_object_add(o, "rx_rate_limiter", rate_limiter_json(&n->rx_limit));
        json_object_object_add(o, "tx_rate_limiter", rate_limiter_json(&n->tx_limit));
        json_object_array_add(list, o);
    }
    return list;
}

struct json_object *api_vm_config_json(const struct api_resources *r)
{
    struct json_object *o = json_object_new_object();
    struct json_object *boot = NULL;
    if (r->have_boot_source) {
        boot = json_object_new_object();
        json_object_object_add(boot, "kernel_image_path", json_object_new_string(r->kernel));
        add_string_or_null(boot, "initrd_path", r->initrd);
        add_string_or_null(boot, "boot_args", r->boot_args);
    }
    json_object_object_add(o, "boot-source", boot);
    json_object_object_add(o, "machine-config", api_machine_config_json(r));
    json_object_object_add(o, "drives", drives_json(r));
    json_object_object_add(o, "network-interfaces", nics_json(r));
    struct json_object *entropy = NULL;
    if (r->entropy) {
        entropy = json_object_new_object();
        json_object_object_add(entropy, "rate_limiter", rate_limiter_json(&r->entropy_limit));
    }
    json_object_object_add(o, "entropy", entropy);
    json_object_object_add(o, "logger", json_object_get(r->logger));
    struct json_object *metrics = NULL;
    if (r->metrics_path) {
        metrics = json_object_new_object();
        json_object_object_add(metrics, "metrics_path", json_object_new_string(r->metrics_path));
    }
    json_object_object_add(o, "metrics", metrics);
    struct json_object *vsock = NULL;
    if (r->vsock.uds_path) {
        vsock = json_object_new_object();
        if (r->vsock.id)
            json_object_object_add(vsock, "vsock_id", json_object_new_string(r->vsock.id));
        json_object_object_add(vsock, "guest_cid", json_object_new_int64(r->vsock.cid));
        json_object_object_add(vsock, "uds_path", json_object_new_string(r->vsock.uds_path));
    }
    json_object_object_add(o, "vsock", vsock);
    json_object_object_add(o, "balloon",
                           r->balloon.enabled ? api_balloon_json(&r->balloon) : NULL);
    json_object_object_add(o, "mmds-config", api_mmds_config_json(&r->mmds));
    json_object_object_add(o, "cpu-config", NULL);
    json_object_object_add(o, "pmem", api_pmem_json(r));
    json_object_object_add(o, "fs", api_fs_json(r));
    json_object_object_add(o, "memory-hotplug", NULL);
    return o;
}

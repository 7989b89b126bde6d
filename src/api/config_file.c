/* The config file (--config-file): the control API's resources in one JSON
 * object, keyed as Firecracker keys them, applied through the same
 * functions as the HTTP requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/balloon_requests.h"
#include "api/mmds_requests.h"
#include "util/json_fields.h"
#include "util/util.h"

#define CONFIG_FILE_MAX (1u << 20)

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return err_errno(-errno, "config file %s", path);
    struct stat st;
    int ret = fstat(fileno(f), &st) < 0 ? err_errno(-errno, "config file %s", path) : 0;
    if (!ret && !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "config file %s: not a regular file", path);
    if (!ret && st.st_size > CONFIG_FILE_MAX)
        ret = err_set(-EINVAL, "config file %s: larger than %u bytes", path, CONFIG_FILE_MAX);
    if (!ret && !(*text = malloc((size_t)st.st_size + 1)))
        ret = err_set(-ENOMEM, "out of memory");
    if (!ret) {
        *len = fread(*text, 1, (size_t)st.st_size, f);
        if (ferror(f)) {
            free(*text);
            *text = NULL;
            ret = err_errno(-EIO, "config file %s: read failed", path);
        }
    }
    fclose(f);
    return ret;
}

typedef int (*apply_one_fn)(struct api *api, const char *id, struct json_object *item);

static int apply_drive(struct api *api, const char *id, struct json_object *item)
{
    return api_set_drive(&api->res, id, item);
}

static int apply_nic(struct api *api, const char *id, struct json_object *item)
{
    return api_set_nic(&api->res, id, item);
}

static int apply_pmem(struct api *api, const char *id, struct json_object *item)
{
    return api_set_pmem(&api->res, id, item);
}

static int apply_fs(struct api *api, const char *id, struct json_object *item)
{
    return api_set_fs(&api->res, id, item);
}

static int apply_list(struct api *api, struct json_object *list, const char *key,
                      apply_one_fn fn)
{
    size_t n = list ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        int ret = fn(api, NULL, json_object_array_get_idx(list, i));
        if (ret)
            return err_prefix(ret, "%s[%zu]", key, i);
    }
    return 0;
}

static int refuse(struct json_object *cfg, const char *key, const char *what)
{
    if (jf_get(cfg, key))
        return err_set(-EINVAL, "%s: %s is not supported by ember yet", key, what);
    return 0;
}

/* "cpu-config": the custom template itself, or the path of a file that
 * holds it (both as Firecracker takes them). */
static int apply_cpu_config(struct api *api, struct json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return api_set_cpu_config(&api->res, v);
    const char *path = json_object_get_string(v);
    char *text = NULL;
    size_t len = 0;
    struct json_object *tpl = NULL;
    int ret = read_file(path, &text, &len);
    if (!ret)
        ret = jf_parse(text, len, &tpl);
    free(text);
    if (!ret)
        ret = api_set_cpu_config(&api->res, tpl);
    json_object_put(tpl);
    return ret ? err_prefix(ret, "cpu-config file %s", path) : 0;
}

/* open_files false (the fuzzer): the items that name files to open or
 * create (logger, metrics, a cpu-config file) are checked for their type
 * only. */
static int apply_config(struct api *api, struct json_object *cfg, bool open_files)
{
    struct jf_field fields[] = {
        {"boot-source", JF_OBJECT, true, false},
        {"machine-config", JF_OBJECT, false, true},
        {"drives", JF_ARRAY, false, true},
        {"network-interfaces", JF_ARRAY, false, true},
        {"entropy", JF_OBJECT, false, true},
        {"logger", JF_OBJECT, false, true},
        {"metrics", JF_OBJECT, false, true},
        {"vsock", JF_OBJECT, false, true},
        {"balloon", JF_OBJECT, false, true},
        {"mmds-config", JF_OBJECT, false, true},
        {"cpu-config", JF_OBJECT, false, true},
        {"pmem", JF_ARRAY, false, true},
        {"fs", JF_ARRAY, false, true},
        {"memory-hotplug", JF_OBJECT, false, true},
    };
    struct json_object *v = jf_get(cfg, "cpu-config");
    for (size_t i = 0; v && json_object_is_type(v, json_type_string) && i < ARRAY_SIZE(fields);
         i++)
        if (!strcmp(fields[i].name, "cpu-config"))
            fields[i].type = JF_STRING; /* a path */
    int ret = jf_check(cfg, fields, ARRAY_SIZE(fields), "the configuration");
    if (!ret)
        ret = refuse(cfg, "memory-hotplug", "memory hot-plugging (virtio-mem)");
    /* The logger first, so that what follows is logged where it says. */
    if (!ret && open_files && (v = jf_get(cfg, "logger")))
        ret = api_set_logger(&api->res, v);
    if (!ret && open_files && (v = jf_get(cfg, "metrics")))
        ret = api_put_metrics(api, v);
    if (!ret && (v = jf_get(cfg, "machine-config")))
        ret = api_set_machine_config(&api->res, v, false);
    if (!ret && (v = jf_get(cfg, "cpu-config")) &&
        (open_files || !json_object_is_type(v, json_type_string)))
        ret = apply_cpu_config(api, v);
    if (!ret)
        ret = api_set_boot_source(&api->res, jf_get(cfg, "boot-source"));
    if (!ret)
        ret = apply_list(api, jf_get(cfg, "drives"), "drives", apply_drive);
    if (!ret)
        ret = apply_list(api, jf_get(cfg, "network-interfaces"), "network-interfaces",
                         apply_nic);
    if (!ret)
        ret = apply_list(api, jf_get(cfg, "pmem"), "pmem", apply_pmem);
    if (!ret)
        ret = apply_list(api, jf_get(cfg, "fs"), "fs", apply_fs);
    if (!ret && (v = jf_get(cfg, "entropy")))
        ret = api_set_entropy(&api->res, v);
    if (!ret && (v = jf_get(cfg, "vsock")))
        ret = api_set_vsock(&api->res, v);
    if (!ret && (v = jf_get(cfg, "balloon")))
        ret = api_put_balloon(&api->res, v);
    if (!ret && (v = jf_get(cfg, "mmds-config")))
        ret = api_put_mmds_config(&api->res, v); /* after the interfaces it names */
    return ret;
}

static int config_from_text(struct api *api, const char *text, size_t len, bool open_files,
                            struct vm_config *vm_cfg)
{
    struct json_object *cfg = NULL;
    int ret = jf_parse(text, len, &cfg);
    if (!ret)
        ret = apply_config(api, cfg, open_files);
    json_object_put(cfg);
    return ret ? ret : api_build_config(&api->res, vm_cfg);
}

int api_config_check_text(struct api *api, const char *text, size_t len, struct vm_config *cfg)
{
    return config_from_text(api, text, len, false, cfg);
}

int api_boot_from_file(struct api *api, const char *path, enum vmm_fault *fault)
{
    *fault = VMM_FAULT_SETUP;
    char *text = NULL;
    size_t len = 0;
    struct vm_config vm_cfg;
    int ret = read_file(path, &text, &len);
    if (!ret)
        ret = config_from_text(api, text, len, true, &vm_cfg);
    free(text);
    if (ret)
        return err_prefix(ret, "config file %s", path);
    return vmm_start(api->vmm, &vm_cfg, fault);
}

/* --- a VM configured on the command line --------------------------------- */

static int adopt_disks(struct api_resources *r, const struct vm_config *cfg)
{
    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        const struct disk_config *d = &cfg->disks[i];
        char id[16];
        snprintf(id, sizeof(id), "disk%u", i);
        struct api_drive *ad = &r->drives[r->nr_drives++];
        ad->id = strdup(d->id && api_id_valid(d->id) ? d->id : id);
        ad->path = strdup(d->path);
        ad->read_only = d->read_only;
        /* What the options' disk is in Firecracker's terms: flushes reach
         * the image unless it was a Firecracker drive with cache_type Unsafe. */
        snprintf(ad->cache_type, sizeof(ad->cache_type), "%s",
                 d->no_flush ? "Unsafe" : "Writeback");
        snprintf(ad->io_engine, sizeof(ad->io_engine), "Async");
        ad->rate_limit = d->rate_limit;
        ad->vm_disk = i;
        if (!ad->id || !ad->path)
            return err_set(-ENOMEM, "out of memory");
    }
    return 0;
}

/* Only TAP interfaces have a Firecracker form; user-mode ones are not shown. */
static int adopt_nics(struct api_resources *r, const struct vm_config *cfg)
{
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        const struct nic_config *n = &cfg->nics[i];
        if (n->kind != NIC_TAP)
            continue;
        char id[16];
        snprintf(id, sizeof(id), "net%u", i);
        struct api_nic *an = &r->nics[r->nr_nics++];
        an->id = strdup(n->id ? n->id : id);
        an->host_dev = strdup(n->tap_name);
        memcpy(an->mac, n->mac, 6);
        an->has_mac = true;
        if (!an->id || !an->host_dev)
            return err_set(-ENOMEM, "out of memory");
    }
    return 0;
}

int api_adopt_config(struct api *api, const struct vm_config *cfg)
{
    struct api_resources *r = &api->res;
    /* A restored VM has no kernel of its own: its memory holds it. */
    r->have_boot_source = cfg->kernel_path != NULL;
    r->kernel = cfg->kernel_path ? strdup(cfg->kernel_path) : NULL;
    r->initrd = cfg->initrd_path ? strdup(cfg->initrd_path) : NULL;
    r->boot_args = cfg->cmdline ? strdup(cfg->cmdline) : NULL;
    r->vcpus = cfg->nr_vcpus;
    r->smt = cfg->smt;
    if (cfg->cpu_template) {
        if (!(r->cpu_template = malloc(sizeof(*r->cpu_template))))
            return err_set(-ENOMEM, "out of memory");
        *r->cpu_template = *cfg->cpu_template;
    }
    r->track_dirty_pages = cfg->track_dirty_pages;
    r->pages = cfg->pages;
    r->ksm = cfg->ksm;
    r->mem_mib = (unsigned)(cfg->mem_size >> 20);
    r->entropy = cfg->rng;
    r->accel = cfg->accel;
    r->balloon = cfg->balloon;
    if ((cfg->kernel_path && !r->kernel) || (cfg->initrd_path && !r->initrd) ||
        (cfg->cmdline && !r->boot_args))
        return err_set(-ENOMEM, "out of memory");
    const struct vsock_config *v = &cfg->vsock;
    if (v->uds_path) {
        r->vsock = (struct api_vsock){.id = v->id ? strdup(v->id) : NULL,
                                      .uds_path = strdup(v->uds_path), .cid = v->cid};
        if (!r->vsock.uds_path || (v->id && !r->vsock.id))
            return err_set(-ENOMEM, "out of memory");
    }
    int ret = adopt_disks(r, cfg);
    return ret ? ret : adopt_nics(r, cfg);
}

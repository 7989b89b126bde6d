#include "vmm/metrics.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
}

void metrics_destroy(struct metrics *m)
{
    free(m->entries);
    free(m->id);
    json_object_put(m->properties);
    memset(m, 0, sizeof(*m));
}

static struct metrics_entry *find(struct metrics *m, const char *group, const char *name)
{
    for (unsigned i = 0; i < m->nr; i++)
        if (!strcmp(m->entries[i].group, group) && !strcmp(m->entries[i].name, name))
            return &m->entries[i];
    if (m->nr == m->cap) {
        unsigned cap = m->cap ? m->cap * 2 : 128;
        struct metrics_entry *e = realloc(m->entries, cap * sizeof(*e));
        if (!e) {
            m->failed = true;
            return NULL;
        }
        m->entries = e;
        m->cap = cap;
    }
    struct metrics_entry *e = &m->entries[m->nr++];
    memset(e, 0, sizeof(*e));
    snprintf(e->group, sizeof(e->group), "%s", group);
    snprintf(e->name, sizeof(e->name), "%s", name);
    return e;
}

void metrics_set_extras(struct metrics *m, const char *id, struct json_object *properties)
{
    free(m->id);
    m->id = id ? strdup(id) : NULL;
    json_object_put(m->properties);
    m->properties = NULL;
    if (properties && json_object_deep_copy(properties, &m->properties, NULL) < 0)
        m->properties = NULL;
}

void metrics_add(struct metrics *m, const char *group, const char *name, uint64_t n)
{
    struct metrics_entry *e = find(m, group, name);
    if (e)
        e->value += n;
}

void metrics_store(struct metrics *m, const char *group, const char *name, uint64_t value)
{
    struct metrics_entry *e = find(m, group, name);
    if (e) {
        e->value = value;
        e->store = true;
    }
}

/* A counter kept elsewhere as a running total (a device's, a vCPU's). */
static void metrics_total(struct metrics *m, const char *group, const char *name,
                          uint64_t total)
{
    struct metrics_entry *e = find(m, group, name);
    if (e)
        e->value = total;
}

void metrics_declare_api(struct metrics *m)
{
    static const char *const get[] = {"instance_info_count", "machine_cfg_count", "mmds_count",
                                      "vmm_version_count", "hotplug_memory_count"};
    static const char *const put[] = {"actions", "boot_source", "cpu_cfg", "drive", "logger",
                                      "machine_cfg", "metrics", "mmds", "network", "vsock",
                                      "serial", "pmem", "hotplug_memory"};
    static const char *const patch[] = {"drive", "network", "machine_cfg", "mmds",
                                        "hotplug_memory", "pmem"};
    char name[48];
    for (size_t i = 0; i < ARRAY_SIZE(get); i++)
        metrics_add(m, "get_api_requests", get[i], 0);
    for (size_t i = 0; i < ARRAY_SIZE(put); i++) {
        snprintf(name, sizeof(name), "%s_count", put[i]);
        metrics_add(m, "put_api_requests", name, 0);
        snprintf(name, sizeof(name), "%s_fails", put[i]);
        metrics_add(m, "put_api_requests", name, 0);
    }
    for (size_t i = 0; i < ARRAY_SIZE(patch); i++) {
        snprintf(name, sizeof(name), "%s_count", patch[i]);
        metrics_add(m, "patch_api_requests", name, 0);
        snprintf(name, sizeof(name), "%s_fails", patch[i]);
        metrics_add(m, "patch_api_requests", name, 0);
    }
    static const char *const latencies[] = {
        "full_create_snapshot", "diff_create_snapshot", "load_snapshot", "pause_vm",
        "resume_vm", "vmm_full_create_snapshot", "vmm_diff_create_snapshot",
        "vmm_load_snapshot", "vmm_pause_vm", "vmm_resume_vm"};
    for (size_t i = 0; i < ARRAY_SIZE(latencies); i++)
        metrics_store(m, "latencies_us", latencies[i], 0);
    static const char *const vcpu[] = {"exit_io_in", "exit_io_out", "exit_mmio_read",
                                       "exit_mmio_write"};
    for (size_t i = 0; i < ARRAY_SIZE(vcpu); i++)
        metrics_add(m, "vcpu", vcpu[i], 0);
}

static void add_u64(struct json_object *obj, const char *key, uint64_t value)
{
    json_object_object_add(obj, key, json_object_new_uint64(value));
}

static struct json_object *group_object(struct json_object *root, const char *group)
{
    struct json_object *o;
    if (json_object_object_get_ex(root, group, &o))
        return o;
    o = json_object_new_object();
    json_object_object_add(root, group, o);
    return o;
}

/* What a counter reports: its increase since the previous line (a total
 * that went down belongs to a new device: all of it is new). */
static uint64_t report(struct metrics_entry *e)
{
    if (e->store)
        return e->value;
    uint64_t delta = e->value >= e->reported ? e->value - e->reported : e->value;
    e->reported = e->value;
    return delta;
}

/* Device groups Firecracker also sums over all devices of a kind. */
static const char *aggregate_of(const char *group)
{
    if (!strncmp(group, "block_", 6))
        return "block";
    if (!strncmp(group, "net_", 4))
        return "net";
    return NULL;
}

/* vCPU exits by direction (device accesses on the CPU engine), summed over
 * the vCPUs as Firecracker's single "vcpu" group is. */
static void vcpu_totals(struct metrics *m, const struct vm *vm)
{
    uint64_t io_in = atomic_load(&vm->engine_io_in), io_out = atomic_load(&vm->engine_io_out);
    uint64_t rd = atomic_load(&vm->engine_mmio_read), wr = atomic_load(&vm->engine_mmio_write);
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        const struct vcpu *v = &vm->vcpus[i];
        io_in += atomic_load(&v->exits_io_in);
        io_out += atomic_load(&v->exits_io_out);
        rd += atomic_load(&v->exits_mmio_read);
        wr += atomic_load(&v->exits_mmio_write);
    }
    metrics_total(m, "vcpu", "exit_io_in", io_in);
    metrics_total(m, "vcpu", "exit_io_out", io_out);
    metrics_total(m, "vcpu", "exit_mmio_read", rd);
    metrics_total(m, "vcpu", "exit_mmio_write", wr);
}

static void device_totals(struct metrics *m, struct vm *vm)
{
    for (unsigned i = 0; i < vm->board.nr_devices; i++) {
        struct device *d = &vm->board.devices[i];
        if (!d->metrics[0] || !d->ops->counters)
            continue;
        struct device_counter c[DEVICE_MAX_COUNTERS];
        size_t n = d->ops->counters(d->dev, c);
        for (size_t k = 0; k < n; k++)
            metrics_total(m, d->metrics, c[k].name, c[k].value);
    }
}

/* ember's own running totals, per vCPU. */
static struct json_object *ember_vcpus(const struct vm *vm)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; vm && i < vm->nr_vcpus; i++) {
        const struct vcpu *v = &vm->vcpus[i];
        struct json_object *o = json_object_new_object();
        add_u64(o, "index", i);
        add_u64(o, "exits_io", atomic_load(&v->exits_io_in) + atomic_load(&v->exits_io_out));
        add_u64(o, "exits_mmio",
                atomic_load(&v->exits_mmio_read) + atomic_load(&v->exits_mmio_write));
        add_u64(o, "exits_other", atomic_load(&v->exits_other));
        struct accel_counter c[ACCEL_MAX_COUNTERS];
        size_t n = vm->accel->vcpu_counters ? vm->accel->vcpu_counters(v->accel_vcpu, c) : 0;
        for (size_t k = 0; k < n; k++)
            add_u64(o, c[k].name, c[k].value);
        json_object_array_add(list, o);
    }
    return list;
}

static struct json_object *ember_group(const struct metrics *m, const struct metrics_vmm *vmm,
                                       const struct vm *vm)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(vmm->id));
    json_object_object_add(o, "state", json_object_new_string(vmm->state));
    add_u64(o, "uptime_ms", vmm->uptime_ns / 1000000);
    add_u64(o, "metrics_flushes", m->flushes);
    add_u64(o, "api_requests", vmm->api_requests);
    add_u64(o, "api_bad_requests", vmm->api_bad_requests);
    add_u64(o, "api_connections", vmm->api_connections);
    add_u64(o, "api_connections_refused", vmm->api_connections_refused);
    json_object_object_add(o, "vcpus", ember_vcpus(vm));
    return o;
}

static struct json_object *build(struct metrics *m, const struct metrics_vmm *vmm, struct vm *vm)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    metrics_total(m, "logger", "missed_log_count", log_missed_count());
    metrics_add(m, "logger", "missed_metrics_count", 0);
    metrics_add(m, "logger", "metrics_fails", 0);
    if (vm) {
        vcpu_totals(m, vm);
        device_totals(m, vm);
    }
    struct json_object *root = json_object_new_object();
    add_u64(root, "utc_timestamp_ms", (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    if (m->id)
        json_object_object_add(root, "id", json_object_new_string(m->id));
    if (m->properties)
        json_object_object_add(root, "properties", json_object_get(m->properties));
    for (unsigned i = 0; i < m->nr; i++) {
        struct metrics_entry *e = &m->entries[i];
        uint64_t v = report(e);
        add_u64(group_object(root, e->group), e->name, v);
        const char *agg = aggregate_of(e->group);
        if (agg) {
            struct json_object *a = group_object(root, agg), *old;
            uint64_t sum = v;
            if (json_object_object_get_ex(a, e->name, &old))
                sum += json_object_get_uint64(old);
            add_u64(a, e->name, sum);
        }
    }
    json_object_object_add(root, "ember", ember_group(m, vmm, vm));
    return root;
}

int metrics_write(struct metrics *m, int fd, const struct metrics_vmm *vmm, struct vm *vm)
{
    m->flushes++;
    struct json_object *root = build(m, vmm, vm);
    size_t len;
    const char *text = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *line = malloc(len + 1);
    int ret = line ? 0 : err_set(-ENOMEM, "out of memory");
    if (!ret) {
        memcpy(line, text, len);
        line[len] = '\n';
        ssize_t n = write(fd, line, len + 1);
        if (n < 0)
            ret = err_errno(-errno, "cannot write metrics");
        else if ((size_t)n != len + 1)
            ret = err_set(-EAGAIN, "metrics line cut short: the reader is not keeping up");
        free(line);
    }
    json_object_put(root);
    if (ret) {
        metrics_add(m, "logger", "missed_metrics_count", 1);
        metrics_add(m, "logger", "metrics_fails", 1);
    }
    return ret;
}

#include "vmm/metrics.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>


static void add_u64(struct json_object *obj, const char *key, uint64_t value)
{
    json_object_object_add(obj, key, json_object_new_uint64(value));
}

static struct json_object *vcpu_metrics(const struct vm *vm)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; vm && i < vm->nr_vcpus; i++) {
        const struct vcpu *v = &vm->vcpus[i];
        struct json_object *o = json_object_new_object();
        add_u64(o, "index", i);
        add_u64(o, "exits_io", atomic_load(&v->exits_io));
        add_u64(o, "exits_mmio", atomic_load(&v->exits_mmio));
        add_u64(o, "exits_other", atomic_load(&v->exits_other));
        struct accel_counter c[ACCEL_MAX_COUNTERS];
        size_t n = vm->accel->vcpu_counters ? vm->accel->vcpu_counters(v->accel_vcpu, c) : 0;
        for (size_t k = 0; k < n; k++)
            add_u64(o, c[k].name, c[k].value);
        json_object_array_add(list, o);
    }
    return list;
}

/* Each device with a metrics group ("uart", "block_<drive id>", ...), as
 * Firecracker names them. */
static void device_metrics(struct json_object *root, struct vm *vm)
{
    for (unsigned i = 0; i < vm->board.nr_devices; i++) {
        struct device *d = &vm->board.devices[i];
        if (!d->metrics[0] || !d->ops->counters)
            continue;
        struct device_counter c[DEVICE_MAX_COUNTERS];
        size_t n = d->ops->counters(d->dev, c);
        struct json_object *o = json_object_new_object();
        for (size_t k = 0; k < n; k++)
            add_u64(o, c[k].name, c[k].value);
        json_object_object_add(root, d->metrics, o);
    }
}

int metrics_write(int fd, const struct metrics_vmm *vmm, struct vm *vm)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct json_object *root = json_object_new_object();
    add_u64(root, "utc_timestamp_ms", (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    struct json_object *v = json_object_new_object();
    json_object_object_add(v, "id", json_object_new_string(vmm->id));
    json_object_object_add(v, "state", json_object_new_string(vmm->state));
    add_u64(v, "uptime_ms", vmm->uptime_ns / 1000000);
    add_u64(v, "metrics_flushes", vmm->flushes);
    json_object_object_add(root, "vmm", v);
    struct json_object *api = json_object_new_object();
    add_u64(api, "requests", vmm->api_requests);
    add_u64(api, "bad_requests", vmm->api_bad_requests);
    add_u64(api, "connections", vmm->api_connections);
    add_u64(api, "connections_refused", vmm->api_connections_refused);
    json_object_object_add(root, "api_server", api);
    json_object_object_add(root, "vcpu", vcpu_metrics(vm));
    if (vm)
        device_metrics(root, vm);

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
    return ret;
}

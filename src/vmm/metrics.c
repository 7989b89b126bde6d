#include "vmm/metrics.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "vmm/vmm.h"

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
        json_object_array_add(list, o);
    }
    return list;
}

static struct json_object *counters_object(struct virtio_dev *vdev)
{
    struct virtio_counter c[VIRTIO_MAX_COUNTERS];
    size_t n = virtio_dev_counters(vdev, c);
    struct json_object *o = json_object_new_object();
    for (size_t i = 0; i < n; i++)
        add_u64(o, c[i].name, c[i].value);
    return o;
}

/* Device groups are named as Firecracker names them: block_<drive id>,
 * net_<interface id>, entropy, uart. */
static void device_metrics(struct json_object *root, struct vm *vm)
{
    char key[96];
    for (unsigned i = 0; i < vm->nr_disks; i++) {
        if (vm->cfg->disks[i].id)
            snprintf(key, sizeof(key), "block_%s", vm->cfg->disks[i].id);
        else /* the device's id: up to 20 bytes, not always NUL-terminated */
            snprintf(key, sizeof(key), "block_%.*s", (int)sizeof(vm->disks[i]->id),
                     vm->disks[i]->id);
        json_object_object_add(root, key, counters_object(&vm->disks[i]->vdev));
    }
    for (unsigned i = 0; i < vm->nr_nics; i++) {
        const char *id = vm->cfg->nics[i].id;
        if (id)
            snprintf(key, sizeof(key), "net_%s", id);
        else
            snprintf(key, sizeof(key), "net_%u", i);
        json_object_object_add(root, key, counters_object(&vm->nics[i]->vdev));
    }
    if (vm->rng)
        json_object_object_add(root, "entropy", counters_object(&vm->rng->vdev));
    if (vm->vconsole)
        json_object_object_add(root, "virtio_console", counters_object(&vm->vconsole->vdev));
    struct json_object *uart = json_object_new_object();
    pthread_mutex_lock(&vm->serial.lock);
    add_u64(uart, "bytes_out", vm->serial.bytes_out);
    add_u64(uart, "bytes_in", vm->serial.bytes_in);
    pthread_mutex_unlock(&vm->serial.lock);
    json_object_object_add(root, "uart", uart);
}

int metrics_write(struct vmm *vmm, int fd, uint64_t uptime_ns)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct json_object *root = json_object_new_object();
    add_u64(root, "utc_timestamp_ms", (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    struct json_object *v = json_object_new_object();
    json_object_object_add(v, "id", json_object_new_string(vmm->id));
    json_object_object_add(v, "state", json_object_new_string(vmm_state_name(vmm->state)));
    add_u64(v, "uptime_ms", uptime_ns / 1000000);
    add_u64(v, "metrics_flushes", vmm->metrics_flushes);
    json_object_object_add(root, "vmm", v);
    struct json_object *api = json_object_new_object();
    add_u64(api, "requests", vmm->api_stats.requests);
    add_u64(api, "bad_requests", vmm->api_stats.bad_requests);
    add_u64(api, "connections", vmm->api_stats.connections);
    add_u64(api, "connections_refused", vmm->api_stats.connections_refused);
    json_object_object_add(root, "api_server", api);
    json_object_object_add(root, "vcpu", vcpu_metrics(vmm->vm));
    if (vmm->vm)
        device_metrics(root, vmm->vm);

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

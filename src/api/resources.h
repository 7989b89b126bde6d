/* The control API's resource model (Firecracker's): boot source, machine
 * configuration, drives, network interfaces, entropy, logger and metrics,
 * each set from a JSON object by one function that the HTTP handlers and
 * the config file share, and turned into ember's vm_config at start. */
#ifndef EMBER_API_RESOURCES_H
#define EMBER_API_RESOURCES_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "config/config.h"
#include "api/mmds.h"
#include "config/cpu_template.h"

#define API_ID_MAX 64
#define API_DEFAULT_MEM_MIB 128 /* Firecracker's default */

struct api_drive {
    char *id;
    char *path;
    char *partuuid;
    bool root;
    bool read_only;
    char cache_type[12]; /* as sent: Unsafe (the default) or Writeback */
    char io_engine[8];   /* as sent: Sync (the default) or Async */
    struct rate_limit_config rate_limit;
    unsigned vm_disk; /* its index among the VM's disks, once started */
};

struct api_nic {
    char *id;
    char *host_dev;
    uint8_t mac[6];
    bool has_mac;
    struct rate_limit_config rx_limit, tx_limit;
};

struct api_pmem {
    char *id;
    char *path;
    bool root, read_only;
};

struct api_fs {
    char *id, *dir, *tag;
    bool read_only;
    enum fs_cache_mode cache;
};

struct api_vsock {
    char *id;       /* vsock_id (Firecracker keeps it for compatibility) */
    char *uds_path;
    uint32_t cid;
};

struct api_resources {
    bool configured;  /* a boot resource was set: too late to load a snapshot */
    bool machine_set; /* machine-config was set: a snapshot must match it */
    bool have_boot_source;
    char *kernel, *initrd, *boot_args;
    unsigned vcpus;
    unsigned mem_mib;
    bool track_dirty_pages;
    bool smt;
    enum guest_pages pages; /* huge_pages: "None", "2M", "Transparent" (the default) */
    bool ksm;
    /* machine-config's cpu_template or PUT /cpu-config, the last one set
     * (as in Firecracker); NULL: none. */
    struct cpu_template *cpu_template;
    enum accel_kind accel;
    /* machine-config's gdb_socket_path (Firecracker's): a GDB stub on this
     * Unix socket, the vCPUs held until gdb lets them go; NULL: none.
     * gdb_address is the same as ember's --gdb takes it ("unix:PATH"). */
    char *gdb_socket_path, *gdb_address;
    struct api_drive drives[CONFIG_MAX_DISKS];
    unsigned nr_drives;
    struct api_nic nics[CONFIG_MAX_NICS];
    unsigned nr_nics;
    struct api_pmem pmem[CONFIG_MAX_PMEM];
    unsigned nr_pmem;
    struct api_fs fs[CONFIG_MAX_SHARES];
    unsigned nr_fs;
    bool entropy;
    struct api_vsock vsock; /* uds_path NULL: none */
    struct balloon_config balloon; /* enabled false: none */
    struct rate_limit_config entropy_limit;
    char *serial_out_path; /* PUT /serial */
    struct bucket_config serial_limit;
    /* From the command line: Firecracker's --boot-timer, --enable-pci. */
    bool boot_timer;
    enum virtio_transport transport;
    /* Logger and metrics as last set, for GET /vm/config. */
    struct json_object *logger;
    char *metrics_path;
    char *cmdline; /* built at start: boot_args plus the root device */
    struct api_mmds mmds; /* the metadata service */
};

void api_resources_init(struct api_resources *r);
void api_resources_free(struct api_resources *r);

/* Each takes the request body (already a JSON value) and either applies it
 * completely or leaves 'r' unchanged and returns -EINVAL with a message. */
int api_set_boot_source(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
int api_set_machine_config(struct api_resources *r, struct json_object *body, bool patch)
    EMBER_MUST_CHECK;
/* PUT /cpu-config: a custom CPU template (Firecracker's JSON). */
int api_set_cpu_config(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
/* A static template by name into *out (NULL for "None"). */
int api_static_cpu_template(const char *name, struct cpu_template **out) EMBER_MUST_CHECK;
/* 'path_id' is the {id} of /drives/{id} (NULL from a config file). */
int api_set_drive(struct api_resources *r, const char *path_id, struct json_object *body)
    EMBER_MUST_CHECK;
int api_set_nic(struct api_resources *r, const char *path_id, struct json_object *body)
    EMBER_MUST_CHECK;
int api_set_entropy(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
/* PUT /vsock: guest_cid, uds_path, vsock_id (a second PUT replaces it). */
int api_set_vsock(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
/* Logger: opens the path and switches ember's log to it. */
int api_set_logger(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
/* PUT /serial: serial_out_path (COM1's output to a file or FIFO). */
int api_set_serial(struct api_resources *r, struct json_object *body) EMBER_MUST_CHECK;
/* Metrics: validates the body; *path is the metrics_path to open. */
int api_check_metrics(struct json_object *body, const char **path) EMBER_MUST_CHECK;

/* PATCH /drives/{id} after start: the drive, its new path (or NULL) and
 * its rate limiter update (the buckets it names). */
int api_check_drive_patch(struct api_resources *r, const char *path_id,
                          struct json_object *body, unsigned *index, const char **path,
                          struct rate_limit_config *limit) EMBER_MUST_CHECK;

/* PATCH /network-interfaces/{id} at run time: the interface's index and
 * its rate limiter updates. */
int api_check_nic_patch(struct api_resources *r, const char *path_id, struct json_object *body,
                        unsigned *index, struct rate_limit_config *rx,
                        struct rate_limit_config *tx) EMBER_MUST_CHECK;

/* Ready to start? Fills 'cfg' with pointers into 'r' (kept alive by it),
 * and starts the metadata service if an interface serves it. */
int api_build_config(struct api_resources *r, struct vm_config *cfg) EMBER_MUST_CHECK;

/* machine-config's huge_pages names and back. */
bool api_huge_pages_parse(const char *name, enum guest_pages *out);
const char *api_huge_pages_name(enum guest_pages pages);

/* GET bodies (new references). */
struct json_object *api_machine_config_json(const struct api_resources *r);
struct json_object *api_vm_config_json(const struct api_resources *r);

/* A RateLimiter body ({"bandwidth": TokenBucket, "ops": TokenBucket}, each
 * {"size", "refill_time", "one_time_burst"}); null or {} limit nothing. */
int api_parse_rate_limiter(struct json_object *body, const char *what,
                           struct rate_limit_config *out) EMBER_MUST_CHECK;
/* One TokenBucket (PUT /serial's rate_limiter is a bare bucket). */
int api_parse_bucket(struct json_object *body, const char *what, struct bucket_config *out)
    EMBER_MUST_CHECK;

/* PUT /pmem/{id} (and the config file's "pmem" items). */
int api_set_pmem(struct api_resources *r, const char *path_id, struct json_object *body)
    EMBER_MUST_CHECK;
void api_pmem_free(struct api_resources *r);
/* The VM's pmem devices, the root one first (it becomes /dev/pmem0). */
void api_pmem_config(const struct api_resources *r, struct vm_config *cfg);
struct json_object *api_pmem_json(const struct api_resources *r);

/* PUT /fs/{id} (and the config file's "fs" items): an ember extension. */
int api_set_fs(struct api_resources *r, const char *path_id, struct json_object *body)
    EMBER_MUST_CHECK;
void api_fs_free(struct api_resources *r);
void api_fs_config(const struct api_resources *r, struct vm_config *cfg);
struct json_object *api_fs_json(const struct api_resources *r);

/* Shared by the resource files: a host file the VMM can open as asked, and
 * an id in a body that must be valid and match the path's. */
int api_check_host_file(const char *what, const char *path, bool need_write) EMBER_MUST_CHECK;
int api_check_body_id(const char *what, const char *field, const char *path_id,
                      const char *body_id) EMBER_MUST_CHECK;

/* Ids in paths and bodies: 1-64 of [A-Za-z0-9_]. */
bool api_id_valid(const char *id);

#endif

/* What to run: the single internal configuration the CLI (and later the
 * control API and config file) fill in. */
#ifndef EMBER_CONFIG_CONFIG_H
#define EMBER_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/rate_limiter.h"

struct cpu_template;

#define CONFIG_DEFAULT_MEM (256ull << 20)
#define CONFIG_DEFAULT_CPUS 1
#define CONFIG_MAX_CPUS 255
#define CONFIG_MIN_MEM (16ull << 20)
#define CONFIG_MAX_MEM (1ull << 40)
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1 quiet"

#define CONFIG_MAX_DISKS 16

struct disk_config {
    const char *path;
    const char *id;     /* serial reported by GET_ID; default: the file name */
    bool read_only;
    bool cache_none;    /* O_DIRECT: bypass the host's page cache */
    bool no_flush;      /* Firecracker's cache_type Unsafe: no VIRTIO_BLK_F_FLUSH offered */
    struct rate_limit_config rate_limit;
};

/* virtio-pmem: a host file in guest physical memory above the RAM. */
#define CONFIG_MAX_PMEM 4
struct pmem_config {
    const char *path;
    const char *id;     /* the API's id (names its metrics) */
    bool read_only;     /* mapped private: the file never changes */
};

/* virtio-fs: a host directory shared with the guest (mount -t virtiofs TAG). */
#define CONFIG_MAX_SHARES 8
#define CONFIG_FS_TAG_MAX 36 /* the device's tag field, not NUL-terminated when full */
enum fs_cache_mode { FS_CACHE_MODE_AUTO, FS_CACHE_MODE_ALWAYS, FS_CACHE_MODE_NEVER };
struct fs_config {
    const char *path;
    const char *tag;
    const char *id;     /* the API's id (names its metrics); the tag otherwise */
    bool read_only;     /* every change refused with EROFS */
    enum fs_cache_mode cache;
};

enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };

/* The CPU backend: hardware-assisted KVM, ember's own x86-64 engine, or
 * whichever this host can run (KVM where the host check passes). */
enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_SOFT };

/* How virtio devices reach the guest: PCI functions, or virtio-mmio
 * (version 2) devices announced on the kernel command line and in the DSDT,
 * as Firecracker's. AUTO: MMIO when the command line says pci=off. */
enum virtio_transport { TRANSPORT_AUTO, TRANSPORT_PCI, TRANSPORT_MMIO };

#define CONFIG_MAX_NICS 8
#define CONFIG_MAX_HOSTFWD 16

enum nic_kind { NIC_TAP, NIC_USER };

/* What backs anonymous guest RAM: 4 KiB pages with transparent huge pages
 * asked for (the default), 4 KiB pages only, or 2 MiB hugetlbfs pages. */
enum guest_pages { GUEST_PAGES_THP, GUEST_PAGES_SMALL, GUEST_PAGES_HUGETLB };

struct nic_config {
    enum nic_kind kind;
    const char *id;     /* the control API's iface_id (names its metrics) */
    const char *tap_name;
    const char *hostfwd[CONFIG_MAX_HOSTFWD];
    unsigned nr_hostfwd;
    uint8_t mac[6];     /* given with mac=, or generated from the backend */
    struct rate_limit_config rx_limit, tx_limit; /* Firecracker's rx/tx_rate_limiter */
    bool mmds;          /* the guest reaches the metadata service through it */
};

/* The metadata service (Firecracker's MMDS): where the guest finds it and,
 * from the command line, how the store starts. */
#define MMDS_DEFAULT_IPV4 0xa9fea9feu /* 169.254.169.254 (host byte order) */
#define MMDS_SOCK_PATH_MAX 108
struct mmds_config {
    uint32_t ipv4;          /* network byte order; 0: the default */
    bool v2;                /* session tokens required */
    bool imds_compat;       /* IMDS text whatever the guest's Accept header */
    const char *data_path;  /* --mmds data=FILE: the store's first contents */
    uint64_t size_limit;    /* bytes; 0: the default */
    bool given;             /* --mmds was on the command line */
    /* Set when the service starts: its HTTP server's Unix socket. */
    char sock_path[MMDS_SOCK_PATH_MAX];
};

/* virtio-balloon (Firecracker's balloon). */
struct balloon_config {
    bool enabled;
    uint32_t amount_mib;       /* the target: memory the guest should give back */
    bool deflate_on_oom;       /* the guest may take pages back under memory pressure */
    uint32_t stats_interval_s; /* 0: no statistics queue */
    bool free_page_reporting;  /* the guest reports the pages it frees; ember discards them */
    bool free_page_hinting;    /* on request, the guest hints its free pages; ember discards them */
};
#define BALLOON_MAX_STATS_INTERVAL 65535 /* seconds (Firecracker's limit) */

/* virtio-vsock with Firecracker's Unix-socket host side. */
#define CONFIG_VSOCK_MIN_CID 3          /* 0-2 are the hypervisor's and the host's */
#define CONFIG_VSOCK_MAX_CID 0xfffffffeu /* 0xffffffff is VMADDR_CID_ANY */
#define VSOCK_UDS_PATH_LIMIT 108         /* sun_path, its terminating NUL included */

struct vsock_config {
    const char *uds_path; /* NULL: no vsock device */
    const char *id;       /* the control API's vsock_id (optional, shown back) */
    uint32_t cid;         /* the guest's CID */
};

struct vm_config {
    const char *kernel_path;
    const char *initrd_path;
    const char *cmdline;
    unsigned nr_vcpus;
    uint64_t mem_size;
    bool skip_host_check;
    enum accel_kind accel;
    struct disk_config disks[CONFIG_MAX_DISKS];
    unsigned nr_disks;
    bool rng;
    struct rate_limit_config rng_limit; /* the entropy device's rate_limiter */
    enum console_kind console;
    struct nic_config nics[CONFIG_MAX_NICS];
    unsigned nr_nics;
    struct pmem_config pmem[CONFIG_MAX_PMEM];
    unsigned nr_pmem;
    struct fs_config shares[CONFIG_MAX_SHARES];
    unsigned nr_shares;
    bool track_dirty_pages; /* for Diff snapshots */
    enum guest_pages pages; /* --huge-pages, machine-config huge_pages */
    bool ksm;               /* guest RAM offered to KSM (--ksm) */
    struct vsock_config vsock;
    struct balloon_config balloon;
    bool smt;               /* two threads per core (vCPUs 2k, 2k+1), as Firecracker's smt */
    enum virtio_transport transport;
    bool boot_timer;        /* Firecracker's --boot-timer device */
    const char *serial_out_path; /* COM1's output there instead of stdout */
    struct bucket_config serial_limit; /* PUT /serial's rate_limiter: excess dropped */
    struct mmds_config mmds;
    /* Firecracker's CPU template (static or custom); NULL: none. */
    const struct cpu_template *cpu_template;
    const char *gdb_address;     /* --gdb tcp:HOST:PORT or unix:PATH (NULL: no stub) */
    bool gdb_wait;               /* hold the vCPUs until the debugger continues */
};

/* New paths for a restored VM's disks and TAP devices, by id (the API's
 * drive_id / iface_id, or vda, vdb ... / eth0, eth1 ... by position). */
struct vm_override {
    const char *id, *value;
};
struct vm_overrides {
    struct vm_override disks[CONFIG_MAX_DISKS], nics[CONFIG_MAX_NICS];
    unsigned nr_disks, nr_nics;
    bool track_dirty_pages; /* turn tracking on (Diff snapshots of the restored VM) */
    const char *vsock_uds;  /* if not NULL: the vsock device's new uds_path */
    bool clock_realtime;    /* advance the guest's clock by the time since the snapshot */
    const char *serial_out_path; /* COM1's output (not kept in snapshots) */
    struct bucket_config serial_limit; /* ... and its rate limit (neither) */
    const char *gdb_address; /* a GDB stub for the restored VM (--gdb) */
    bool gdb_wait;
    unsigned expect_vcpus;  /* if not 0: the snapshot must have this many vCPUs */
    /* The restored machine's NICs serve the metadata service: start it
     * (its store starts empty, as Firecracker's) and set cfg->mmds. */
    int (*start_mmds)(void *ctx, struct vm_config *cfg);
    void *mmds_ctx;
    uint64_t expect_mem;    /* if not 0: ... and this much memory */
};

void vm_config_defaults(struct vm_config *cfg);
/* "pci", "mmio" (and "auto") and back; parse returns false for anything else. */
const char *transport_name(enum virtio_transport t);
bool transport_parse(const char *name, enum virtio_transport *out);
/* The transport a VM with this command line gets: 'want', or for AUTO,
 * MMIO when the command line has the word pci=off. */
enum virtio_transport transport_resolve(enum virtio_transport want, const char *cmdline);
/* "thp", "none", "2M" and back; parse returns false for anything else. */
const char *guest_pages_name(enum guest_pages pages);
bool guest_pages_parse(const char *name, enum guest_pages *out);
/* "auto", "kvm", "soft" and back; parse returns false for anything else. */
const char *accel_kind_name(enum accel_kind kind);
bool accel_kind_parse(const char *name, enum accel_kind *out);
/* --balloon's value (modified in place, as getsubopt does). */
int balloon_config_parse(char *spec, struct balloon_config *out) EMBER_MUST_CHECK;
/* --share's value, DIR,tag=T[,ro][,cache=auto|always|never] (modified in
 * place, as getsubopt does). */
int fs_config_parse(char *spec, struct fs_config *out) EMBER_MUST_CHECK;
/* A share's fields are sound (a tag of 1..36 bytes, a path) and its tag is
 * not one of 'others'. */
int fs_config_check(const struct fs_config *c, const struct fs_config *others, unsigned nr)
    EMBER_MUST_CHECK;
/* --mmds's value (modified in place, as getsubopt does). */
int mmds_config_parse(char *spec, struct mmds_config *out) EMBER_MUST_CHECK;
/* The balloon fits in the guest's memory. */
int balloon_config_check(const struct balloon_config *b, uint64_t mem_size) EMBER_MUST_CHECK;
/* A stable, locally administered unicast MAC from the backend and position:
 * the same configuration gives the guest the same address every time. */
void config_generate_mac(const struct nic_config *n, unsigned index, uint8_t mac[6]);

#endif

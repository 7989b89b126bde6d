/* The board devices are placed on, and the one interface every device
 * offers the VMM.
 *
 * A device kind provides a setup function (listed in the VMM's board table,
 * vmm/pc.c) that reads the configuration, creates its devices, places them on
 * the buses and adds each with board_add(). From then on the VMM handles all
 * devices alike through their device_ops: snapshots, pause, metrics, the
 * state dump and teardown loop over the board's list and never name a
 * device. */
#ifndef EMBER_DEVICES_BOARD_H
#define EMBER_DEVICES_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/acpi.h"
#include "bus/bus.h"
#include "bus/pci/pci.h"
#include "config/config.h"
#include "devices/chardev.h"
#include "devices/irq.h"
#include "mem/guest_mem.h"
#include "snapshot/record.h"
#include "util/evloop.h"

#define BOARD_MAX_DEVICES 48
#define BOARD_MAX_POSTED 8
#define BOARD_CMDLINE_MAX 2048
#define DEVICE_MAX_COUNTERS 16

/* A named running total a device reports for metrics. */
struct device_counter {
    const char *name;
    uint64_t value;
};

/* What the VMM may ask of any device; every member may be NULL. 'dev' is
 * the pointer given to board_add(). */
struct device_ops {
    /* Free the device (called once, in reverse order of creation, with the
     * vCPUs gone and the event loop no longer running its handlers). */
    void (*destroy)(void *dev);
    /* Snapshots, with the VM paused: everything the guest could observe.
     * load checks every value (a snapshot is untrusted input). */
    void (*save)(void *dev, struct rec r);
    int (*load)(void *dev, struct rec r) EMBER_MUST_CHECK;
    /* The VM pauses (finish work in flight, stop watching host events) or
     * resumes. From the event loop's thread, with the vCPUs parked. */
    void (*pause)(void *dev, bool paused);
    /* Running totals for metrics; returns how many were written to 'out'. */
    size_t (*counters)(void *dev, struct device_counter *out);
    /* Log what a stalled guest may be waiting for (SIGUSR2). */
    void (*dump)(void *dev);
};

struct device {
    const struct device_ops *ops;
    void *dev;
    /* The model behind it, for board_find(): 'kind' is an address unique to
     * the kind of device (by default its ops, and the model is 'dev'). */
    const void *kind;
    void *model;
    /* Snapshot key: a record 'name', or an item of the list 'group' when
     * there may be several. */
    char name[32];
    const char *group;
    /* Its group in the metrics ("uart", "block_<drive id>"); empty: none. */
    char metrics[80];
};

/* What happened to the machine, as devices report it. */
enum board_event {
    BOARD_RESET,     /* the guest pulled the reset line (reboot) */
    BOARD_POWER_OFF, /* ACPI S5 */
    BOARD_PANIC,     /* the guest's panic notifier (pvpanic) */
};

struct board_host_ops {
    /* From any thread. */
    void (*event)(void *ctx, enum board_event event);
};

/* Where the host's console input goes: returns how many bytes the device
 * took. The device that owns the console sets it at setup. */
typedef size_t (*board_input_fn)(void *dev, const uint8_t *buf, size_t len);

/* Backends opened before the VM was built (every problem with them is a
 * setup error); a device that takes one over sets its slot to NULL / true. */
struct blockfile;
struct net_backend;
struct vsock_uds;
/* A virtio-pmem device's file, mapped into guest memory at 'gpa'. */
struct pmem_backing {
    int fd;
    uint64_t file_size;
    uint64_t gpa, size;  /* the region: the file rounded up to 2 MiB */
};

struct board_backends {
    struct blockfile *disks; /* cfg->nr_disks of them */
    bool *disk_taken;
    struct net_backend **nets; /* cfg->nr_nics of them */
    struct vsock_uds **vsock;  /* the vsock host side, if cfg->vsock has one */
    struct pmem_backing *pmem; /* cfg->nr_pmem of them, mapped already */
};

/* Services for PCI functions: MSI delivery and ioeventfds (bus/pci/msix.h). */
struct pci_platform;

/* Port registers whose writes may arrive late (board_post_writes). */
struct board_posted {
    uint16_t port;
    uint16_t len;
};

struct board {
    const struct vm_config *cfg;
    struct guest_mem *mem;
    struct bus *pio, *mmio;
    struct pci_bus *pci;
    const struct irq_sink *irq;
    struct evloop *loop;
    const struct pci_platform *pci_platform;
    struct board_backends backends;
    const struct board_host_ops *host;
    void *host_ctx;
    struct chardev_host console; /* guest console output */
    struct chardev_host serial_out; /* COM1's own host end, if not the console */

    /* Filled in by setup. */
    board_input_fn console_input;
    void *console_input_dev;
    struct acpi_device acpi[ACPI_MAX_DEVICES];
    unsigned nr_acpi;
    /* Words devices add to the kernel command line (virtio-mmio's). */
    char cmdline[BOARD_CMDLINE_MAX];
    size_t cmdline_len;
    unsigned nr_mmio; /* virtio-mmio devices placed so far */
    struct board_posted posted[BOARD_MAX_POSTED];
    unsigned nr_posted;
    struct device devices[BOARD_MAX_DEVICES];
    unsigned nr_devices;
};

/* A GSI of the board's interrupt sink. */
struct irq_line board_irq(const struct board *b, uint32_t gsi);
void board_event(const struct board *b, enum board_event event);

/* Add a device: the board owns it from now on (its destroy runs at
 * board_destroy; if the board is full it runs at once and NULL comes back
 * with err_msg() set). 'name' is its snapshot key. The entry's kind, model,
 * group and metrics may be filled in afterwards. */
struct device *board_add(struct board *b, const struct device_ops *ops, void *dev,
                         const char *name);
/* Describe a device to the guest's firmware tables (ACPI DSDT). */
int board_describe(struct board *b, const struct acpi_device *desc) EMBER_MUST_CHECK;
/* Add a word to the kernel command line (a space goes before it). */
int board_cmdline_append(struct board *b, const char *fmt, ...) EMBER_PRINTF(2, 3)
    EMBER_MUST_CHECK;
/* Writes to ports [port, port+len) of this device change nothing the guest
 * can see except through a later access to the device (a read, another
 * register) or output to the host: the VMM may deliver them late, in the
 * order written, as long as before that next access (see the backend's
 * post_pio). Saves a trip to user space per write where the backend can
 * queue them. Only the first BOARD_MAX_POSTED ranges count. */
void board_post_writes(struct board *b, uint16_t port, uint16_t len);
/* The device that receives the host's console input. */
void board_take_console(struct board *b, board_input_fn input, void *dev);

/* The n-th model of 'kind' (0-based, in order of creation), or NULL. */
void *board_find(const struct board *b, const void *kind, unsigned n);

/* Loops over every device, in order of creation (destroy: reverse). */
void board_save(struct board *b, struct rec r);
int board_load(struct board *b, struct rec r) EMBER_MUST_CHECK;
void board_pause(struct board *b, bool paused);
void board_dump(struct board *b);
void board_destroy(struct board *b);

#endif

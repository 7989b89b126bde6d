/* PCI bus 0 behind configuration mechanism #1 (ports 0xCF8-0xCFF, offsets 0-7
 * of the range registered on the port bus). A function's configuration space
 * is a 256-byte array with a mask of the bits the guest may write; devices
 * hook writes that have side effects (BARs, command register, capabilities). */
#ifndef EMBER_BUS_PCI_PCI_H
#define EMBER_BUS_PCI_PCI_H

#include <pthread.h>
#include <stdint.h>

#include "bus/bus.h"
#include "snapshot/record.h"

#define PCI_CONFIG_SIZE 256
#define PCI_MAX_SLOTS 32

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_NUM_BARS 6

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_STATUS_INTERRUPT 0x08

struct pci_device;

struct pci_device_ops {
    /* After the guest wrote [offset, offset+len) of configuration space. */
    void (*config_written)(struct pci_device *dev, unsigned offset, unsigned len);
    /* Reads of configuration space that are not plain memory (a window into
     * a BAR, for instance): refresh config[offset..] before it is returned. */
    void (*config_read)(struct pci_device *dev, unsigned offset, unsigned len);
    /* A BAR appeared, moved or went away: 'mapped' says whether the device
     * must now decode [addr, addr + size). */
    void (*bar_remap)(struct pci_device *dev, unsigned bar, uint64_t addr, bool mapped);
};

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
    enum pci_bar_type type;
    uint64_t size;       /* a power of two, at least 16 */
    bool mapped;         /* as last reported through bar_remap */
    uint64_t mapped_addr;
};

struct pci_device {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE]; /* bits the guest may change */
    const struct pci_device_ops *ops;
    void *ctx;
    const char *name;
    unsigned slot;
    struct pci_bar bars[PCI_NUM_BARS];
    uint8_t cap_end; /* where the next capability goes */
};

struct pci_bus {
    pthread_mutex_t lock;
    uint32_t config_address;
    struct pci_device *slots[PCI_MAX_SLOTS];
};

extern const struct bus_ops pci_conf1_bus_ops;

void pci_bus_init(struct pci_bus *bus);
void pci_bus_destroy(struct pci_bus *bus);
/* Place a function 0 device in 'slot'. */
int pci_bus_add(struct pci_bus *bus, struct pci_device *dev, unsigned slot) EMBER_MUST_CHECK;
/* Lowest free slot, or -ENOSPC. */
int pci_bus_free_slot(const struct pci_bus *bus);

/* Configuration space access for bus 0, function 0 of 'slot' (unit tests and
 * the conf1 ports). Reads of absent devices return all ones. */
uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned offset,
                         unsigned len);
void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned offset,
                      unsigned len, uint32_t value);

/* Identity fields of a device header. */
void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, uint8_t revision);
/* The host bridge at 00:00.0. */
void pci_host_bridge_init(struct pci_device *dev);

/* A memory BAR of 'size' bytes at 'addr' (its initial placement, as firmware
 * would have assigned it). 64-bit BARs take two slots. */
int pci_device_add_bar(struct pci_device *dev, unsigned bar, enum pci_bar_type type,
                       uint64_t size, uint64_t addr) EMBER_MUST_CHECK;
/* Current address of a BAR as programmed in configuration space. */
uint64_t pci_bar_address(const struct pci_device *dev, unsigned bar);
/* Append a capability; 'body' is everything after its ID and next pointer.
 * Returns its offset in configuration space, or a negative errno. */
int pci_device_add_capability(struct pci_device *dev, uint8_t id, const void *body,
                              size_t body_len);
/* Re-evaluate BAR mappings (after a reset, or at start). Caller holds no lock. */
void pci_device_update_bars(struct pci_device *dev);
/* Snapshots: configuration space. Loading checks the identity (vendor,
 * device, class, header) against this device, then maps the BARs where the
 * guest had put them. */
void pci_device_save(const struct pci_device *dev, struct rec r);
int pci_device_load(struct pci_device *dev, struct rec r) EMBER_MUST_CHECK;

#endif

/* virtio over MMIO (virtio 1.x, register layout version 2), as Firecracker's
 * devices are: each device a 4 KiB window of registers and configuration
 * space at the start of the 32-bit hole, announced to the guest on the
 * kernel command line (virtio_mmio.device=4K@ADDR:IRQ) and in the DSDT
 * (LNRO0005), with one IOAPIC pin of its own. Queue notifications arrive
 * through ioeventfds matched on the queue index (or on the bus, from a
 * vCPU, without them) and are processed on the event loop; interrupts leave
 * as edges on the pin, through an irqfd with KVM. The device models are
 * the same as over PCI. */
#ifndef EMBER_VIRTIO_TRANSPORT_MMIO_H
#define EMBER_VIRTIO_TRANSPORT_MMIO_H

#include "bus/bus.h"
#include "bus/pci/platform.h"
#include "devices/irq.h"
#include "virtio/virtio.h"

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION 2
#define VIRTIO_MMIO_VENDOR 0x4d424d45 /* "EMBM" */
#define VIRTIO_MMIO_SIZE 0x1000

/* Registers (32-bit accesses only; configuration space from 0x100). */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_VENDOR_ID 0x00c
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_STATUS 0x060
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_DRIVER_LOW 0x090
#define VMMIO_QUEUE_DRIVER_HIGH 0x094
#define VMMIO_QUEUE_DEVICE_LOW 0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VMMIO_SHM_SEL 0x0ac
#define VMMIO_SHM_LEN_LOW 0x0b0
#define VMMIO_SHM_LEN_HIGH 0x0b4
#define VMMIO_SHM_BASE_LOW 0x0b8
#define VMMIO_SHM_BASE_HIGH 0x0bc
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

#define VMMIO_INT_VRING 1u
#define VMMIO_INT_CONFIG 2u

struct virtio_mmio;

/* Context of one queue's ioeventfd handler. */
struct virtio_mmio_notifier {
    struct virtio_mmio *vm;
    unsigned queue;
};

struct virtio_mmio {
    struct virtio_dev *vdev;
    const struct pci_platform *plat;
    struct bus *bus;
    uint64_t base;
    uint32_t gsi;
    struct irq_line irq; /* without an irqfd: pulsed for each interrupt */
    int irq_fd;          /* an irqfd on 'gsi' (KVM), or -1 */
    uint32_t device_feature_select;
    uint32_t driver_feature_select;
    uint32_t queue_select;
    uint32_t interrupt_status;
    bool mapped;
    int notify_fd[VIRTIO_MAX_QUEUES];
    bool notify_bound[VIRTIO_MAX_QUEUES];
    struct virtio_mmio_notifier notifiers[VIRTIO_MAX_QUEUES];
    uint64_t interrupts; /* edges sent, for the dump */
    char name[32];
};

/* Create the transport for 'vdev' with its registers at 'base' on 'bus' and
 * its interrupt on 'irq' (an irqfd is used when the platform has one).
 * Registers ioeventfd handlers with plat->loop. */
int virtio_mmio_init(struct virtio_mmio *vm, struct virtio_dev *vdev, struct bus *bus,
                     uint64_t base, struct irq_line irq, const struct pci_platform *plat)
    EMBER_MUST_CHECK;
void virtio_mmio_destroy(struct virtio_mmio *vm);
/* Register access at offsets within the window (the MMIO bus's ops). */
extern const struct bus_ops virtio_mmio_bus_ops;
/* Stop (or restart) all processing while the VM is paused. */
void virtio_mmio_set_paused(struct virtio_mmio *vm, bool paused);
/* Snapshots: the registers, the device's status and features, its queues
 * and the model's own state; loading checks each against this device. */
void virtio_mmio_save(struct virtio_mmio *vm, struct rec r);
int virtio_mmio_load(struct virtio_mmio *vm, struct rec r) EMBER_MUST_CHECK;
void virtio_mmio_dump(struct virtio_mmio *vm);

/* The IOAPIC pin of the n-th virtio-mmio device, or -1 past the last one:
 * the free ISA lines first (a guest without an IOAPIC can use those), then
 * 16-23. */
int virtio_mmio_gsi(unsigned n);

/* Put 'vdev' on the board as its next virtio-mmio device: its window, its
 * pin, its word on the kernel command line and its DSDT entry; the board
 * owns both from now on (see virtio_attach). */
int virtio_mmio_board_add(struct board *b, struct virtio_dev *vdev, const char *metrics)
    EMBER_MUST_CHECK;

#endif

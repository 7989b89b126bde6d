/* virtio over PCI (virtio 1.x "modern" devices only). One 32-bit memory BAR
 * holds the common configuration, ISR, device configuration, notification
 * area and the MSI-X table and PBA. Queue notifications arrive through
 * ioeventfds and are processed on the event loop; interrupts leave through
 * MSI-X messages (irqfds) or, if the driver did not enable MSI-X, INTx. */
#ifndef EMBER_VIRTIO_TRANSPORT_PCI_H
#define EMBER_VIRTIO_TRANSPORT_PCI_H

#include "bus/bus.h"
#include "bus/pci/msix.h"
#include "bus/pci/pci.h"
#include "bus/pci/platform.h"
#include "devices/irq.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_BAR_SIZE 0x8000

struct virtio_pci;

/* Context of one queue's ioeventfd handler. */
struct virtio_pci_notifier {
    struct virtio_pci *vp;
    unsigned queue;
};

struct virtio_pci {
    struct pci_device pci;
    struct virtio_dev *vdev;
    struct msix msix;
    const struct pci_platform *plat;
    struct irq_line intx;
    uint32_t device_feature_select;
    uint32_t driver_feature_select;
    uint16_t queue_select;
    uint16_t config_vector;
    uint16_t queue_vector[VIRTIO_MAX_QUEUES];
    uint8_t isr;
    bool intx_level;
    bool bar_mapped;
    uint64_t bar_addr;
    int notify_fd[VIRTIO_MAX_QUEUES];
    bool notify_bound[VIRTIO_MAX_QUEUES];
    struct virtio_pci_notifier notifiers[VIRTIO_MAX_QUEUES];
    uint8_t cfg_cap;   /* offset of the PCI configuration access capability */
    char name[32];
};

/* Create the transport for 'vdev' at PCI 'slot' with its BAR at 'bar_addr'
 * and INTx on 'intx'. Registers ioeventfd handlers with plat->loop. */
int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *vdev, struct pci_bus *bus,
                    unsigned slot, uint64_t bar_addr, struct irq_line intx,
                    const struct pci_platform *plat) EMBER_MUST_CHECK;
void virtio_pci_destroy(struct virtio_pci *vp);
/* Stop (or restart) all processing for this device while the VM is paused.
 * Called from the event loop's thread with the vCPUs parked. */
void virtio_pci_set_paused(struct virtio_pci *vp, bool paused);
/* Snapshots: configuration space, MSI-X, the transport's registers, the
 * device's status and features and its queues. The VM is paused (nothing in
 * flight). Loading checks everything against this device and leaves it as
 * the guest's driver had it. */
void virtio_pci_save(struct virtio_pci *vp, struct rec r);
/* Log the device's interrupt and queue state (ember's SIGUSR2 dump). */
void virtio_pci_dump(struct virtio_pci *vp);
int virtio_pci_load(struct virtio_pci *vp, struct rec r) EMBER_MUST_CHECK;

/* Put 'vdev' on the board's PCI bus in the next free slot, with its BAR
 * where firmware would have put it and INTx routed as the DSDT says; the
 * board owns both from now on (see virtio_attach). */
int virtio_pci_board_add(struct board *b, struct virtio_dev *vdev, const char *metrics)
    EMBER_MUST_CHECK;

/* BAR access, as the MMIO bus and the configuration access window use it. */
extern const struct bus_ops virtio_pci_bar_ops;

#endif

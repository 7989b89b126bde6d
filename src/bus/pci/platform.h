/* What the VMM provides to PCI functions: MSI delivery (bus/pci/msix.h) and
 * ioeventfds — guest writes to an MMIO address that signal an eventfd
 * instead of reaching a vCPU's exit path — with the event loop that serves
 * them. */
#ifndef EMBER_BUS_PCI_PLATFORM_H
#define EMBER_BUS_PCI_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/pci/msix.h"
#include "util/evloop.h"

struct pci_platform {
    struct bus *mmio;
    struct evloop *loop;
    const struct msi_ops *msi;
    void *msi_ctx;
    /* Bind an eventfd to guest writes at an MMIO address (false to unbind),
     * of any value or (datamatch non-NULL) only of *datamatch; NULL when the
     * CPU backend has none (writes then arrive on the bus). */
    int (*ioeventfd)(void *ctx, int fd, uint64_t address, unsigned len,
                     const uint64_t *datamatch, bool assign);
    void *ioeventfd_ctx;
    /* An interrupt line any thread raises with one write: an eventfd bound
     * to 'gsi' (a KVM irqfd; each write is an edge). -ENOTSUP when the
     * backend has none: the device then pulses the line through its
     * irq_line. NULL: none either. */
    int (*irqfd)(void *ctx, uint32_t gsi, int *fd);
    void (*irqfd_release)(void *ctx, uint32_t gsi, int fd);
    void *irqfd_ctx;
};

#endif

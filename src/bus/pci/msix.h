/* MSI-X for an emulated PCI function: the capability, the vector table and
 * the pending-bit array, with function and per-vector masking. Messages are
 * delivered through a platform MSI interface (irqfds with KVM), so a device
 * can interrupt from any thread without a vCPU's help. */
#ifndef EMBER_BUS_PCI_MSIX_H
#define EMBER_BUS_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/pci/pci.h"
#include "util/err.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE 16
#define MSIX_NO_VECTOR 0xffff

struct msi_ops {
    /* A deliverable MSI with its own handle (route + irqfd). */
    int (*alloc)(void *ctx, int *handle);
    /* Program where it goes; a disabled handle must not deliver. */
    int (*set)(void *ctx, int handle, uint64_t address, uint32_t data, bool enabled);
    void (*fire)(void *ctx, int handle);
    void (*release)(void *ctx, int handle);
};

struct msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix {
    struct pci_device *dev;
    unsigned nr_vectors;
    uint8_t cap;     /* offset of the capability in configuration space */
    bool enabled;
    bool function_masked;
    struct msix_entry table[MSIX_MAX_VECTORS];
    uint64_t pending; /* one bit per vector */
    int handles[MSIX_MAX_VECTORS];
    const struct msi_ops *ops;
    void *ops_ctx;
};

/* Adds the capability to 'dev'; table at 'table_offset' and PBA at
 * 'pba_offset' of BAR 'bar'. */
int msix_init(struct msix *m, struct pci_device *dev, unsigned nr_vectors, unsigned bar,
              uint32_t table_offset, uint32_t pba_offset, const struct msi_ops *ops,
              void *ops_ctx) EMBER_MUST_CHECK;
void msix_destroy(struct msix *m);
/* Table and PBA accesses at offsets within each. */
void msix_table_read(struct msix *m, uint64_t offset, void *data, unsigned len);
void msix_table_write(struct msix *m, uint64_t offset, const void *data, unsigned len);
void msix_pba_read(struct msix *m, uint64_t offset, void *data, unsigned len);
/* After a configuration-space write (the message control word may change). */
void msix_config_written(struct msix *m);
bool msix_is_enabled(const struct msix *m);
/* Deliver 'vector' now, or mark it pending while it is masked. Returns false
 * if the vector does not exist. */
bool msix_notify(struct msix *m, unsigned vector);
/* Snapshots: the vector table, pending bits and control state; loading
 * reprograms every message. */
void msix_save(const struct msix *m, struct rec r);
int msix_load(struct msix *m, struct rec r) EMBER_MUST_CHECK;

#endif

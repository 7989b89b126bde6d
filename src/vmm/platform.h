/* Services the VMM offers to devices, implemented with the CPU backend:
 * MSI delivery (a GSI route plus an irqfd per vector, or direct injection)
 * and ioeventfds. */
#ifndef EMBER_VMM_PLATFORM_H
#define EMBER_VMM_PLATFORM_H

#include <pthread.h>
#include <stdint.h>

#include "accel/accel.h"
#include "bus/pci/msix.h"

#define PLATFORM_MAX_MSI 256

struct platform_msi {
    uint32_t gsi;        /* with irqfds: its route and eventfd */
    int fd;
    uint64_t address;    /* without: the message itself */
    uint32_t data;
    bool enabled;
    bool in_use;
};

struct platform {
    const struct accel_ops *accel;
    struct accel_vm *avm;
    pthread_mutex_t lock;
    struct platform_msi msi[PLATFORM_MAX_MSI];
};

extern const struct msi_ops platform_msi_ops;

void platform_init(struct platform *p, const struct accel_ops *accel, struct accel_vm *avm);
void platform_destroy(struct platform *p);
int platform_ioeventfd(void *ctx, int fd, uint64_t address, unsigned len,
                       const uint64_t *datamatch, bool assign);
/* pci_platform.irqfd: an eventfd bound to an interrupt line (KVM). */
int platform_irqfd(void *ctx, uint32_t gsi, int *fd);
void platform_irqfd_release(void *ctx, uint32_t gsi, int fd);

#endif

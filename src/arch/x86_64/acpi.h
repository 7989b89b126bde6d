/* ACPI tables ember generates for the guest: RSDP, XSDT, FADT (full, not
 * hardware-reduced: PM1 event/control blocks and a PM timer), FACS, MADT and
 * a DSDT describing the PCI host bridge and the legacy devices. */
#ifndef EMBER_ARCH_X86_64_ACPI_H
#define EMBER_ARCH_X86_64_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define ACPI_S5_SLP_TYP 5 /* the value the guest writes to PM1_CNT.SLP_TYP for S5 */

#define ACPI_MAX_DEVICES 64
#define ACPI_MAX_IO 4
#define ACPI_MAX_MEM 2

/* A device the DSDT describes under \_SB: its name, hardware ID, I/O
 * ranges and interrupt. */
struct acpi_device {
    char name[5];       /* four characters */
    const char *hid;    /* an EISA ID ("PNP0501"), or a string ID if hid_is_string */
    bool hid_is_string;
    int uid;            /* -1: no _UID */
    struct {
        uint16_t base;
        uint8_t len;
    } io[ACPI_MAX_IO];
    unsigned nr_io;
    struct {
        uint32_t base, len;
    } mem[ACPI_MAX_MEM];  /* Memory32Fixed ranges */
    unsigned nr_mem;
    int irq;            /* -1: none */
    bool irq_gsi;       /* an Extended Interrupt descriptor (any GSI, edge) for irq */
};

struct acpi_config {
    unsigned nr_vcpus;
    uint8_t ioapic_id;
    const struct acpi_device *devices; /* in the order the DSDT lists them */
    unsigned nr_devices;
    /* Non-zero: the multiprocessor wakeup mailbox's address, listed in the
     * MADT (the APs start through it instead of INIT/SIPI). */
    uint64_t mp_wakeup_mailbox;
    /* The virtio devices are on virtio-mmio and nothing is on PCI: no host
     * bridge (PCI0) to describe, so the guest neither loads its routing
     * table nor scans a bus. */
    bool without_pci;
};

/* Build all tables into 'area' (guest-physical address 'area_gpa'); the RSDP
 * sits at its start. */
int acpi_build(const struct acpi_config *cfg, uint8_t *area, size_t area_size,
               uint64_t area_gpa) EMBER_MUST_CHECK;

/* Sum of bytes (a valid table sums to 0). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif

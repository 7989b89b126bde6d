/* The CPU backend: everything ember asks of hardware-assisted (or any other)
 * CPU virtualization. KVM is the first implementation; devices never see it.
 * All functions return 0 or a negative errno with err_set() context. */
#ifndef EMBER_ACCEL_ACCEL_H
#define EMBER_ACCEL_ACCEL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/cpu_state.h"
#include "util/buf.h"
#include "util/err.h"

/* Signal used to kick a vCPU thread out of vcpu_run; its handler does nothing. */
#define ACCEL_KICK_SIGNAL SIGUSR1

struct accel_vm;
struct accel_vcpu;

enum accel_exit_kind {
    ACCEL_EXIT_IO,          /* port I/O, possibly repeated (string I/O) */
    ACCEL_EXIT_MMIO,        /* access to guest-physical space without RAM */
    ACCEL_EXIT_INTERRUPTED, /* kicked or a signal arrived: check for commands */
    ACCEL_EXIT_SHUTDOWN,    /* triple fault */
    ACCEL_EXIT_HALT,        /* HLT with no in-kernel interrupt controller */
    ACCEL_EXIT_ERROR,       /* the backend cannot continue; 'detail' says why */
};

struct accel_exit {
    enum accel_exit_kind kind;
    union {
        struct {
            uint16_t port;
            uint8_t size;     /* 1, 2 or 4 */
            bool is_write;
            uint32_t count;   /* repetitions, data holds count*size bytes */
            uint8_t *data;
        } io;
        struct {
            uint64_t gpa;
            uint8_t *data;
            uint8_t len;
            bool is_write;
        } mmio;
    };
    char detail[160];
};

struct accel_vm_params {
    unsigned nr_vcpus;
};

/* One routing entry from a GSI to an interrupt controller pin. */
enum accel_irqchip { ACCEL_PIC_MASTER, ACCEL_PIC_SLAVE, ACCEL_IOAPIC };
struct accel_irq_route {
    uint32_t gsi;
    enum accel_irqchip chip;
    uint32_t pin;
};

struct accel_ops {
    const char *name;

    int (*vm_create)(const struct accel_vm_params *params, struct accel_vm **out);
    void (*vm_destroy)(struct accel_vm *vm);
    /* 'log_dirty': track the pages the guest writes (get_dirty_log). */
    int (*map_memory)(struct accel_vm *vm, uint32_t slot, uint64_t gpa,
                      uint64_t size, void *hva, bool log_dirty);
    /* Pages of 'slot' written since the last call, one bit per 4 KiB page
     * ORed into 'bitmap' (which holds size/4096 bits, rounded up to 64). */
    int (*get_dirty_log)(struct accel_vm *vm, uint32_t slot, uint64_t size, uint64_t *bitmap);
    /* Interrupt controllers (PIC, IOAPIC, per-vCPU local APICs) and the PIT. */
    int (*create_irqchip)(struct accel_vm *vm, const struct accel_irq_route *routes,
                          size_t nr_routes);
    int (*set_irq_line)(struct accel_vm *vm, uint32_t gsi, bool level);
    /* MSI delivery without a vCPU thread: a GSI routed to an MSI message,
     * fired by writing the eventfd bound to it. */
    int (*msi_route_add)(struct accel_vm *vm, uint32_t *gsi);
    int (*msi_route_set)(struct accel_vm *vm, uint32_t gsi, uint64_t address, uint32_t data,
                         bool enabled);
    int (*irqfd)(struct accel_vm *vm, int fd, uint32_t gsi, bool assign);
    /* Guest writes of 'len' bytes to MMIO 'address' signal 'fd' instead of
     * exiting to ember. */
    int (*ioeventfd)(struct accel_vm *vm, int fd, uint64_t address, unsigned len, bool assign);
    /* The guest's clock (kvm-clock), saved at pause and restored at resume
     * so that guest time does not advance while the VM is paused. */
    int (*get_clock)(struct accel_vm *vm, uint64_t *ns);
    int (*set_clock)(struct accel_vm *vm, uint64_t ns);
    /* CPUID leaves the backend can offer, before ember adjusts them. */
    int (*supported_cpuid)(struct accel_vm *vm, struct x86_cpuid_entry *entries,
                           size_t max, size_t *count);

    int (*vcpu_create)(struct accel_vm *vm, unsigned index, struct accel_vcpu **out);
    void (*vcpu_destroy)(struct accel_vcpu *vcpu);
    int (*vcpu_set_cpuid)(struct accel_vcpu *vcpu, const struct x86_cpuid_entry *entries,
                          size_t count);
    int (*vcpu_set_msrs)(struct accel_vcpu *vcpu, const struct x86_msr *msrs,
                         size_t count);
    /* Read the MSRs whose 'index' is filled in. */
    int (*vcpu_get_msrs)(struct accel_vcpu *vcpu, struct x86_msr *msrs, size_t count);
    int (*vcpu_get_regs)(struct accel_vcpu *vcpu, struct x86_regs *regs);
    int (*vcpu_set_regs)(struct accel_vcpu *vcpu, const struct x86_regs *regs);
    int (*vcpu_get_sregs)(struct accel_vcpu *vcpu, struct x86_sregs *sregs);
    int (*vcpu_set_sregs)(struct accel_vcpu *vcpu, const struct x86_sregs *sregs);
    /* Run until an exit that ember must handle. On return from an I/O or MMIO
     * exit, read data must be written into exit->io.data / mmio.data before
     * the next vcpu_run. */
    int (*vcpu_run)(struct accel_vcpu *vcpu, struct accel_exit *exit);
    /* From any thread: make vcpu_run return ACCEL_EXIT_INTERRUPTED soon. */
    void (*vcpu_kick)(struct accel_vcpu *vcpu, pthread_t thread);

    /* Snapshots: everything the backend holds for a vCPU (registers, FPU,
     * MSRs, local APIC, pending events, CPUID ...) or for the VM (interrupt
     * controllers, timer, clock), in the backend's own encoding, which it
     * checks when taking it back. The VM must not be running. */
    int (*vcpu_save)(struct accel_vcpu *vcpu, struct buf *out);
    int (*vcpu_restore)(struct accel_vcpu *vcpu, const void *data, size_t len);
    int (*vm_save)(struct accel_vm *vm, struct buf *out);
    int (*vm_restore)(struct accel_vm *vm, const void *data, size_t len);
};

extern const struct accel_ops accel_kvm_ops;

#endif

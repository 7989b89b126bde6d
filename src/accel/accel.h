/* The CPU backend: everything ember asks of hardware-assisted (or any other)
 * CPU virtualization. Two implementations: KVM, and ember's own x86-64
 * engine (soft). Devices never see either. All functions return 0 or a
 * negative errno with err_set() context.
 *
 * A backend that runs the guest in the kernel (KVM) reports port and MMIO
 * accesses as exits that the next vcpu_run completes; one that executes the
 * guest itself calls the synchronous accel_io callbacks instead, in the
 * middle of the instruction, and its vcpu_run returns only INTERRUPTED,
 * SHUTDOWN or ERROR. Either way it supplies the PC's interrupt controllers,
 * PIT and clock behind create_irqchip, set_irq_line and get/set_clock. */
#ifndef EMBER_ACCEL_ACCEL_H
#define EMBER_ACCEL_ACCEL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/cpu_state.h"
#include "mem/guest_mem.h"
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
    ACCEL_EXIT_DEBUG,       /* a debugger's stop (vcpu_set_debug): see 'debug' */
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
        struct {
            uint8_t vector; /* 3: an INT3 at pc; 1: a step or a debug register hit (dr6) */
            uint64_t pc;    /* linear address (rip: the guest is in long mode) */
            uint64_t dr6;   /* B0-B3 (which debug register), BS (a single step) */
        } debug;
    };
    char detail[160];
};

/* Device access for a backend that executes the guest itself: called on the
 * vCPU's thread, synchronously. An MMIO access nobody claims returns false
 * (reads then give all-ones). */
struct accel_io {
    void (*pio)(void *ctx, uint16_t port, void *data, unsigned len, bool is_write);
    bool (*mmio)(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write);
    void *ctx;
    /* A posted port write (post_pio) arriving, on whichever thread delivers
     * it: a vCPU's before it returns an exit, or flush_posted's caller. */
    void (*posted_pio)(void *ctx, uint16_t port, const void *data, unsigned len);
};

struct accel_vm_params {
    unsigned nr_vcpus;
    const struct guest_mem *mem; /* its regions are mapped (map_memory) before any vCPU runs */
    struct accel_io io;
};

/* A debugger's control of a vCPU (vcpu_set_debug). */
#define ACCEL_DEBUG_SINGLESTEP 1u /* stop after one instruction */
#define ACCEL_DEBUG_SW_BP 2u      /* an INT3 stops the vCPU instead of reaching the guest */
#define ACCEL_DEBUG_HW_BP 4u      /* dr[] and dr7 are the debugger's breakpoints */
#define ACCEL_DEBUG_INJECT_BP 8u  /* the INT3 the vCPU stopped at is the guest's own:
                                     deliver it to the guest (once) */
#define ACCEL_DR7_ENABLE(n) (2ull << ((n) * 2))            /* G0..G3 */
#define ACCEL_DR7_RW(n, rw) ((uint64_t)(rw) << (16 + (n) * 4)) /* 0 exec, 1 write, 3 access */
#define ACCEL_DR7_LEN(n, len) ((uint64_t)(len) << (18 + (n) * 4)) /* 0:1 1:2 3:4 2:8 bytes */
struct accel_debug {
    unsigned flags; /* ACCEL_DEBUG_* (0: no debugging) */
    uint64_t dr[4];
    uint64_t dr7;
};

/* Capabilities (accel_ops.caps). */
#define ACCEL_CAP_IRQFD 1u /* MSIs through GSI routes and irqfds; else msi_inject */
#define ACCEL_CAP_WATCHPOINTS 2u /* the debug registers can watch data, not only code */
/* APs wait for the ACPI multiprocessor wakeup mailbox at LAYOUT_AP_MAILBOX
 * (no INIT/SIPI): the MADT must list it when there are several vCPUs */
#define ACCEL_CAP_MP_MAILBOX 4u

/* The most vCPUs ember's CPU engine runs (they take turns). */
#define ACCEL_SOFT_MAX_VCPUS 32

/* A named running total a backend reports (state dump, metrics). */
struct accel_counter {
    const char *name;
    uint64_t value;
};
#define ACCEL_MAX_COUNTERS 20

/* One routing entry from a GSI to an interrupt controller pin. */
enum accel_irqchip { ACCEL_PIC_MASTER, ACCEL_PIC_SLAVE, ACCEL_IOAPIC };
struct accel_irq_route {
    uint32_t gsi;
    enum accel_irqchip chip;
    uint32_t pin;
};

struct accel_ops {
    const char *name;
    unsigned caps; /* ACCEL_CAP_* */

    int (*vm_create)(const struct accel_vm_params *params, struct accel_vm **out);
    void (*vm_destroy)(struct accel_vm *vm);
    /* 'log_dirty': track the pages the guest writes (get_dirty_log). */
    int (*map_memory)(struct accel_vm *vm, uint32_t slot, uint64_t gpa,
                      uint64_t size, void *hva, bool log_dirty);
    /* ember wrote guest memory for a device (DMA): a backend that decodes
     * guest code drops what it decoded there (NULL if it needs not know). */
    void (*memory_written)(struct accel_vm *vm, uint64_t gpa, uint64_t len);
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
    /* Without ACCEL_CAP_IRQFD: deliver an MSI message now (any thread). */
    int (*msi_inject)(struct accel_vm *vm, uint64_t address, uint32_t data);
    /* Guest writes of 'len' bytes to MMIO 'address' (of the value
     * *datamatch only, if given) signal 'fd' instead of exiting to ember. */
    int (*ioeventfd)(struct accel_vm *vm, int fd, uint64_t address, unsigned len,
                     const uint64_t *datamatch, bool assign);
    /* Guest writes of up to 'len' bytes inside ports [port, port+len) may
     * be queued instead of exiting: each reaches io.posted_pio later, in
     * the order written, before any vCPU's next exit is returned and at
     * flush_posted. Only for registers whose writes no other access can
     * observe but through an exit. -ENOTSUP (or NULL) where the backend
     * cannot queue: the writes then exit as before. Call once the vCPUs
     * exist. */
    int (*post_pio)(struct accel_vm *vm, uint16_t port, unsigned len);
    /* Deliver the queued writes now, from any thread. */
    void (*flush_posted)(struct accel_vm *vm);
    /* The guest's clock in ns (kvm-clock), saved at pause and restored at
     * resume so that guest time does not advance while the VM is paused. */
    int (*get_clock)(struct accel_vm *vm, uint64_t *ns);
    int (*set_clock)(struct accel_vm *vm, uint64_t ns);
    /* KVM's KVM_CHECK_EXTENSION: 1 if the capability is there (NULL for a
     * backend that is not KVM). */
    int (*has_capability)(struct accel_vm *vm, uint32_t cap);
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
    /* The x87/SSE state as a 64-bit FXSAVE image. */
    int (*vcpu_get_fpu)(struct accel_vcpu *vcpu, uint8_t fxsave[512]);
    int (*vcpu_set_fpu)(struct accel_vcpu *vcpu, const uint8_t fxsave[512]);
    /* A debugger's breakpoints and stepping for this vCPU, from the next
     * vcpu_run on (the vCPU is not running); ACCEL_EXIT_DEBUG reports the
     * stops. Leaves the guest's own debug registers alone where the backend
     * can (the engine); with KVM the debugger's take their place while set. */
    int (*vcpu_set_debug)(struct accel_vcpu *vcpu, const struct accel_debug *dbg);
    /* Run until an exit that ember must handle. On return from an I/O or MMIO
     * exit, read data must be written into exit->io.data / mmio.data before
     * the next vcpu_run. */
    int (*vcpu_run)(struct accel_vcpu *vcpu, struct accel_exit *exit);
    /* From any thread: make vcpu_run return ACCEL_EXIT_INTERRUPTED soon. */
    void (*vcpu_kick)(struct accel_vcpu *vcpu, pthread_t thread);
    /* The backend's own counters for a vCPU (may be NULL): returns how many
     * it wrote, at most ACCEL_MAX_COUNTERS. */
    size_t (*vcpu_counters)(struct accel_vcpu *vcpu, struct accel_counter *out);

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
extern const struct accel_ops accel_soft_ops;

#endif

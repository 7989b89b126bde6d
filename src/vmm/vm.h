/* A virtual machine: guest memory, the CPU backend's VM, buses, the board's
 * devices and the vCPUs, and the reason it stopped. */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "arch/x86_64/boot.h"
#include "bus/bus.h"
#include "bus/pci/pci.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/irq.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/serial_8250.h"
#include "mem/guest_mem.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/evloop.h"
#include "vmm/platform.h"
#include "vmm/vcpu.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/transport_pci.h"

enum vm_stop_reason {
    VM_STOP_NONE,
    VM_STOP_POWER_OFF,
    VM_STOP_REBOOT,
    VM_STOP_PANIC,
    VM_STOP_TRIPLE_FAULT,
    VM_STOP_USER_QUIT,
    VM_STOP_SIGNAL,
    VM_STOP_ERROR,
};

struct vm {
    const struct vm_config *cfg;
    const struct accel_ops *accel;
    struct accel_vm *avm;
    struct guest_mem mem;
    struct bus pio;
    struct bus mmio;
    struct irq_sink irq_sink;
    struct evloop *loop;       /* the process's, shared with the API */
    struct console *console;   /* ember's stdin/stdout */

    /* The board (see board.c). */
    struct pci_bus pci;
    struct pci_device host_bridge;
    struct serial serial;
    struct i8042 i8042;
    struct rtc_cmos rtc;
    struct pvpanic pvpanic;
    struct acpi_pm pm;
    struct platform platform;
    struct pci_platform pci_platform;
    struct virtio_pci *virtio[PCI_MAX_SLOTS];
    unsigned nr_virtio;
    struct virtio_rng *rng;
    struct virtio_blk *disks[CONFIG_MAX_DISKS];
    unsigned nr_disks;
    struct virtio_console *vconsole;
    struct virtio_net *nics[CONFIG_MAX_NICS];
    unsigned nr_nics;
    const struct vm_boot_files *files;

    struct vcpu *vcpus;
    unsigned nr_vcpus;

    bool started;
    bool paused;
    uint64_t paused_clock_ns;   /* kvm-clock when paused */
    uint64_t *paused_tsc;       /* each vCPU's TSC when paused */
    bool clocks_saved;          /* the two above are this pause's */

    pthread_mutex_t stop_lock;
    enum vm_stop_reason stop_reason;
    int stop_signal;
    char stop_detail[256];
    int stop_fd; /* wakes the event loop when the VM must stop */
    void (*on_stop)(void *ctx); /* runs in the loop's thread */
    void *on_stop_ctx;
};

/* Host files the VM needs, opened and validated before any VM exists, so
 * that every problem with them is a setup error. */
struct vm_boot_files {
    struct boot_config boot;
    struct boot_layout layout;
    void *kernel_map, *initrd_map;
    size_t kernel_map_size, initrd_map_size;
    struct blockfile disks[CONFIG_MAX_DISKS];
    bool disk_taken[CONFIG_MAX_DISKS]; /* handed over to a device */
    unsigned nr_disks;
    struct net_backend *nets[CONFIG_MAX_NICS]; /* NULL once handed over */
    unsigned nr_nets;
    int mem_fd; /* restoring: the snapshot's memory file; -1 when booting */
};

int vm_boot_files_open(const struct vm_config *cfg, struct vm_boot_files *files)
    EMBER_MUST_CHECK;
/* For a restore: the disks and network backends, and the memory file (which
 * must hold exactly cfg->mem_size bytes); no kernel. */
int vm_restore_files_open(const struct vm_config *cfg, const char *mem_path,
                          struct vm_boot_files *files) EMBER_MUST_CHECK;
void vm_boot_files_close(struct vm_boot_files *files);

/* Build the VM (memory, devices, vCPUs) without running it; 'on_stop' is
 * called from 'loop' once the VM must stop (vm_request_stop). */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct vm_boot_files *files,
              struct evloop *loop, struct console *console, void (*on_stop)(void *ctx),
              void *on_stop_ctx) EMBER_MUST_CHECK;
/* Attach the console and start the vCPU threads. */
int vm_start(struct vm *vm) EMBER_MUST_CHECK;
/* The same, with every vCPU parked and the devices paused from the start
 * (a restored VM that waits for a resume). */
/* Log each vCPU's and each virtio device's state: what a stalled guest
 * waits for (SIGUSR2). */
void vm_dump_state(struct vm *vm);
int vm_start_paused(struct vm *vm) EMBER_MUST_CHECK;
/* Stop and join the vCPU threads; returns why the VM stopped. */
enum vm_stop_reason vm_halt(struct vm *vm);
/* Park every vCPU outside the CPU backend, finish and stop device work,
 * and freeze the guest's clocks; resume undoes it. From the loop's thread. */
int vm_pause(struct vm *vm) EMBER_MUST_CHECK;
int vm_resume(struct vm *vm) EMBER_MUST_CHECK;
void vm_destroy(struct vm *vm);
/* Record a signal as the stop reason (VM_STOP_SIGNAL). */
void vm_stop_by_signal(struct vm *vm, int signo);

/* From any thread: the VM must stop for 'reason' (the first reason wins). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
    EMBER_PRINTF(3, 4);

/* The board's devices, set up in a fixed order (board.c). */
int board_setup(struct vm *vm) EMBER_MUST_CHECK;
void board_teardown(struct vm *vm);

#endif

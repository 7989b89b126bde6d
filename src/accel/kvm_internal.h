/* Internals shared by the KVM backend's files (kvm.c: VM and vCPU life and
 * running; kvm_state.c: saving and restoring state for snapshots; kvm_debug.c:
 * guest debugging). */
#ifndef EMBER_ACCEL_KVM_INTERNAL_H
#define EMBER_ACCEL_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

#include "accel/accel.h"

#define KVM_MAX_CPUID_ENTRIES 256

#define KVM_FIRST_MSI_GSI 24 /* after the IOAPIC's pins */
#define KVM_MAX_ROUTES 1024

/* KVM takes the whole GSI routing table at once, so the backend keeps it:
 * the interrupt-controller routes from create_irqchip, then MSI routes. */
struct accel_vm {
    int kvm_fd;
    int vm_fd;
    int vcpu_mmap_size;
    pthread_mutex_t routes_lock;
    struct kvm_irq_routing_entry *routes;
    unsigned nr_routes;
    uint32_t next_msi_gsi;
    /* Posted port writes (kvm_posted.c): KVM's coalesced ring, or NULL. */
    struct accel_io io;
    int posted_page; /* the ring's page in a vCPU's mapping; 0: none */
    struct kvm_coalesced_mmio_ring *posted_ring;
    size_t posted_ring_size;
    uint32_t posted_max;
    pthread_mutex_t posted_lock;
};

struct accel_vcpu {
    struct accel_vm *vm;
    int fd;
    unsigned index;
    struct kvm_run *run;
    struct kvm_vcpu_stats *stats; /* NULL: the kernel has no statistics file */
};

int kvm_ioctl_err(int fd, unsigned long req, void *arg, const char *what);


/* kvm_posted.c */
void kvm_posted_probe(struct accel_vm *vm);
void kvm_posted_map(struct accel_vm *vm, int vcpu_fd);
void kvm_posted_unmap(struct accel_vm *vm);
int kvm_post_pio(struct accel_vm *vm, uint16_t port, unsigned len);
void kvm_flush_posted(struct accel_vm *vm);

/* kvm_stats.c */
struct kvm_vcpu_stats *kvm_stats_open(int vcpu_fd);
size_t kvm_stats_read(const struct kvm_vcpu_stats *stats, struct accel_counter *out);
void kvm_stats_close(struct kvm_vcpu_stats *stats);

/* kvm_debug.c */
int kvm_vcpu_get_fpu(struct accel_vcpu *vcpu, uint8_t fxsave[512]);
int kvm_vcpu_set_fpu(struct accel_vcpu *vcpu, const uint8_t fxsave[512]);
int kvm_vcpu_set_debug(struct accel_vcpu *vcpu, const struct accel_debug *dbg);
void kvm_debug_exit(const struct kvm_run *run, struct accel_exit *exit);

int kvm_vcpu_save(struct accel_vcpu *vcpu, struct buf *out);
int kvm_vcpu_restore(struct accel_vcpu *vcpu, const void *data, size_t len);
int kvm_vm_save(struct accel_vm *vm, struct buf *out);
int kvm_vm_restore(struct accel_vm *vm, const void *data, size_t len);

#endif

/* Posted port writes: KVM's coalesced PIO. A write to a registered port
 * range does not leave the guest; KVM appends it to a ring page it shares
 * with ember, and ember delivers the ring's writes, oldest first, before it
 * handles any exit (so a read that could observe them comes after them) and
 * when the VMM flushes (so output a guest leaves there without exiting
 * again still gets out). Each such write saves a round trip to user space:
 * a few microseconds on hardware, ~0.15 ms in a nested host. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm_internal.h"
#include "accel/kvm_posted.h"
#include "util/util.h"

void kvm_posted_probe(struct accel_vm *vm)
{
    /* KVM_CAP_COALESCED_MMIO answers with the ring's page offset in the
     * vCPU mapping; the PIO variant (Linux 4.19) uses the same ring. */
    int offset = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
    if (offset > 0 && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) > 0)
        vm->posted_page = offset;
}

/* The ring is one page of the VM, reachable through any vCPU's file: mapped
 * on its own so that it outlives the vCPU it came from. */
void kvm_posted_map(struct accel_vm *vm, int vcpu_fd)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!vm->posted_page || vm->posted_ring || page <= 0 ||
        (long)vm->vcpu_mmap_size < (vm->posted_page + 1) * page)
        return;
    void *ring = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd,
                      (off_t)vm->posted_page * page);
    if (ring == MAP_FAILED)
        return; /* post_pio then says -ENOTSUP: the writes keep exiting */
    vm->posted_ring = ring;
    vm->posted_ring_size = (size_t)page;
    vm->posted_max = (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) /
                                sizeof(struct kvm_coalesced_mmio));
}

void kvm_posted_unmap(struct accel_vm *vm)
{
    if (vm->posted_ring)
        munmap(vm->posted_ring, vm->posted_ring_size);
    vm->posted_ring = NULL;
}

int kvm_post_pio(struct accel_vm *vm, uint16_t port, unsigned len)
{
    if (!vm->posted_ring || !vm->io.posted_pio)
        return -ENOTSUP;
    struct kvm_coalesced_mmio_zone zone = {.addr = port, .size = len, .pio = 1};
    return kvm_ioctl_err(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &zone,
                         "REGISTER_COALESCED_MMIO (posted port writes)");
}

static bool ring_empty(const struct kvm_coalesced_mmio_ring *ring)
{
    return atomic_load_explicit((_Atomic uint32_t *)&ring->first, memory_order_relaxed) ==
           atomic_load_explicit((_Atomic uint32_t *)&ring->last, memory_order_acquire);
}

/* 'first' moves past an entry only once it is delivered: a vCPU that finds
 * the ring empty knows every earlier write has reached its device. */
unsigned kvm_posted_drain(struct kvm_coalesced_mmio_ring *ring, uint32_t max,
                          kvm_posted_fn deliver, void *ctx)
{
    unsigned used = 0;
    uint32_t first = ring->first;
    uint32_t last = atomic_load_explicit((_Atomic uint32_t *)&ring->last, memory_order_acquire);
    while (first != last && first < max && last < max) {
        const struct kvm_coalesced_mmio *w = &ring->coalesced_mmio[first];
        uint8_t data[8];
        unsigned len = MIN(w->len, (uint32_t)sizeof(data));
        memcpy(data, w->data, len);
        if (w->pio && w->phys_addr <= 0xffff && len)
            deliver(ctx, (uint16_t)w->phys_addr, data, len);
        first = (first + 1) % max;
        atomic_store_explicit((_Atomic uint32_t *)&ring->first, first, memory_order_release);
        used++;
        if (first == last)
            last = atomic_load_explicit((_Atomic uint32_t *)&ring->last, memory_order_acquire);
    }
    return used;
}

void kvm_flush_posted(struct accel_vm *vm)
{
    struct kvm_coalesced_mmio_ring *ring = vm->posted_ring;
    if (!ring || ring_empty(ring))
        return;
    pthread_mutex_lock(&vm->posted_lock);
    kvm_posted_drain(ring, vm->posted_max, vm->io.posted_pio, vm->io.ctx);
    pthread_mutex_unlock(&vm->posted_lock);
}

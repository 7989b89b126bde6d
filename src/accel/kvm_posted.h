/* KVM's queue of posted port writes (coalesced PIO): the ring page KVM
 * fills and ember empties. Public for its unit test; the backend's use of
 * it is in kvm_posted.c. */
#ifndef EMBER_ACCEL_KVM_POSTED_H
#define EMBER_ACCEL_KVM_POSTED_H

#include <linux/kvm.h>
#include <stdint.h>

typedef void (*kvm_posted_fn)(void *ctx, uint16_t port, const void *data, unsigned len);

/* Hands each queued port write, oldest first, to 'deliver' and moves the
 * ring's 'first' past it only then; stops at indexes outside the ring's
 * 'max' entries. Returns how many entries it used up. The caller makes sure
 * no other thread drains the same ring at once. */
unsigned kvm_posted_drain(struct kvm_coalesced_mmio_ring *ring, uint32_t max,
                          kvm_posted_fn deliver, void *ctx);

#endif

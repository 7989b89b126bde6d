/* An I/O APIC as Linux sees it under KVM, in the 82093AA's register layout:
 * 24 pins, version 0x20 (so it has the EOI register), MMIO at 0xFEC00000.
 *
 * Bus offsets (the 'dev' is the struct ioapic):
 *   0x00 IOREGSEL (8 bits, read/write)   0x10 IOWIN (32-bit window)
 *   0x40 EOI (write: a vector; like ioapic_eoi())
 * Reads return the 32-bit register holding the offset (partial reads give
 * its bytes; anything else reads 0). IOWIN takes 4- or 8-byte writes (the low
 * dword counts); IOREGSEL and EOI take their low byte from any write at their
 * offset. Other writes are ignored.
 * Indirect registers: 0x00 ID (bits 27:24), 0x01 version (0x00170020), 0x02
 * arbitration ID (= ID), 0x10 + 2n / 0x11 + 2n redirection entry n low/high.
 * Undefined indices read all ones and ignore writes.
 *
 * Pins: ioapic_set_irq() drives a pin's line: true is asserted, whatever the
 * entry's polarity bit says (ember's interrupt lines are logical, as with
 * KVM's IOAPIC; Linux programs PCI pins active-low). Edge pins deliver on each
 * assertion while unmasked and drop assertions while masked (82093AA).
 * Level pins deliver while asserted, unmasked and remote IRR clear; remote
 * IRR is set when at least one local APIC accepted the message (if none did,
 * the next write of the entry tries again) and cleared by
 * an EOI for the entry's vector (ioapic_eoi(), from the local APICs' EOI
 * broadcast or the EOI register), after which a still-asserted line is
 * delivered again. Switching an entry to edge clears its remote IRR (Linux's
 * fallback for IOAPICs without the EOI register). Delivery status always
 * reads 0: delivery is synchronous.
 *
 * Storm guard: a level line still asserted at IOAPIC_STORM_EOIS successive
 * EOIs is re-delivered IOAPIC_STORM_DELAY_NS later from the timer instead of
 * at once (KVM does the same), so a guest that never quiets its device still
 * lets the host breathe.
 *
 * Locking: one mutex. deliver is called with it held, and must not call back
 * into the IOAPIC; it may call lapic_route()/lapic_accept(). */
#ifndef EMBER_IRQCHIP_IOAPIC_H
#define EMBER_IRQCHIP_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "irqchip/apic_msg.h"
#include "devices/vclock.h"
#include "snapshot/record.h"

#define IOAPIC_BASE 0xfec00000ull
#define IOAPIC_MMIO_LEN 0x1000
#define IOAPIC_NR_PINS 24
#define IOAPIC_VERSION 0x20
#define IOAPIC_STORM_EOIS 10000
#define IOAPIC_STORM_DELAY_NS 10000000ull /* 10 ms */

/* Redirection entry bits. */
#define IOAPIC_RTE_VECTOR 0x000000ffull
#define IOAPIC_RTE_DELMODE 0x00000700ull
#define IOAPIC_RTE_DESTMODE (1ull << 11)
#define IOAPIC_RTE_DELIVS (1ull << 12)
#define IOAPIC_RTE_POLARITY (1ull << 13) /* 1: active low */
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14)
#define IOAPIC_RTE_LEVEL (1ull << 15)
#define IOAPIC_RTE_MASKED (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT 56

struct ioapic_ops {
    /* Send a message; returns how many local APICs accepted it. */
    int (*deliver)(void *ctx, const struct apic_msg *msg);
};

struct ioapic {
    pthread_mutex_t lock;
    const struct ioapic_ops *ops;
    void *ctx;
    struct vclock clock;
    struct vtimer timer; /* the storm guard's; may be empty */
    uint8_t id;      /* 4 bits */
    uint8_t regsel;
    uint64_t rte[IOAPIC_NR_PINS];
    uint32_t lines;         /* raw line levels */
    uint32_t deferred;      /* pins the storm guard holds back */
    uint64_t deferred_until;
    uint32_t eoi_count[IOAPIC_NR_PINS];
    uint64_t deliveries;    /* statistics */
    uint64_t storms;
};

extern const struct bus_ops ioapic_bus_ops;

void ioapic_init(struct ioapic *io, const struct ioapic_ops *ops, void *ctx, struct vclock clock,
                 struct vtimer timer);
void ioapic_destroy(struct ioapic *io);
/* Power-on state: every entry masked, ID 0 (line levels are kept). */
void ioapic_reset(struct ioapic *io);
/* Drive pin 0-23 (others are ignored). */
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* An EOI for 'vector': clears remote IRR of the level entries with it. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);
/* The storm guard's timer fired. */
void ioapic_timer_expired(struct ioapic *io, uint64_t now_ns);
/* Snapshots: ID, IOREGSEL, the entries, line levels. Load checks every value
 * and changes nothing on error; afterwards it delivers what is due (a level
 * line asserted and unmasked without remote IRR) and re-arms the timer. */
void ioapic_save(struct ioapic *io, struct rec r);
int ioapic_load(struct ioapic *io, struct rec r) EMBER_MUST_CHECK;

#endif

/* A local APIC in xAPIC mode (no x2APIC: the CPU does not advertise it),
 * one per vCPU, MMIO at the APIC base (0xFEE00000) seen as offsets
 * 0x000-0xFFF by that vCPU only.
 *
 * Registers: ID, version 0x00050014 (6 LVT entries, no EOI-broadcast
 * suppression), TPR/APR/PPR, EOI, LDR/DFR (flat and cluster), SVR (vector,
 * software enable, focus bit stored), ISR/TMR/IRR, ESR (write then read),
 * ICR, LVT timer/thermal/perf/LINT0/LINT1/error, timer initial/current count
 * and divide configuration. Writes take effect only as aligned 32-bit
 * accesses; reads of 1, 2 or 4 bytes within a register's first dword give
 * its bytes, other bytes read 0. Reserved offsets read 0 and set ESR bit 7
 * (illegal register address). While the APIC is globally disabled (APIC base
 * MSR bit 11 clear) reads are all ones and writes are ignored.
 *
 * Timer: counts at 1 GHz (KVM's APIC bus) divided by TDCR; one-shot,
 * periodic and TSC-deadline. Periodic expiries a late host missed are
 * coalesced into one interrupt (the IRR bit does so on hardware too), the
 * period keeps its phase, and no interrupt comes faster than every
 * LAPIC_TIMER_MIN_GAP_NS (shorter periods lose interrupts, the count reads
 * right). A mode change to or from TSC-deadline disarms the timer and clears
 * the initial count; one-shot <-> periodic keeps it counting. Changing the
 * divider keeps the current count. Mode 3 (reserved) is stored as one-shot.
 *
 * Local inputs: LINT0/LINT1 via lapic_set_lint(); delivery mode fixed (edge,
 * or level with the LVT's remote IRR cleared by the vector's EOI), SMI, NMI,
 * INIT and ExtINT (LINT0 as the 8259's INTR: while the line is high and the
 * LVT unmasked in ExtINT mode, lapic_has_interrupt() reports LAPIC_EXTINT and
 * lapic_ack() runs the INTA cycle through ops->pic_ack). With the APIC
 * globally disabled, LINT0 is INTR and LINT1 is NMI directly. The polarity
 * bit is stored but not applied: ember's lines are logical. Reset with
 * 'virtual_wire' leaves LINT0 = ExtINT and LINT1 = NMI unmasked, as a BIOS
 * does (and KVM for the BSP), with the APIC still software-disabled.
 *
 * Messages: lapic_accept() takes one already routed here (lapic_route() does
 * the routing for a set of APICs: physical, logical flat/cluster, broadcast,
 * shorthands, lowest priority by APR). Fixed/lowest set IRR (and TMR for
 * level) while software-enabled; vectors 0-15 set ESR bit 6 instead. NMI,
 * SMI, INIT (a level de-assert is ignored), SIPI and ExtINT become pending
 * events the CPU consumes. Nothing is accepted while globally disabled.
 *
 * Threads and locks: each APIC has a mutex. Every lapic_* function may be
 * called from any thread. The callbacks are all called WITHOUT the APIC's
 * lock held, after the state change they report, so they may call back into
 * this or another APIC (a self-IPI routed straight back is fine), the IOAPIC
 * or the PIC. vtimer arm/disarm are the exception: called with the lock held
 * (see devices/vclock.h). Lock order: PIC -> APIC, IOAPIC -> APIC. */
#ifndef EMBER_IRQCHIP_LAPIC_H
#define EMBER_IRQCHIP_LAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "irqchip/apic_msg.h"
#include "devices/vclock.h"
#include "snapshot/record.h"

#define LAPIC_DEFAULT_BASE 0xfee00000ull
#define LAPIC_MMIO_LEN 0x1000
#define LAPIC_VERSION 0x00050014u
#define LAPIC_TIMER_MIN_GAP_NS 100000ull /* 100 us */
#define LAPIC_EXTINT 0x100 /* lapic_has_interrupt(): the 8259 has one */

#define MSR_IA32_APICBASE 0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define APICBASE_BSP (1ull << 8)
#define APICBASE_ENABLE (1ull << 11)

/* Pending events for the CPU (lapic_pending_events()). */
#define LAPIC_EV_INTR (1u << 0) /* lapic_has_interrupt() would say yes */
#define LAPIC_EV_NMI (1u << 1)
#define LAPIC_EV_SMI (1u << 2)
#define LAPIC_EV_INIT (1u << 3)
#define LAPIC_EV_SIPI (1u << 4)

enum { LAPIC_LVT_TIMER, LAPIC_LVT_THERMAL, LAPIC_LVT_PERF, LAPIC_LVT_LINT0, LAPIC_LVT_LINT1,
       LAPIC_LVT_ERROR, LAPIC_NR_LVT };

struct lapic_ops {
    /* Something changed: the CPU should look at lapic_pending_events()
     * (wake the vCPU if it halts). */
    void (*kick)(void *ctx);
    /* EOI of a level-triggered vector: broadcast it (ioapic_eoi()). */
    void (*eoi)(void *ctx, uint8_t vector);
    /* An IPI from the ICR (source = this APIC's index): route it, e.g. with
     * lapic_route(). */
    void (*send_ipi)(void *ctx, const struct apic_msg *msg);
    /* The INTA cycle to the 8259 for an ExtINT interrupt: pic_ack(). */
    uint8_t (*pic_ack)(void *ctx);
};

struct lapic_config {
    unsigned index;     /* the vCPU's index: a message's 'source' */
    uint8_t apic_id;
    bool bsp;
    bool virtual_wire;  /* reset leaves LINT0 ExtINT, LINT1 NMI */
};

struct lapic {
    pthread_mutex_t lock;
    const struct lapic_ops *ops;
    void *ctx;
    struct vclock clock;
    struct vtimer timer;
    struct lapic_config cfg;

    uint64_t base;
    uint32_t id, tpr, ldr, dfr, svr, esr, esr_pending, icr_lo, icr_hi;
    uint32_t lvt[LAPIC_NR_LVT];
    uint32_t irr[8], isr[8], tmr[8];
    uint32_t tmict, tdcr;
    /* timer: ticks elapsed since the initial count was written are
     * timer_base_ticks + (now - timer_base_ns) / divider */
    bool timer_running;
    uint64_t timer_base_ns, timer_base_ticks;
    uint64_t timer_target;   /* tick count of the next expiry (one-shot/periodic) */
    uint64_t tsc_deadline;   /* armed IA32_TSC_DEADLINE, 0 if none */
    uint64_t deadline_ns;    /* when the armed timer fires, 0 if disarmed */
    /* events */
    bool nmi_pending, smi_pending, init_pending, sipi_pending, extint_msg;
    uint8_t sipi_vector;
    bool lint[2];
    uint64_t timer_interrupts; /* statistics */
};

extern const struct bus_ops lapic_bus_ops;

void lapic_init(struct lapic *l, const struct lapic_config *cfg, const struct lapic_ops *ops,
                void *ctx, struct vclock clock, struct vtimer timer);
void lapic_destroy(struct lapic *l);
/* Power-on / RESET state (APIC base MSR included). */
void lapic_reset(struct lapic *l);

/* MSRs. lapic_set_base() returns -EINVAL for reserved bits (x2APIC enable
 * included): the CPU raises #GP. Clearing the enable bit resets the APIC;
 * the BSP bit is read-only. The lead moves the MMIO range if the base moves. */
uint64_t lapic_get_base(struct lapic *l);
int lapic_set_base(struct lapic *l, uint64_t value) EMBER_MUST_CHECK;
/* IA32_TSC_DEADLINE: ignored (reads 0) unless the LVT timer is in
 * TSC-deadline mode; 0 disarms; a past value fires at once. */
uint64_t lapic_get_tsc_deadline(struct lapic *l);
void lapic_set_tsc_deadline(struct lapic *l, uint64_t tsc);
/* CR8 is TPR[7:4]. */
uint64_t lapic_get_cr8(struct lapic *l);
void lapic_set_cr8(struct lapic *l, uint64_t value);

/* Interrupt input. */
bool lapic_accept(struct lapic *l, const struct apic_msg *msg);
void lapic_set_lint(struct lapic *l, unsigned pin, bool level);
/* Whether 'msg' (ignoring its shorthand) addresses this APIC. */
bool lapic_match_dest(struct lapic *l, const struct apic_msg *msg);
/* Arbitration priority (lowest-priority delivery picks the lowest). */
uint8_t lapic_arb_priority(struct lapic *l);
/* Deliver to the APICs of a machine (lapics[i] has index i); returns how
 * many accepted. */
int lapic_route(struct lapic *const *lapics, unsigned n, const struct apic_msg *msg);

/* For the CPU. */
/* -1: nothing; LAPIC_EXTINT: the 8259's; else the vector that beats PPR. */
int lapic_has_interrupt(struct lapic *l);
/* The interrupt acknowledge: moves the vector from IRR to ISR and returns
 * it (the 8259's vector for ExtINT; the spurious vector from SVR if nothing
 * is deliverable any more). Call with RFLAGS.IF set, after has_interrupt. */
uint8_t lapic_ack(struct lapic *l);
uint32_t lapic_pending_events(struct lapic *l);
bool lapic_take_nmi(struct lapic *l);
bool lapic_take_smi(struct lapic *l);
/* Takes a pending INIT and does the APIC's INIT reset (ID and base MSR
 * kept, a pending SIPI kept); the CPU then waits for SIPI. */
bool lapic_take_init(struct lapic *l);
/* -1, or the vector of a pending SIPI (the CPU ignores it unless it is
 * waiting for one). */
int lapic_take_sipi(struct lapic *l);

/* The timer's deadline passed (see devices/vclock.h). */
void lapic_timer_expired(struct lapic *l, uint64_t now_ns);

/* Snapshots: every register, the timer as elapsed ticks (re-based on the
 * clock at load) or the TSC deadline, pending events, LINT levels. Load
 * checks every value and changes nothing on error; it re-arms the timer and
 * kicks. */
void lapic_save(struct lapic *l, struct rec r);
int lapic_load(struct lapic *l, struct rec r) EMBER_MUST_CHECK;

#endif

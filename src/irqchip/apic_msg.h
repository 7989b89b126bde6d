/* An interrupt message on the APIC bus: what an IOAPIC redirection entry,
 * an MSI write and a local APIC's ICR all produce, so one routing function
 * can deliver all three (lapic_route() in irqchip/lapic.h does it for a set
 * of local APICs). */
#ifndef EMBER_IRQCHIP_APIC_MSG_H
#define EMBER_IRQCHIP_APIC_MSG_H

#include <stdbool.h>
#include <stdint.h>

enum apic_delivery {
    APIC_DM_FIXED = 0,
    APIC_DM_LOWEST = 1,
    APIC_DM_SMI = 2,
    APIC_DM_REMOTE_READ = 3, /* reserved on the P6 and later: dropped */
    APIC_DM_NMI = 4,
    APIC_DM_INIT = 5,
    APIC_DM_SIPI = 6,
    APIC_DM_EXTINT = 7,
};

enum apic_shorthand {
    APIC_SH_NONE = 0,     /* 'dest' says who */
    APIC_SH_SELF = 1,
    APIC_SH_ALL = 2,      /* including self */
    APIC_SH_OTHERS = 3,   /* all excluding self */
};

struct apic_msg {
    uint8_t dest;          /* APIC ID (physical) or MDA (logical); 0xff: all */
    bool dest_logical;     /* destination mode: 0 physical, 1 logical */
    uint8_t delivery_mode; /* enum apic_delivery, 0-7 */
    uint8_t vector;
    bool trigger_level;    /* trigger mode: 0 edge, 1 level */
    /* Only from an ICR: INIT level de-assert (level trigger, level 0), which
     * targets ignore, and the shorthand with the sender's index. */
    bool deassert;
    bool redir_hint;       /* MSI RH bit: lowest-priority arbitration */
    uint8_t shorthand;     /* enum apic_shorthand */
    int source;            /* sending CPU's index for shorthands, -1 if none */
};

/* MSI address/data to a message. Returns false (and leaves *msg zeroed) when
 * the address is not in the 0xFEExxxxx interrupt window. Address: bits 19:12
 * destination, bit 3 redirection hint, bit 2 destination mode; data: bits 7:0
 * vector, 10:8 delivery mode, 14 level (assert), 15 trigger mode. */
bool apic_msg_from_msi(uint64_t address, uint32_t data, struct apic_msg *msg);

#endif

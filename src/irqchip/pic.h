/* The PC's pair of 8259A programmable interrupt controllers, with the
 * PIIX-style edge/level control registers (ELCR).
 *
 * Three bus ranges, one device (the 'dev' of each is the struct pic):
 *   pic_master_bus_ops  ports 0x20-0x21  offset 0 command/status, 1 data/IMR
 *   pic_slave_bus_ops   ports 0xA0-0xA1  likewise
 *   pic_elcr_bus_ops    ports 0x4D0-0x4D1 offset 0 master ELCR, 1 slave ELCR
 * Wider accesses are split into bytes at consecutive offsets, as on the ISA
 * bus; offsets past the range read 0xff and ignore writes.
 *
 * The slave's INT output is wired to the master's IR2 (as on every PC, so the
 * cascade does not depend on ICW3). The master's INT output goes to the CPU:
 * on a machine with local APICs, the lead connects it to LINT0 (ExtINT in
 * virtual-wire mode, lapic_set_lint()); pic_ack() is the INTA cycle.
 *
 * Inputs: ICW1's LTIM bit is ignored (as on the PIIX): each input is edge or
 * level by its ELCR bit. An edge input latches IRR on a low-to-high change
 * and keeps it until the INTA cycle even if the line falls again (so a
 * device may pulse its line, as with KVM's PIC); a level input's IRR
 * follows its line. ELCR bits for IRQ 0, 1, 2, 8 and 13 are fixed at edge.
 * The master's IR2 follows the slave's INT like a wire: a slave request
 * that is withdrawn or masked before INTA withdraws the master's too (so
 * the slave's spurious IRQ15 cannot happen; the master's IRQ7 can).
 *
 * Locking: one mutex for the pair. set_output is called with it held and
 * must not call back into the PIC (it may call into a local APIC). */
#ifndef EMBER_IRQCHIP_PIC_H
#define EMBER_IRQCHIP_PIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "snapshot/record.h"

#define PIC_MASTER_BASE 0x20
#define PIC_SLAVE_BASE 0xa0
#define PIC_ELCR_BASE 0x4d0
#define PIC_RANGE_LEN 2
#define PIC_NR_IRQS 16
#define PIC_CASCADE_IRQ 2

struct pic_ops {
    /* The master's INT output changed (true: an interrupt is pending). */
    void (*set_output)(void *ctx, bool level);
};

struct pic_chip {
    uint8_t irr, isr, imr;
    uint8_t lines;        /* input levels as last driven */
    uint8_t elcr, elcr_mask;
    uint8_t vector_base;  /* ICW2 & 0xf8 */
    uint8_t icw3, icw4;
    uint8_t priority_add; /* the IR with the highest priority */
    uint8_t init_state;   /* 0 ready, 1-3 expecting ICW2-ICW4 */
    bool icw4_needed, single;
    bool auto_eoi, rotate_on_aeoi, sfnm;
    bool special_mask, poll, read_isr;
};

struct pic {
    pthread_mutex_t lock;
    struct pic_chip chip[2]; /* master, slave */
    bool output;
    const struct pic_ops *ops;
    void *ctx;
};

extern const struct bus_ops pic_master_bus_ops;
extern const struct bus_ops pic_slave_bus_ops;
extern const struct bus_ops pic_elcr_bus_ops;

/* Starts in the state a PC BIOS leaves: initialised for 8086 mode with
 * vectors 0x08 (master) and 0x70 (slave), all inputs masked but the cascade,
 * all edge-triggered. */
void pic_init(struct pic *p, const struct pic_ops *ops, void *ctx);
void pic_destroy(struct pic *p);
/* Back to that state (input line levels are kept: they belong to devices). */
void pic_reset(struct pic *p);
/* Drive ISA IRQ 0-15. IRQ 2 is the cascade input and cannot be driven;
 * other numbers are ignored. */
void pic_set_irq(struct pic *p, unsigned irq, bool level);
/* The INTA cycle: the vector the pair puts on the bus. With nothing pending
 * it is the master's IRQ7 vector (spurious), and the slave's IRQ15 vector
 * when the master picked the cascade but the slave has nothing. */
uint8_t pic_ack(struct pic *p);
/* The master's INT output now. */
bool pic_output(struct pic *p);
/* Snapshots: both chips and the ELCR. Load checks every value and changes
 * nothing on error; afterwards it reports the output level via set_output. */
void pic_save(struct pic *p, struct rec r);
int pic_load(struct pic *p, struct rec r) EMBER_MUST_CHECK;

#endif

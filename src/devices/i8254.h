/* The 8254 programmable interval timer (ports 0x40-0x43) and the PC's port
 * 0x61 (NMI status and control: speaker gate and data, refresh toggle, OUT2).
 *
 * Bus ranges (the 'dev' of both is the struct pit):
 *   pit_bus_ops     ports 0x40-0x43: offsets 0-2 counters, 3 control word
 *                   (write-only: reads 0xff)
 *   pit_port61_ops  port 0x61: offset 0. Read: bit 0 gate 2, bit 1 speaker
 *                   data, bits 2-3 as written, bit 4 refresh toggle (every
 *                   15.085 us), bit 5 OUT2; bits 6-7 (NMI sources) read 0.
 *                   Write: bits 0-3.
 * Wider accesses go byte by byte to consecutive offsets.
 *
 * Counters run at 1.193182 MHz derived from the clock's nanoseconds: tick k
 * begins at ceil(k * 1e9 / 1193182) ns. All six modes, binary and BCD, LSB /
 * MSB / LSB-then-MSB access, counter latch and read-back (count and status,
 * null count), gate semantics (channels 0 and 1 have their gates tied high;
 * channel 2's is port 0x61 bit 0) and OUT levels follow the datasheet:
 * a count written is loaded on the next clock tick, so in mode 0 OUT rises
 * N+1 ticks after the write, exactly at a tick boundary. Counts 0 mean 65536
 * (binary) or 10000 (BCD); BCD digits above 9 are taken at face value,
 * modulo 10000. Reading a counter without a latch gives the live count one
 * byte at a time (what Linux's quick_pit_calibrate() does).
 *
 * Channel 0's OUT rising edges pulse IRQ 0 (irq_line_pulse). Several edges a
 * late host missed become one pulse, and in modes 2 and 3 pulses come at
 * most every PIT_MIN_IRQ_GAP_NS (counts and OUT still read exactly). Edges
 * caused by a control word alone (OUT set to its initial level) do not pulse.
 *
 * Locking: one mutex. The irq line is driven with it held (the sink may take
 * the PIC's or IOAPIC's lock; neither may call back into the PIT). The timer
 * follows devices/vclock.h. */
#ifndef EMBER_DEVICES_I8254_H
#define EMBER_DEVICES_I8254_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "devices/irq.h"
#include "devices/vclock.h"
#include "snapshot/record.h"

#define PIT_BASE 0x40
#define PIT_LEN 4
#define PIT_PORT61 0x61
#define PIT_HZ 1193182ull
#define PIT_MIN_IRQ_GAP_NS 100000ull /* 100 us */

struct pit_channel {
    uint8_t mode_bits;   /* as written (status byte) */
    uint8_t mode;        /* 0-5 */
    uint8_t rw;          /* 1 LSB, 2 MSB, 3 LSB then MSB */
    bool bcd;
    bool write_msb_next, read_msb_next;
    uint8_t write_lsb;
    uint16_t cr;         /* count register as written */
    uint32_t cr_n;       /* its value in counts, 1..65536 (1..10000 BCD) */
    uint32_t n;          /* the count the counting element runs with */
    bool count_latched, latch_msb_next;
    uint16_t latch;
    bool status_latched;
    uint8_t status;
    bool null_count;
    bool gate;
    bool has_count;      /* a count was written since the control word */
    bool loaded;         /* a count is in the counting element (or will be at
                          * load_tick); modes 1 and 5: after a gate trigger */
    bool pending;        /* modes 2 and 3: cr_n takes over at the next reload */
    uint64_t pending_e;  /* ...which comes after this many decrements */
    bool running;        /* counting is enabled (gate) */
    uint64_t load_tick;  /* tick at which the count was (is) loaded */
    uint64_t seg_start;  /* decrements so far: acc + (tick - seg_start) while running */
    uint64_t acc;
    uint16_t hold;       /* the count shown while not loaded */
};

struct pit {
    pthread_mutex_t lock;
    struct irq_line irq;
    struct vclock clock;
    struct vtimer timer;
    struct pit_channel ch[3];
    uint8_t port61;      /* bits 0-3 as written */
    uint64_t irq_tick;   /* channel 0 edges up to this tick have been pulsed */
    uint64_t irq_last_ns;
    uint64_t deadline_ns;
    uint64_t irqs;       /* statistics */
};

extern const struct bus_ops pit_bus_ops;
extern const struct bus_ops pit_port61_ops;

void pit_init(struct pit *p, struct irq_line irq, struct vclock clock, struct vtimer timer);
void pit_destroy(struct pit *p);
/* Power-on: every counter in mode 0 without a count, OUT low, gate 2 low. */
void pit_reset(struct pit *p);
/* The timer's deadline passed. */
void pit_timer_expired(struct pit *p, uint64_t now_ns);
/* Snapshots: all counter state with times as tick counts relative to the
 * clock (re-based at load), port 0x61. Load checks every value and changes
 * nothing on error; afterwards it re-arms the timer (and pulses IRQ 0 if an
 * edge was due but not yet delivered at save). */
void pit_save(struct pit *p, struct rec r);
int pit_load(struct pit *p, struct rec r) EMBER_MUST_CHECK;

#endif

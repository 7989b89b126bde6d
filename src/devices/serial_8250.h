/* A 16550A UART. It knows nothing of the bus it sits on (it is driven by
 * register offsets 0-7) nor of the host: bytes the guest sends go to a
 * callback, bytes for the guest are offered with serial_receive(). */
#ifndef EMBER_DEVICES_SERIAL_8250_H
#define EMBER_DEVICES_SERIAL_8250_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rate_limiter.h"

#include "bus/bus.h"
#include "devices/chardev.h"
#include "devices/irq.h"
#include "snapshot/record.h"

struct board;

#define SERIAL_FIFO_SIZE 16
#define SERIAL_REG_COUNT 8

struct serial {
    pthread_mutex_t lock;
    struct irq_line irq;
    struct chardev_host host; /* input_ready: it enabled receive interrupts
                               * or drained the FIFO */

    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    unsigned rx_head, rx_count;
    /* Bytes the host could not take yet: the transmitter stays busy (LSR
     * THRE and TEMT clear) until the host has room and they have left. */
    uint8_t tx_fifo[SERIAL_FIFO_SIZE];
    unsigned tx_count;
    bool tx_waiting;         /* a wait_writable call-back is registered */
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    uint8_t dll, dlm;
    bool thre_pending;
    bool irq_level;
    uint64_t bytes_out, bytes_in; /* for metrics */
    uint64_t tx_dropped;          /* written while the transmit FIFO was full */
    /* Firecracker's serial rate_limiter: output beyond it is dropped, not
     * held (a guest flooding its console must not slow itself down). */
    struct token_bucket out_limit;
    uint64_t (*clock)(void);      /* monotonic ns; unit tests fake it */
    uint64_t limit_dropped;       /* metrics: rate_limiter_dropped_bytes */
};

extern const struct bus_ops serial_bus_ops;

void serial_init(struct serial *s, struct irq_line irq, const struct chardev_host *host);
void serial_destroy(struct serial *s);
/* Log the transmit side (the SIGUSR2 state dump): a guest that stopped
 * printing may be polling LSR for a transmitter the host never gave room
 * back to. */
void serial_dump(struct serial *s);
/* Limit output to the bucket (inactive: no limit); 'clock' NULL: the
 * monotonic clock. */
void serial_set_rate_limit(struct serial *s, const struct bucket_config *cfg,
                           uint64_t (*clock)(void));
/* Offer input to the guest; returns how many bytes it took (0 while the guest
 * has receive interrupts off or its FIFO is full). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* The host can take output again (runs on the event loop): held bytes
 * leave, and the transmitter reports empty once they have all gone. */
void serial_host_writable(void *serial);
/* Snapshots: the registers and both FIFOs. */
void serial_save(struct serial *s, struct rec r);
int serial_load(struct serial *s, struct rec r) EMBER_MUST_CHECK;

/* COM1 on the board, with the console's output (and its input, unless the
 * console is virtio). */
int serial_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif

/* The PS/2 controller (i8042) with a keyboard behind it: enough for the
 * guest's probe to finish without timeouts, for reboot through the reset
 * line (reboot=k), and for injecting key presses such as Ctrl-Alt-Del.
 * The data port (0x60) and the status/command port (0x64) each have their
 * own bus ops. */
#ifndef EMBER_DEVICES_I8042_H
#define EMBER_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "devices/irq.h"
#include "snapshot/record.h"

struct board;

#define I8042_QUEUE_SIZE 32

struct i8042_host_ops {
    /* The guest pulsed the CPU reset line. */
    void (*reset)(void *ctx);
};

struct i8042 {
    pthread_mutex_t lock;
    struct irq_line kbd_irq;
    struct irq_line aux_irq;
    const struct i8042_host_ops *host;
    void *host_ctx;

    struct {
        uint8_t byte;
        bool aux;
    } queue[I8042_QUEUE_SIZE];
    unsigned q_head, q_count;
    uint8_t last_read;
    uint8_t ctr;         /* controller configuration ("command byte") */
    uint8_t outport;
    uint8_t pending_cmd; /* controller command waiting for its data byte */
    uint8_t kbd_pending; /* keyboard command waiting for its argument */
    bool last_write_was_cmd;
    bool kbd_scanning;
};

extern const struct bus_ops i8042_data_bus_ops;
extern const struct bus_ops i8042_cmd_bus_ops;

void i8042_init(struct i8042 *c, struct irq_line kbd_irq, struct irq_line aux_irq,
                const struct i8042_host_ops *host, void *host_ctx);
void i8042_destroy(struct i8042 *c);
/* Queue Ctrl-Alt-Del press and release in the scan code set the guest uses. */
void i8042_send_ctrl_alt_del(struct i8042 *c);
/* Snapshots: controller state and the output queue. */
void i8042_save(struct i8042 *c, struct rec r);
int i8042_load(struct i8042 *c, struct rec r) EMBER_MUST_CHECK;

/* The controller at ports 0x60/0x64 with IRQs 1 and 12; its reset line
 * reboots the board. */
int i8042_board_setup(struct board *b) EMBER_MUST_CHECK;
/* The board's i8042, or NULL. */
struct i8042 *i8042_on_board(const struct board *b);

#endif

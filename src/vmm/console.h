/* The host side of the guest's console: ember's stdin and stdout wired to a
 * UART. When stdin is a terminal it is put in raw mode (restored on every
 * exit path) and Ctrl-A x quits; stdin may also be a pipe, a file or
 * /dev/null. */
#ifndef EMBER_VMM_CONSOLE_H
#define EMBER_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/chardev.h"
#include "util/evloop.h"

/* Where console input goes: returns how many bytes the device took. */
typedef size_t (*console_receive_fn)(void *ctx, const uint8_t *buf, size_t len);

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
    int in_fd;
    int out_fd;
    bool in_is_tty;
    bool in_pollable;
    bool in_eof;
    bool in_watching;
    bool escape_seen;
    int wake_fd; /* the UART can take input again */
    struct evloop *loop;
    console_receive_fn receive;
    void *receive_ctx;
    void (*quit)(void *ctx);
    void *quit_ctx;
    uint8_t pending[4096];
    size_t pending_off, pending_len;
};

/* The host end of the guest's console device (ctx: the console): output to
 * stdout, "input possible again" wakes the console. */
extern const struct chardev_host_ops console_chardev_ops;

/* A device's output to a file or FIFO instead of stdout (Firecracker's PUT
 * /serial serial_out_path), its input still from the console. Writes never
 * block: what a full FIFO cannot take is dropped and counted. */
struct console_file_out {
    int fd;
    struct console *con;
    uint64_t dropped;
};
extern const struct chardev_host_ops console_file_out_ops;

int console_init(struct console *con, int in_fd, int out_fd) EMBER_MUST_CHECK;
/* Start feeding input through 'receive' from the loop; 'quit' runs on
 * Ctrl-A x. */
int console_attach(struct console *con, struct evloop *loop, console_receive_fn receive,
                   void *receive_ctx, void (*quit)(void *ctx), void *quit_ctx)
    EMBER_MUST_CHECK;
/* Stop feeding input (the VM is gone); the console can be attached again. */
void console_detach(struct console *con);
void console_destroy(struct console *con);

/* Terminal state: raw mode on, and restore (idempotent, async-signal-safe). */
int console_enter_raw_mode(struct console *con);
void console_restore_terminal(void);

/* Handle Ctrl-A sequences in 'in' (for unit tests too): copies what the guest
 * should receive to 'out' and returns its length; sets *quit on Ctrl-A x. */
size_t console_filter_escapes(bool *escape_seen, const uint8_t *in, size_t len,
                              uint8_t *out, bool *quit);

#endif

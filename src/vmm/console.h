/* The host side of the guest's console: ember's stdin and stdout wired to a
 * UART. When stdin is a terminal it is put in raw mode (restored on every
 * exit path) and Ctrl-A x quits; stdin may also be a pipe, a file or
 * /dev/null. */
#ifndef EMBER_VMM_CONSOLE_H
#define EMBER_VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/chardev.h"
#include "util/evloop.h"

/* Where console input goes: returns how many bytes the device took. */
typedef size_t (*console_receive_fn)(void *ctx, const uint8_t *buf, size_t len);

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

/* Output: devices append to a bounded buffer (never blocking, whatever
 * stdout is: a terminal, a pipe nobody reads, a file); a writer thread
 * empties it into out_fd with plain blocking writes. When it is full,
 * devices are told to wait, and called back on the loop once it has room. */
#define CONSOLE_OUT_BUF (64u << 10)
#define CONSOLE_OUT_WAITERS 4

struct console_waiter {
    void (*fn)(void *arg);
    void *arg;
};

struct console_out {
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* data to write, or stop */
    pthread_cond_t idle;   /* the buffer emptied (console_flush) */
    pthread_t thread;
    bool started, stop, failed, writing, abandoned;
    uint8_t *buf;          /* CONSOLE_OUT_BUF bytes, a ring */
    size_t head, len;
    int wake_fd;           /* room again: run the waiters on the loop */
    struct console_waiter waiters[CONSOLE_OUT_WAITERS];
    unsigned nr_waiters;
    uint64_t dropped;      /* output lost to a failed stdout */
};

struct console {
    bool initialized;
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
    struct console_out out;
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
/* Stop feeding input (the VM is gone) and forget devices waiting to write;
 * the console can be attached again. */
void console_detach(struct console *con);
/* Write out what the buffer holds (blocking), stop the writer thread. */
void console_destroy(struct console *con);
/* Wait until the writer has written everything buffered so far. */
void console_flush(struct console *con);

/* Terminal state: raw mode on, and restore (idempotent, async-signal-safe). */
int console_enter_raw_mode(struct console *con);
void console_restore_terminal(void);

/* Handle Ctrl-A sequences in 'in' (for unit tests too): copies what the guest
 * should receive to 'out' and returns its length; sets *quit on Ctrl-A x. */
size_t console_filter_escapes(bool *escape_seen, const uint8_t *in, size_t len,
                              uint8_t *out, bool *quit);

#endif

/* Between the stub's files: gdbstub.c (the protocol) and gdb_conn.c (the
 * listening socket and the client's connection). */
#ifndef EMBER_DEBUG_GDB_INTERNAL_H
#define EMBER_DEBUG_GDB_INTERNAL_H

#include "debug/gdbstub.h"

/* Queue a packet for the client (framed, and kept for a nack). */
void gdb_conn_send_packet(struct gdbstub *s, const void *payload, size_t len);
/* Write what is queued now, as far as the socket takes it. */
void gdb_conn_flush(struct gdbstub *s);
void gdb_conn_close(struct gdbstub *s);
/* The client is gone or detached: breakpoints out, the guest runs on. */
void gdb_detach(struct gdbstub *s);
/* The debug registers and flags the current breakpoints need. */
void gdb_debug_state(const struct gdbstub *s, struct accel_debug *dbg);

#endif

/* A GDB remote serial protocol stub: the protocol's logic, shared by both
 * CPU backends. It serves one client at a time on the event loop (a TCP
 * port, loopback unless told otherwise, or a Unix socket) and drives the
 * VM through a small target interface that the VMM implements: stop and
 * resume the vCPUs, their registers, guest-virtual memory, and the
 * debugger's breakpoints in accel_debug's terms.
 *
 * Threads: everything here runs on the event loop's thread; the VMM
 * reports a vCPU's stop with gdbstub_stopped from that thread too.
 *
 * Each vCPU is a GDB thread (vCPU n is thread n+1). Software breakpoints
 * are INT3 bytes that are in guest memory only while the guest runs (put
 * in at every resume, taken out at every stop), so memory the debugger
 * reads, and a snapshot of a stopped VM, never contains one. */
#ifndef EMBER_DEBUG_GDBSTUB_H
#define EMBER_DEBUG_GDBSTUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel/accel.h"
#include "arch/x86_64/gdb_regs.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/evloop.h"
#include "util/gdb_packet.h"
#include "util/usock.h"

#define GDB_MAX_SW_BREAKPOINTS 64

/* What the VMM does for the stub (all on the event loop's thread). */
struct gdb_target_ops {
    /* Park every vCPU; when it returns none runs the guest. */
    void (*stop)(void *ctx);
    /* Apply 'dbg' to every vCPU (with ACCEL_DEBUG_SINGLESTEP added for
     * 'step' if it is >= 0) and let them run: all of them, or only 'step'. */
    int (*resume)(void *ctx, const struct accel_debug *dbg, int step);
    int (*get_regs)(void *ctx, unsigned cpu, struct gdb_x86_state *st);
    int (*set_regs)(void *ctx, unsigned cpu, const struct gdb_x86_state *st);
    /* Guest-virtual memory as vCPU 'cpu' sees it: 0, or -EFAULT if some
     * byte is not mapped to RAM (nothing is written then). */
    int (*read_mem)(void *ctx, unsigned cpu, uint64_t va, void *buf, size_t len);
    int (*write_mem)(void *ctx, unsigned cpu, uint64_t va, const void *buf, size_t len);
    /* 'kill': the client wants the VM gone. */
    void (*kill)(void *ctx);
};

struct gdb_target {
    const struct gdb_target_ops *ops;
    void *ctx;
    unsigned nr_cpus;
    bool watchpoints; /* the backend can watch data (ACCEL_CAP_WATCHPOINTS) */
};

/* Why the guest stopped, as the VMM saw it. */
enum gdb_stop_kind {
    GDB_STOP_DEBUG,     /* a debug exit: 'exit' says which */
    GDB_STOP_INTERRUPT, /* the stub asked (Ctrl-C, a new client) */
};

struct gdb_sw_breakpoint {
    uint64_t va;
    unsigned cpu;       /* whose page tables translate it */
    uint8_t saved;      /* the byte under the INT3 while inserted */
    bool inserted;
};

struct gdb_hw_slot {
    bool used;
    int type;           /* Z type: 1 exec, 2 write, 3 read, 4 access */
    uint64_t addr;
    unsigned len;
};

struct gdbstub {
    struct gdb_target target;
    struct evloop *loop;
    int listen_fd;
    char *unix_path;    /* a Unix socket's path, removed at the end */
    struct usock_listener unix_listener;
    int fd;             /* the client, -1 if none */
    struct gdb_rx rx;
    struct buf out;     /* bytes not yet written to the client */
    struct buf last;    /* the last packet sent, for a nack */
    bool no_ack;
    bool running;       /* the guest runs (the client waits for a stop reply) */
    bool stopped_once;  /* the VM is held for the debugger */
    unsigned g_cpu;     /* Hg: registers and memory */
    int c_cpu;          /* Hc: -1 all */
    unsigned stop_cpu;
    char stop_reply[96];
    struct gdb_sw_breakpoint sw[GDB_MAX_SW_BREAKPOINTS];
    unsigned nr_sw;
    struct gdb_hw_slot hw[4];
    char reply[GDB_PACKET_MAX + 1];
};

/* Listen on "tcp:HOST:PORT" or "unix:PATH" (the message says where, and
 * warns when HOST is not a loopback address). With 'held' the VM starts
 * stopped and waits for a client to continue it. */
int gdbstub_init(struct gdbstub *s, const char *address, struct evloop *loop,
                 const struct gdb_target *target, bool held) EMBER_MUST_CHECK;
void gdbstub_destroy(struct gdbstub *s);

/* The VMM's report: the vCPUs are all parked now, 'cpu' stopped first. */
void gdbstub_stopped(struct gdbstub *s, unsigned cpu, enum gdb_stop_kind kind,
                     const struct accel_exit *exit);
/* Is there a debugger's INT3 at 'pc'? (else an INT3 is the guest's own) */
bool gdbstub_owns_breakpoint(const struct gdbstub *s, uint64_t pc);
/* The guest ended (power-off, reboot ...): tell a waiting client. */
void gdbstub_vm_ended(struct gdbstub *s, int status);
/* Take the INT3s out of guest memory (before a snapshot is saved) or put
 * them back. */
void gdbstub_lift_breakpoints(struct gdbstub *s, bool lift);

/* --- the protocol, without sockets (tests drive it directly) ---------------- */
/* Handle one decoded packet; the reply (if any) is queued for the client. */
void gdbstub_handle_packet(struct gdbstub *s, const char *pkt, size_t len);
/* Feed bytes as if received from the client. */
void gdbstub_feed(struct gdbstub *s, const uint8_t *data, size_t len);

#endif

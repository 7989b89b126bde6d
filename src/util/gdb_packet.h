/* The framing of GDB's remote serial protocol, and nothing else: no sockets,
 * no meaning. A receiver turns the bytes a client sends into events
 * (a packet, an interrupt, an ack or a nack), checking checksums and
 * expanding escapes and run-length encoding; an encoder frames a reply.
 * A client is untrusted: a packet longer than GDB_PACKET_MAX (before or
 * after expansion) or with a bad checksum is refused, never stored past the
 * buffer. */
#ifndef EMBER_UTIL_GDB_PACKET_H
#define EMBER_UTIL_GDB_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The largest payload either way (advertised as PacketSize). */
#define GDB_PACKET_MAX 4096

enum gdb_rx_event {
    GDB_RX_NONE,      /* nothing complete yet */
    GDB_RX_PACKET,    /* rx->data holds rx->len decoded bytes (NUL after them) */
    GDB_RX_INTERRUPT, /* 0x03 outside a packet: Ctrl-C */
    GDB_RX_ACK,       /* '+' */
    GDB_RX_NACK,      /* '-': resend the last reply */
    GDB_RX_BAD,       /* a packet with a bad checksum, bad encoding or too long: nack it */
};

enum gdb_rx_state { GDB_RX_IDLE, GDB_RX_BODY, GDB_RX_SUM1, GDB_RX_SUM2 };

struct gdb_rx {
    enum gdb_rx_state state;
    uint8_t raw[GDB_PACKET_MAX]; /* the body as sent */
    size_t raw_len;
    bool too_long;
    uint8_t sum, sum_hi;
    char data[GDB_PACKET_MAX + 1]; /* the decoded payload */
    size_t len;
};

void gdb_rx_init(struct gdb_rx *rx);
/* Feed one received byte. */
enum gdb_rx_event gdb_rx_byte(struct gdb_rx *rx, uint8_t byte);

/* Expand '}' escapes and '*' runs of 'raw' into 'out' (at most 'max'
 * bytes). Returns the decoded length, or -1 if the encoding is malformed
 * (a dangling '}', a run with nothing before it or a bad count) or the
 * result would not fit. */
long gdb_decode(const uint8_t *raw, size_t len, char *out, size_t max);

/* Append "$BODY#CS" to 'out': the payload with '#', '$', '}' and '*'
 * escaped and runs of a character run-length encoded. */
void gdb_encode(struct buf *out, const void *payload, size_t len);

/* Hex helpers for payloads. */
int gdb_hex_value(char c); /* -1 if not a hex digit */
/* Parse hex digits at *p (at least one) into *value, advancing *p; false if
 * there are none or more than 16. */
bool gdb_parse_hex(const char **p, uint64_t *value);
/* Decode 2*n hex digits into n bytes; false on a bad digit. */
bool gdb_hex_to_bytes(const char *hex, uint8_t *out, size_t n);
/* Encode n bytes as 2*n hex digits and a NUL. */
void gdb_bytes_to_hex(const uint8_t *in, size_t n, char *out);

#endif

#include "util/gdb_packet.h"

#include <string.h>

void gdb_rx_init(struct gdb_rx *rx)
{
    memset(rx, 0, sizeof(*rx));
    rx->state = GDB_RX_IDLE;
}

int gdb_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool gdb_parse_hex(const char **p, uint64_t *value)
{
    uint64_t v = 0;
    unsigned n = 0;
    int d;
    while ((d = gdb_hex_value((*p)[n])) >= 0) {
        if (++n > 16)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    if (!n)
        return false;
    *p += n;
    *value = v;
    return true;
}

bool gdb_hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = gdb_hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : gdb_hex_value(hex[2 * i + 1]);
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void gdb_bytes_to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

long gdb_decode(const uint8_t *raw, size_t len, char *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = raw[i];
        if (c == '*') {
            /* a run: the previous character again (count - 29) times */
            if (!n || i + 1 >= len || raw[i + 1] < 29 + 3 || raw[i + 1] > 126)
                return -1;
            size_t repeat = (size_t)raw[++i] - 29;
            if (repeat > max - n)
                return -1;
            memset(out + n, out[n - 1], repeat);
            n += repeat;
            continue;
        }
        if (c == '}') {
            if (i + 1 >= len)
                return -1;
            c = raw[++i] ^ 0x20;
        }
        if (n >= max)
            return -1;
        out[n++] = (char)c;
    }
    return (long)n;
}

static enum gdb_rx_event finish_packet(struct gdb_rx *rx, uint8_t sent_sum)
{
    rx->state = GDB_RX_IDLE;
    if (rx->too_long || sent_sum != rx->sum)
        return GDB_RX_BAD;
    long n = gdb_decode(rx->raw, rx->raw_len, rx->data, GDB_PACKET_MAX);
    if (n < 0)
        return GDB_RX_BAD;
    rx->len = (size_t)n;
    rx->data[n] = '\0';
    return GDB_RX_PACKET;
}

static enum gdb_rx_event idle_byte(struct gdb_rx *rx, uint8_t byte)
{
    switch (byte) {
    case '$':
        rx->state = GDB_RX_BODY;
        rx->raw_len = 0;
        rx->sum = 0;
        rx->too_long = false;
        return GDB_RX_NONE;
    case 0x03: return GDB_RX_INTERRUPT;
    case '+': return GDB_RX_ACK;
    case '-': return GDB_RX_NACK;
    default: return GDB_RX_NONE; /* noise between packets is ignored */
    }
}

enum gdb_rx_event gdb_rx_byte(struct gdb_rx *rx, uint8_t byte)
{
    int d;
    switch (rx->state) {
    case GDB_RX_IDLE:
        return idle_byte(rx, byte);
    case GDB_RX_BODY:
        if (byte == '#') {
            rx->state = GDB_RX_SUM1;
        } else if (byte == '$') {
            /* a new packet before the end of this one: start over */
            rx->raw_len = 0;
            rx->sum = 0;
            rx->too_long = false;
        } else {
            rx->sum = (uint8_t)(rx->sum + byte);
            if (rx->raw_len < sizeof(rx->raw))
                rx->raw[rx->raw_len++] = byte;
            else
                rx->too_long = true;
        }
        return GDB_RX_NONE;
    case GDB_RX_SUM1:
        if ((d = gdb_hex_value((char)byte)) < 0) {
            rx->state = GDB_RX_IDLE;
            return GDB_RX_BAD;
        }
        rx->sum_hi = (uint8_t)d;
        rx->state = GDB_RX_SUM2;
        return GDB_RX_NONE;
    case GDB_RX_SUM2:
        if ((d = gdb_hex_value((char)byte)) < 0) {
            rx->state = GDB_RX_IDLE;
            return GDB_RX_BAD;
        }
        return finish_packet(rx, (uint8_t)(rx->sum_hi << 4 | d));
    }
    rx->state = GDB_RX_IDLE;
    return GDB_RX_NONE;
}

static bool needs_escape(uint8_t c)
{
    return c == '#' || c == '$' || c == '}' || c == '*';
}

/* How many more times the character at p[0] repeats (at most 97, the
 * largest count a printable character can say). */
static size_t run_after(const uint8_t *p, size_t left)
{
    size_t n = 1;
    while (n < left && n <= 97 && p[n] == p[0])
        n++;
    return n - 1;
}

void gdb_encode(struct buf *out, const void *payload, size_t len)
{
    const uint8_t *p = payload;
    uint8_t sum = 0;
    buf_put(out, "$", 1);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        uint8_t enc[4];
        size_t n = 0;
        if (needs_escape(c)) {
            enc[n++] = '}';
            enc[n++] = c ^ 0x20;
        } else {
            enc[n++] = c;
            size_t run = run_after(p + i, len - i);
            /* '#' and '$' are not allowed as counts: use a shorter run */
            if (run == 6 || run == 7)
                run = 5;
            if (run >= 3) {
                enc[n++] = '*';
                enc[n++] = (uint8_t)(run + 29);
                i += run;
            }
        }
        for (size_t k = 0; k < n; k++)
            sum = (uint8_t)(sum + enc[k]);
        buf_put(out, enc, n);
    }
    char tail[4];
    static const char digits[] = "0123456789abcdef";
    tail[0] = '#';
    tail[1] = digits[sum >> 4];
    tail[2] = digits[sum & 15];
    buf_put(out, tail, 3);
}

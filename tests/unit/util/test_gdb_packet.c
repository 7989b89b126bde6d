/* GDB's packet framing: checksums, '}' escapes, run-length encoding both
 * ways, acks, nacks, interrupts, and what a hostile client sends (bad
 * checksums, dangling escapes, runs with nothing to repeat, packets past
 * the limit) refused without writing past the buffers. */
#include "unit.h"

#include <stdio.h>

#include "util/gdb_packet.h"

/* Feed a string; returns the last event that was not NONE. */
static enum gdb_rx_event feed(struct gdb_rx *rx, const char *s, size_t len)
{
    enum gdb_rx_event last = GDB_RX_NONE;
    for (size_t i = 0; i < len; i++) {
        enum gdb_rx_event e = gdb_rx_byte(rx, (uint8_t)s[i]);
        if (e != GDB_RX_NONE)
            last = e;
    }
    return last;
}

static enum gdb_rx_event feed_str(struct gdb_rx *rx, const char *s)
{
    return feed(rx, s, strlen(s));
}

static void test_plain_packet(void **state)
{
    (void)state;
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    assert_int_equal(feed_str(&rx, "$g#67"), GDB_RX_PACKET);
    assert_string_equal(rx.data, "g");
    assert_int_equal(feed_str(&rx, "$qSupported:multiprocess+#c6"), GDB_RX_PACKET);
    assert_string_equal(rx.data, "qSupported:multiprocess+");
    /* upper-case checksum digits are accepted too */
    assert_int_equal(feed_str(&rx, "$m0,4#FD"), GDB_RX_PACKET);
    assert_string_equal(rx.data, "m0,4");
}

static void test_bad_checksum(void **state)
{
    (void)state;
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    assert_int_equal(feed_str(&rx, "$g#68"), GDB_RX_BAD);
    assert_int_equal(feed_str(&rx, "$g#6z"), GDB_RX_BAD);
    assert_int_equal(feed_str(&rx, "$g#x"), GDB_RX_BAD);
    /* and the next good one goes through */
    assert_int_equal(feed_str(&rx, "$g#67"), GDB_RX_PACKET);
}

static void test_acks_and_interrupt(void **state)
{
    (void)state;
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    assert_int_equal(gdb_rx_byte(&rx, '+'), GDB_RX_ACK);
    assert_int_equal(gdb_rx_byte(&rx, '-'), GDB_RX_NACK);
    assert_int_equal(gdb_rx_byte(&rx, 0x03), GDB_RX_INTERRUPT);
    assert_int_equal(gdb_rx_byte(&rx, 'x'), GDB_RX_NONE); /* noise */
    /* inside a packet, 0x03 is data (an X packet's byte) */
    char pkt[] = "$X0,1:\x03#00";
    uint8_t sum = 0;
    for (size_t i = 1; i < sizeof(pkt) - 4; i++)
        sum = (uint8_t)(sum + (uint8_t)pkt[i]);
    snprintf(pkt + sizeof(pkt) - 3, 3, "%02x", sum);
    assert_int_equal(feed(&rx, pkt, sizeof(pkt) - 1), GDB_RX_PACKET);
    assert_int_equal(rx.len, 6);
    assert_int_equal(rx.data[5], 3);
}

static void test_escapes_decoded(void **state)
{
    (void)state;
    char out[16];
    const uint8_t raw[] = {'a', '}', '#' ^ 0x20, '}', '}' ^ 0x20, 'b'};
    assert_int_equal(gdb_decode(raw, sizeof(raw), out, sizeof(out)), 4);
    assert_memory_equal(out, "a#}b", 4);
    const uint8_t dangling[] = {'a', '}'};
    assert_int_equal(gdb_decode(dangling, sizeof(dangling), out, sizeof(out)), -1);
}

static void test_runs_decoded(void **state)
{
    (void)state;
    char out[16];
    /* "0* " is '0' then 3 more */
    assert_int_equal(gdb_decode((const uint8_t *)"0* 1", 4, out, sizeof(out)), 5);
    assert_memory_equal(out, "00001", 5);
    /* a run with nothing before it, a count below 3, a run past 'max' */
    assert_int_equal(gdb_decode((const uint8_t *)"* ", 2, out, sizeof(out)), -1);
    assert_int_equal(gdb_decode((const uint8_t *)"0*\x1e", 3, out, sizeof(out)), -1);
    assert_int_equal(gdb_decode((const uint8_t *)"0*~", 3, out, 8), -1);
    assert_int_equal(gdb_decode((const uint8_t *)"0*", 2, out, sizeof(out)), -1);
}

static void test_encode(void **state)
{
    (void)state;
    struct buf b = {0};
    gdb_encode(&b, "OK", 2);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "$OK#9a", 6);
    b.len = 0;
    /* special characters escaped */
    gdb_encode(&b, "#$}*", 4);
    assert_memory_equal(b.data, "$}\x03}\x04}]}\x0a#", 10);
    buf_free(&b);
}

/* Whatever is encoded comes back the same through the receiver. */
static void round_trip(const char *payload, size_t len, size_t max_encoded)
{
    struct buf b = {0};
    gdb_encode(&b, payload, len);
    assert_true(b.len <= max_encoded);
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    assert_int_equal(feed(&rx, (const char *)b.data, b.len), GDB_RX_PACKET);
    assert_int_equal(rx.len, len);
    assert_memory_equal(rx.data, payload, len);
    buf_free(&b);
}

static void test_run_length_round_trip(void **state)
{
    (void)state;
    char zeros[600];
    memset(zeros, '0', sizeof(zeros));
    /* 600 zeros take a few 3-byte runs, not 600 bytes */
    round_trip(zeros, sizeof(zeros), 4 + 7 * 3 + 4);
    /* runs of 7 and 8 (counts that would be '#' and '$') */
    round_trip("aaaaaaab", 8, 20);
    round_trip("aaaaaaaab", 9, 20);
    round_trip("xx}}}}}}}}##", 12, 40);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    round_trip(all, sizeof(all), 600);
}

static void test_oversized_refused(void **state)
{
    (void)state;
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    static char big[GDB_PACKET_MAX + 64];
    memset(big, 'a', sizeof(big));
    big[0] = '$';
    uint8_t sum = 0;
    for (size_t i = 1; i < sizeof(big) - 3; i++)
        sum = (uint8_t)(sum + 'a');
    char tail[4]; /* "#xx" and its NUL, which must not land past 'big' */
    snprintf(tail, sizeof(tail), "#%02x", sum);
    memcpy(big + sizeof(big) - 3, tail, 3);
    assert_int_equal(feed(&rx, big, sizeof(big)), GDB_RX_BAD);
    /* a short packet that expands past the limit */
    char bomb[512] = "$";
    size_t n = 1;
    while (n < 400) {
        memcpy(bomb + n, "a*~", 3);
        n += 3;
    }
    sum = 0;
    for (size_t i = 1; i < n; i++)
        sum = (uint8_t)(sum + (uint8_t)bomb[i]);
    n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "#%02x", sum);
    assert_int_equal(feed(&rx, bomb, n), GDB_RX_BAD);
    assert_int_equal(feed_str(&rx, "$g#67"), GDB_RX_PACKET);
}

static void test_restart_on_dollar(void **state)
{
    (void)state;
    struct gdb_rx rx;
    gdb_rx_init(&rx);
    assert_int_equal(feed_str(&rx, "$garbage$g#67"), GDB_RX_PACKET);
    assert_string_equal(rx.data, "g");
}

static void test_hex_helpers(void **state)
{
    (void)state;
    const char *p = "ffffffff81000000,10";
    uint64_t v;
    assert_true(gdb_parse_hex(&p, &v));
    assert_true(v == 0xffffffff81000000ull);
    assert_int_equal(*p, ',');
    p = "12345678901234567"; /* 17 digits */
    assert_false(gdb_parse_hex(&p, &v));
    p = ",";
    assert_false(gdb_parse_hex(&p, &v));
    uint8_t bytes[2];
    assert_true(gdb_hex_to_bytes("a0Ff", bytes, 2));
    assert_int_equal(bytes[0], 0xa0);
    assert_int_equal(bytes[1], 0xff);
    assert_false(gdb_hex_to_bytes("a0g0", bytes, 2));
    char hex[5];
    gdb_bytes_to_hex(bytes, 2, hex);
    assert_string_equal(hex, "a0ff");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_packet),
        cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_acks_and_interrupt),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_runs_decoded),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_run_length_round_trip),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_restart_on_dollar),
        cmocka_unit_test(test_hex_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

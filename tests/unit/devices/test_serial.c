/* The 16550A UART against the register-level behaviour Linux's 8250 driver
 * relies on: probe, THRE interrupt semantics, receive FIFO and input gating. */
#include "fake_irq.h"

#include <unistd.h>

#include "devices/serial_8250.h"
#include "util/log.h"

#define RBR 0
#define THR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct host {
    uint8_t tx[256];
    size_t ntx;
    size_t room;        /* bytes the host takes before it is full */
    unsigned rx_ready_calls;
    void (*waiter)(void *arg);
    void *waiter_arg;
    unsigned waits;
};

static size_t host_tx(void *ctx, const uint8_t *buf, size_t len)
{
    struct host *h = ctx;
    size_t i;
    for (i = 0; i < len && h->ntx < sizeof(h->tx) && h->room; i++, h->room--)
        h->tx[h->ntx++] = buf[i];
    return i;
}

static void host_wait(void *ctx, void (*fn)(void *arg), void *arg)
{
    struct host *h = ctx;
    h->waiter = fn;
    h->waiter_arg = arg;
    h->waits++;
}

/* The host has room for 'n' more bytes and calls back the device that waited. */
static void host_drain(struct host *h, size_t n)
{
    h->room += n;
    void (*fn)(void *) = h->waiter;
    h->waiter = NULL;
    if (fn)
        fn(h->waiter_arg);
}

static void host_rx_ready(void *ctx)
{
    ((struct host *)ctx)->rx_ready_calls++;
}

static const struct chardev_host_ops host_ops = {
    .write = host_tx, .input_ready = host_rx_ready, .wait_writable = host_wait};

struct fixture {
    struct serial s;
    struct fake_irq irq;
    struct irq_sink sink;
    struct host host;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->sink = fake_irq_sink(&f->irq);
    f->host.room = SIZE_MAX;
    const struct chardev_host host = {&host_ops, &f->host};
    serial_init(&f->s, (struct irq_line){&f->sink, 4}, &host);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_destroy(&f->s);
    free(f);
    return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
    uint8_t v;
    serial_bus_ops.read(&f->s, reg, &v, 1);
    return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
    serial_bus_ops.write(&f->s, reg, &v, 1);
}

/* What Linux's start-up does before input may flow. */
static void open_port(struct fixture *f)
{
    wr(f, MCR, 0x0b); /* DTR RTS OUT2 */
    wr(f, IER, 0x05); /* RLSI RDI */
}

static void test_reset_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, IER), 0);
    assert_int_equal(rd(f, IIR), 0x01);          /* no interrupt */
    assert_int_equal(rd(f, LSR), 0x60);          /* THRE | TEMT */
    assert_int_equal(rd(f, MSR) & 0xf0, 0xb0);   /* DCD DSR CTS */
    assert_false(f->irq.level[4]);
}

static void test_linux_probe(void **state)
{
    struct fixture *f = *state;
    /* IER holds exactly its low four bits. */
    wr(f, IER, 0);
    assert_int_equal(rd(f, IER) & 0x0f, 0);
    wr(f, IER, 0x0f);
    assert_int_equal(rd(f, IER) & 0x0f, 0x0f);
    wr(f, IER, 0xff);
    assert_int_equal(rd(f, IER), 0x0f);
    wr(f, IER, 0);
    /* Loopback: MSR's top bits mirror MCR outputs (Linux expects 0x90). */
    wr(f, MCR, 0x10 | 0x0a);
    assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
    wr(f, MCR, 0);
    /* FIFO enable shows as 0xc0 in IIR: a 16550A. */
    wr(f, FCR, 0x01);
    assert_int_equal(rd(f, IIR) & 0xc0, 0xc0);
    /* Scratch register and divisor latch. */
    wr(f, SCR, 0x5a);
    assert_int_equal(rd(f, SCR), 0x5a);
    wr(f, LCR, 0x83);
    wr(f, 0, 0x01);
    wr(f, 1, 0x00);
    assert_int_equal(rd(f, 0), 0x01);
    wr(f, LCR, 0x03);
    assert_int_equal(f->host.ntx, 0); /* the divisor write was not data */
}

static void test_transmit_and_thre_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f, THR, 'h');
    wr(f, THR, 'i');
    assert_int_equal(f->host.ntx, 2);
    assert_memory_equal(f->host.tx, "hi", 2);
    assert_false(f->irq.level[4]); /* THRI not enabled */
    /* Enabling THRI with an idle transmitter interrupts at once... */
    wr(f, IER, 0x02);
    assert_true(f->irq.level[4]);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    /* ...reading IIR acknowledges it... */
    assert_false(f->irq.level[4]);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
    /* ...and re-enabling re-asserts it (Linux's UART_BUG_THRE test). */
    wr(f, IER, 0);
    wr(f, IER, 0x02);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    /* Writing THR re-arms it: a new edge for the next byte. */
    unsigned raises = f->irq.raises[4];
    wr(f, THR, '!');
    assert_true(f->irq.level[4]);
    assert_int_equal(f->irq.raises[4], raises + 1);
}

static void test_input_waits_for_open_port(void **state)
{
    struct fixture *f = *state;
    const uint8_t data[] = "abc";
    assert_int_equal(serial_receive(&f->s, data, 3), 0);
    /* The probe's IER test alone must not let input in. */
    wr(f, IER, 0x0f);
    assert_int_equal(serial_receive(&f->s, data, 3), 0);
    wr(f, IER, 0);
    /* Loopback with OUT2 (another probe step) neither. */
    wr(f, MCR, 0x1a);
    wr(f, IER, 0x01);
    assert_int_equal(serial_receive(&f->s, data, 3), 0);
    wr(f, MCR, 0);
    wr(f, IER, 0);
    unsigned calls = f->host.rx_ready_calls;
    open_port(f);
    assert_true(f->host.rx_ready_calls > calls); /* the host is told */
    assert_int_equal(serial_receive(&f->s, data, 3), 3);
}

static void test_receive_fifo(void **state)
{
    struct fixture *f = *state;
    open_port(f);
    uint8_t data[20];
    for (int i = 0; i < 20; i++)
        data[i] = (uint8_t)('a' + i);
    assert_int_equal(serial_receive(&f->s, data, 20), SERIAL_FIFO_SIZE);
    assert_true(f->irq.level[4]);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04); /* received data */
    assert_int_equal(rd(f, LSR) & 0x01, 0x01);
    assert_int_equal(serial_receive(&f->s, data, 1), 0); /* full */
    unsigned calls = f->host.rx_ready_calls;
    for (int i = 0; i < SERIAL_FIFO_SIZE; i++)
        assert_int_equal(rd(f, RBR), 'a' + i);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    assert_false(f->irq.level[4]);
    assert_true(f->host.rx_ready_calls > calls); /* drained: more please */
    /* FCR "clear receiver" drops what is queued. */
    assert_int_equal(serial_receive(&f->s, data, 4), 4);
    wr(f, FCR, 0x03);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
}

static void test_loopback_data(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x10);
    wr(f, THR, 0x42);
    assert_int_equal(f->host.ntx, 0);
    assert_int_equal(rd(f, LSR) & 0x01, 1);
    assert_int_equal(rd(f, RBR), 0x42);
}

/* A host that cannot take output (a slow reader on stdout): the transmitter
 * stays busy — LSR without THRE/TEMT, no THRE interrupt — the bytes wait in
 * the transmit FIFO and leave in order once the host has room; past the
 * FIFO's 16 bytes they are lost, as on the chip. Nothing blocks. */
/* The state dump's line for the UART, read back through a pipe. */
static void expect_dump(struct fixture *f, const char *want)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_configure(&(struct log_config){.fd = fds[1], .level = LOG_WARN});
    serial_dump(&f->s);
    log_configure(&(struct log_config){.fd = 2, .level = LOG_WARN});
    char out[256] = "";
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    if (!strstr(out, want))
        fail_msg("dump '%s', expected '%s'", out, want);
}

static void test_transmit_backpressure(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x01);
    wr(f, IER, 0x02);
    (void)rd(f, IIR); /* acknowledge the THRE interrupt enabling gave */
    f->host.room = 2;
    for (int i = 0; i < 2; i++)
        wr(f, THR, (uint8_t)('a' + i));
    assert_int_equal(f->host.ntx, 2);
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
    (void)rd(f, IIR);
    /* Full: the next bytes are held, the transmitter reports busy. */
    for (int i = 2; i < 2 + 16 + 3; i++)
        wr(f, THR, (uint8_t)('a' + i));
    assert_int_equal(f->host.ntx, 2);
    assert_int_equal(rd(f, LSR) & 0x60, 0);
    assert_false(f->irq.level[4]);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
    assert_int_equal(f->host.waits, 1); /* asked once to be called back */
    assert_non_null(f->host.waiter);
    assert_int_equal(f->s.tx_dropped, 3); /* 19 written, 16 held in the FIFO */
    expect_dump(f, "LSR 0x00 IER 0x02 IIR-THRE no, 16 byte(s) held waiting for the host, "
                   "21 out, 3 dropped");
    /* Some room: part of the FIFO leaves, the transmitter is still busy. */
    host_drain(&f->host, 5);
    assert_int_equal(f->host.ntx, 7);
    assert_int_equal(rd(f, LSR) & 0x60, 0);
    assert_non_null(f->host.waiter);
    /* Room for all: the rest leaves in order and THRE interrupts. */
    host_drain(&f->host, 100);
    assert_int_equal(f->host.ntx, 2 + 16);
    for (int i = 0; i < 2 + 16; i++)
        assert_int_equal(f->host.tx[i], 'a' + i);
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
    assert_true(f->irq.level[4]);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    assert_null(f->host.waiter);
}

/* Held bytes survive a snapshot; a restored UART whose saved LSR says busy
 * but holds nothing reports an idle transmitter (it would wait for ever). */
static void test_transmit_backpressure_snapshot(void **state)
{
    struct fixture *f = *state;
    f->host.room = 0;
    wr(f, THR, 'x');
    wr(f, THR, 'y');
    assert_int_equal(rd(f, LSR) & 0x60, 0);
    struct rec r = rec_new();
    serial_save(&f->s, r);
    struct fixture *g = calloc(1, sizeof(*g));
    g->sink = fake_irq_sink(&g->irq);
    g->host.room = SIZE_MAX;
    const struct chardev_host host = {&host_ops, &g->host};
    serial_init(&g->s, (struct irq_line){&g->sink, 4}, &host);
    assert_int_equal(serial_load(&g->s, r), 0);
    assert_int_equal(g->host.ntx, 2);
    assert_memory_equal(g->host.tx, "xy", 2);
    assert_int_equal(rd(g, LSR) & 0x60, 0x60);
    rec_free(r);
    /* Busy in the saved registers, nothing held: idle after the load. */
    r = rec_new();
    serial_save(&f->s, r);
    rec_put_bytes(r, "tx", "", 0);
    assert_int_equal(serial_load(&g->s, r), 0);
    assert_int_equal(rd(g, LSR) & 0x60, 0x60);
    /* More than a FIFO of held bytes is refused. */
    uint8_t big[17] = {0};
    rec_put_bytes(r, "tx", big, sizeof(big));
    assert_int_not_equal(serial_load(&g->s, r), 0);
    rec_free(r);
    serial_destroy(&g->s);
    free(g);
}

static uint64_t fake_now_ns;
static uint64_t fake_clock(void)
{
    return fake_now_ns;
}

/* Firecracker's serial rate_limiter: bytes beyond the bucket are dropped
 * and counted, never held (the transmitter stays ready), and the bucket
 * refills with time. */
static void test_output_rate_limit(void **state)
{
    struct fixture *f = *state;
    fake_now_ns = 1000000000ull;
    serial_set_rate_limit(&f->s, &(struct bucket_config){.size = 4, .refill_time_ms = 1000},
                          fake_clock);
    for (int i = 0; i < 10; i++) {
        wr(f, THR, (uint8_t)('a' + i));
        assert_true(rd(f, LSR) & 0x20); /* THRE: never busy for a dropped byte */
    }
    assert_int_equal(f->host.ntx, 4);
    assert_memory_equal(f->host.tx, "abcd", 4);
    assert_int_equal(f->s.limit_dropped, 6);
    assert_int_equal(f->s.bytes_out, 10);
    fake_now_ns += 500000000ull; /* half the refill time: two tokens */
    for (int i = 0; i < 3; i++)
        wr(f, THR, (uint8_t)('A' + i));
    assert_int_equal(f->host.ntx, 6);
    assert_memory_equal(f->host.tx + 4, "AB", 2);
    assert_int_equal(f->s.limit_dropped, 7);
    /* An inactive bucket (size 0) lifts the limit. */
    serial_set_rate_limit(&f->s, &(struct bucket_config){0}, fake_clock);
    for (int i = 0; i < 20; i++)
        wr(f, THR, 'z');
    assert_int_equal(f->host.ntx, 26);
    assert_int_equal(f->s.limit_dropped, 7);
}

static void test_access_outside_registers(void **state)
{
    struct fixture *f = *state;
    uint8_t v[2] = {0x12, 0x34};
    /* A two-byte access at offset 7 touches one register and one outside. */
    serial_bus_ops.write(&f->s, 7, v, 2);
    assert_int_equal(rd(f, SCR), 0x12);
    serial_bus_ops.read(&f->s, 7, v, 2);
    assert_int_equal(v[1], 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_and_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_waits_for_open_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_backpressure_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_outside_registers, setup, teardown),
    };
    return cmocka_run_group_tests_name("serial_8250", tests, NULL, NULL);
}

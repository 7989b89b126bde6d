/* The console's escape keys (Ctrl-A x, Ctrl-A Ctrl-A), also split across reads. */
#include "fakes.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "vmm/console.h"

static void test_console_escapes(void **state)
{
    (void)state;
    uint8_t out[32];
    bool esc = false, quit;
    size_t n = console_filter_escapes(&esc, (const uint8_t *)"ls\r", 3, out, &quit);
    assert_int_equal(n, 3);
    assert_false(quit);
    n = console_filter_escapes(&esc, (const uint8_t *)"a\x01x", 3, out, &quit);
    assert_true(quit);
    assert_int_equal(n, 1);
    n = console_filter_escapes(&esc, (const uint8_t *)"\x01\x01", 2, out, &quit);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0x01);
    n = console_filter_escapes(&esc, (const uint8_t *)"\x01q", 2, out, &quit);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x01q", 2);
    /* Split across two reads. */
    n = console_filter_escapes(&esc, (const uint8_t *)"z\x01", 2, out, &quit);
    assert_int_equal(n, 1);
    assert_true(esc);
    n = console_filter_escapes(&esc, (const uint8_t *)"X", 1, out, &quit);
    assert_true(quit);
    assert_int_equal(n, 0);
}

static unsigned woken;
static void on_writable(void *arg)
{
    (void)arg;
    woken++;
}

static size_t no_input(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)buf, (void)len;
    return 0;
}

/* Output to a pipe nobody reads: the console takes its buffer's worth and
 * then says "full" (never blocking the caller, which is a vCPU or the event
 * loop), calls back the waiting device on the loop once the reader has
 * drained half of it, and everything written arrives in order. */
static void test_console_output_backpressure(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* A pipe of 64 KiB plus the console's buffer of 64 KiB. */
    fcntl(p[1], F_SETPIPE_SZ, 65536);
    struct console con;
    struct evloop loop;
    assert_int_equal(evloop_init(&loop), 0);
    int devnull = open("/dev/null", O_RDONLY);
    assert_int_equal(console_init(&con, devnull, p[1]), 0);
    assert_int_equal(console_attach(&con, &loop, no_input, NULL, NULL, NULL), 0);
    const struct chardev_host host = {&console_chardev_ops, &con};
    static uint8_t chunk[4096];
    uint64_t sent = 0;
    /* Write until the console takes nothing, five times 20 ms apart (the
     * writer thread has filled the pipe by then). */
    for (int zeros = 0, tries = 0; zeros < 5 && tries < 10000; tries++) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (uint8_t)((sent + i) * 13);
        size_t n = chardev_write(&host, chunk, sizeof(chunk));
        sent += n;
        zeros = n ? 0 : zeros + 1;
        if (n < sizeof(chunk))
            usleep(20000);
    }
    assert_int_equal(chardev_write(&host, chunk, 1), 0);
    assert_true(sent >= CONSOLE_OUT_BUF && sent <= CONSOLE_OUT_BUF + 65536 + 4096);
    assert_true(chardev_wait_writable(&host, on_writable, NULL));
    woken = 0;
    assert_int_equal(evloop_run_once(&loop, 100), 0); /* nothing yet */
    assert_int_equal(woken, 0);
    /* The reader drains: the device is called back, on the loop. */
    static uint8_t got[CONSOLE_OUT_BUF + 65536 + 8192];
    uint64_t read_total = 0;
    while (read_total < sent) {
        ssize_t r = read(p[0], got + read_total, sizeof(got) - read_total);
        assert_true(r > 0);
        read_total += (uint64_t)r;
        if (!woken)
            evloop_run_once(&loop, 0);
    }
    for (int i = 0; i < 50 && !woken; i++)
        evloop_run_once(&loop, 20);
    assert_int_equal(woken, 1);
    for (uint64_t i = 0; i < sent; i++)
        if (got[i] != (uint8_t)(i * 13))
            fail_msg("byte %llu differs", (unsigned long long)i);
    /* A reader that goes away: output is dropped, devices are never held. */
    close(p[0]);
    assert_int_equal(chardev_write(&host, chunk, sizeof(chunk)), sizeof(chunk));
    console_flush(&con);
    assert_true(con.out.failed);
    for (int i = 0; i < 100; i++)
        assert_int_equal(chardev_write(&host, chunk, sizeof(chunk)), sizeof(chunk));
    console_detach(&con);
    console_destroy(&con);
    evloop_destroy(&loop);
    close(p[1]);
    close(devnull);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as ember does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_escapes),
        cmocka_unit_test(test_console_output_backpressure),
    };
    return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}

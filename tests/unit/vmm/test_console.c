/* The console's escape keys (Ctrl-A x, Ctrl-A Ctrl-A), also split across reads. */
#include "fakes.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_escapes),
    };
    return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}

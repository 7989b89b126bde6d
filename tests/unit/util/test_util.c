/* Sizes as the options and the API give them. */
#include "unit.h"

#include <errno.h>

#include "util/util.h"

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(parse_size("256M", &v), 0);
    assert_true(v == MiB(256));
    assert_int_equal(parse_size("2G", &v), 0);
    assert_true(v == GiB(2));
    assert_int_equal(parse_size("2g", &v), 0);
    assert_int_equal(parse_size("512", &v), 0); /* plain numbers are MiB */
    assert_true(v == MiB(512));
    assert_int_equal(parse_size("1024KiB", &v), 0);
    assert_true(v == MiB(1));
    assert_int_equal(parse_size("1GB", &v), 0);
    assert_int_equal(parse_size("", &v), -EINVAL);
    assert_int_equal(parse_size("M", &v), -EINVAL);
    assert_int_equal(parse_size("0M", &v), -EINVAL);
    assert_int_equal(parse_size("-1M", &v), -EINVAL);
    assert_int_equal(parse_size("1Q", &v), -EINVAL);
    assert_int_equal(parse_size("1MM", &v), -EINVAL);
    assert_int_equal(parse_size("99999999999999999999G", &v), -EINVAL);
    assert_int_equal(parse_size("17179869184G", &v), -EINVAL); /* overflows 64 bits */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

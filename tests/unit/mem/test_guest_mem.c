/* The checked accessor: the only source of host pointers into guest memory. */
#include "fakes.h"

#include "util/util.h"

static void test_ptr_inside_region(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0x1000, 0x2000);
    uint8_t *base = gm.regions[0].hva;
    assert_ptr_equal(gm_ptr(&gm, 0x1000, 1), base);
    assert_ptr_equal(gm_ptr(&gm, 0x1000, 0x2000), base);
    assert_ptr_equal(gm_ptr(&gm, 0x2fff, 1), base + 0x1fff);
    assert_ptr_equal(gm_ptr(&gm, 0x1800, 0), base + 0x800); /* len 0 = 1 */
    fake_mem_free(&gm);
}

static void test_ptr_outside_region(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0x1000, 0x2000);
    assert_null(gm_ptr(&gm, 0x0fff, 1));
    assert_null(gm_ptr(&gm, 0x0fff, 2));    /* starts just below */
    assert_null(gm_ptr(&gm, 0x3000, 1));    /* just past the end */
    assert_null(gm_ptr(&gm, 0x2fff, 2));    /* runs off the end by one */
    assert_null(gm_ptr(&gm, 0x1000, 0x2001));
    assert_null(gm_ptr(&gm, 0, 0));
    fake_mem_free(&gm);
}

static void test_ptr_overflow(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0x1000, 0x2000);
    /* gpa + len wraps around to inside the region. */
    assert_null(gm_ptr(&gm, 0x2000, UINT64_MAX));
    assert_null(gm_ptr(&gm, UINT64_MAX, 2));
    assert_null(gm_ptr(&gm, UINT64_MAX - 0x10, 0x1020));
    assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0xfff));
    fake_mem_free(&gm);
}

static void test_ptr_spanning_regions(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0, 0x1000);
    fake_mem_add(&gm, 0x1000, 0x1000); /* adjacent, but a different mapping */
    assert_non_null(gm_ptr(&gm, 0xff0, 0x10));
    assert_non_null(gm_ptr(&gm, 0x1000, 0x10));
    assert_null(gm_ptr(&gm, 0xff0, 0x11));
    fake_mem_free(&gm);
}

static void test_overlapping_regions_rejected(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0x1000, 0x1000);
    uint8_t other[16];
    assert_int_equal(gm_add_region(&gm, 0x1800, 16, other), -EINVAL);
    assert_int_equal(gm_add_region(&gm, 0x0ff8, 16, other), -EINVAL);
    assert_int_equal(gm_add_region(&gm, UINT64_MAX - 4, 16, other), -EINVAL);
    assert_int_equal(gm_add_region(&gm, 0x5000, 0, other), -EINVAL);
    fake_mem_free(&gm);
}

static void test_copy_helpers(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0x1000, 0x100);
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    assert_int_equal(gm_write(&gm, 0x10f8, buf, 8), 0);
    assert_int_equal(gm_read(&gm, 0x10f8, out, 8), 0);
    assert_memory_equal(buf, out, 8);
    assert_int_equal(gm_write(&gm, 0x10f9, buf, 8), -EFAULT);
    assert_int_equal(gm_read(&gm, 0x10f9, out, 8), -EFAULT);
    assert_int_equal(gm_fill(&gm, 0x1000, 0xaa, 0x100), 0);
    assert_int_equal(gm_fill(&gm, 0x1000, 0xaa, 0x101), -EFAULT);
    fake_mem_free(&gm);
}

static void test_field_accessors_little_endian(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0, 0x20);
    assert_int_equal(gm_write_u64(&gm, 8, 0x1122334455667788ull), 0);
    uint8_t *p = gm.regions[0].hva;
    assert_int_equal(p[8], 0x88);
    assert_int_equal(p[15], 0x11);
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    assert_int_equal(gm_read_u16(&gm, 8, &v16), 0);
    assert_int_equal(v16, 0x7788);
    assert_int_equal(gm_read_u32(&gm, 12, &v32), 0);
    assert_int_equal(v32, 0x11223344);
    assert_int_equal(gm_read_u64(&gm, 8, &v64), 0);
    assert_true(v64 == 0x1122334455667788ull);
    v32 = 0xdeadbeef;
    assert_int_equal(gm_read_u32(&gm, 0x1e, &v32), -EFAULT);
    assert_int_equal(v32, 0xdeadbeef); /* untouched on failure */
    assert_int_equal(gm_write_u16(&gm, 0x1f, 1), -EFAULT);
    fake_mem_free(&gm);
}

static void test_anonymous_layout_around_hole(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(gm_create_anon(&gm, MiB(64), MiB(32)), 0);
    assert_int_equal(gm.nr_regions, 2);
    assert_true(gm.regions[0].gpa == 0 && gm.regions[0].size == MiB(32));
    assert_true(gm.regions[1].gpa == GiB(4) && gm.regions[1].size == MiB(32));
    assert_true(gm.total_size == MiB(64));
    assert_null(gm_ptr(&gm, MiB(32), 1)); /* the hole */
    assert_non_null(gm_ptr(&gm, GiB(4) + MiB(32) - 1, 1));
    gm_destroy(&gm);
    assert_int_equal(gm_create_anon(&gm, MiB(16), MiB(32)), 0);
    assert_int_equal(gm.nr_regions, 1);
    gm_destroy(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptr_inside_region),
        cmocka_unit_test(test_ptr_outside_region),
        cmocka_unit_test(test_ptr_overflow),
        cmocka_unit_test(test_ptr_spanning_regions),
        cmocka_unit_test(test_overlapping_regions_rejected),
        cmocka_unit_test(test_copy_helpers),
        cmocka_unit_test(test_field_accessors_little_endian),
        cmocka_unit_test(test_anonymous_layout_around_hole),
    };
    return cmocka_run_group_tests_name("guest_mem", tests, NULL, NULL);
}

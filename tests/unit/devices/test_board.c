/* The board's device list: what the VMM's snapshot, pause, dump and
 * teardown loops rely on, with fake devices that record what they are
 * asked. */
#include "rec_copy.h"

#include "devices/board.h"

struct fake_dev {
    const char *log_name;
    int value;
    bool paused;
    unsigned dumps;
    int *destroyed; /* where to record the order of destruction */
    int *next;
};

static void fake_destroy(void *dev)
{
    struct fake_dev *d = dev;
    d->destroyed[(*d->next)++] = d->value;
}

static void fake_save(void *dev, struct rec r)
{
    rec_put_u64(r, "value", (uint64_t)((struct fake_dev *)dev)->value);
}

static int fake_load(void *dev, struct rec r)
{
    uint64_t v;
    int ret = rec_get_u64(r, "value", 1000, &v);
    if (!ret)
        ((struct fake_dev *)dev)->value = (int)v;
    return ret;
}

static void fake_pause(void *dev, bool paused)
{
    ((struct fake_dev *)dev)->paused = paused;
}

static void fake_dump(void *dev)
{
    ((struct fake_dev *)dev)->dumps++;
}

static const struct device_ops fake_ops = {
    .destroy = fake_destroy, .save = fake_save, .load = fake_load,
    .pause = fake_pause, .dump = fake_dump,
};
static const struct device_ops stateless_ops = {.destroy = fake_destroy};
static const struct device_ops no_ops;

struct fixture {
    struct board b;
    struct fake_dev devs[4];
    int destroyed[BOARD_MAX_DEVICES + 1];
    int next;
};

/* Two singletons, "a" (stateless) and "b", and two members of group "g". */
static void populate(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 4; i++)
        f->devs[i] = (struct fake_dev){.value = i + 1, .destroyed = f->destroyed, .next = &f->next};
    assert_non_null(board_add(&f->b, &stateless_ops, &f->devs[0], "a"));
    assert_non_null(board_add(&f->b, &fake_ops, &f->devs[1], "b"));
    for (int i = 2; i < 4; i++) {
        struct device *d = board_add(&f->b, &fake_ops, &f->devs[i], "member");
        assert_non_null(d);
        d->group = "g";
        d->kind = &f->devs; /* any unique address */
    }
}

static void test_save_load(void **state)
{
    (void)state;
    struct fixture f;
    populate(&f);
    struct rec saved = rec_new();
    board_save(&f.b, saved);
    saved = rec_copy(saved);
    assert_true(rec_has(saved, "b"));
    assert_false(rec_has(saved, "a")); /* nothing to save */
    size_t n;
    assert_int_equal(rec_get_count(saved, "g", 16, &n), 0);
    assert_int_equal(n, 2);
    for (int i = 0; i < 4; i++)
        f.devs[i].value = 0;
    assert_int_equal(board_load(&f.b, saved), 0);
    /* Each device got its own record back, group members in order. */
    assert_int_equal(f.devs[1].value, 2);
    assert_int_equal(f.devs[2].value, 3);
    assert_int_equal(f.devs[3].value, 4);
    board_destroy(&f.b);
    rec_free(saved);
}

static void test_load_refuses_mismatches(void **state)
{
    (void)state;
    struct fixture f;
    populate(&f);
    /* A group with a member too many, a missing singleton, a bad value. */
    struct rec r = rec_new();
    rec_put_u64(rec_put_child(r, "b"), "value", 1);
    for (int i = 0; i < 3; i++)
        rec_put_u64(rec_put_item(r, "g"), "value", 1);
    assert_int_equal(board_load(&f.b, r), -EINVAL);
    assert_non_null(strstr(err_msg(), "3 g devices, the machine has 2"));
    rec_free(r);
    r = rec_new();
    for (int i = 0; i < 2; i++)
        rec_put_u64(rec_put_item(r, "g"), "value", 1);
    assert_int_equal(board_load(&f.b, r), -EINVAL);
    assert_non_null(strstr(err_msg(), "'b'"));
    rec_put_u64(rec_put_child(r, "b"), "value", 5000);
    assert_int_equal(board_load(&f.b, r), -EINVAL);
    rec_free(r);
    board_destroy(&f.b);
}

static void test_find_pause_dump_destroy(void **state)
{
    (void)state;
    struct fixture f;
    populate(&f);
    assert_ptr_equal(board_find(&f.b, &fake_ops, 0), &f.devs[1]);
    assert_null(board_find(&f.b, &fake_ops, 1));
    assert_ptr_equal(board_find(&f.b, &f.devs, 1), &f.devs[3]);
    assert_null(board_find(&f.b, &f.devs, 2));
    board_pause(&f.b, true);
    assert_true(f.devs[1].paused && f.devs[2].paused && f.devs[3].paused);
    board_pause(&f.b, false);
    assert_false(f.devs[1].paused);
    board_dump(&f.b);
    assert_int_equal(f.devs[3].dumps, 1);
    board_destroy(&f.b);
    /* Reverse order of creation. */
    assert_int_equal(f.next, 4);
    assert_int_equal(f.destroyed[0], 4);
    assert_int_equal(f.destroyed[3], 1);
    assert_int_equal(f.b.nr_devices, 0);
}

static void test_full_board_destroys_the_device(void **state)
{
    (void)state;
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    struct fake_dev d = {.value = 7, .destroyed = f.destroyed, .next = &f.next};
    for (int i = 0; i < BOARD_MAX_DEVICES; i++)
        assert_non_null(board_add(&f.b, &no_ops, &d, "x"));
    assert_null(board_add(&f.b, &stateless_ops, &d, "y"));
    assert_int_equal(f.next, 1); /* it was not leaked */
    assert_non_null(strstr(err_msg(), "more than"));
    board_destroy(&f.b);
}

static void test_describe_and_console(void **state)
{
    (void)state;
    struct fixture f;
    memset(&f, 0, sizeof(f));
    struct acpi_device desc = {.name = "COM1", .hid = "PNP0501", .irq = 4};
    for (int i = 0; i < ACPI_MAX_DEVICES; i++)
        assert_int_equal(board_describe(&f.b, &desc), 0);
    assert_int_equal(board_describe(&f.b, &desc), -ENOSPC);
    assert_null(f.b.console_input);
    board_take_console(&f.b, NULL, &f);
    assert_ptr_equal(f.b.console_input_dev, &f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_refuses_mismatches),
        cmocka_unit_test(test_find_pause_dump_destroy),
        cmocka_unit_test(test_full_board_destroys_the_device),
        cmocka_unit_test(test_describe_and_console),
    };
    return cmocka_run_group_tests_name("board", tests, NULL, NULL);
}

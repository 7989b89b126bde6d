/* ember's threads: they run and return their value, and their stack's
 * mapping is the size asked for, below 2 MiB, so no huge page fits in it
 * (the whole mapping, from /proc/self/maps: a merge with a neighbour
 * would show). */
#include "unit.h"

#include <stdio.h>
#include <unistd.h>

#include "util/thread.h"

struct parked {
    int wake[2]; /* the thread waits for a byte, so its stack stays mapped */
    int value;
};

static void *park_then_return(void *arg)
{
    struct parked *p = arg;
    char c;
    if (read(p->wake[0], &c, 1) != 1)
        return NULL;
    return &p->value;
}

static void stack_of(pthread_t t, uintptr_t *lo, size_t *size)
{
    pthread_attr_t attr;
    assert_int_equal(pthread_getattr_np(t, &attr), 0);
    void *addr;
    assert_int_equal(pthread_attr_getstack(&attr, &addr, size), 0);
    pthread_attr_destroy(&attr);
    *lo = (uintptr_t)addr;
}

/* The size of the mapping that holds 'addr', 0 if none does. */
static size_t mapping_size_at(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    size_t size = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && addr >= start && addr < end)
            size = end - start;
    }
    fclose(f);
    return size;
}

static void test_thread_runs_and_returns(void **state)
{
    (void)state;
    struct parked p = {.value = 42};
    assert_int_equal(pipe(p.wake), 0);
    pthread_t t;
    assert_int_equal(thread_create(&t, park_then_return, &p), 0);
    assert_int_equal(write(p.wake[1], "x", 1), 1);
    void *ret = NULL;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, &p.value);
    close(p.wake[0]);
    close(p.wake[1]);
}

static void test_stack_is_small(void **state)
{
    (void)state;
    struct parked p = {0};
    assert_int_equal(pipe(p.wake), 0);
    pthread_t t;
    assert_int_equal(thread_create(&t, park_then_return, &p), 0);
    uintptr_t lo;
    size_t size;
    stack_of(t, &lo, &size);
    size_t mapping = mapping_size_at(lo + size - 1);
    assert_int_equal(write(p.wake[1], "x", 1), 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(p.wake[0]);
    close(p.wake[1]);
    assert_true(size >= THREAD_STACK_SIZE);
    assert_true(mapping >= size);
    assert_true(mapping < 2 * 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_runs_and_returns),
        cmocka_unit_test(test_stack_is_small),
    };
    return cmocka_run_group_tests_name("thread", tests, NULL, NULL);
}

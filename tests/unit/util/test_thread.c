/* ember's threads: they run and return their value, their stack is the
 * size asked for (below 2 MiB, so no huge page fits in it), and its mapping
 * carries the no-huge-pages flag (VmFlags "nh" in /proc/self/smaps). */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
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

/* The VmFlags line of the mapping that holds 'addr', or "" if none does. */
static void vm_flags_at(uintptr_t addr, char *flags, size_t len)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool inside = false;
    flags[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
            inside = addr >= start && addr < end;
        else if (inside && !strncmp(line, "VmFlags:", 8))
            snprintf(flags, len, "%s", line + 8);
    }
    fclose(f);
}

/* Whether this kernel takes the advice at all (built without THP: EINVAL). */
static bool kernel_has_thp_advice(void)
{
    size_t len = 2 * 1024 * 1024;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    bool ok = madvise(m, len, MADV_NOHUGEPAGE) == 0;
    munmap(m, len);
    return ok;
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

static void test_stack_is_small_and_not_huge(void **state)
{
    (void)state;
    struct parked p = {0};
    assert_int_equal(pipe(p.wake), 0);
    pthread_t t;
    assert_int_equal(thread_create(&t, park_then_return, &p), 0);
    uintptr_t lo;
    size_t size;
    stack_of(t, &lo, &size);
    assert_true(size >= THREAD_STACK_SIZE);
    assert_true(size < 2 * 1024 * 1024);
    char flags[256];
    vm_flags_at(lo + size - 1, flags, sizeof(flags));
    bool advised = strstr(flags, " nh") != NULL;
    assert_int_equal(write(p.wake[1], "x", 1), 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(p.wake[0]);
    close(p.wake[1]);
    if (!kernel_has_thp_advice()) {
        fprintf(stderr, "SKIPPED LOUDLY: this kernel refuses MADV_NOHUGEPAGE (no THP): "
                        "the stack's flag is untested here\n");
        skip();
    }
    assert_true(flags[0] != '\0'); /* the stack's mapping was found */
    assert_true(advised);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_runs_and_returns),
        cmocka_unit_test(test_stack_is_small_and_not_huge),
    };
    return cmocka_run_group_tests_name("thread", tests, NULL, NULL);
}

/* --seccomp-filter's file: seccompiler's JSON keyed by ember's thread
 * kinds, every form it has, and malformed files refused with the place and
 * the fault. Nothing is installed here (that is the integration test's). */
#include "unit.h"

#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>

#include "util/seccomp.h"
#include "util/seccomp_rules.h"

static int parse(const char *text)
{
    return seccomp_parse_filters(text, strlen(text));
}

static void test_good_file(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\","
                           " \"filter\": [{\"syscall\": \"read\", \"comment\": \"c\"},"
                           "  {\"syscall\": \"ioctl\", \"args\": [{\"index\": 1, \"type\": \"dword\","
                           "   \"op\": \"eq\", \"val\": 44672, \"comment\": \"KVM_RUN\"}]},"
                           "  {\"syscall\": \"mmap\", \"args\": [{\"index\": 2, \"type\": \"dword\","
                           "   \"op\": {\"masked_eq\": 4}, \"val\": 0},"
                           "   {\"index\": 5, \"type\": \"qword\", \"op\": \"le\", \"val\": 18446744073709551615}]}]},"
                           " \"console\": {\"default_action\": {\"errno\": 1}, \"filter_action\": "
                           "\"allow\", \"filter\": []},"
                           " \"slirp\": {\"default_action\": \"allow\", \"filter_action\": "
                           "\"kill_process\", \"filter\": [{\"syscall\": \"execve\"}]},"
                           " \"uffd\": {\"default_action\": \"log\", \"filter_action\": {\"trace\": 7},"
                           " \"filter\": []}}"),
                     0);
    const struct seccomp_custom *v = &seccomp_custom[SECCOMP_VCPU];
    assert_true(v->set);
    assert_int_equal(v->default_action, SCMP_ACT_TRAP);
    assert_int_equal(v->filter_action, SCMP_ACT_ALLOW);
    assert_int_equal(v->nr_rules, 3);
    assert_int_equal(v->rules[0].nr, seccomp_syscall_resolve_name("read"));
    assert_int_equal(v->rules[0].nr_args, 0);
    /* A dword "eq" compares the low 32 bits only. */
    assert_int_equal(v->rules[1].nr_args, 1);
    assert_int_equal(v->rules[1].args[0].arg, 1);
    assert_int_equal(v->rules[1].args[0].op, SCMP_CMP_MASKED_EQ);
    assert_true(v->rules[1].args[0].datum_a == 0xffffffffu);
    assert_true(v->rules[1].args[0].datum_b == 44672);
    assert_int_equal(v->rules[2].args[0].op, SCMP_CMP_MASKED_EQ);
    assert_true(v->rules[2].args[0].datum_a == 4 && v->rules[2].args[0].datum_b == 0);
    assert_int_equal(v->rules[2].args[1].op, SCMP_CMP_LE);
    assert_true(v->rules[2].args[1].datum_a == UINT64_MAX);
    assert_int_equal(seccomp_custom[SECCOMP_CONSOLE].default_action, SCMP_ACT_ERRNO(1));
    assert_int_equal(seccomp_custom[SECCOMP_SLIRP].filter_action, SCMP_ACT_KILL_PROCESS);
    assert_int_equal(seccomp_custom[SECCOMP_UFFD].filter_action, SCMP_ACT_TRACE(7));
    /* Kinds the file leaves out keep ember's own lists. */
    assert_false(seccomp_custom[SECCOMP_MAIN].set);
    assert_false(seccomp_custom[SECCOMP_TIMER].set);
    seccomp_clear_filters();
    assert_false(seccomp_custom[SECCOMP_VCPU].set);
    assert_int_equal(parse("{}"), 0);
}

#define F(body) "{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", " \
                "\"filter\": [" body "]}}"
#define C(cond) F("{\"syscall\": \"read\", \"args\": [" cond "]}")

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"", "empty"},
        {"{", ""},
        {"{} x", ""},
        {"[]", "expected an object of thread kinds"},
        {"{\"vmm\": {}}", "Firecracker's vmm and api threads are ember's main"},
        {"{\"gpu\": {}}", "\"gpu\" is not one of ember's thread kinds"},
        {"{\"vcpu\": 3}", "\"vcpu\": expected an object"},
        {"{\"vcpu\": {\"filter_action\": \"allow\", \"filter\": []}}", "'default_action' is missing"},
        {"{\"vcpu\": {\"default_action\": \"trap\", \"filter\": []}}", "'filter_action' is missing"},
        {"{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\"}}", "'filter' is missing"},
        {"{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", \"filter\": [], "
         "\"x\": 1}}", "unknown field 'x'"},
        {"{\"vcpu\": {\"default_action\": \"deny\", \"filter_action\": \"allow\", \"filter\": []}}",
         "\"vcpu\".default_action: expected"},
        {"{\"vcpu\": {\"default_action\": {\"errno\": 4096}, \"filter_action\": \"allow\", "
         "\"filter\": []}}", "default_action: expected"},
        {"{\"vcpu\": {\"default_action\": {\"errno\": -1}, \"filter_action\": \"allow\", "
         "\"filter\": []}}", "default_action: expected"},
        {"{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": {\"trace\": 1, \"errno\": 1}, "
         "\"filter\": []}}", "filter_action: expected"},
        {"{\"vcpu\": {\"default_action\": \"allow\", \"filter_action\": \"allow\", \"filter\": []}}",
         "filter_action is default_action"},
        {"{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", \"filter\": {}}}",
         "\"vcpu\".filter: expected an array"},
        {F("3"), "\"vcpu\".filter[0]: expected an object"},
        {F("{}"), "'syscall'"},
        {F("{\"syscall\": \"frobnicate\"}"), "'frobnicate' is not a system call"},
        {F("{\"syscall\": \"read\"}, {\"syscall\": 5}"), "\"vcpu\".filter[1]"},
        {F("{\"syscall\": \"read\", \"extra\": 1}"), "'extra'"},
        {F("{\"syscall\": \"read\", \"args\": {}}"), "'args'"},
        {C("1"), "\"vcpu\".filter[0].args[0]: expected an object"},
        {C("{\"index\": 6, \"type\": \"dword\", \"op\": \"eq\", \"val\": 1}"), "arguments 0 to 5"},
        {C("{\"index\": 0, \"type\": \"word\", \"op\": \"eq\", \"val\": 1}"), "expected \"dword\" or"},
        {C("{\"index\": 0, \"type\": \"dword\", \"op\": \"like\", \"val\": 1}"), "'like'; expected eq"},
        {C("{\"index\": 0, \"type\": \"dword\", \"op\": {\"masked\": 1}, \"val\": 1}"),
         "{\"masked_eq\": MASK}"},
        {C("{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\", \"val\": 4294967296}"),
         "above 0xffffffff"},
        {C("{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\", \"val\": -1}"), "'val'"},
        {C("{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\"}"), "'val'"},
        {C("{\"index\": 0, \"type\": \"dword\", \"val\": 1}"), "'op'"},
        {C("{},{},{},{},{},{},{}"), "at most 6"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ret = parse(cases[i].text);
        if (ret != -EINVAL || !strstr(err_msg(), cases[i].message))
            fail_msg("'%s': got %d '%s', wanted '%s'", cases[i].text, ret, err_msg(),
                     cases[i].message);
        for (int k = 0; k < SECCOMP_NR_THREADS; k++)
            assert_false(seccomp_custom[k].set); /* nothing half-loaded */
    }
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/seccomp-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"timer\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", "
                       "\"filter\": [{\"syscall\": \"futex\"}]}}";
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    assert_int_equal(seccomp_load_filter_file(path), 0);
    assert_true(seccomp_custom[SECCOMP_TIMER].set);
    /* Too large: refused before it is read. */
    assert_int_equal(truncate(path, (2 << 20)), 0);
    assert_int_equal(seccomp_load_filter_file(path), -EFBIG);
    unlink(path);
    assert_int_equal(seccomp_load_filter_file(path), -ENOENT);
    assert_non_null(strstr(err_msg(), "--seccomp-filter: cannot open"));
    assert_int_equal(seccomp_load_filter_file("/dev/null"), -EINVAL);
    assert_non_null(strstr(err_msg(), "is not a file"));
    seccomp_clear_filters();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests_name("seccomp_file", tests, NULL, NULL);
}

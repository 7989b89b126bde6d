/* The vCPU thread's state machine against a fake CPU backend: pause before
 * and after start, resume, stop while paused or running, and a vCPU that
 * ends on its own. */
#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/vcpu.h"

/* The fake backend: vcpu_run spins until kicked, or ends the vCPU with the
 * exit kind the test asks for. */
struct fake_cpu {
    atomic_bool kicked;
    _Atomic int end_with; /* -1: keep running */
    atomic_uint runs;
};

static struct fake_cpu cpu;

static int f_vcpu_create(struct accel_vm *vm, unsigned index, struct accel_vcpu **out)
{
    (void)vm;
    (void)index;
    *out = (struct accel_vcpu *)&cpu;
    return 0;
}

static void f_vcpu_destroy(struct accel_vcpu *v)
{
    (void)v;
}

static int f_set_cpuid(struct accel_vcpu *v, const struct x86_cpuid_entry *e, size_t n)
{
    (void)v, (void)e, (void)n;
    return 0;
}

static int f_set_msrs(struct accel_vcpu *v, const struct x86_msr *m, size_t n)
{
    (void)v, (void)m, (void)n;
    return 0;
}

static int f_get_regs(struct accel_vcpu *v, struct x86_regs *regs)
{
    (void)v;
    memset(regs, 0, sizeof(*regs));
    regs->rip = 0xfff0;
    return 0;
}

static int f_run(struct accel_vcpu *v, struct accel_exit *exit)
{
    (void)v;
    atomic_fetch_add(&cpu.runs, 1);
    for (;;) {
        int end = atomic_load(&cpu.end_with);
        if (end >= 0) {
            exit->kind = (enum accel_exit_kind)end;
            snprintf(exit->detail, sizeof(exit->detail), "fake error");
            return 0;
        }
        if (atomic_exchange(&cpu.kicked, false)) {
            exit->kind = ACCEL_EXIT_INTERRUPTED;
            return 0;
        }
        usleep(200);
    }
}

static void f_kick(struct accel_vcpu *v, pthread_t thread)
{
    (void)v, (void)thread;
    atomic_store(&cpu.kicked, true);
}

static const struct accel_ops fake_accel = {
    .name = "fake",
    .vcpu_create = f_vcpu_create,
    .vcpu_destroy = f_vcpu_destroy,
    .vcpu_set_cpuid = f_set_cpuid,
    .vcpu_set_msrs = f_set_msrs,
    .vcpu_get_regs = f_get_regs,
    .vcpu_run = f_run,
    .vcpu_kick = f_kick,
};

struct ending {
    int calls;
    enum vcpu_end why;
    char detail[256];
};

static void on_end(void *ctx, enum vcpu_end why, const char *detail)
{
    struct ending *e = ctx;
    e->calls++;
    e->why = why;
    snprintf(e->detail, sizeof(e->detail), "%s", detail);
}

static void make_vcpu(struct vcpu *v, struct vcpu_env *env, struct ending *e)
{
    memset(&cpu, 0, sizeof(cpu));
    atomic_store(&cpu.end_with, -1);
    memset(e, 0, sizeof(*e));
    *env = (struct vcpu_env){.accel = &fake_accel, .nr_vcpus = 1, .ended = on_end, .ctx = e};
    assert_int_equal(vcpu_create(env, 0, v, NULL, 0), 0);
    assert_int_equal(vcpu_get_state(v), VCPU_CREATED);
}

/* Wait (up to 5 s) for the thread to reach 'state'. */
static void wait_state(struct vcpu *v, enum vcpu_state state)
{
    for (int i = 0; i < 5000 && vcpu_get_state(v) != state; i++)
        usleep(1000);
    assert_int_equal(vcpu_get_state(v), state);
}

/* Wait (up to 5 s) for the thread to enter the fake guest once. */
static void wait_first_run(void)
{
    for (int i = 0; i < 5000 && atomic_load(&cpu.runs) == 0; i++)
        usleep(1000);
}

static void test_pause_resume_stop(void **state)
{
    (void)state;
    struct vcpu v;
    struct vcpu_env env;
    struct ending e;
    make_vcpu(&v, &env, &e);
    vcpu_pause(&v); /* before start: it will park before running the guest */
    assert_int_equal(vcpu_get_state(&v), VCPU_CREATED);
    assert_int_equal(vcpu_start(&v), 0);
    wait_state(&v, VCPU_PAUSED);
    assert_int_equal(atomic_load(&cpu.runs), 0);
    vcpu_resume(&v);
    wait_first_run();
    assert_int_equal(vcpu_get_state(&v), VCPU_RUNNING);
    vcpu_pause(&v); /* returns once parked */
    assert_int_equal(vcpu_get_state(&v), VCPU_PAUSED);
    unsigned runs = atomic_load(&cpu.runs);
    usleep(20000);
    assert_int_equal(atomic_load(&cpu.runs), runs); /* parked means not running */
    vcpu_request_stop(&v); /* from paused */
    vcpu_join(&v);
    assert_int_equal(vcpu_get_state(&v), VCPU_EXITED);
    vcpu_resume(&v); /* a stop is never taken back */
    assert_int_equal(atomic_load(&v.request), VCPU_REQ_STOP);
    assert_int_equal(e.calls, 0);
    vcpu_destroy(&v);
}

static void test_stop_while_running(void **state)
{
    (void)state;
    struct vcpu v;
    struct vcpu_env env;
    struct ending e;
    make_vcpu(&v, &env, &e);
    assert_int_equal(vcpu_start(&v), 0);
    wait_first_run();
    vcpu_request_stop(&v);
    vcpu_join(&v);
    assert_int_equal(vcpu_get_state(&v), VCPU_EXITED);
    vcpu_pause(&v); /* at once: there is nothing to park */
    vcpu_destroy(&v);
}

static void test_ends_on_its_own(void **state)
{
    (void)state;
    static const struct {
        enum accel_exit_kind kind;
        enum vcpu_end why;
        const char *detail;
    } cases[] = {
        {ACCEL_EXIT_SHUTDOWN, VCPU_END_TRIPLE_FAULT, "triple-faulted at RIP 0xfff0"},
        {ACCEL_EXIT_ERROR, VCPU_END_ERROR, "vCPU 0: fake error"},
        {ACCEL_EXIT_HALT, VCPU_END_ERROR, "no interrupt controller"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vcpu v;
        struct vcpu_env env;
        struct ending e;
        make_vcpu(&v, &env, &e);
        atomic_store(&cpu.end_with, (int)cases[i].kind);
        assert_int_equal(vcpu_start(&v), 0);
        wait_state(&v, VCPU_EXITED);
        vcpu_join(&v);
        assert_int_equal(e.calls, 1);
        assert_int_equal(e.why, cases[i].why);
        if (!strstr(e.detail, cases[i].detail))
            fail_msg("case %zu: '%s'", i, e.detail);
        vcpu_pause(&v); /* an ended vCPU does not hang a pause */
        vcpu_destroy(&v);
    }
}

/* The state dump's question: the running vCPU is kicked out and says
 * where the guest was (the fake backend's RIP) and why it left. */
static void test_ask_where(void **state)
{
    (void)state;
    struct vcpu v;
    struct vcpu_env env;
    struct ending e;
    make_vcpu(&v, &env, &e);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_configure(&(struct log_config){.fd = fds[1], .level = LOG_WARN});
    assert_int_equal(vcpu_start(&v), 0);
    wait_first_run();
    vcpu_ask_where(&v);
    for (int i = 0; i < 5000 && atomic_load(&v.where_asked); i++)
        usleep(1000);
    vcpu_request_stop(&v);
    vcpu_join(&v);
    log_configure(&(struct log_config){.fd = 2, .level = LOG_WARN});
    char out[512] = "";
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    if (!strstr(out, "vCPU 0: at RIP 0xfff0") || !strstr(out, "left the guest for a kick"))
        fail_msg("the answer: '%s'", out);
    assert_int_equal(e.calls, 0);
    vcpu_destroy(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_resume_stop),
        cmocka_unit_test(test_stop_while_running),
        cmocka_unit_test(test_ends_on_its_own),
        cmocka_unit_test(test_ask_where),
    };
    return cmocka_run_group_tests_name("vcpu", tests, NULL, NULL);
}

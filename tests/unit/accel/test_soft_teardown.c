/* The engine backend's teardown: its timer thread fires into each vCPU's
 * LAPIC, so it must be gone before the first vCPU is freed. A restore that
 * failed after loading an armed LAPIC timer (a share copied, a disk
 * swapped) died in that thread once in a full run; here a periodic LAPIC
 * timer keeps firing while the vCPU goes (ASan sees a late callback). */
#include "unit.h"

#include <unistd.h>

#include "accel/accel.h"
#include "fakes.h"

static void no_pio(void *ctx, uint16_t port, void *data, unsigned len, bool is_write)
{
    (void)ctx, (void)port, (void)data, (void)len, (void)is_write;
}

static bool no_mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write)
{
    (void)ctx, (void)gpa, (void)data, (void)len, (void)is_write;
    return false;
}

/* 64-bit code that programs the LAPIC at its default base, then faults
 * with no IDT: a triple fault, which ends vcpu_run. */
static const uint8_t program[] = {
    0xbf, 0x00, 0x00, 0xe0, 0xfe,                               /* mov edi, 0xfee00000 */
    0xc7, 0x87, 0xf0, 0x00, 0x00, 0x00, 0xff, 0x01, 0x00, 0x00, /* SVR: enabled */
    0xc7, 0x87, 0xe0, 0x03, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, /* divide by 1 */
    0xc7, 0x87, 0x20, 0x03, 0x00, 0x00, 0x30, 0x00, 0x02, 0x00, /* LVT: periodic, 0x30 */
    0xc7, 0x87, 0x80, 0x03, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, /* initial count 1000 */
    0x0f, 0x0b,                                                 /* ud2 */
};

enum { CODE = 0x1000, PML4 = 0x2000, PDPT = 0x3000, PD_LOW = 0x4000, PD_APIC = 0x5000 };

/* Identity maps the first 2 MiB and the 2 MiB holding the LAPIC. */
static void map_pages(uint8_t *ram)
{
    const uint64_t rw = 3, page_2m = 0x83;
    const uint64_t entries[][2] = {
        {PML4, PDPT | rw},
        {PDPT, PD_LOW | rw},
        {PDPT + 3 * 8, PD_APIC | rw},
        {PD_LOW, 0 | page_2m},
        {PD_APIC + ((0xfee00000 >> 21) & 511) * 8, 0xfee00000 | page_2m},
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        memcpy(ram + entries[i][0], &entries[i][1], 8);
    memcpy(ram + CODE, program, sizeof(program));
}

static struct x86_segment flat(uint16_t selector, uint8_t type, bool code)
{
    return (struct x86_segment){.limit = 0xffffffff, .selector = selector, .type = type,
                                .present = true, .s = true, .g = true, .l = code, .db = !code};
}

static void run_program(struct accel_vcpu *vcpu)
{
    struct x86_sregs sregs;
    assert_int_equal(accel_soft_ops.vcpu_get_sregs(vcpu, &sregs), 0);
    sregs.cs = flat(8, 0xb, true);
    sregs.ds = sregs.es = sregs.ss = flat(16, 0x3, false);
    sregs.idt = (struct x86_dtable){0, 0};
    sregs.cr0 = 0x80000011; /* PG, ET, PE */
    sregs.cr3 = PML4;
    sregs.cr4 = 0x20;       /* PAE */
    sregs.efer = 0x500;     /* LMA, LME */
    sregs.apic_base = 0xfee00900;
    assert_int_equal(accel_soft_ops.vcpu_set_sregs(vcpu, &sregs), 0);
    struct x86_regs regs;
    assert_int_equal(accel_soft_ops.vcpu_get_regs(vcpu, &regs), 0);
    regs.rip = CODE;
    regs.rflags = 2;
    assert_int_equal(accel_soft_ops.vcpu_set_regs(vcpu, &regs), 0);
    struct accel_exit exit;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(accel_soft_ops.vcpu_run(vcpu, &exit), 0);
        if (exit.kind != ACCEL_EXIT_INTERRUPTED)
            break;
    }
    assert_int_equal(exit.kind, ACCEL_EXIT_SHUTDOWN);
}

static uint64_t timer_interrupts(struct accel_vcpu *vcpu)
{
    struct accel_counter c[ACCEL_MAX_COUNTERS];
    size_t n = accel_soft_ops.vcpu_counters(vcpu, c);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(c[i].name, "timer_interrupts"))
            return c[i].value;
    fail_msg("no timer_interrupts counter");
    return 0;
}

static void test_vcpu_freed_under_a_firing_timer(void **state)
{
    (void)state;
    struct guest_mem gm;
    fake_mem_init(&gm, 0, 1 << 20);
    map_pages(gm.regions[0].hva);
    const struct accel_vm_params params = {
        .nr_vcpus = 1, .mem = &gm, .io = {.pio = no_pio, .mmio = no_mmio}};
    struct accel_vm *vm;
    struct accel_vcpu *vcpu;
    assert_int_equal(accel_soft_ops.vm_create(&params, &vm), 0);
    assert_int_equal(accel_soft_ops.vcpu_create(vm, 0, &vcpu), 0);
    run_program(vcpu);
    usleep(20000);
    /* The timer fires (the test means something): counted as delivered or
     * as pending in IRR (the guest has IF clear). */
    assert_true(timer_interrupts(vcpu) > 0);
    accel_soft_ops.vcpu_destroy(vcpu);
    usleep(20000); /* a timer thread still running calls into the freed LAPIC now */
    accel_soft_ops.vm_destroy(vm);
    fake_mem_free(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vcpu_freed_under_a_firing_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

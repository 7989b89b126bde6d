/* CPUID for each vCPU: hypervisor bit, APIC IDs, topology leaves (Intel and
 * AMD flavours), and the boot MSRs. */
#include "fakes.h"

#include "arch/x86_64/cpuid.h"

static void vendor(struct x86_cpuid_entry *e, const char *name)
{
    *e = (struct x86_cpuid_entry){.function = 0, .eax = 0x1f};
    memcpy(&e->ebx, name, 4);
    memcpy(&e->edx, name + 4, 4);
    memcpy(&e->ecx, name + 8, 4);
}

/* A supported list shaped like KVM's. */
static size_t supported(struct x86_cpuid_entry *s, const char *name)
{
    size_t n = 0;
    vendor(&s[n++], name);
    s[n++] = (struct x86_cpuid_entry){.function = 1, .ebx = 0x00000800, .ecx = 0x00000201,
                                      .edx = 0x178bfbff};
    s[n++] = (struct x86_cpuid_entry){.function = 4, .index = 0, .flags = 1, .eax = 0x121};
    s[n++] = (struct x86_cpuid_entry){.function = 4, .index = 1, .flags = 1, .eax = 0x163};
    s[n++] = (struct x86_cpuid_entry){.function = 0xb, .index = 0, .flags = 1, .eax = 1,
                                      .ebx = 2, .ecx = 0x100};
    s[n++] = (struct x86_cpuid_entry){.function = 0x40000000, .eax = 0x40000001};
    s[n++] = (struct x86_cpuid_entry){.function = 0x80000001, .ecx = 0};
    s[n++] = (struct x86_cpuid_entry){.function = 0x80000008, .ecx = 0xffff};
    s[n++] = (struct x86_cpuid_entry){.function = 0x8000001e, .eax = 99, .ebx = 0x100};
    return n;
}

static struct x86_cpuid_entry *leaf(struct x86_cpuid_entry *e, size_t n, uint32_t fn,
                                    uint32_t idx)
{
    struct x86_cpuid_entry *found = cpuid_find(e, n, fn, idx);
    assert_non_null(found);
    return found;
}

static void test_vendor_detection(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16];
    size_t n = supported(s, "GenuineIntel");
    assert_int_equal(cpuid_vendor(s, n), CPU_VENDOR_INTEL);
    n = supported(s, "AuthenticAMD");
    assert_int_equal(cpuid_vendor(s, n), CPU_VENDOR_AMD);
    n = supported(s, "HygonGenuine");
    assert_int_equal(cpuid_vendor(s, n), CPU_VENDOR_AMD);
}

static void test_leaf1_per_vcpu(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    size_t n = supported(s, "GenuineIntel"), m;
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(cpuid_for_vcpu(s, n, i, &(struct cpuid_config){3, 1}, out, 32, &m), 0);
        struct x86_cpuid_entry *l1 = leaf(out, m, 1, 0);
        assert_int_equal(l1->ebx >> 24, i);              /* initial APIC ID */
        assert_int_equal((l1->ebx >> 16) & 0xff, 4);     /* rounded up */
        assert_int_equal(l1->ebx & 0xffff, 0x0800);      /* CLFLUSH size kept */
        assert_true(l1->ecx & (1u << 31));               /* hypervisor */
        assert_true(l1->edx & (1u << 28));               /* HTT */
    }
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){1, 1}, out, 32, &m), 0);
    assert_false(leaf(out, m, 1, 0)->edx & (1u << 28));
}

static void test_extended_topology(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    size_t n = supported(s, "GenuineIntel"), m;
    assert_int_equal(cpuid_for_vcpu(s, n, 2, &(struct cpuid_config){3, 1}, out, 32, &m), 0);
    struct x86_cpuid_entry *smt = leaf(out, m, 0xb, 0);
    struct x86_cpuid_entry *core = leaf(out, m, 0xb, 1);
    struct x86_cpuid_entry *end = leaf(out, m, 0xb, 2);
    assert_int_equal(smt->eax, 0);
    assert_int_equal(smt->ebx, 1);
    assert_int_equal((smt->ecx >> 8) & 0xff, 1);
    assert_int_equal(smt->edx, 2);                  /* x2APIC ID */
    assert_int_equal(core->eax, 2);                 /* bits for 3 cores */
    assert_int_equal(core->ebx, 3);
    assert_int_equal((core->ecx >> 8) & 0xff, 2);
    assert_int_equal(end->ebx, 0);
    assert_int_equal((end->ecx >> 8) & 0xff, 0);
    /* Intel leaf 4: cores per package in EAX[31:26]. */
    assert_int_equal(leaf(out, m, 4, 0)->eax >> 26, 2);
    /* Only one copy of each topology subleaf. */
    size_t count = 0;
    for (size_t i = 0; i < m; i++)
        count += out[i].function == 0xb && out[i].index == 0;
    assert_int_equal(count, 1);
}

static void test_amd_topology(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    size_t n = supported(s, "AuthenticAMD"), m;
    assert_int_equal(cpuid_for_vcpu(s, n, 1, &(struct cpuid_config){2, 1}, out, 32, &m), 0);
    struct x86_cpuid_entry *sizes = leaf(out, m, 0x80000008, 0);
    assert_int_equal(sizes->ecx & 0xff, 1);          /* NC: 2 cores */
    assert_int_equal((sizes->ecx >> 12) & 0xf, 1);   /* APIC ID bits */
    assert_int_equal(leaf(out, m, 0x8000001e, 0)->eax, 1);
    assert_true(leaf(out, m, 0x80000001, 0)->ecx & 2); /* CmpLegacy */
    /* Leaf 4 is Intel's: untouched on AMD. */
    assert_int_equal(leaf(out, m, 4, 0)->eax, 0x121);
}

/* smt: true (two threads per core): vCPUs 2k and 2k+1 are core k's threads. */
static void test_smt_topology(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    const struct cpuid_config smt4 = {4, 2};
    size_t n = supported(s, "GenuineIntel"), m;
    assert_int_equal(cpuid_for_vcpu(s, n, 3, &smt4, out, 32, &m), 0);
    struct x86_cpuid_entry *thread = leaf(out, m, 0xb, 0), *core = leaf(out, m, 0xb, 1);
    assert_int_equal(thread->eax, 1);                 /* APIC ID bit 0: the thread */
    assert_int_equal(thread->ebx, 2);                 /* threads per core */
    assert_int_equal(core->eax, 2);                   /* 1 thread bit + 1 core bit */
    assert_int_equal(core->ebx, 4);
    assert_int_equal(thread->edx, 3);
    struct x86_cpuid_entry *l1 = leaf(out, m, 4, 0), *l2 = leaf(out, m, 4, 1);
    assert_int_equal(l1->eax >> 26, 1);               /* 2 cores per package */
    assert_int_equal((l1->eax >> 14) & 0xfff, 1);     /* L1 shared by the 2 threads */
    assert_int_equal((l2->eax >> 14) & 0xfff, 3);     /* level 3 (0x163): all 4 */
    assert_true(leaf(out, m, 1, 0)->edx & (1u << 28));
    n = supported(s, "AuthenticAMD");
    assert_int_equal(cpuid_for_vcpu(s, n, 3, &smt4, out, 32, &m), 0);
    struct x86_cpuid_entry *ext = leaf(out, m, 0x8000001e, 0);
    assert_int_equal(ext->eax, 3);                    /* extended APIC ID */
    assert_int_equal(ext->ebx & 0xff, 1);             /* compute unit (core) 1 */
    assert_int_equal((ext->ebx >> 8) & 0xff, 1);      /* 2 threads per unit */
    assert_int_equal(leaf(out, m, 0x80000008, 0)->ecx & 0xff, 3);
    assert_true(leaf(out, m, 0x80000001, 0)->ecx & (1u << 22)); /* TOPOEXT */
    /* One vCPU with SMT on is one thread of one core (as in Firecracker). */
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){1, 2}, out, 32, &m), 0);
    assert_int_equal((leaf(out, m, 0x8000001e, 0)->ebx >> 8) & 0xff, 0);
    assert_int_equal(leaf(out, m, 0xb, 0)->ebx, 1);
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){2, 3}, out, 32, &m),
                     -EINVAL);
}

/* An AMD host whose KVM has neither leaf 0xb nor 0x8000001e (QEMU TCG's
 * -cpu max, or the engine): with smt both are made up, TOPOEXT is set and
 * the highest leaves are raised to reach them. */
static void test_smt_without_topology_leaves(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    size_t n = 0, m;
    vendor(&s[n], "AuthenticAMD");
    s[n++].eax = 7;
    s[n++] = (struct x86_cpuid_entry){.function = 1, .ebx = 0x00000800, .edx = 0x178bfbff};
    s[n++] = (struct x86_cpuid_entry){.function = 0x80000000, .eax = 0x80000008};
    s[n++] = (struct x86_cpuid_entry){.function = 0x80000001};
    s[n++] = (struct x86_cpuid_entry){.function = 0x80000008, .ecx = 0};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(cpuid_for_vcpu(s, n, i, &(struct cpuid_config){4, 2}, out, 32, &m), 0);
        struct x86_cpuid_entry *ext = leaf(out, m, 0x8000001e, 0);
        assert_int_equal(ext->eax, i);                      /* extended APIC ID */
        assert_int_equal(ext->ebx & 0xff, i / 2);           /* core */
        assert_int_equal((ext->ebx >> 8) & 0xff, 1);        /* 2 threads per core */
        assert_true(leaf(out, m, 0x80000001, 0)->ecx & (1u << 22)); /* TOPOEXT */
        assert_true(leaf(out, m, 0x80000001, 0)->ecx & (1u << 1));  /* CmpLegacy */
        assert_int_equal(leaf(out, m, 0x80000000, 0)->eax, 0x8000001e);
        assert_int_equal(leaf(out, m, 0, 0)->eax, 0xb);
        assert_int_equal(leaf(out, m, 0x80000008, 0)->ecx & 0xff, 3); /* NC: 4 threads */
        struct x86_cpuid_entry *thread = leaf(out, m, 0xb, 0), *core = leaf(out, m, 0xb, 1);
        assert_int_equal(thread->ebx, 2);
        assert_int_equal(thread->eax, 1);
        assert_int_equal(core->ebx, 4);
        assert_int_equal(core->eax, 2);
        assert_int_equal(thread->edx, i);
        struct x86_cpuid_entry *l1 = leaf(out, m, 1, 0);
        assert_int_equal(l1->ebx >> 24, i);
        assert_int_equal((l1->ebx >> 16) & 0xff, 4);
        assert_true(l1->edx & (1u << 28));                  /* HTT */
    }
    /* Without smt nothing is made up. */
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){4, 1}, out, 32, &m), 0);
    assert_null(cpuid_find(out, m, 0x8000001e, 0));
    assert_null(cpuid_find(out, m, 0xb, 0));
    assert_int_equal(leaf(out, m, 0x80000000, 0)->eax, 0x80000008);
    assert_false(leaf(out, m, 0x80000001, 0)->ecx & (1u << 22));
    /* No room for the made-up leaves. */
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){4, 2}, out, 7, &m), -E2BIG);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct x86_cpuid_entry s[16], out[32];
    size_t n = supported(s, "GenuineIntel"), m;
    assert_int_equal(cpuid_for_vcpu(s, n, 3, &(struct cpuid_config){3, 1}, out, 32, &m), -EINVAL);
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){0, 1}, out, 32, &m), -EINVAL);
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){256, 1}, out, 32, &m), -EINVAL);
    assert_int_equal(cpuid_for_vcpu(s, n, 0, &(struct cpuid_config){2, 1}, out, 4, &m), -E2BIG);
}

static void test_boot_msrs(void **state)
{
    (void)state;
    struct x86_msr msrs[32];
    size_t n = cpu_boot_msrs(msrs, 32);
    bool mtrr = false, misc = false;
    for (size_t i = 0; i < n; i++) {
        if (msrs[i].index == 0x2ff)
            mtrr = msrs[i].value == 0x806; /* enabled, write-back default */
        if (msrs[i].index == 0x1a0)
            misc = msrs[i].value & 1;      /* fast strings */
    }
    assert_true(mtrr && misc);
    assert_int_equal(cpu_boot_msrs(msrs, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vendor_detection),
        cmocka_unit_test(test_leaf1_per_vcpu),
        cmocka_unit_test(test_extended_topology),
        cmocka_unit_test(test_amd_topology),
        cmocka_unit_test(test_smt_topology),
        cmocka_unit_test(test_smt_without_topology_leaves),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_boot_msrs),
    };
    return cmocka_run_group_tests_name("cpuid", tests, NULL, NULL);
}

/* CPU templates: Firecracker's bitmap and number strings, each static
 * template's effect on a fake host's CPUID, vendor refusals, MSR modifiers,
 * and a table of malformed /cpu-config bodies. */
#include "fakes.h"

#include "arch/x86_64/cpu_template.h"
#include "util/json_fields.h"
#include "util/util.h"

static void test_bitmaps(void **state)
{
    (void)state;
    uint64_t f, v;
    assert_int_equal(cpu_template_bitmap("0b101", 32, &f, &v), 0); /* short: x on the left */
    assert_int_equal(f, 0x7);
    assert_int_equal(v, 0x5);
    assert_int_equal(cpu_template_bitmap("0bxx1x_0xxx", 32, &f, &v), 0);
    assert_int_equal(f, 0x28);
    assert_int_equal(v, 0x20);
    assert_int_equal(cpu_template_bitmap("1x0", 32, &f, &v), 0); /* the prefix is optional */
    assert_int_equal(f, 0x5);
    assert_int_equal(v, 0x4);
    assert_int_equal(cpu_template_bitmap("0b", 32, &f, &v), 0);  /* touches nothing */
    assert_int_equal(f, 0);
    char full[80] = "0b1";
    for (int i = 0; i < 31; i++)
        strcat(full, "0");
    assert_int_equal(cpu_template_bitmap(full, 32, &f, &v), 0);
    assert_int_equal(f, 0xffffffffu);
    assert_int_equal(v, 0x80000000u);
    strcat(full, "x"); /* 33 bits */
    assert_int_equal(cpu_template_bitmap(full, 32, &f, &v), -EINVAL);
    assert_non_null(strstr(err_msg(), "more than 32 bits"));
    assert_int_equal(cpu_template_bitmap(full, 64, &f, &v), 0);
    assert_int_equal(f, 0x1fffffffeull);
    assert_int_equal(cpu_template_bitmap("0b10_2x", 32, &f, &v), -EINVAL);
    assert_int_equal(cpu_template_bitmap("0bX", 32, &f, &v), -EINVAL);
    assert_int_equal(cpu_template_bitmap(NULL, 32, &f, &v), -EINVAL);
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t n;
    assert_int_equal(cpu_template_number("0x8000001e", UINT32_MAX, &n), 0);
    assert_int_equal(n, 0x8000001e);
    assert_int_equal(cpu_template_number("0b101", UINT32_MAX, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(cpu_template_number("0xffffffff", UINT32_MAX, &n), 0);
    static const char *const bad[] = {"31", "", "0x", "0b", "0x100000000", "0b12", "0xg",
                                      "-0x1", " 0x1", "0x1 ", "0x_1", "0x99999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(cpu_template_number(bad[i], UINT32_MAX, &n), -EINVAL);
    assert_int_equal(cpu_template_number(NULL, UINT32_MAX, &n), -EINVAL);
    assert_int_equal(cpu_template_number("0xffffffffffffffff", UINT64_MAX, &n), 0);
    assert_true(n == UINT64_MAX);
}

static void test_names(void **state)
{
    (void)state;
    enum cpu_template_kind k;
    static const char *const names[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        assert_true(cpu_template_parse_name(names[i], &k));
        assert_string_equal(cpu_template_name(k), names[i]);
    }
    assert_false(cpu_template_parse_name("t2", &k));
    assert_false(cpu_template_parse_name("Custom", &k));
    assert_false(cpu_template_parse_name("V1N1", &k)); /* aarch64's */
    assert_false(cpu_template_parse_name(NULL, &k));
    struct cpu_template t;
    assert_int_equal(cpu_template_static(CPU_TEMPLATE_NONE, &t), -EINVAL);
    assert_int_equal(cpu_template_static(CPU_TEMPLATE_CUSTOM, &t), -EINVAL);
}

/* A host whose feature registers have every bit set: what a template
 * leaves is exactly what it does not clear. */
static size_t fake_host(struct x86_cpuid_entry *e, const char *vendor)
{
    size_t n = 0;
    e[n] = (struct x86_cpuid_entry){.function = 0, .eax = 0xd};
    memcpy(&e[n].ebx, vendor, 4);
    memcpy(&e[n].edx, vendor + 4, 4);
    memcpy(&e[n++].ecx, vendor + 8, 4);
    e[n++] = (struct x86_cpuid_entry){1, 0, 0, ~0u, ~0u, ~0u, ~0u};
    e[n++] = (struct x86_cpuid_entry){7, 0, X86_CPUID_FLAG_INDEXED, ~0u, ~0u, ~0u, ~0u};
    e[n++] = (struct x86_cpuid_entry){0xd, 0, X86_CPUID_FLAG_INDEXED, ~0u, ~0u, ~0u, ~0u};
    e[n++] = (struct x86_cpuid_entry){0xd, 1, X86_CPUID_FLAG_INDEXED, ~0u, ~0u, ~0u, ~0u};
    e[n++] = (struct x86_cpuid_entry){0x80000001, 0, 0, ~0u, ~0u, ~0u, ~0u};
    e[n++] = (struct x86_cpuid_entry){0x80000008, 0, 0, ~0u, ~0u, ~0u, ~0u};
    return n;
}

static struct x86_cpuid_entry *leaf(struct x86_cpuid_entry *e, size_t n, uint32_t fn,
                                    uint32_t idx)
{
    struct x86_cpuid_entry *found = cpuid_find(e, n, fn, idx);
    assert_non_null(found);
    return found;
}

static void apply_static(enum cpu_template_kind kind, const char *vendor,
                         struct x86_cpuid_entry *e, size_t *n)
{
    struct cpu_template t;
    *n = fake_host(e, vendor);
    assert_int_equal(cpu_template_static(kind, &t), 0);
    assert_int_equal(cpu_template_check_vendor(&t, cpuid_vendor(e, *n)), 0);
    assert_int_equal(cpu_template_apply_cpuid(&t, e, *n), 0);
}

#define BIT(n) (1u << (n))

/* What the T2 templates share: signature, leaf 1, 7, 0xd. */
static void check_t2_common(struct x86_cpuid_entry *e, size_t n)
{
    struct x86_cpuid_entry *l1 = leaf(e, n, 1, 0), *l7 = leaf(e, n, 7, 0);
    assert_int_equal(l1->eax, 0xf000c000u | 0x000306f2u); /* family 6 model 0x3f stepping 2 */
    assert_int_equal(l1->ecx, ~0x0004cdfcu);               /* vmx (5), est (7)... cleared */
    assert_false(l1->ecx & BIT(5));
    assert_int_equal(l1->edx, ~0xe8641080u | 0x1080u);     /* mce, mtrr stay; pbe (31) goes */
    assert_int_equal(l7->ebx, ~0xffefda14u | BIT(9));      /* avx512* go, erms is set */
    assert_false(l7->ebx & BIT(16));                       /* avx512f */
    assert_true(l7->ebx & BIT(5));                         /* avx2 stays */
    assert_int_equal(l7->ecx, ~0x40415f5eu);
    assert_int_equal(l7->edx, ~0x11cu);
    assert_int_equal(leaf(e, n, 0xd, 0)->eax, ~0x2f8u);    /* AVX-512 and MPX states */
    assert_int_equal(leaf(e, n, 0xd, 1)->eax, ~0xeu);      /* xsavec xgetbv1 xsaves */
    assert_int_equal(leaf(e, n, 0xd, 0)->ebx, ~0u);        /* other registers untouched */
}

static void test_static_templates(void **state)
{
    (void)state;
    struct x86_cpuid_entry e[16];
    size_t n;
    apply_static(CPU_TEMPLATE_T2, "GenuineIntel", e, &n);
    check_t2_common(e, n);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x20000100u);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->edx, ~BIT(26)); /* pdpe1gb */
    assert_int_equal(leaf(e, n, 0x80000008, 0)->ebx, ~BIT(9));
    apply_static(CPU_TEMPLATE_T2S, "GenuineIntel", e, &n);
    check_t2_common(e, n);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x20000100u);
    apply_static(CPU_TEMPLATE_T2CL, "GenuineIntel", e, &n);
    check_t2_common(e, n);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x200001c0u);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->edx, ~0x07c00000u);
    apply_static(CPU_TEMPLATE_T2A, "AuthenticAMD", e, &n);
    check_t2_common(e, n);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x200001c4u); /* svm (2) too */
    assert_int_equal(leaf(e, n, 0x80000001, 0)->edx, ~0x06400000u);
    assert_int_equal(leaf(e, n, 0x80000008, 0)->ebx, ~0x001c0205u | 0x001c0004u);
    apply_static(CPU_TEMPLATE_C3, "GenuineIntel", e, &n);
    struct x86_cpuid_entry *l1 = leaf(e, n, 1, 0), *l7 = leaf(e, n, 7, 0);
    assert_int_equal(l1->eax, 0xf000c000u | 0x000306e4u);
    assert_int_equal(l1->ecx, ~0x0040dd3cu);
    assert_int_equal(l1->edx, ~0xa8641080u | 0x1080u);
    assert_int_equal(l7->ebx, ~0xffafdd3cu);
    assert_false(l7->ebx & BIT(5));                        /* avx2 goes on C3 */
    assert_int_equal(l7->ecx, ~0x4041481eu);
    assert_int_equal(l7->edx, ~0xcu);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x120u);
    assert_int_equal(leaf(e, n, 0x80000008, 0)->ebx, ~0u); /* C3 leaves it */
}

/* A backend without leaf 0xd or 0x80000008 (ember's engine): static
 * templates skip what is not there. */
static void test_static_missing_leaves(void **state)
{
    (void)state;
    struct x86_cpuid_entry e[16];
    size_t n = fake_host(e, "AuthenticAMD") - 1; /* no 0x80000008 */
    e[3] = e[--n];                                /* no 0xd.0 */
    struct cpu_template t;
    assert_int_equal(cpu_template_static(CPU_TEMPLATE_T2A, &t), 0);
    assert_int_equal(cpu_template_apply_cpuid(&t, e, n), 0);
    assert_int_equal(leaf(e, n, 0x80000001, 0)->ecx, ~0x200001c4u);
    assert_null(cpuid_find(e, n, 0x80000008, 0));
}

static void test_vendor_refusals(void **state)
{
    (void)state;
    struct cpu_template t;
    static const enum cpu_template_kind intel[] = {CPU_TEMPLATE_C3, CPU_TEMPLATE_T2,
                                                   CPU_TEMPLATE_T2S, CPU_TEMPLATE_T2CL};
    for (size_t i = 0; i < ARRAY_SIZE(intel); i++) {
        assert_int_equal(cpu_template_static(intel[i], &t), 0);
        assert_int_equal(cpu_template_vendor(intel[i]), CPU_VENDOR_INTEL);
        assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_INTEL), 0);
        assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_AMD), -EINVAL);
        assert_non_null(strstr(err_msg(), "is for Intel CPUs"));
        assert_non_null(strstr(err_msg(), "are AMD"));
        assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_OTHER), -EINVAL);
    }
    assert_int_equal(cpu_template_static(CPU_TEMPLATE_T2A, &t), 0);
    assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_AMD), 0);
    assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_INTEL), -EINVAL);
    assert_non_null(strstr(err_msg(), "'T2A' is for AMD CPUs"));
    /* A custom template is the user's business, as in Firecracker. */
    t = (struct cpu_template){.kind = CPU_TEMPLATE_CUSTOM};
    assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_INTEL), 0);
    assert_int_equal(cpu_template_check_vendor(&t, CPU_VENDOR_AMD), 0);
}

static struct json_object *parse(const char *text)
{
    struct json_object *o = NULL;
    assert_int_equal(jf_parse(text, strlen(text), &o), 0);
    return o;
}

static int from_text(const char *text, struct cpu_template *t)
{
    struct json_object *o = parse(text);
    int ret = cpu_template_from_json(o, t);
    json_object_put(o);
    return ret;
}

/* Firecracker's documented example, then applied. */
static void test_custom_template(void **state)
{
    (void)state;
    static struct cpu_template t;
    assert_int_equal(from_text(
        "{\"kvm_capabilities\": [\"!56\", \"171\"], \"cpuid_modifiers\": [{\"leaf\": \"0x1\", "
        "\"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
        "\"0bxxxx000000000011xx00011011110010\"}, {\"register\": \"ecx\", \"bitmap\": \"0b0\"}]},"
        " {\"leaf\": \"0x7\", \"subleaf\": \"0x0\", \"flags\": 1, \"modifiers\": [{\"register\":"
        " \"ebx\", \"bitmap\": \"0b0x\"}]}], \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\":"
        " \"0b0000000000000000000000000000000000000000000000000000000000000000\"}, {\"addr\": "
        "\"0x1a0\", \"bitmap\": \"0b1x0\"}]}", &t), 0);
    assert_int_equal(t.kind, CPU_TEMPLATE_CUSTOM);
    assert_int_equal(t.nr_caps, 2);
    assert_true(t.caps[0].drop && t.caps[0].cap == 56);
    assert_true(!t.caps[1].drop && t.caps[1].cap == 171);
    assert_int_equal(t.nr_cpuid, 3);
    assert_int_equal(t.cpuid[0].filter, 0x0fff3fffu);
    assert_int_equal(t.cpuid[0].value, 0x000306f2u);
    assert_int_equal(t.cpuid[1].reg, CPUID_ECX);
    assert_int_equal(t.nr_msr, 2);
    struct x86_cpuid_entry e[16];
    size_t n = fake_host(e, "AuthenticAMD");
    assert_int_equal(cpu_template_apply_cpuid(&t, e, n), 0);
    assert_int_equal(leaf(e, n, 1, 0)->eax, 0xf000c000u | 0x000306f2u);
    assert_int_equal(leaf(e, n, 1, 0)->ecx, ~1u);
    assert_int_equal(leaf(e, n, 7, 0)->ebx, ~2u);
    assert_int_equal(cpu_template_apply_msr(&t, 0x10a, 0x1234), 0);
    assert_int_equal(cpu_template_apply_msr(&t, 0x1a0, 0x1), 0x4);
    assert_int_equal(cpu_template_apply_msr(&t, 0x1a0, 0xff), 0xfe);
    assert_int_equal(cpu_template_apply_msr(&t, 0x10, 0x77), 0x77); /* not named: kept */
    /* A custom template's leaf the backend lacks is an error (Firecracker's
     * too); so is a subleaf of a leaf without subleaves. */
    t.cpuid[0].leaf = 0x14;
    assert_int_equal(cpu_template_apply_cpuid(&t, e, n), -EINVAL);
    assert_non_null(strstr(err_msg(), "leaf 0x14 subleaf 0"));
    t.cpuid[0] = (struct cpuid_modifier){1, 1, CPUID_EAX, 1, 0};
    assert_int_equal(cpu_template_apply_cpuid(&t, e, n), -EINVAL);
    assert_int_equal(from_text("{}", &t), 0); /* an empty template changes nothing */
    assert_int_equal(t.nr_cpuid + t.nr_msr + t.nr_caps, 0);
}

/* Hostile bodies: each refused with a message naming what is wrong. */
static void test_malformed_bodies(void **state)
{
    (void)state;
    static const struct { const char *body, *message; } bad[] = {
        {"[]", "expected a JSON object"},
        {"{\"cpuid_modifier\": []}", "unknown field 'cpuid_modifier'"},
        {"{\"vcpu_features\": [{\"index\": 0, \"bitmap\": \"0b1\"}]}", "aarch64 only"},
        {"{\"reg_modifiers\": []}", "aarch64 only"},
        {"{\"cpuid_modifiers\": {}}", "must be an array"},
        {"{\"cpuid_modifiers\": [1]}", "cpuid_modifiers[0]"},
        {"{\"cpuid_modifiers\": [{\"leaf\": 1, \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}", "'leaf' must be a string"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}", "0x (hexadecimal) or 0b"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x100000000\", \"subleaf\": \"0x0\", \"flags\": 0,"
         " \"modifiers\": []}]}", "is over 0xffffffff"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"flags\": 0, \"modifiers\": []}]}",
         "missing required field 'subleaf'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": -1, "
         "\"modifiers\": []}]}", "'flags' must be a non-negative integer"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 8, "
         "\"modifiers\": []}]}", "bits 0-2"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": [{\"register\": \"EAX\", \"bitmap\": \"0b1\"}]}]}",
         "cpuid_modifiers[0]: modifiers[0]: register 'EAX'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"0b1\", \"x\": 1}]}]}",
         "unknown field 'x'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"0b1x1y\"}]}]}",
         "'y' is not 0, 1, x or _"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
         "\"0b111111111111111111111111111111111\"}]}]}", "more than 32 bits"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": [{\"register\": \"eax\", \"bitmap\": null}]}]}", "not null"},
        {"{\"msr_modifiers\": [{\"bitmap\": \"0b1\"}]}", "missing required field 'addr'"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1"
         "0000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "more than 64 bits"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x1_0a\", \"bitmap\": \"0b1\"}]}",
         "msr_modifiers[0]: addr"},
        {"{\"kvm_capabilities\": [56]}", "must be a string"},
        {"{\"kvm_capabilities\": [\"abc\"]}", "not a KVM capability"},
        {"{\"kvm_capabilities\": [\"!\"]}", "not a KVM capability"},
        {"{\"kvm_capabilities\": [\"-1\"]}", "not a KVM capability"},
        {"{\"kvm_capabilities\": [\"!!5\"]}", "not a KVM capability"},
        {"{\"kvm_capabilities\": [\"4294967296\"]}", "not a KVM capability"},
        {"{\"kvm_capabilities\": [\"5 \"]}", "not a KVM capability"},
    };
    static struct cpu_template t;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct json_object *o = parse(bad[i].body);
        int ret = cpu_template_from_json(o, &t);
        json_object_put(o);
        if (ret != -EINVAL || !strstr(err_msg(), bad[i].message))
            fail_msg("body %zu: %d '%s' (expected '%s')", i, ret, err_msg(), bad[i].message);
    }
    assert_int_equal(cpu_template_from_json(NULL, &t), -EINVAL);
}

/* More modifiers than a template holds: refused, never written past. */
static void test_too_many_modifiers(void **state)
{
    (void)state;
    struct json_object *mods = json_object_new_array();
    for (int i = 0; i <= CPU_TEMPLATE_MAX_CPUID; i++) {
        struct json_object *m = json_object_new_object();
        json_object_object_add(m, "register", json_object_new_string("eax"));
        json_object_object_add(m, "bitmap", json_object_new_string("0b1"));
        json_object_array_add(mods, m);
    }
    struct json_object *leafmod = json_object_new_object();
    json_object_object_add(leafmod, "leaf", json_object_new_string("0x1"));
    json_object_object_add(leafmod, "subleaf", json_object_new_string("0x0"));
    json_object_object_add(leafmod, "flags", json_object_new_int(0));
    json_object_object_add(leafmod, "modifiers", mods);
    struct json_object *list = json_object_new_array(), *body = json_object_new_object();
    json_object_array_add(list, leafmod);
    json_object_object_add(body, "cpuid_modifiers", list);
    static struct cpu_template t;
    assert_int_equal(cpu_template_from_json(body, &t), -EINVAL);
    assert_non_null(strstr(err_msg(), "more than 256"));
    json_object_put(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitmaps),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_static_templates),
        cmocka_unit_test(test_static_missing_leaves),
        cmocka_unit_test(test_vendor_refusals),
        cmocka_unit_test(test_custom_template),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_too_many_modifiers),
    };
    return cmocka_run_group_tests_name("cpu_template", tests, NULL, NULL);
}

#include "config/cpu_template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_fields.h"
#include "util/util.h"

static const char *const kind_names[] = {
    [CPU_TEMPLATE_NONE] = "None", [CPU_TEMPLATE_C3] = "C3",     [CPU_TEMPLATE_T2] = "T2",
    [CPU_TEMPLATE_T2S] = "T2S",   [CPU_TEMPLATE_T2CL] = "T2CL", [CPU_TEMPLATE_T2A] = "T2A",
    [CPU_TEMPLATE_CUSTOM] = "Custom",
};

const char *cpu_template_name(enum cpu_template_kind kind)
{
    return (unsigned)kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

bool cpu_template_parse_name(const char *name, enum cpu_template_kind *out)
{
    /* "Custom" names what /cpu-config sets; it is not a choice here. */
    for (unsigned k = 0; k < CPU_TEMPLATE_CUSTOM; k++) {
        if (name && !strcmp(name, kind_names[k])) {
            *out = (enum cpu_template_kind)k;
            return true;
        }
    }
    return false;
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

int cpu_template_number(const char *text, uint64_t max, uint64_t *out)
{
    unsigned base = 0;
    if (text && (!strncmp(text, "0x", 2) || !strncmp(text, "0X", 2)))
        base = 16;
    else if (text && (!strncmp(text, "0b", 2) || !strncmp(text, "0B", 2)))
        base = 2;
    if (!base)
        return err_set(-EINVAL, "'%s' is not a number with a 0x (hexadecimal) or 0b (binary) "
                                "prefix", text ? text : "");
    const char *p = text + 2;
    if (!*p)
        return err_set(-EINVAL, "'%s' has no digits", text);
    uint64_t n = 0;
    for (; *p; p++) {
        unsigned d = (unsigned)digit_value(*p);
        if (d >= base)
            return err_set(-EINVAL, "'%s': '%c' is not a base-%u digit", text, *p, base);
        if (n > (max - d) / base)
            return err_set(-EINVAL, "'%s' is over %#llx", text, (unsigned long long)max);
        n = n * base + d;
    }
    *out = n;
    return 0;
}

int cpu_template_bitmap(const char *text, unsigned width, uint64_t *filter, uint64_t *value)
{
    if (!text || width == 0 || width > 64)
        return err_set(-EINVAL, "bitmap missing");
    const char *digits = strncmp(text, "0b", 2) ? text : text + 2;
    uint64_t f = 0, v = 0;
    unsigned bit = 0;
    /* The rightmost character is bit 0. */
    for (size_t i = strlen(digits); i-- > 0;) {
        char c = digits[i];
        if (c == '_')
            continue;
        if (c != '0' && c != '1' && c != 'x')
            return err_set(-EINVAL, "bitmap '%s': '%c' is not 0, 1, x or _", text, c);
        if (bit == width)
            return err_set(-EINVAL, "bitmap '%s' has more than %u bits", text, width);
        if (c != 'x')
            f |= 1ull << bit;
        if (c == '1')
            v |= 1ull << bit;
        bit++;
    }
    *filter = f;
    *value = v;
    return 0;
}

static int get_number(struct json_object *obj, const char *key, uint64_t max, uint64_t *out)
{
    int ret = cpu_template_number(jf_string(obj, key, NULL), max, out);
    return ret ? err_prefix(ret, "%s", key) : 0;
}

static int parse_register(const char *name, enum cpuid_register *out)
{
    static const char *const names[] = {"eax", "ebx", "ecx", "edx"};
    for (unsigned r = 0; r < ARRAY_SIZE(names); r++) {
        if (!strcmp(name, names[r])) {
            *out = (enum cpuid_register)r;
            return 0;
        }
    }
    return err_set(-EINVAL, "register '%s' is not one of eax, ebx, ecx, edx", name);
}

static int parse_register_modifier(struct json_object *obj, uint32_t leaf, uint32_t subleaf,
                                   struct cpu_template *t)
{
    static const struct jf_field fields[] = {
        {"register", JF_STRING, true, false},
        {"bitmap", JF_STRING, true, false},
    };
    int ret = jf_check(obj, fields, ARRAY_SIZE(fields), "modifier");
    if (ret)
        return ret;
    if (t->nr_cpuid == CPU_TEMPLATE_MAX_CPUID)
        return err_set(-EINVAL, "more than %d CPUID register modifiers", CPU_TEMPLATE_MAX_CPUID);
    struct cpuid_modifier m = {.leaf = leaf, .subleaf = subleaf};
    uint64_t filter, value;
    ret = parse_register(jf_string(obj, "register", ""), &m.reg);
    if (!ret)
        ret = cpu_template_bitmap(jf_string(obj, "bitmap", NULL), 32, &filter, &value);
    if (ret)
        return ret;
    m.filter = (uint32_t)filter;
    m.value = (uint32_t)value;
    t->cpuid[t->nr_cpuid++] = m;
    return 0;
}

/* KVM's CPUID entry flags: significant index, stateful, read next. */
#define KVM_CPUID_FLAGS_KNOWN 7u

static int parse_leaf_modifier(struct json_object *obj, struct cpu_template *t)
{
    static const struct jf_field fields[] = {
        {"leaf", JF_STRING, true, false},
        {"subleaf", JF_STRING, true, false},
        {"flags", JF_UINT, true, false},
        {"modifiers", JF_ARRAY, true, false},
    };
    int ret = jf_check(obj, fields, ARRAY_SIZE(fields), "CPUID modifier");
    uint64_t leaf = 0, subleaf = 0;
    if (!ret)
        ret = get_number(obj, "leaf", UINT32_MAX, &leaf);
    if (!ret)
        ret = get_number(obj, "subleaf", UINT32_MAX, &subleaf);
    if (ret)
        return ret;
    uint64_t flags = jf_uint(obj, "flags", 0);
    if (flags & ~(uint64_t)KVM_CPUID_FLAGS_KNOWN)
        return err_set(-EINVAL, "flags %#llx: KVM's CPUID flags are bits 0-2",
                       (unsigned long long)flags);
    struct json_object *list = jf_get(obj, "modifiers");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        ret = parse_register_modifier(json_object_array_get_idx(list, i), (uint32_t)leaf,
                                      (uint32_t)subleaf, t);
        if (ret)
            return err_prefix(ret, "modifiers[%zu]", i);
    }
    return 0;
}

static int parse_msr_modifier(struct json_object *obj, struct cpu_template *t)
{
    static const struct jf_field fields[] = {
        {"addr", JF_STRING, true, false},
        {"bitmap", JF_STRING, true, false},
    };
    int ret = jf_check(obj, fields, ARRAY_SIZE(fields), "MSR modifier");
    uint64_t addr = 0;
    if (!ret)
        ret = get_number(obj, "addr", UINT32_MAX, &addr);
    if (ret)
        return ret;
    if (t->nr_msr == CPU_TEMPLATE_MAX_MSR)
        return err_set(-EINVAL, "more than %d MSR modifiers", CPU_TEMPLATE_MAX_MSR);
    struct msr_modifier *m = &t->msr[t->nr_msr];
    ret = cpu_template_bitmap(jf_string(obj, "bitmap", NULL), 64, &m->filter, &m->value);
    if (ret)
        return ret;
    m->addr = (uint32_t)addr;
    t->nr_msr++;
    return 0;
}

static int parse_capability(struct json_object *item, struct cpu_template *t)
{
    if (!json_object_is_type(item, json_type_string))
        return err_set(-EINVAL, "must be a string (\"N\" or \"!N\")");
    const char *text = json_object_get_string(item);
    bool drop = text[0] == '!';
    const char *digits = text + drop;
    char *end;
    errno = 0;
    unsigned long n = strtoul(digits, &end, 10);
    if (digits[0] < '0' || digits[0] > '9' || *end || errno || n > UINT32_MAX)
        return err_set(-EINVAL, "'%s' is not a KVM capability number (\"N\" or \"!N\")", text);
    if (t->nr_caps == CPU_TEMPLATE_MAX_CAPS)
        return err_set(-EINVAL, "more than %d KVM capabilities", CPU_TEMPLATE_MAX_CAPS);
    t->caps[t->nr_caps++] = (struct kvm_cap_change){(uint32_t)n, drop};
    return 0;
}

typedef int (*item_parser)(struct json_object *item, struct cpu_template *t);

static int parse_list(struct json_object *obj, const char *key, item_parser fn,
                      struct cpu_template *t)
{
    struct json_object *list = jf_get(obj, key);
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        int ret = fn(json_object_array_get_idx(list, i), t);
        if (ret)
            return err_prefix(ret, "%s[%zu]", key, i);
    }
    return 0;
}

int cpu_template_from_json(struct json_object *obj, struct cpu_template *out)
{
    static const struct jf_field fields[] = {
        {"kvm_capabilities", JF_ARRAY, false, true},
        {"cpuid_modifiers", JF_ARRAY, false, true},
        {"msr_modifiers", JF_ARRAY, false, true},
        /* aarch64's, refused below with that reason */
        {"vcpu_features", JF_ARRAY, false, true},
        {"reg_modifiers", JF_ARRAY, false, true},
    };
    int ret = jf_check(obj, fields, ARRAY_SIZE(fields), "cpu-config");
    if (ret)
        return ret;
    for (unsigned i = 3; i < ARRAY_SIZE(fields); i++)
        if (jf_get(obj, fields[i].name))
            return err_set(-EINVAL, "cpu-config: %s applies to aarch64 only; this is x86_64",
                           fields[i].name);
    memset(out, 0, sizeof(*out));
    out->kind = CPU_TEMPLATE_CUSTOM;
    ret = parse_list(obj, "kvm_capabilities", parse_capability, out);
    if (!ret)
        ret = parse_list(obj, "cpuid_modifiers", parse_leaf_modifier, out);
    if (!ret)
        ret = parse_list(obj, "msr_modifiers", parse_msr_modifier, out);
    return ret ? err_prefix(ret, "cpu-config") : 0;
}

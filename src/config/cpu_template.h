/* CPU templates, as Firecracker defines them: changes to what the guest's
 * CPUID and MSRs say, each a bitmap of bits to clear, set or leave alone.
 * A static template is one of Firecracker's named sets (their contents are
 * in arch/x86_64/cpu_template.c); a custom one comes from PUT /cpu-config,
 * the config file's "cpu-config" or --cpu-config, in Firecracker's JSON.
 * This layer parses and holds them; arch applies them. */
#ifndef EMBER_CONFIG_CPU_TEMPLATE_H
#define EMBER_CONFIG_CPU_TEMPLATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define CPU_TEMPLATE_MAX_CPUID 256 /* register modifiers, all leaves together */
#define CPU_TEMPLATE_MAX_MSR 64
#define CPU_TEMPLATE_MAX_CAPS 64

enum cpu_template_kind {
    CPU_TEMPLATE_NONE,
    CPU_TEMPLATE_C3,
    CPU_TEMPLATE_T2,
    CPU_TEMPLATE_T2S,
    CPU_TEMPLATE_T2CL,
    CPU_TEMPLATE_T2A,
    CPU_TEMPLATE_CUSTOM,
};

enum cpuid_register { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* new = (old & ~filter) | (value & filter): 'filter' holds the bits the
 * bitmap names (0 or 1), 'value' the ones it sets. */
struct cpuid_modifier {
    uint32_t leaf, subleaf;
    enum cpuid_register reg;
    uint32_t filter, value;
};

struct msr_modifier {
    uint32_t addr;
    uint64_t filter, value;
};

/* "N" asks that KVM have capability N; "!N" drops N from the checks. */
struct kvm_cap_change {
    uint32_t cap;
    bool drop;
};

struct cpu_template {
    enum cpu_template_kind kind;
    unsigned nr_cpuid, nr_msr, nr_caps;
    struct cpuid_modifier cpuid[CPU_TEMPLATE_MAX_CPUID];
    struct msr_modifier msr[CPU_TEMPLATE_MAX_MSR];
    struct kvm_cap_change caps[CPU_TEMPLATE_MAX_CAPS];
};

/* "None", "C3", "T2", "T2S", "T2CL", "T2A" (Firecracker's spelling) and
 * back; "Custom" for a custom one. parse returns false for anything else. */
const char *cpu_template_name(enum cpu_template_kind kind);
bool cpu_template_parse_name(const char *name, enum cpu_template_kind *out);

/* A number as Firecracker's templates write them: "0x" hex or "0b" binary,
 * at most 'max'. */
int cpu_template_number(const char *text, uint64_t max, uint64_t *out) EMBER_MUST_CHECK;

/* A bitmap "0b" followed by 1 to 'width' of 0, 1 or x ('_' separates
 * groups); a short one is padded with x on the left. */
int cpu_template_bitmap(const char *text, unsigned width, uint64_t *filter, uint64_t *value)
    EMBER_MUST_CHECK;

/* Firecracker's x86_64 custom template JSON into 'out' (kind CUSTOM).
 * Messages name the item and field. */
int cpu_template_from_json(struct json_object *obj, struct cpu_template *out) EMBER_MUST_CHECK;

#endif

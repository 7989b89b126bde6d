/* Applying a CPU template (config/cpu_template.h) to the CPUID leaves and
 * MSRs of a vCPU, and the contents of Firecracker's static templates. The
 * template goes onto the backend's supported leaves before ember's own
 * adjustments (cpuid_for_vcpu: topology, the hypervisor bit), as
 * Firecracker normalizes after applying one. */
#ifndef EMBER_ARCH_X86_64_CPU_TEMPLATE_H
#define EMBER_ARCH_X86_64_CPU_TEMPLATE_H

#include <stddef.h>

#include "arch/x86_64/cpu_state.h"
#include "arch/x86_64/cpuid.h"
#include "config/cpu_template.h"

/* The static template 'kind' (not NONE or CUSTOM) as modifiers. */
int cpu_template_static(enum cpu_template_kind kind, struct cpu_template *out) EMBER_MUST_CHECK;

/* The vendor a static template is made for (OTHER: any, for NONE and
 * CUSTOM, which Firecracker does not tie to a vendor either). */
enum cpu_vendor cpu_template_vendor(enum cpu_template_kind kind);
const char *cpu_vendor_name(enum cpu_vendor vendor);

/* 0 if 't' fits a CPU of 'host' vendor; else -EINVAL saying why. */
int cpu_template_check_vendor(const struct cpu_template *t, enum cpu_vendor host)
    EMBER_MUST_CHECK;

/* Modify 'entries' in place. A custom template's leaf that the backend does
 * not offer is an error (as in Firecracker); a static template skips such
 * leaves (ember's engine has no XSAVE leaf 0xd, for instance: nothing there
 * to hide). */
int cpu_template_apply_cpuid(const struct cpu_template *t, struct x86_cpuid_entry *entries,
                             size_t count) EMBER_MUST_CHECK;

/* The MSR value 'value' after the template's modifiers for 'addr'. */
uint64_t cpu_template_apply_msr(const struct cpu_template *t, uint32_t addr, uint64_t value);

#endif

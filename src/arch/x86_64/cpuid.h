/* The CPU model a vCPU sees: the backend's supported CPUID leaves, with the
 * hypervisor bit, and a topology of N cores (or N/2 cores of two threads)
 * in one socket whose APIC IDs are the vCPU indexes. With two threads per
 * core, the topology leaf 0xb and (AMD) leaf 0x8000001e are made up when
 * the backend has none, so that the guest can see the threads. */
#ifndef EMBER_ARCH_X86_64_CPUID_H
#define EMBER_ARCH_X86_64_CPUID_H

#include <stddef.h>

#include "arch/x86_64/cpu_state.h"
#include "util/err.h"

#define CPUID_MAX_ENTRIES 256

enum cpu_vendor { CPU_VENDOR_OTHER, CPU_VENDOR_INTEL, CPU_VENDOR_AMD };

enum cpu_vendor cpuid_vendor(const struct x86_cpuid_entry *entries, size_t count);

/* The machine the leaves describe. */
struct cpuid_config {
    unsigned nr_vcpus;
    /* 1, or 2 with SMT: vCPUs 2k and 2k+1 are the threads of core k (APIC
     * ID bit 0 is the thread), as Firecracker's smt: true. */
    unsigned threads_per_core;
};

/* Fill 'out' (capacity 'max') with the leaves for vCPU 'index'. */
int cpuid_for_vcpu(const struct x86_cpuid_entry *supported, size_t count,
                   unsigned index, const struct cpuid_config *cc, struct x86_cpuid_entry *out,
                   size_t max, size_t *out_count) EMBER_MUST_CHECK;

/* Look up a leaf (tests and callers that patch a table). */
struct x86_cpuid_entry *cpuid_find(struct x86_cpuid_entry *entries, size_t count,
                                   uint32_t function, uint32_t index);

/* MSRs each vCPU starts with (what Linux expects firmware to leave behind). */
size_t cpu_boot_msrs(struct x86_msr *out, size_t max);

#endif

#include "arch/x86_64/cpuid.h"

#include <string.h>

#include "util/util.h"

#define LEAF_VENDOR 0x0
#define LEAF_FEATURES 0x1
#define LEAF_CACHE_INTEL 0x4
#define LEAF_TOPOLOGY 0xb
#define LEAF_TOPOLOGY_V2 0x1f
#define LEAF_EXT_VENDOR 0x80000000
#define LEAF_EXT_FEATURES 0x80000001
#define LEAF_EXT_SIZES 0x80000008
#define LEAF_EXT_APIC_ID 0x8000001e
#define LEAF_EXT_CACHE 0x8000001d

#define FEAT1_ECX_HYPERVISOR (1u << 31)
#define FEAT1_EDX_HTT (1u << 28)
#define EXT1_ECX_CMP_LEGACY (1u << 1)
#define EXT1_ECX_TOPOEXT (1u << 22)

#define TOPO_LEVEL_SMT 1u
#define TOPO_LEVEL_CORE 2u

static unsigned bits_for(unsigned n)
{
    unsigned bits = 0;
    while ((1u << bits) < n)
        bits++;
    return bits;
}

struct x86_cpuid_entry *cpuid_find(struct x86_cpuid_entry *entries, size_t count,
                                   uint32_t function, uint32_t index)
{
    for (size_t i = 0; i < count; i++) {
        if (entries[i].function != function)
            continue;
        if (!(entries[i].flags & X86_CPUID_FLAG_INDEXED) || entries[i].index == index)
            return &entries[i];
    }
    return NULL;
}

enum cpu_vendor cpuid_vendor(const struct x86_cpuid_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (entries[i].function != LEAF_VENDOR)
            continue;
        char vendor[12];
        memcpy(vendor, &entries[i].ebx, 4);
        memcpy(vendor + 4, &entries[i].edx, 4);
        memcpy(vendor + 8, &entries[i].ecx, 4);
        if (!memcmp(vendor, "GenuineIntel", 12))
            return CPU_VENDOR_INTEL;
        if (!memcmp(vendor, "AuthenticAMD", 12) || !memcmp(vendor, "HygonGenuine", 12))
            return CPU_VENDOR_AMD;
    }
    return CPU_VENDOR_OTHER;
}

/* The machine as the leaves see it. */
struct topo {
    unsigned nr;      /* logical processors (vCPUs) */
    unsigned threads; /* per core: 1 or 2 */
    unsigned cores;   /* per package */
    bool ext_apic;    /* AMD leaf 0x8000001e is there to describe them */
};

static void patch_features(struct x86_cpuid_entry *e, unsigned index, const struct topo *t)
{
    unsigned logical = 1u << bits_for(t->nr);
    e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | ((logical & 0xff) << 16);
    e->ecx |= FEAT1_ECX_HYPERVISOR;
    if (t->nr > 1)
        e->edx |= FEAT1_EDX_HTT;
    else
        e->edx &= ~FEAT1_EDX_HTT;
}

static void patch_intel_cache(struct x86_cpuid_entry *e, const struct topo *t)
{
    unsigned level = (e->eax >> 5) & 7;
    /* L1 and L2 belong to a core (its threads share them), L3 to all. */
    unsigned sharing = level >= 3 ? t->nr - 1 : t->threads - 1;
    e->eax = (e->eax & 0x3fffu) | ((t->cores - 1) << 26) | (sharing << 14);
}

static void topology_leaf(struct x86_cpuid_entry *e, uint32_t function, uint32_t sub,
                          unsigned index, const struct topo *t)
{
    *e = (struct x86_cpuid_entry){.function = function, .index = sub,
                                  .flags = X86_CPUID_FLAG_INDEXED, .edx = index};
    if (sub == 0) {
        e->eax = bits_for(t->threads); /* APIC ID bits of the thread */
        e->ebx = t->threads;
        e->ecx = (TOPO_LEVEL_SMT << 8) | sub;
    } else if (sub == 1) {
        e->eax = bits_for(t->threads) + bits_for(t->cores);
        e->ebx = t->nr;
        e->ecx = (TOPO_LEVEL_CORE << 8) | sub;
    } else {
        e->ecx = sub;
    }
}

static void patch_amd(struct x86_cpuid_entry *e, unsigned index, const struct topo *t)
{
    switch (e->function) {
    case LEAF_EXT_FEATURES:
        if (t->nr > 1)
            e->ecx |= EXT1_ECX_CMP_LEGACY;
        else
            e->ecx &= ~EXT1_ECX_CMP_LEGACY;
        /* Linux reads threads per core from leaf 0x8000001e only with the
         * topology extensions (Firecracker sets them too). */
        if (t->ext_apic)
            e->ecx |= EXT1_ECX_TOPOEXT;
        break;
    case LEAF_EXT_CACHE: {
        /* L1 and L2 belong to a core, L3 to all. */
        unsigned level = (e->eax >> 5) & 7;
        unsigned sharing = level >= 3 ? t->nr - 1 : t->threads - 1;
        if (level)
            e->eax = (e->eax & ~(0xfffu << 14)) | (sharing << 14);
        break;
    }
    case LEAF_EXT_SIZES:
        e->ecx = (e->ecx & ~0xf0ffu) | (bits_for(t->nr) << 12) | (t->nr - 1);
        break;
    case LEAF_EXT_APIC_ID:
        e->eax = index;
        /* Compute unit = core, with its threads per compute unit - 1. */
        e->ebx = ((index >> bits_for(t->threads)) & 0xff) | ((t->threads - 1) << 8);
        e->ecx = 0;
        break;
    default:
        break;
    }
}

static bool is_topology_leaf(uint32_t function)
{
    return function == LEAF_TOPOLOGY || function == LEAF_TOPOLOGY_V2;
}

static int append_leaf(struct x86_cpuid_entry *out, size_t max, size_t *n,
                       struct x86_cpuid_entry **e)
{
    if (*n == max)
        return err_set(-E2BIG, "too many CPUID leaves");
    *e = &out[(*n)++];
    **e = (struct x86_cpuid_entry){0};
    return 0;
}

/* Leaves that describe two threads per core where the backend has none:
 * the topology leaf 0xb (Linux derives its core IDs from it) and, on AMD,
 * leaf 0x8000001e (threads per compute unit), with the highest standard and
 * extended leaf numbers raised to include them. */
static int add_smt_leaves(struct x86_cpuid_entry *out, size_t max, size_t *n, unsigned index,
                          const struct topo *t, bool have_topology, bool add_ext_apic)
{
    struct x86_cpuid_entry *e = NULL;
    for (uint32_t sub = 0; !have_topology && sub < 3; sub++) {
        int ret = append_leaf(out, max, n, &e);
        if (ret)
            return ret;
        topology_leaf(e, LEAF_TOPOLOGY, sub, index, t);
    }
    if (add_ext_apic) {
        int ret = append_leaf(out, max, n, &e);
        if (ret)
            return ret;
        e->function = LEAF_EXT_APIC_ID;
        patch_amd(e, index, t);
    }
    struct x86_cpuid_entry *top = cpuid_find(out, *n, LEAF_VENDOR, 0);
    if (top && top->eax < LEAF_TOPOLOGY)
        top->eax = LEAF_TOPOLOGY;
    top = cpuid_find(out, *n, LEAF_EXT_VENDOR, 0);
    if (add_ext_apic && top && top->eax < LEAF_EXT_APIC_ID)
        top->eax = LEAF_EXT_APIC_ID;
    return 0;
}

int cpuid_for_vcpu(const struct x86_cpuid_entry *supported, size_t count,
                   unsigned index, const struct cpuid_config *cc, struct x86_cpuid_entry *out,
                   size_t max, size_t *out_count)
{
    unsigned nr_vcpus = cc->nr_vcpus;
    if (nr_vcpus == 0 || index >= nr_vcpus || nr_vcpus > 255)
        return err_set(-EINVAL, "bad vCPU %u of %u", index, nr_vcpus);
    if (cc->threads_per_core != 1 && cc->threads_per_core != 2)
        return err_set(-EINVAL, "%u threads per core (1 or 2)", cc->threads_per_core);
    /* One vCPU is one thread of one core, smt or not. */
    unsigned threads = nr_vcpus > 1 ? cc->threads_per_core : 1;
    struct topo t = {nr_vcpus, threads, (nr_vcpus + threads - 1) / threads, false};
    enum cpu_vendor vendor = cpuid_vendor(supported, count);
    bool host_ext_apic = false;
    for (size_t i = 0; i < count; i++)
        host_ext_apic |= supported[i].function == LEAF_EXT_APIC_ID;
    /* An AMD guest learns of threads only from leaf 0x8000001e: made up
     * where the host's KVM (or the engine) has none. */
    bool add_ext_apic = vendor == CPU_VENDOR_AMD && t.threads == 2 && !host_ext_apic;
    t.ext_apic = host_ext_apic || add_ext_apic;
    bool topology_leaves[2] = {false, false};
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct x86_cpuid_entry *in = &supported[i];
        if (is_topology_leaf(in->function)) {
            topology_leaves[in->function == LEAF_TOPOLOGY_V2] = true;
            continue; /* regenerated below */
        }
        if (n == max)
            return err_set(-E2BIG, "too many CPUID leaves");
        struct x86_cpuid_entry *e = &out[n++];
        *e = *in;
        if (e->function == LEAF_FEATURES)
            patch_features(e, index, &t);
        else if (e->function == LEAF_CACHE_INTEL && vendor == CPU_VENDOR_INTEL)
            patch_intel_cache(e, &t);
        else if (vendor == CPU_VENDOR_AMD)
            patch_amd(e, index, &t);
    }
    for (unsigned v = 0; v < 2; v++) {
        if (!topology_leaves[v])
            continue;
        for (uint32_t sub = 0; sub < 3; sub++) {
            if (n == max)
                return err_set(-E2BIG, "too many CPUID leaves");
            topology_leaf(&out[n++], v ? LEAF_TOPOLOGY_V2 : LEAF_TOPOLOGY, sub, index, &t);
        }
    }
    if (t.threads == 2) {
        int ret = add_smt_leaves(out, max, &n, index, &t, topology_leaves[0], add_ext_apic);
        if (ret)
            return ret;
    }
    *out_count = n;
    return 0;
}

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE (1ull << 11)
#define MTRR_TYPE_WRBACK 6ull

size_t cpu_boot_msrs(struct x86_msr *out, size_t max)
{
    static const struct x86_msr boot_msrs[] = {
        {MSR_IA32_SYSENTER_CS, 0},
        {MSR_IA32_SYSENTER_ESP, 0},
        {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},
        {MSR_LSTAR, 0},
        {MSR_CSTAR, 0},
        {MSR_SYSCALL_MASK, 0},
        {MSR_KERNEL_GS_BASE, 0},
        {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
        /* Firmware normally enables MTRRs with write-back as the default
         * type; without it Linux would treat RAM as uncached. */
        {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK},
    };
    size_t n = MIN(max, ARRAY_SIZE(boot_msrs));
    memcpy(out, boot_msrs, n * sizeof(*out));
    return n;
}

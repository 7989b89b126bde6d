#include "arch/x86_64/cpu_template.h"

#include <string.h>

#include "util/util.h"

/* One row of a static template: in leaf.subleaf's register, the bits of
 * 'mask' take the values they have in 'set'. */
struct row {
    uint32_t leaf, subleaf;
    enum cpuid_register reg;
    uint32_t mask, set;
};

/* Leaf 1 EAX: family, model and stepping (bits 0-13, 16-27). The T2 family
 * says family 6 model 0x3f stepping 2; C3 model 0x3e stepping 4. */
#define SIGNATURE_BITS 0x0fff3fffu
#define SIGNATURE_T2 0x000306f2u
#define SIGNATURE_C3 0x000306e4u
/* Leaf 1 EDX: MCE (7) and MTRR (12) are always said to be there. */
#define F1_EDX_MCE_MTRR 0x00001080u
/* Leaf 7 EBX bit 9: enhanced REP MOVSB/STOSB, said to be there by T2*. */
#define F7_EBX_ERMS 0x00000200u

/* What the T2 templates (T2, T2S, T2CL, T2A) share:
 * - leaf 1 ECX hides dtes64 monitor ds_cpl vmx smx est tm2 cid sdbg xtpr
 *   pdcm dca; EDX hides psn ds acpi ss tm ia64 pbe;
 * - leaf 7 EBX hides sgx hle rtm pqm mpx pqe rdseed adx avx512* (f dq ifma
 *   pf er cd bw vl) pcommit clflushopt clwb intel_pt sha; ECX hides
 *   avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq
 *   avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid sgx_lc; EDX hides
 *   avx512_4vnniw avx512_4fmaps and the ones around them;
 * - leaf 0xd hides the AVX-512 and MPX XSAVE states and xsavec, xgetbv1,
 *   xsaves. */
#define T2_COMMON                                                                          \
    {0x1, 0, CPUID_EAX, SIGNATURE_BITS, SIGNATURE_T2},                                     \
    {0x1, 0, CPUID_ECX, 0x0004cdfcu, 0},                                                   \
    {0x1, 0, CPUID_EDX, 0xe8641080u, F1_EDX_MCE_MTRR},                                     \
    {0x7, 0, CPUID_EBX, 0xffefda14u, F7_EBX_ERMS},                                         \
    {0x7, 0, CPUID_ECX, 0x40415f5eu, 0},                                                   \
    {0x7, 0, CPUID_EDX, 0x0000011cu, 0},                                                   \
    {0xd, 0, CPUID_EAX, 0x000002f8u, 0},                                                   \
    {0xd, 1, CPUID_EAX, 0x0000000eu, 0}

/* T2 and T2S: leaf 0x80000001 hides 3dnowprefetch (ECX 8), monitorx (ECX
 * 29) and pdpe1gb (EDX 26); leaf 0x80000008 wbnoinvd. */
static const struct row t2_rows[] = {
    T2_COMMON,
    {0x80000001, 0, CPUID_ECX, 0x20000100u, 0},
    {0x80000001, 0, CPUID_EDX, 0x04000000u, 0},
    {0x80000008, 0, CPUID_EBX, 0x00000200u, 0},
};

/* T2CL also hides sse4a (ECX 6), misalignsse (ECX 7) and EDX bits 22-25
 * (mmxext, AMD's copies of mmx and fxsr, fxsr_opt). */
static const struct row t2cl_rows[] = {
    T2_COMMON,
    {0x80000001, 0, CPUID_ECX, 0x200001c0u, 0},
    {0x80000001, 0, CPUID_EDX, 0x07c00000u, 0},
    {0x80000008, 0, CPUID_EBX, 0x00000200u, 0},
};

/* T2A (AMD Milan, the same instruction sets as T2CL on Intel): also hides
 * svm (ECX 2), mmxext and fxsr_opt (EDX 22, 25); in leaf 0x80000008 EBX
 * hides clzero and wbnoinvd and says that FP error pointers are restored,
 * IBRS is preferred and works the same in every mode, and EFER.LMSLE is
 * unsupported. */
static const struct row t2a_rows[] = {
    T2_COMMON,
    {0x80000001, 0, CPUID_ECX, 0x200001c4u, 0},
    {0x80000001, 0, CPUID_EDX, 0x06400000u, 0},
    {0x80000008, 0, CPUID_EBX, 0x001c0205u, 0x001c0004u},
};

/* C3: an older Intel model (family 6 model 0x3e): also hides fma and movbe
 * in leaf 1, and bmi1 avx2 bmi2 invpcid in leaf 7 (keeping smep, erms as
 * the host has it, smap). */
static const struct row c3_rows[] = {
    {0x1, 0, CPUID_EAX, SIGNATURE_BITS, SIGNATURE_C3},
    {0x1, 0, CPUID_ECX, 0x0040dd3cu, 0},
    {0x1, 0, CPUID_EDX, 0xa8641080u, F1_EDX_MCE_MTRR},
    {0x7, 0, CPUID_EBX, 0xffafdd3cu, 0},
    {0x7, 0, CPUID_ECX, 0x4041481eu, 0},
    {0x7, 0, CPUID_EDX, 0x0000000cu, 0},
    {0xd, 0, CPUID_EAX, 0x000002f8u, 0},
    {0xd, 1, CPUID_EAX, 0x0000000eu, 0},
    {0x80000001, 0, CPUID_ECX, 0x00000120u, 0},
    {0x80000001, 0, CPUID_EDX, 0x04000000u, 0},
};

#define MSR_IA32_ARCH_CAPABILITIES 0x10a

/* T2S: one fixed IA32_ARCH_CAPABILITIES (with FB_CLEAR, bit 17) whatever
 * the host's, so that snapshots move between Skylake and Cascade Lake. */
static const struct msr_modifier t2s_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, ~0ull, 0x0c0a0c4cull},
};
/* T2CL: clears the ARCH_CAPABILITIES bits Ice Lake has and Cascade Lake
 * has not (and everything above bit 31). */
static const struct msr_modifier t2cl_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, 0xffffffffe2f51e00ull, 0},
};

struct static_template {
    enum cpu_vendor vendor;
    const struct row *rows;
    size_t nr_rows;
    const struct msr_modifier *msrs;
    size_t nr_msrs;
};

static const struct static_template static_templates[] = {
    [CPU_TEMPLATE_C3] = {CPU_VENDOR_INTEL, c3_rows, ARRAY_SIZE(c3_rows), NULL, 0},
    [CPU_TEMPLATE_T2] = {CPU_VENDOR_INTEL, t2_rows, ARRAY_SIZE(t2_rows), NULL, 0},
    [CPU_TEMPLATE_T2S] = {CPU_VENDOR_INTEL, t2_rows, ARRAY_SIZE(t2_rows), t2s_msrs,
                          ARRAY_SIZE(t2s_msrs)},
    [CPU_TEMPLATE_T2CL] = {CPU_VENDOR_INTEL, t2cl_rows, ARRAY_SIZE(t2cl_rows), t2cl_msrs,
                           ARRAY_SIZE(t2cl_msrs)},
    [CPU_TEMPLATE_T2A] = {CPU_VENDOR_AMD, t2a_rows, ARRAY_SIZE(t2a_rows), NULL, 0},
};

static const struct static_template *find_static(enum cpu_template_kind kind)
{
    if ((unsigned)kind >= ARRAY_SIZE(static_templates) || !static_templates[kind].rows)
        return NULL;
    return &static_templates[kind];
}

int cpu_template_static(enum cpu_template_kind kind, struct cpu_template *out)
{
    const struct static_template *s = find_static(kind);
    if (!s)
        return err_set(-EINVAL, "'%s' is not a static CPU template", cpu_template_name(kind));
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    for (size_t i = 0; i < s->nr_rows; i++)
        out->cpuid[out->nr_cpuid++] = (struct cpuid_modifier){
            s->rows[i].leaf, s->rows[i].subleaf, s->rows[i].reg, s->rows[i].mask,
            s->rows[i].set};
    for (size_t i = 0; i < s->nr_msrs; i++)
        out->msr[out->nr_msr++] = s->msrs[i];
    return 0;
}

enum cpu_vendor cpu_template_vendor(enum cpu_template_kind kind)
{
    const struct static_template *s = find_static(kind);
    return s ? s->vendor : CPU_VENDOR_OTHER;
}

const char *cpu_vendor_name(enum cpu_vendor vendor)
{
    switch (vendor) {
    case CPU_VENDOR_INTEL: return "Intel";
    case CPU_VENDOR_AMD: return "AMD";
    case CPU_VENDOR_OTHER: break;
    }
    return "neither Intel nor AMD";
}

int cpu_template_check_vendor(const struct cpu_template *t, enum cpu_vendor host)
{
    enum cpu_vendor want = cpu_template_vendor(t->kind);
    if (want == CPU_VENDOR_OTHER || want == host)
        return 0;
    return err_set(-EINVAL, "cpu_template '%s' is for %s CPUs, and this host's vCPUs are %s "
                            "(a template cannot present one vendor as another)",
                   cpu_template_name(t->kind), cpu_vendor_name(want), cpu_vendor_name(host));
}

static uint32_t *register_of(struct x86_cpuid_entry *e, enum cpuid_register reg)
{
    switch (reg) {
    case CPUID_EAX: return &e->eax;
    case CPUID_EBX: return &e->ebx;
    case CPUID_ECX: return &e->ecx;
    case CPUID_EDX: break;
    }
    return &e->edx;
}

/* Only an indexed leaf has subleaves other than 0. */
static struct x86_cpuid_entry *find_leaf(struct x86_cpuid_entry *entries, size_t count,
                                         uint32_t leaf, uint32_t subleaf)
{
    struct x86_cpuid_entry *e = cpuid_find(entries, count, leaf, subleaf);
    if (e && !(e->flags & X86_CPUID_FLAG_INDEXED) && subleaf != 0)
        return NULL;
    return e;
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct x86_cpuid_entry *entries,
                             size_t count)
{
    for (unsigned i = 0; i < t->nr_cpuid; i++) {
        const struct cpuid_modifier *m = &t->cpuid[i];
        struct x86_cpuid_entry *e = find_leaf(entries, count, m->leaf, m->subleaf);
        if (!e && t->kind == CPU_TEMPLATE_CUSTOM)
            return err_set(-EINVAL, "cpu-config: CPUID leaf %#x subleaf %#x is not offered by "
                                    "this CPU backend", m->leaf, m->subleaf);
        if (!e)
            continue;
        uint32_t *r = register_of(e, m->reg);
        *r = (*r & ~m->filter) | (m->value & m->filter);
    }
    return 0;
}

uint64_t cpu_template_apply_msr(const struct cpu_template *t, uint32_t addr, uint64_t value)
{
    for (unsigned i = 0; i < t->nr_msr; i++)
        if (t->msr[i].addr == addr)
            value = (value & ~t->msr[i].filter) | (t->msr[i].value & t->msr[i].filter);
    return value;
}

/* libFuzzer target: a custom CPU template from PUT /cpu-config (or a config
 * file) — the JSON body, Firecracker's number and bitmap strings, and the
 * template applied to a fake host's CPUID and laid out per vCPU with smt,
 * as a start would.
 *
 *   make fuzz && build/fuzz/fuzz_cpu_config tests/fuzz/corpus/cpu_config */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/cpu_template.h"
#include "arch/x86_64/cpuid.h"
#include "util/json_fields.h"

static size_t fake_host(struct x86_cpuid_entry *e)
{
    size_t n = 0;
    e[n++] = (struct x86_cpuid_entry){.function = 0, .eax = 0xd, .ebx = 0x68747541,
                                      .ecx = 0x444d4163, .edx = 0x69746e65}; /* AuthenticAMD */
    e[n++] = (struct x86_cpuid_entry){.function = 1, .ecx = ~0u, .edx = ~0u};
    e[n++] = (struct x86_cpuid_entry){.function = 7, .flags = X86_CPUID_FLAG_INDEXED,
                                      .ebx = ~0u};
    e[n++] = (struct x86_cpuid_entry){.function = 0x80000000, .eax = 0x80000008};
    e[n++] = (struct x86_cpuid_entry){.function = 0x80000001, .ecx = ~0u};
    e[n++] = (struct x86_cpuid_entry){.function = 0x80000008, .ecx = ~0u};
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cpu_template t;
    struct json_object *body = NULL;
    if (jf_parse((const char *)data, size, &body))
        return 0;
    if (!cpu_template_from_json(body, &t)) {
        struct x86_cpuid_entry host[8], out[CPUID_MAX_ENTRIES];
        size_t n = fake_host(host), m;
        if (!cpu_template_apply_cpuid(&t, host, n)) {
            const struct cpuid_config cc = {4, 2};
            for (unsigned i = 0; i < 4; i++)
                if (cpuid_for_vcpu(host, n, i, &cc, out, CPUID_MAX_ENTRIES, &m))
                    abort(); /* a template must never break the layout */
        }
        for (unsigned i = 0; i < t.nr_msr; i++)
            (void)cpu_template_apply_msr(&t, t.msr[i].addr, 0);
    }
    json_object_put(body);
    return 0;
}

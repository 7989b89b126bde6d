#include "config/config.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

void vm_config_defaults(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nr_vcpus = CONFIG_DEFAULT_CPUS;
    cfg->mem_size = CONFIG_DEFAULT_MEM;
    cfg->rng = true;
    cfg->console = CONSOLE_SERIAL;
}

const char *accel_kind_name(enum accel_kind kind)
{
    switch (kind) {
    case ACCEL_KVM: return "kvm";
    case ACCEL_SOFT: return "soft";
    case ACCEL_AUTO:
    default: return "auto";
    }
}

bool accel_kind_parse(const char *name, enum accel_kind *out)
{
    static const enum accel_kind kinds[] = {ACCEL_AUTO, ACCEL_KVM, ACCEL_SOFT};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!strcmp(name, accel_kind_name(kinds[i]))) {
            *out = kinds[i];
            return true;
        }
    }
    return false;
}

void config_generate_mac(const struct nic_config *n, unsigned index, uint8_t mac[6])
{
    char seed[64];
    snprintf(seed, sizeof(seed), "%s#%u", n->kind == NIC_TAP ? n->tap_name : "user", index);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = seed; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x02;
    mac[1] = 0xe6;
    le32_store(mac + 2, h);
}

const char *transport_name(enum virtio_transport t)
{
    switch (t) {
    case TRANSPORT_PCI: return "pci";
    case TRANSPORT_MMIO: return "mmio";
    case TRANSPORT_AUTO:
    default: return "auto";
    }
}

bool transport_parse(const char *name, enum virtio_transport *out)
{
    static const enum virtio_transport all[] = {TRANSPORT_AUTO, TRANSPORT_PCI, TRANSPORT_MMIO};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        if (!strcmp(name, transport_name(all[i]))) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

const char *guest_pages_name(enum guest_pages pages)
{
    switch (pages) {
    case GUEST_PAGES_THP: return "thp";
    case GUEST_PAGES_SMALL: return "none";
    case GUEST_PAGES_HUGETLB: return "2M";
    }
    return "?";
}

bool guest_pages_parse(const char *name, enum guest_pages *out)
{
    static const enum guest_pages all[] = {GUEST_PAGES_THP, GUEST_PAGES_SMALL,
                                           GUEST_PAGES_HUGETLB};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        if (!strcmp(name, guest_pages_name(all[i]))) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* Is 'word' one of the space-separated words of 'line'? */
static bool has_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = line; p && *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (len == n && !strncmp(p, word, n))
            return true;
        p += len;
    }
    return false;
}

enum virtio_transport transport_resolve(enum virtio_transport want, const char *cmdline)
{
    if (want != TRANSPORT_AUTO)
        return want;
    return cmdline && has_word(cmdline, "pci=off") ? TRANSPORT_MMIO : TRANSPORT_PCI;
}

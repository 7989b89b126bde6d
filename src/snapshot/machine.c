#include "snapshot/machine.h"

#include <arpa/inet.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config/cpu_template.h"
#include "util/util.h"

/* A rate limiter as configured (after any PATCH): absent when it limits
 * nothing. Its buckets start full again after a restore. */
static void save_bucket(const struct bucket_config *b, struct rec r)
{
    rec_put_u64(r, "size", b->size);
    rec_put_u64(r, "one_time_burst", b->one_time_burst);
    rec_put_u64(r, "refill_time_ms", b->refill_time_ms);
}

static void save_limit(const struct rate_limit_config *l, const char *key, struct rec r)
{
    if (!rate_limit_active(l))
        return;
    struct rec c = rec_put_child(r, key);
    if (bucket_config_active(&l->bandwidth))
        save_bucket(&l->bandwidth, rec_put_child(c, "bandwidth"));
    if (bucket_config_active(&l->ops))
        save_bucket(&l->ops, rec_put_child(c, "ops"));
}

/* The API's bounds (api_parse_bucket): token arithmetic stays in 64 bits. */
static int load_bucket(struct rec r, const char *key, struct bucket_config *b)
{
    struct rec c;
    if (!rec_has(r, key))
        return 0;
    int ret = rec_get_child(r, key, &c);
    if (!ret)
        ret = rec_get_u64(c, "size", 1ull << 50, &b->size);
    if (!ret)
        ret = rec_get_u64(c, "one_time_burst", 1ull << 50, &b->one_time_burst);
    if (!ret)
        ret = rec_get_u64(c, "refill_time_ms", 1ull << 32, &b->refill_time_ms);
    return ret ? err_prefix(ret, "%s", key) : 0;
}

static int load_limit(struct rec r, const char *key, struct rate_limit_config *l)
{
    memset(l, 0, sizeof(*l));
    struct rec c;
    if (!rec_has(r, key))
        return 0;
    int ret = rec_get_child(r, key, &c);
    if (!ret)
        ret = load_bucket(c, "bandwidth", &l->bandwidth);
    if (!ret)
        ret = load_bucket(c, "ops", &l->ops);
    l->bandwidth_set = l->ops_set = true;
    return ret ? err_prefix(ret, "%s", key) : 0;
}

static void save_disk(const struct disk_config *d, struct rec r)
{
    rec_put_str(r, "path", d->path);
    rec_put_str(r, "id", d->id);
    rec_put_bool(r, "read_only", d->read_only);
    rec_put_bool(r, "cache_none", d->cache_none);
    rec_put_bool(r, "no_flush", d->no_flush);
    save_limit(&d->rate_limit, "rate_limiter", r);
}

static void save_nic(const struct nic_config *n, struct rec r)
{
    rec_put_str(r, "kind", n->kind == NIC_TAP ? "tap" : "user");
    rec_put_str(r, "tap", n->tap_name);
    rec_put_str(r, "id", n->id);
    rec_put_bytes(r, "mac", n->mac, 6);
    for (unsigned i = 0; i < n->nr_hostfwd; i++)
        rec_put_str(rec_put_item(r, "hostfwd"), "rule", n->hostfwd[i]);
    if (n->mmds)
        rec_put_bool(r, "mmds", true);
    save_limit(&n->rx_limit, "rx_rate_limiter", r);
    save_limit(&n->tx_limit, "tx_rate_limiter", r);
}

/* The metadata service's address and version (its store is not kept). */
static void save_mmds(const struct mmds_config *m, struct rec r)
{
    rec_put_u64(r, "ipv4", m->ipv4);
    rec_put_bool(r, "v2", m->v2);
    rec_put_bool(r, "imds_compat", m->imds_compat);
}

static void save_vsock(const struct vsock_config *v, struct rec r)
{
    rec_put_u64(r, "cid", v->cid);
    rec_put_str(r, "uds_path", v->uds_path);
    rec_put_str(r, "id", v->id);
}

static void save_balloon(const struct balloon_config *b, struct rec r)
{
    rec_put_u64(r, "amount_mib", b->amount_mib);
    rec_put_bool(r, "deflate_on_oom", b->deflate_on_oom);
    rec_put_u64(r, "stats_interval_s", b->stats_interval_s);
    rec_put_bool(r, "free_page_reporting", b->free_page_reporting);
    rec_put_bool(r, "free_page_hinting", b->free_page_hinting);
}

static void save_pmem(const struct pmem_config *p, struct rec r)
{
    rec_put_str(r, "path", p->path);
    rec_put_str(r, "id", p->id);
    rec_put_bool(r, "read_only", p->read_only);
}

/* The template as applied (a static one's modifiers too), so a restore
 * needs no table of templates and a custom one survives. With KVM the
 * vCPUs' saved CPUID and MSRs already hold its effect; the engine builds
 * its CPUID afresh and needs it. Capability checks are not kept: they
 * were made when the VM was created. */
static void save_template(const struct cpu_template *t, struct rec r)
{
    rec_put_str(r, "kind", cpu_template_name(t->kind));
    for (unsigned i = 0; i < t->nr_cpuid; i++) {
        const struct cpuid_modifier *m = &t->cpuid[i];
        struct rec item = rec_put_item(r, "cpuid");
        rec_put_u64(item, "leaf", m->leaf);
        rec_put_u64(item, "subleaf", m->subleaf);
        rec_put_u64(item, "register", m->reg);
        rec_put_u64(item, "filter", m->filter);
        rec_put_u64(item, "value", m->value);
    }
    for (unsigned i = 0; i < t->nr_msr; i++) {
        struct rec item = rec_put_item(r, "msr");
        rec_put_u64(item, "addr", t->msr[i].addr);
        rec_put_u64(item, "filter", t->msr[i].filter);
        rec_put_u64(item, "value", t->msr[i].value);
    }
}

/* A shared directory: restored from the same path (the device checks it
 * is the same directory). */
static void save_share(const struct fs_config *c, struct rec r)
{
    /* Absolute: a restore may run elsewhere than the run did. */
    char *abs = realpath(c->path, NULL);
    rec_put_str(r, "path", abs ? abs : c->path);
    free(abs);
    rec_put_str(r, "tag", c->tag);
    rec_put_str(r, "id", c->id);
    rec_put_bool(r, "read_only", c->read_only);
    rec_put_u64(r, "cache", c->cache);
}

void machine_save(const struct vm_config *cfg, struct rec r)
{
    rec_put_u64(r, "vcpus", cfg->nr_vcpus);
    rec_put_u64(r, "mem_size", cfg->mem_size);
    rec_put_str(r, "cmdline", cfg->cmdline);
    rec_put_bool(r, "rng", cfg->rng);
    save_limit(&cfg->rng_limit, "rng_rate_limiter", r);
    rec_put_str(r, "console", cfg->console == CONSOLE_VIRTIO ? "virtio" : "serial");
    rec_put_bool(r, "track_dirty_pages", cfg->track_dirty_pages);
    rec_put_bool(r, "smt", cfg->smt);
    rec_put_bool(r, "ksm", cfg->ksm);
    rec_put_str(r, "transport", transport_name(cfg->transport));
    rec_put_str(r, "accel", accel_kind_name(cfg->accel));
    rec_put_u64(r, "nr_disks", cfg->nr_disks);
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        save_disk(&cfg->disks[i], rec_put_item(r, "disks"));
    rec_put_u64(r, "nr_nics", cfg->nr_nics);
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        save_nic(&cfg->nics[i], rec_put_item(r, "nics"));
    for (unsigned i = 0; i < cfg->nr_pmem; i++)
        save_pmem(&cfg->pmem[i], rec_put_item(r, "pmem"));
    if (cfg->cpu_template)
        save_template(cfg->cpu_template, rec_put_child(r, "cpu_template"));
    for (unsigned i = 0; i < cfg->nr_shares; i++)
        save_share(&cfg->shares[i], rec_put_item(r, "shares"));
    if (cfg->vsock.uds_path)
        save_vsock(&cfg->vsock, rec_put_child(r, "vsock"));
    if (cfg->balloon.enabled)
        save_balloon(&cfg->balloon, rec_put_child(r, "balloon"));
    bool mmds = false;
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        mmds |= cfg->nics[i].mmds;
    if (mmds)
        save_mmds(&cfg->mmds, rec_put_child(r, "mmds"));
}

static int load_disk(struct rec r, struct disk_config *d)
{
    d->path = rec_get_str_or_null(r, "path");
    d->id = rec_get_str_or_null(r, "id");
    int ret = d->path ? 0 : err_set(-EINVAL, "'path' is missing");
    if (!ret)
        ret = rec_get_bool(r, "read_only", &d->read_only);
    if (!ret)
        ret = rec_get_bool(r, "cache_none", &d->cache_none);
    if (!ret && rec_has(r, "no_flush"))
        ret = rec_get_bool(r, "no_flush", &d->no_flush);
    if (!ret)
        ret = load_limit(r, "rate_limiter", &d->rate_limit);
    return ret;
}

static int load_nic(struct rec r, struct nic_config *n)
{
    const char *kind = rec_get_str_or_null(r, "kind");
    if (!kind || (strcmp(kind, "tap") && strcmp(kind, "user")))
        return err_set(-EINVAL, "'kind' must be tap or user");
    n->kind = !strcmp(kind, "tap") ? NIC_TAP : NIC_USER;
    n->tap_name = rec_get_str_or_null(r, "tap");
    n->id = rec_get_str_or_null(r, "id");
    if (n->kind == NIC_TAP && !n->tap_name)
        return err_set(-EINVAL, "a TAP interface without 'tap'");
    int ret = rec_get_bytes(r, "mac", n->mac, 6);
    size_t count = 0;
    if (!ret && rec_has(r, "hostfwd"))
        ret = rec_get_count(r, "hostfwd", CONFIG_MAX_HOSTFWD, &count);
    for (size_t i = 0; !ret && i < count; i++) {
        struct rec item;
        ret = rec_get_item(r, "hostfwd", i, &item);
        if (!ret && !(n->hostfwd[i] = rec_get_str_or_null(item, "rule")))
            ret = err_set(-EINVAL, "hostfwd[%zu] has no rule", i);
    }
    n->nr_hostfwd = (unsigned)count;
    if (!ret && rec_has(r, "mmds"))
        ret = rec_get_bool(r, "mmds", &n->mmds);
    if (!ret)
        ret = load_limit(r, "rx_rate_limiter", &n->rx_limit);
    if (!ret)
        ret = load_limit(r, "tx_rate_limiter", &n->tx_limit);
    return ret;
}

static int load_mmds(struct rec r, struct mmds_config *m)
{
    uint64_t ip = 0;
    int ret = rec_get_u64(r, "ipv4", UINT32_MAX, &ip);
    m->ipv4 = (uint32_t)ip;
    if (!ret)
        ret = rec_get_bool(r, "v2", &m->v2);
    if (!ret)
        ret = rec_get_bool(r, "imds_compat", &m->imds_compat);
    if (!ret && (ntohl(m->ipv4) >> 16) != 0xa9fe)
        ret = err_set(-EINVAL, "the address is not link-local");
    return ret ? err_prefix(ret, "mmds") : 0;
}

static int load_vsock(struct rec r, struct vsock_config *v)
{
    v->uds_path = rec_get_str_or_null(r, "uds_path");
    v->id = rec_get_str_or_null(r, "id");
    int ret = v->uds_path && *v->uds_path ? 0 : err_set(-EINVAL, "'uds_path' is missing");
    if (!ret)
        ret = rec_get_u32(r, "cid", CONFIG_VSOCK_MAX_CID, &v->cid);
    if (!ret && v->cid < CONFIG_VSOCK_MIN_CID)
        ret = err_set(-EINVAL, "'cid' %u is reserved (the guest's is %u or more)", v->cid,
                      CONFIG_VSOCK_MIN_CID);
    return ret ? err_prefix(ret, "vsock") : 0;
}

static int load_balloon(struct rec r, struct balloon_config *b)
{
    b->enabled = true;
    int ret = rec_get_u32(r, "amount_mib", UINT32_MAX, &b->amount_mib);
    if (!ret)
        ret = rec_get_bool(r, "deflate_on_oom", &b->deflate_on_oom);
    if (!ret)
        ret = rec_get_u32(r, "stats_interval_s", BALLOON_MAX_STATS_INTERVAL, &b->stats_interval_s);
    if (!ret)
        ret = rec_get_bool(r, "free_page_reporting", &b->free_page_reporting);
    if (!ret && rec_has(r, "free_page_hinting")) /* older snapshots: none */
        ret = rec_get_bool(r, "free_page_hinting", &b->free_page_hinting);
    return ret ? err_prefix(ret, "balloon") : 0;
}

static int load_pmem(struct rec r, struct pmem_config *p)
{
    p->path = rec_get_str_or_null(r, "path");
    p->id = rec_get_str_or_null(r, "id");
    int ret = p->path && *p->path ? 0 : err_set(-EINVAL, "'path' is missing");
    if (!ret)
        ret = rec_get_bool(r, "read_only", &p->read_only);
    return ret;
}

static int load_pmem_list(struct rec r, struct vm_config *cfg)
{
    size_t count = 0;
    int ret = rec_has(r, "pmem") ? rec_get_count(r, "pmem", CONFIG_MAX_PMEM, &count) : 0;
    for (size_t i = 0; !ret && i < count; i++) {
        struct rec item;
        ret = rec_get_item(r, "pmem", i, &item);
        if (!ret)
            ret = load_pmem(item, &cfg->pmem[i]);
        if (ret)
            err_prefix(ret, "pmem %zu", i);
    }
    cfg->nr_pmem = ret ? 0 : (unsigned)count;
    return ret;
}

static int load_cpuid_modifier(struct rec r, struct cpuid_modifier *m)
{
    uint32_t reg = 0;
    int ret = rec_get_u32(r, "leaf", UINT32_MAX, &m->leaf);
    if (!ret)
        ret = rec_get_u32(r, "subleaf", UINT32_MAX, &m->subleaf);
    if (!ret)
        ret = rec_get_u32(r, "register", CPUID_EDX, &reg);
    if (!ret)
        ret = rec_get_u32(r, "filter", UINT32_MAX, &m->filter);
    if (!ret)
        ret = rec_get_u32(r, "value", UINT32_MAX, &m->value);
    m->reg = (enum cpuid_register)reg;
    return ret;
}

static int load_msr_modifier(struct rec r, struct msr_modifier *m)
{
    int ret = rec_get_u32(r, "addr", UINT32_MAX, &m->addr);
    if (!ret)
        ret = rec_get_u64(r, "filter", UINT64_MAX, &m->filter);
    if (!ret)
        ret = rec_get_u64(r, "value", UINT64_MAX, &m->value);
    return ret;
}

static int load_template(struct rec r, struct cpu_template *t)
{
    memset(t, 0, sizeof(*t));
    const char *kind = rec_get_str_or_null(r, "kind");
    if (kind && !strcmp(kind, cpu_template_name(CPU_TEMPLATE_CUSTOM)))
        t->kind = CPU_TEMPLATE_CUSTOM;
    else if (!cpu_template_parse_name(kind, &t->kind))
        return err_set(-EINVAL, "'kind' is not a CPU template");
    size_t nr_cpuid = 0, nr_msr = 0;
    int ret = rec_has(r, "cpuid") ? rec_get_count(r, "cpuid", CPU_TEMPLATE_MAX_CPUID, &nr_cpuid)
                                  : 0;
    if (!ret && rec_has(r, "msr"))
        ret = rec_get_count(r, "msr", CPU_TEMPLATE_MAX_MSR, &nr_msr);
    struct rec item;
    for (size_t i = 0; !ret && i < nr_cpuid; i++)
        if (!(ret = rec_get_item(r, "cpuid", i, &item)) &&
            (ret = load_cpuid_modifier(item, &t->cpuid[i])))
            err_prefix(ret, "cpuid %zu", i);
    for (size_t i = 0; !ret && i < nr_msr; i++)
        if (!(ret = rec_get_item(r, "msr", i, &item)) &&
            (ret = load_msr_modifier(item, &t->msr[i])))
            err_prefix(ret, "msr %zu", i);
    t->nr_cpuid = (unsigned)nr_cpuid;
    t->nr_msr = (unsigned)nr_msr;
    return ret;
}


static int load_share(struct rec r, struct fs_config *c, const struct fs_config *others,
                      unsigned nr)
{
    c->path = rec_get_str_or_null(r, "path");
    c->tag = rec_get_str_or_null(r, "tag");
    c->id = rec_get_str_or_null(r, "id");
    uint32_t cache = 0;
    int ret = rec_get_bool(r, "read_only", &c->read_only);
    if (!ret)
        ret = rec_get_u32(r, "cache", FS_CACHE_MODE_NEVER, &cache);
    c->cache = (enum fs_cache_mode)cache;
    if (!ret)
        ret = fs_config_check(c, others, nr);
    return ret;
}

static int load_shares(struct rec r, struct vm_config *cfg)
{
    size_t n = 0;
    int ret = rec_has(r, "shares") ? rec_get_count(r, "shares", CONFIG_MAX_SHARES, &n) : 0;
    for (size_t i = 0; !ret && i < n; i++) {
        struct rec item;
        ret = rec_get_item(r, "shares", i, &item);
        if (!ret)
            ret = load_share(item, &cfg->shares[i], cfg->shares, (unsigned)i);
        if (ret)
            err_prefix(ret, "share %zu", i);
    }
    cfg->nr_shares = ret ? 0 : (unsigned)n;
    return ret;
}

int machine_load(struct rec r, struct vm_config *cfg, struct cpu_template *template)
{
    vm_config_defaults(cfg);
    const char *console = rec_get_str_or_null(r, "console");
    uint64_t disks = 0, nics = 0;
    int ret = rec_get_u32(r, "vcpus", CONFIG_MAX_CPUS, &cfg->nr_vcpus);
    if (!ret && cfg->nr_vcpus == 0)
        ret = err_set(-EINVAL, "'vcpus' is 0");
    if (!ret)
        ret = rec_get_u64(r, "mem_size", CONFIG_MAX_MEM, &cfg->mem_size);
    if (!ret && (cfg->mem_size < CONFIG_MIN_MEM || !is_aligned(cfg->mem_size, MiB(1))))
        ret = err_set(-EINVAL, "'mem_size' %llu is not a possible guest size",
                      (unsigned long long)cfg->mem_size);
    if (!ret)
        ret = rec_get_bool(r, "rng", &cfg->rng);
    if (!ret)
        ret = load_limit(r, "rng_rate_limiter", &cfg->rng_limit);
    if (!ret)
        ret = rec_get_bool(r, "track_dirty_pages", &cfg->track_dirty_pages);
    if (!ret && rec_has(r, "smt")) /* snapshots from before it: one thread per core */
        ret = rec_get_bool(r, "smt", &cfg->smt);
    if (!ret && rec_has(r, "ksm"))
        ret = rec_get_bool(r, "ksm", &cfg->ksm);
    /* Snapshots from before virtio-mmio: PCI. */
    const char *transport = rec_has(r, "transport") ? rec_get_str_or_null(r, "transport") : "pci";
    if (!ret && (!transport || !transport_parse(transport, &cfg->transport) ||
                 cfg->transport == TRANSPORT_AUTO))
        ret = err_set(-EINVAL, "'transport' must be pci or mmio");
    if (!ret && (!console || (strcmp(console, "serial") && strcmp(console, "virtio"))))
        ret = err_set(-EINVAL, "'console' must be serial or virtio");
    if (!ret)
        cfg->console = !strcmp(console, "virtio") ? CONSOLE_VIRTIO : CONSOLE_SERIAL;
    cfg->cmdline = rec_get_str_or_null(r, "cmdline");
    /* Snapshots from before the software engine existed are KVM's. */
    const char *accel = rec_has(r, "accel") ? rec_get_str_or_null(r, "accel") : "kvm";
    if (!ret && (!accel || !accel_kind_parse(accel, &cfg->accel) || cfg->accel == ACCEL_AUTO))
        ret = err_set(-EINVAL, "'accel' must be kvm or soft");
    if (!ret)
        ret = rec_get_u64(r, "nr_disks", CONFIG_MAX_DISKS, &disks);
    if (!ret)
        ret = rec_get_u64(r, "nr_nics", CONFIG_MAX_NICS, &nics);
    for (unsigned i = 0; !ret && i < disks; i++) {
        struct rec item;
        ret = rec_get_item(r, "disks", i, &item);
        if (!ret)
            ret = load_disk(item, &cfg->disks[i]);
        if (ret)
            err_prefix(ret, "disk %u", i);
    }
    for (unsigned i = 0; !ret && i < nics; i++) {
        struct rec item;
        ret = rec_get_item(r, "nics", i, &item);
        if (!ret)
            ret = load_nic(item, &cfg->nics[i]);
        if (ret)
            err_prefix(ret, "network interface %u", i);
    }
    if (!ret)
        ret = load_pmem_list(r, cfg);
    struct rec tmpl;
    if (!ret && rec_has(r, "cpu_template") && !(ret = rec_get_child(r, "cpu_template", &tmpl))) {
        if (!(ret = load_template(tmpl, template)))
            cfg->cpu_template = template;
        else
            err_prefix(ret, "cpu_template");
    }
    if (!ret)
        ret = load_shares(r, cfg);
    struct rec vsock;
    if (!ret && rec_has(r, "vsock") && !(ret = rec_get_child(r, "vsock", &vsock)))
        ret = load_vsock(vsock, &cfg->vsock);
    struct rec balloon;
    if (!ret && rec_has(r, "balloon") && !(ret = rec_get_child(r, "balloon", &balloon)))
        ret = load_balloon(balloon, &cfg->balloon);
    bool mmds = false;
    for (unsigned i = 0; !ret && i < nics; i++)
        mmds |= cfg->nics[i].mmds;
    struct rec m;
    if (!ret && mmds && !(ret = rec_get_child(r, "mmds", &m)))
        ret = load_mmds(m, &cfg->mmds);
    cfg->nr_disks = (unsigned)disks;
    cfg->nr_nics = (unsigned)nics;
    return ret ? err_prefix(ret, "machine configuration") : 0;
}

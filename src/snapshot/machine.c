#include "snapshot/machine.h"

#include <arpa/inet.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void save_disk(const struct disk_config *d, struct rec r)
{
    rec_put_str(r, "path", d->path);
    rec_put_str(r, "id", d->id);
    rec_put_bool(r, "read_only", d->read_only);
    rec_put_bool(r, "cache_none", d->cache_none);
    rec_put_bool(r, "no_flush", d->no_flush);
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
    rec_put_str(r, "console", cfg->console == CONSOLE_VIRTIO ? "virtio" : "serial");
    rec_put_bool(r, "track_dirty_pages", cfg->track_dirty_pages);
    rec_put_bool(r, "smt", cfg->smt);
    rec_put_str(r, "transport", transport_name(cfg->transport));
    rec_put_str(r, "accel", accel_kind_name(cfg->accel));
    rec_put_u64(r, "nr_disks", cfg->nr_disks);
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        save_disk(&cfg->disks[i], rec_put_item(r, "disks"));
    rec_put_u64(r, "nr_nics", cfg->nr_nics);
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        save_nic(&cfg->nics[i], rec_put_item(r, "nics"));
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
    return ret ? err_prefix(ret, "balloon") : 0;
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

int machine_load(struct rec r, struct vm_config *cfg)
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
        ret = rec_get_bool(r, "track_dirty_pages", &cfg->track_dirty_pages);
    if (!ret && rec_has(r, "smt")) /* snapshots from before it: one thread per core */
        ret = rec_get_bool(r, "smt", &cfg->smt);
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

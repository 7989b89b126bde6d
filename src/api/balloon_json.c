#include "api/balloon_json.h"

#include "util/json_fields.h"
#include "util/util.h"

/* Firecracker's names for the statistics' tags (virtio 1.2 numbering). */
static const char *const stat_names[BALLOON_NR_STATS] = {
    "swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
    "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures", "oom_kill",
    "alloc_stall", "async_scan", "direct_scan", "async_reclaim", "direct_reclaim",
};

int api_parse_balloon(struct json_object *body, struct balloon_config *out)
{
    static const struct jf_field fields[] = {
        {"amount_mib", JF_UINT, true, false},
        {"deflate_on_oom", JF_BOOL, true, false},
        {"stats_polling_interval_s", JF_UINT, false, true},
        {"free_page_reporting", JF_BOOL, false, true},
        {"free_page_hinting", JF_BOOL, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "balloon");
    if (ret)
        return ret;
    uint64_t amount = jf_uint(body, "amount_mib", 0);
    uint64_t interval = jf_uint(body, "stats_polling_interval_s", 0);
    if (amount > UINT32_MAX)
        return err_set(-EINVAL, "balloon: amount_mib %llu is too large",
                       (unsigned long long)amount);
    if (interval > BALLOON_MAX_STATS_INTERVAL)
        return err_set(-EINVAL, "balloon: stats_polling_interval_s must be at most %u",
                       BALLOON_MAX_STATS_INTERVAL);
    *out = (struct balloon_config){
        .enabled = true,
        .amount_mib = (uint32_t)amount,
        .deflate_on_oom = jf_bool(body, "deflate_on_oom", false),
        .stats_interval_s = (uint32_t)interval,
        .free_page_reporting = jf_bool(body, "free_page_reporting", false),
        .free_page_hinting = jf_bool(body, "free_page_hinting", false),
    };
    return 0;
}

struct json_object *api_balloon_json(const struct balloon_config *b)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "amount_mib", json_object_new_int64(b->amount_mib));
    json_object_object_add(o, "deflate_on_oom", json_object_new_boolean(b->deflate_on_oom));
    json_object_object_add(o, "stats_polling_interval_s",
                           json_object_new_int64(b->stats_interval_s));
    json_object_object_add(o, "free_page_hinting", json_object_new_boolean(b->free_page_hinting));
    json_object_object_add(o, "free_page_reporting",
                           json_object_new_boolean(b->free_page_reporting));
    return o;
}

struct json_object *api_balloon_hinting_json(const struct balloon_hinting *h)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "host_cmd", json_object_new_int64(h->host_cmd));
    if (h->has_guest_cmd) /* Firecracker's is absent until the driver sent one */
        json_object_object_add(o, "guest_cmd", json_object_new_int64(h->guest_cmd));
    return o;
}

struct json_object *api_balloon_stats_json(const struct balloon_stats *st)
{
    const uint64_t pages_per_mib = (1u << 20) / BALLOON_PAGE_SIZE;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "target_pages", json_object_new_int64(st->target_pages));
    json_object_object_add(o, "actual_pages", json_object_new_int64(st->actual_pages));
    json_object_object_add(o, "target_mib",
                           json_object_new_int64(st->target_pages / pages_per_mib));
    json_object_object_add(o, "actual_mib",
                           json_object_new_int64(st->actual_pages / pages_per_mib));
    for (unsigned t = 0; t < BALLOON_NR_STATS; t++)
        if (st->present & (1u << t))
            json_object_object_add(o, stat_names[t], json_object_new_uint64(st->value[t]));
    return o;
}

#include "api/balloon_requests.h"

#include <string.h>

#include "api/balloon_json.h"
#include "util/json_fields.h"
#include "util/util.h"
#include "virtio/balloon.h"

static struct virtio_balloon *running_balloon(struct vmm *vmm)
{
    return vmm_state(vmm) == VMM_NOT_STARTED ? NULL : vmm_balloon(vmm);
}

static int check_configured(const struct api_resources *res)
{
    if (!res->balloon.enabled)
        return err_set(-EINVAL, "the balloon device is not configured");
    return 0;
}

int api_put_balloon(struct api_resources *res, struct json_object *body)
{
    struct balloon_config b;
    int ret = api_parse_balloon(body, &b);
    if (!ret && (uint64_t)b.amount_mib > res->mem_mib)
        ret = err_set(-EINVAL, "balloon: amount_mib %u is more than the guest's %u MiB",
                      b.amount_mib, res->mem_mib);
    if (!ret)
        res->balloon = b;
    return ret;
}

int api_patch_balloon(struct api_resources *res, struct vmm *vmm, struct json_object *body)
{
    static const struct jf_field fields[] = {{"amount_mib", JF_UINT, true, false}};
    int ret = check_configured(res);
    if (!ret)
        ret = jf_check(body, fields, ARRAY_SIZE(fields), "balloon");
    uint64_t amount = ret ? 0 : jf_uint(body, "amount_mib", 0);
    if (!ret && amount > res->mem_mib)
        ret = err_set(-EINVAL, "balloon: amount_mib %llu is more than the guest's %u MiB",
                      (unsigned long long)amount, res->mem_mib);
    struct virtio_balloon *dev = ret ? NULL : running_balloon(vmm);
    if (dev)
        ret = virtio_balloon_set_target(dev, (uint32_t)amount);
    if (!ret)
        res->balloon.amount_mib = (uint32_t)amount;
    return ret;
}

int api_get_balloon(const struct api_resources *res, struct json_object **out)
{
    int ret = check_configured(res);
    if (!ret)
        *out = api_balloon_json(&res->balloon);
    return ret;
}

int api_get_balloon_stats(const struct api_resources *res, struct vmm *vmm,
                          struct json_object **out)
{
    int ret = check_configured(res);
    if (!ret && !res->balloon.stats_interval_s)
        ret = err_set(-EINVAL, "balloon: statistics are not enabled "
                               "(stats_polling_interval_s was 0 at the start)");
    struct virtio_balloon *dev = ret ? NULL : running_balloon(vmm);
    if (!ret && !dev)
        ret = err_set(-EINVAL, "balloon: statistics come from a running microVM");
    if (ret)
        return ret;
    struct balloon_stats st;
    virtio_balloon_get_stats(dev, &st);
    *out = api_balloon_stats_json(&st);
    return 0;
}

int api_patch_balloon_stats(struct api_resources *res, struct vmm *vmm,
                            struct json_object *body)
{
    static const struct jf_field fields[] = {{"stats_polling_interval_s", JF_UINT, true, false}};
    int ret = check_configured(res);
    if (!ret)
        ret = jf_check(body, fields, ARRAY_SIZE(fields), "balloon/statistics");
    uint64_t interval = ret ? 0 : jf_uint(body, "stats_polling_interval_s", 0);
    if (!ret && interval > BALLOON_MAX_STATS_INTERVAL)
        ret = err_set(-EINVAL, "balloon: stats_polling_interval_s must be at most %u",
                      BALLOON_MAX_STATS_INTERVAL);
    struct virtio_balloon *dev = ret ? NULL : running_balloon(vmm);
    if (dev)
        ret = virtio_balloon_set_stats_interval(dev, (uint32_t)interval);
    if (!ret)
        res->balloon.stats_interval_s = (uint32_t)interval;
    return ret;
}

/* The hinting requests need the feature configured and a running device. */
static int hinting_device(const struct api_resources *res, struct vmm *vmm,
                          struct virtio_balloon **out)
{
    int ret = check_configured(res);
    if (!ret && !res->balloon.free_page_hinting)
        ret = err_set(-EINVAL, "balloon: free page hinting was not enabled when the device "
                               "was configured (free_page_hinting)");
    if (!ret && !(*out = running_balloon(vmm)))
        ret = err_set(-EINVAL, "balloon: free page hinting needs a running microVM");
    return ret;
}

int api_start_balloon_hinting(const struct api_resources *res, struct vmm *vmm,
                              struct json_object *body)
{
    static const struct jf_field fields[] = {{"acknowledge_on_stop", JF_BOOL, false, true}};
    struct virtio_balloon *dev = NULL;
    int ret = body ? jf_check(body, fields, ARRAY_SIZE(fields), "balloon/hinting/start") : 0;
    if (!ret)
        ret = hinting_device(res, vmm, &dev);
    if (!ret) /* Firecracker acknowledges unless told not to */
        virtio_balloon_start_hinting(dev, body ? jf_bool(body, "acknowledge_on_stop", true) : true);
    return ret;
}

int api_stop_balloon_hinting(const struct api_resources *res, struct vmm *vmm)
{
    struct virtio_balloon *dev = NULL;
    int ret = hinting_device(res, vmm, &dev);
    if (!ret)
        virtio_balloon_stop_hinting(dev);
    return ret;
}

int api_get_balloon_hinting(const struct api_resources *res, struct vmm *vmm,
                            struct json_object **out)
{
    struct virtio_balloon *dev = NULL;
    int ret = hinting_device(res, vmm, &dev);
    if (ret)
        return ret;
    struct balloon_hinting h;
    virtio_balloon_hinting_status(dev, &h);
    *out = api_balloon_hinting_json(&h);
    return 0;
}

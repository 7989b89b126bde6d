/* --balloon amount=MIB[,deflate_on_oom=on|off][,stats=SECONDS][,reporting=on|off]
 *           [,hinting=on|off] */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/err.h"

static int parse_number(const char *key, const char *value, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = value ? strtoull(value, &end, 10) : 0;
    if (!value || errno || end == value || *end || value[0] == '-' || n > max)
        return err_set(-EINVAL, "--balloon: %s must be a number from 0 to %llu, got '%s'", key,
                       (unsigned long long)max, value ? value : "");
    *out = n;
    return 0;
}

static int parse_switch(const char *key, const char *value, bool *out)
{
    if (value && (!strcmp(value, "on") || !strcmp(value, "true")))
        *out = true;
    else if (value && (!strcmp(value, "off") || !strcmp(value, "false")))
        *out = false;
    else
        return err_set(-EINVAL, "--balloon: %s must be on or off, got '%s'", key,
                       value ? value : "");
    return 0;
}

int balloon_config_parse(char *spec, struct balloon_config *out)
{
    struct balloon_config b = {.enabled = true};
    bool have_amount = false;
    enum { KEY_AMOUNT, KEY_OOM, KEY_STATS, KEY_REPORTING, KEY_HINTING };
    char *const keys[] = {"amount", "deflate_on_oom", "stats", "reporting", "hinting", NULL};
    char *value;
    while (*spec) {
        char *item = spec;
        uint64_t n = 0;
        int ret = 0;
        switch (getsubopt(&spec, keys, &value)) {
        case KEY_AMOUNT:
            ret = parse_number("amount", value, UINT32_MAX, &n);
            b.amount_mib = (uint32_t)n;
            have_amount = true;
            break;
        case KEY_OOM: ret = parse_switch("deflate_on_oom", value, &b.deflate_on_oom); break;
        case KEY_STATS:
            ret = parse_number("stats", value, BALLOON_MAX_STATS_INTERVAL, &n);
            b.stats_interval_s = (uint32_t)n;
            break;
        case KEY_REPORTING: ret = parse_switch("reporting", value, &b.free_page_reporting); break;
        case KEY_HINTING: ret = parse_switch("hinting", value, &b.free_page_hinting); break;
        default:
            return err_set(-EINVAL, "--balloon: unknown setting '%s' (expected amount=, "
                                    "deflate_on_oom=, stats=, reporting=, hinting=)", item);
        }
        if (ret)
            return ret;
    }
    if (!have_amount)
        return err_set(-EINVAL, "--balloon: amount=MIB is required (0 for an empty balloon)");
    *out = b;
    return 0;
}

int balloon_config_check(const struct balloon_config *b, uint64_t mem_size)
{
    if (b->enabled && ((uint64_t)b->amount_mib << 20) > mem_size)
        return err_set(-EINVAL, "balloon: amount_mib %u is more than the guest's memory "
                                "(%llu MiB)", b->amount_mib, (unsigned long long)(mem_size >> 20));
    return 0;
}

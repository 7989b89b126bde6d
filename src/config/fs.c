/* --share DIR,tag=T[,ro][,cache=auto|always|never] */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/err.h"

static int parse_cache(const char *value, enum fs_cache_mode *out)
{
    static const char *const names[] = {"auto", "always", "never"};
    for (unsigned i = 0; value && i < 3; i++) {
        if (!strcmp(value, names[i])) {
            *out = (enum fs_cache_mode)i;
            return 0;
        }
    }
    return err_set(-EINVAL, "--share: cache must be auto, always or never, got '%s'",
                   value ? value : "");
}

int fs_config_parse(char *spec, struct fs_config *out)
{
    struct fs_config c = {0};
    char *comma = strchr(spec, ',');
    if (comma)
        *comma = 0;
    c.path = spec;
    spec = comma ? comma + 1 : spec + strlen(spec);
    enum { KEY_TAG, KEY_RO, KEY_CACHE };
    char *const keys[] = {"tag", "ro", "cache", NULL};
    char *value;
    while (*spec) {
        char *item = spec;
        int ret = 0;
        switch (getsubopt(&spec, keys, &value)) {
        case KEY_TAG: c.tag = value; break;
        case KEY_RO:
            if (value)
                return err_set(-EINVAL, "--share: 'ro' takes no value");
            c.read_only = true;
            break;
        case KEY_CACHE: ret = parse_cache(value, &c.cache); break;
        default:
            return err_set(-EINVAL, "--share: unknown setting '%s' (expected tag=, ro, cache=)",
                           item);
        }
        if (ret)
            return ret;
    }
    *out = c;
    return 0;
}

int fs_config_check(const struct fs_config *c, const struct fs_config *others, unsigned nr)
{
    if (!c->path || !*c->path)
        return err_set(-EINVAL, "a shared directory needs a path");
    if (!c->tag || !*c->tag || strlen(c->tag) > CONFIG_FS_TAG_MAX)
        return err_set(-EINVAL, "share %s: the tag must be 1 to %d bytes", c->path,
                       CONFIG_FS_TAG_MAX);
    for (unsigned i = 0; i < nr; i++)
        if (&others[i] != c && others[i].tag && !strcmp(others[i].tag, c->tag))
            return err_set(-EINVAL, "share %s: tag '%s' is already used", c->path, c->tag);
    return 0;
}

/* PUT /fs/{id}: a shared host directory (virtio-fs), an ember extension
 * (Firecracker has none): {"fs_id", "shared_dir", "tag", "read_only",
 * "cache"}, kept until the VM starts. Also the config file's "fs" items. */
#include "api/resources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/json_fields.h"
#include "util/util.h"

static const char *const cache_names[] = {"auto", "always", "never"};

static void fs_free_one(struct api_fs *f)
{
    free(f->id);
    free(f->dir);
    free(f->tag);
    memset(f, 0, sizeof(*f));
}

void api_fs_free(struct api_resources *r)
{
    for (unsigned i = 0; i < r->nr_fs; i++)
        fs_free_one(&r->fs[i]);
    r->nr_fs = 0;
}

static int parse_cache(struct json_object *body, enum fs_cache_mode *out)
{
    const char *c = jf_string(body, "cache", "auto");
    for (unsigned i = 0; i < ARRAY_SIZE(cache_names); i++) {
        if (!strcmp(c, cache_names[i])) {
            *out = (enum fs_cache_mode)i;
            return 0;
        }
    }
    return err_set(-EINVAL, "fs: cache must be \"auto\", \"always\" or \"never\", got '%s'", c);
}

static int check_dir(const char *path)
{
    struct stat st;
    if (!*path || stat(path, &st) < 0)
        return err_set(-ENOENT, "fs: shared_dir '%s' does not exist", path);
    if (!S_ISDIR(st.st_mode))
        return err_set(-ENOTDIR, "fs: shared_dir '%s' is not a directory", path);
    return 0;
}

/* The share named 'id', or a free entry; NULL if the table is full. A tag
 * used by another share is refused. */
static int find_slot(struct api_resources *r, const char *id, const char *tag,
                     struct api_fs **out)
{
    *out = NULL;
    for (unsigned i = 0; i < r->nr_fs; i++) {
        if (!strcmp(r->fs[i].id, id))
            *out = &r->fs[i];
        else if (!strcmp(r->fs[i].tag, tag))
            return err_set(-EINVAL, "fs: tag '%s' is already used by '%s'", tag, r->fs[i].id);
    }
    if (!*out && r->nr_fs == CONFIG_MAX_SHARES)
        return err_set(-EINVAL, "fs: at most %d shared directories", CONFIG_MAX_SHARES);
    return 0;
}

int api_set_fs(struct api_resources *r, const char *path_id, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"fs_id", JF_STRING, false, false},
        {"shared_dir", JF_STRING, true, false},
        {"tag", JF_STRING, true, false},
        {"read_only", JF_BOOL, false, true},
        {"cache", JF_STRING, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "fs");
    const char *tag = jf_string(body, "tag", "");
    const char *id = jf_string(body, "fs_id", path_id ? path_id : tag);
    const char *dir = jf_string(body, "shared_dir", "");
    enum fs_cache_mode cache = FS_CACHE_MODE_AUTO;
    if (!ret)
        ret = api_check_body_id("fs", "fs_id", path_id, id);
    if (!ret && (!*tag || strlen(tag) > CONFIG_FS_TAG_MAX))
        ret = err_set(-EINVAL, "fs: the tag must be 1 to %d bytes", CONFIG_FS_TAG_MAX);
    if (!ret)
        ret = parse_cache(body, &cache);
    if (!ret)
        ret = check_dir(dir);
    struct api_fs *f = NULL;
    if (!ret)
        ret = find_slot(r, id, tag, &f);
    if (ret)
        return ret;
    struct api_fs nf = {.id = strdup(id), .dir = strdup(dir), .tag = strdup(tag),
                        .read_only = jf_bool(body, "read_only", false), .cache = cache};
    if (!nf.id || !nf.dir || !nf.tag) {
        fs_free_one(&nf);
        return err_set(-ENOMEM, "out of memory");
    }
    if (f)
        fs_free_one(f);
    else
        f = &r->fs[r->nr_fs++];
    *f = nf;
    r->configured = true;
    return 0;
}

void api_fs_config(const struct api_resources *r, struct vm_config *cfg)
{
    cfg->nr_shares = 0;
    for (unsigned i = 0; i < r->nr_fs; i++)
        cfg->shares[cfg->nr_shares++] = (struct fs_config){
            .path = r->fs[i].dir, .tag = r->fs[i].tag, .id = r->fs[i].id,
            .read_only = r->fs[i].read_only, .cache = r->fs[i].cache};
}

struct json_object *api_fs_json(const struct api_resources *r)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < r->nr_fs; i++) {
        const struct api_fs *f = &r->fs[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "fs_id", json_object_new_string(f->id));
        json_object_object_add(o, "shared_dir", json_object_new_string(f->dir));
        json_object_object_add(o, "tag", json_object_new_string(f->tag));
        json_object_object_add(o, "read_only", json_object_new_boolean(f->read_only));
        json_object_object_add(o, "cache", json_object_new_string(cache_names[f->cache]));
        json_object_array_add(list, o);
    }
    return list;
}

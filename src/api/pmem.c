/* PUT /pmem/{id}: Firecracker's virtio-pmem resource (id, path_on_host,
 * root_device, read_only), kept until the VM starts. */
#include "api/resources.h"

#include <stdlib.h>
#include <string.h>

#include "util/json_fields.h"
#include "util/util.h"

static void pmem_free_one(struct api_pmem *p)
{
    free(p->id);
    free(p->path);
    memset(p, 0, sizeof(*p));
}

void api_pmem_free(struct api_resources *r)
{
    for (unsigned i = 0; i < r->nr_pmem; i++)
        pmem_free_one(&r->pmem[i]);
    r->nr_pmem = 0;
}

static struct api_pmem *find_pmem(struct api_resources *r, const char *id)
{
    for (unsigned i = 0; i < r->nr_pmem; i++)
        if (!strcmp(r->pmem[i].id, id))
            return &r->pmem[i];
    return NULL;
}

/* One root device in all: a drive or a pmem. */
static int check_root(const struct api_resources *r, const char *id)
{
    for (unsigned i = 0; i < r->nr_drives; i++)
        if (r->drives[i].root)
            return err_set(-EINVAL, "pmem: drive '%s' is already the root device; there can "
                                    "be one", r->drives[i].id);
    for (unsigned i = 0; i < r->nr_pmem; i++)
        if (r->pmem[i].root && strcmp(r->pmem[i].id, id))
            return err_set(-EINVAL, "pmem: '%s' is already the root device; there can be one",
                           r->pmem[i].id);
    return 0;
}

int api_set_pmem(struct api_resources *r, const char *path_id, struct json_object *body)
{
    static const struct jf_field fields[] = {
        {"id", JF_STRING, true, false},
        {"path_on_host", JF_STRING, true, false},
        {"root_device", JF_BOOL, false, true},
        {"read_only", JF_BOOL, false, true},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "pmem");
    const char *id = jf_string(body, "id", "");
    if (!ret)
        ret = api_check_body_id("pmem", "id", path_id, id);
    bool root = jf_bool(body, "root_device", false), ro = jf_bool(body, "read_only", false);
    const char *path = jf_string(body, "path_on_host", "");
    if (!ret && root)
        ret = check_root(r, id);
    if (!ret)
        ret = api_check_host_file("pmem", path, !ro);
    if (ret)
        return ret;
    struct api_pmem *p = find_pmem(r, id);
    if (!p && r->nr_pmem == CONFIG_MAX_PMEM)
        return err_set(-EINVAL, "pmem: at most %d devices", CONFIG_MAX_PMEM);
    struct api_pmem np = {.id = strdup(id), .path = strdup(path), .root = root, .read_only = ro};
    if (!np.id || !np.path) {
        pmem_free_one(&np);
        return err_set(-ENOMEM, "out of memory");
    }
    if (p)
        pmem_free_one(p);
    else
        p = &r->pmem[r->nr_pmem++];
    *p = np;
    r->configured = true;
    return 0;
}

void api_pmem_config(const struct api_resources *r, struct vm_config *cfg)
{
    cfg->nr_pmem = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < r->nr_pmem; i++) {
            const struct api_pmem *p = &r->pmem[i];
            if (p->root == (pass == 0))
                cfg->pmem[cfg->nr_pmem++] = (struct pmem_config){
                    .path = p->path, .id = p->id, .read_only = p->read_only};
        }
}

struct json_object *api_pmem_json(const struct api_resources *r)
{
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < r->nr_pmem; i++) {
        const struct api_pmem *p = &r->pmem[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(p->id));
        json_object_object_add(o, "path_on_host", json_object_new_string(p->path));
        json_object_object_add(o, "root_device", json_object_new_boolean(p->root));
        json_object_object_add(o, "read_only", json_object_new_boolean(p->read_only));
        json_object_array_add(list, o);
    }
    return list;
}

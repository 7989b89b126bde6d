/* CPU templates through the API: machine-config's cpu_template (static)
 * and PUT /cpu-config (custom); the last one set is the VM's, as in
 * Firecracker. */
#include <stdlib.h>

#include "api/resources.h"
#include "arch/x86_64/cpu_template.h"
#include "util/json_fields.h"

/* A static template by name ("None": no template at all). */
int api_static_cpu_template(const char *name, struct cpu_template **out)
{
    enum cpu_template_kind kind;
    if (!cpu_template_parse_name(name, &kind))
        return err_set(-EINVAL, "machine-config: cpu_template '%s' is not one of \"None\", "
                                "\"C3\", \"T2\", \"T2S\", \"T2CL\", \"T2A\"", name);
    *out = NULL;
    if (kind == CPU_TEMPLATE_NONE)
        return 0;
    struct cpu_template *t = malloc(sizeof(*t));
    int ret = t ? cpu_template_static(kind, t) : err_set(-ENOMEM, "out of memory");
    if (ret) {
        free(t);
        return ret;
    }
    *out = t;
    return 0;
}

int api_set_cpu_config(struct api_resources *r, struct json_object *body)
{
    struct cpu_template *t = malloc(sizeof(*t));
    if (!t)
        return err_set(-ENOMEM, "out of memory");
    int ret = cpu_template_from_json(body, t);
    if (ret) {
        free(t);
        return ret;
    }
    free(r->cpu_template);
    r->cpu_template = t;
    return 0;
}


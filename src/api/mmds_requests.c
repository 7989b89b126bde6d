#include "api/mmds_requests.h"

int api_put_mmds_config(struct api_resources *r, struct json_object *body)
{
    const char *ids[CONFIG_MAX_NICS];
    for (unsigned i = 0; i < r->nr_nics; i++)
        ids[i] = r->nics[i].id;
    return api_mmds_set_config(&r->mmds, body, ids, r->nr_nics);
}

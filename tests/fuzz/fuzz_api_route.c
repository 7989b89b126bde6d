/* libFuzzer target: the control API's route layer as a client drives it —
 * a series of requests [method byte][path length byte][path][body length,
 * 2 bytes LE][body], each through api_handle (route matching, the {id}
 * segment and its check, the phase check, the JSON body, the handler, the
 * response and the request counters) against one API instance, so later
 * requests see what earlier ones configured. Before boot only: the
 * requests that would start a VM or open or create host files (PUT
 * /actions, /logger, /metrics, /serial, /snapshot/load) are left out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/http_server.h"
#include "util/log.h"
#include "vmm/vmm.h"

static const char *const methods[] = {"GET", "PUT", "PATCH", "POST", "DELETE", "get", ""};

static bool left_out(const char *method, const char *path)
{
    static const char *const paths[] = {"/actions", "/logger", "/metrics", "/serial",
                                        "/snapshot/load"};
    if (strcmp(method, "PUT"))
        return false;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (!strcmp(path, paths[i]))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vmm vmm; /* no VM: every request is a pre-boot one */
    static bool once;
    if (!once) {
        log_set_level(LOG_ERROR);
        metrics_init(&vmm.metrics);
        metrics_declare_api(&vmm.metrics);
        once = true;
    }
    struct api api;
    api_init(&api, &vmm);
    size_t at = 0;
    while (at + 2 <= size) {
        const char *method = methods[data[at] % (sizeof(methods) / sizeof(methods[0]))];
        size_t plen = data[at + 1];
        at += 2;
        if (at + plen + 2 > size)
            break;
        char path[257];
        memcpy(path, data + at, plen);
        path[plen] = '\0';
        at += plen;
        size_t blen = (size_t)data[at] | (size_t)data[at + 1] << 8;
        at += 2;
        if (blen > size - at)
            blen = size - at;
        char *body = malloc(blen + 1);
        if (!body)
            break;
        memcpy(body, data + at, blen);
        body[blen] = '\0';
        at += blen;
        if (strlen(path) != plen || left_out(method, path)) {
            free(body);
            continue;
        }
        struct http_request req = {.method = method, .path = path, .body = body,
                                   .body_len = blen};
        struct http_response resp = {0};
        api_handle(&api, &req, &resp);
        if (resp.status < 200 || resp.status > 599)
            abort(); /* every request gets an HTTP status */
        free(resp.body);
        free(body);
    }
    api_destroy(&api);
    return 0;
}

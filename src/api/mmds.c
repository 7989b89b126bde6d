#include "api/mmds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/mmds_http.h"
#include "util/json_fields.h"
#include "util/log.h"
#include "util/landlock.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/util.h"

#define METADATA_FILE_MAX (16u << 20)

void api_mmds_init(struct api_mmds *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    mmds_store_init(&m->store, MMDS_DEFAULT_SIZE_LIMIT);
    m->ipv4 = htonl(MMDS_DEFAULT_IPV4);
    m->wake_fd = -1;
}

static void service_stop(struct api_mmds *m)
{
    if (m->thread_started) {
        eventfd_signal(m->wake_fd);
        pthread_join(m->thread, NULL);
        m->thread_started = false;
    }
    http_server_destroy(m->server); /* removes the socket file */
    m->server = NULL;
    if (m->loop_ready)
        evloop_destroy(&m->loop);
    m->loop_ready = false;
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    m->wake_fd = -1;
    if (m->dir[0])
        unlinkat(AT_FDCWD, m->dir, AT_REMOVEDIR); /* rmdir is not in the seccomp list */
    m->dir[0] = '\0';
}

void api_mmds_free(struct api_mmds *m)
{
    service_stop(m);
    for (unsigned i = 0; i < m->nr_ifaces; i++)
        free(m->ifaces[i]);
    m->nr_ifaces = 0;
    mmds_store_free(&m->store);
    pthread_mutex_destroy(&m->lock);
}

void api_mmds_set_limit(struct api_mmds *m, size_t limit)
{
    pthread_mutex_lock(&m->lock);
    m->store.limit = limit;
    pthread_mutex_unlock(&m->lock);
}

/* --- the store through the API ------------------------------------------- */

static int store_error(int ret)
{
    if (ret == -EFBIG) /* 413, as Firecracker's */
        return err_prefix(ret, "MMDS limit exceeded error");
    return err_prefix(ret, "MMDS error");
}

int api_mmds_put(struct api_mmds *m, struct json_object *body)
{
    pthread_mutex_lock(&m->lock);
    int ret = mmds_store_put(&m->store, body);
    pthread_mutex_unlock(&m->lock);
    return ret ? store_error(ret) : 0;
}

int api_mmds_patch(struct api_mmds *m, struct json_object *body)
{
    pthread_mutex_lock(&m->lock);
    int ret = mmds_store_patch(&m->store, body);
    pthread_mutex_unlock(&m->lock);
    return ret ? store_error(ret) : 0;
}

struct json_object *api_mmds_get(struct api_mmds *m)
{
    pthread_mutex_lock(&m->lock);
    struct json_object *v = mmds_store_get(&m->store);
    pthread_mutex_unlock(&m->lock);
    return v;
}

int api_mmds_put_file(struct api_mmds *m, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return err_errno(-errno, "metadata file %s", path);
    char *text = malloc(METADATA_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, METADATA_FILE_MAX + 1, f) : 0;
    int ret = !text ? err_set(-ENOMEM, "out of memory")
              : ferror(f) ? err_errno(-EIO, "metadata file %s: read failed", path)
              : len > METADATA_FILE_MAX
                  ? err_set(-EFBIG, "metadata file %s: larger than %u bytes", path,
                            METADATA_FILE_MAX)
                  : 0;
    fclose(f);
    struct json_object *v = NULL;
    if (!ret && (ret = jf_parse(text, len, &v)))
        err_prefix(ret, "metadata file %s", path);
    free(text);
    if (!ret && (ret = api_mmds_put(m, v)))
        err_prefix(ret, "metadata file %s", path);
    json_object_put(v);
    return ret;
}

/* --- configuration -------------------------------------------------------- */

static int config_error(int ret)
{
    return err_prefix(ret, "MMDS config error");
}

static bool id_listed(const char *id, const char *const *ids, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ids[i] && !strcmp(ids[i], id))
            return true;
    return false;
}

static int parse_ifaces(struct json_object *list, const char *const *nic_ids, unsigned nr_nics,
                        char **out, unsigned *nr_out)
{
    size_t n = json_object_array_length(list);
    if (n == 0)
        return config_error(err_set(-EINVAL, "The list of network interface IDs that allow "
                                             "forwarding MMDS requests is empty."));
    for (size_t i = 0; i < n; i++) {
        struct json_object *v = json_object_array_get_idx(list, i);
        const char *id = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                   : NULL;
        if (!id)
            return config_error(err_set(-EINVAL, "network_interfaces[%zu]: expected a string",
                                        i));
        if (!id_listed(id, nic_ids, nr_nics) || *nr_out == CONFIG_MAX_NICS)
            return config_error(err_set(-EINVAL, "The list of network interface IDs provided "
                                        "contains at least one ID that does not correspond to "
                                        "any existing network interface."));
        if (id_listed(id, (const char *const *)out, *nr_out))
            continue;
        if (!(out[(*nr_out)++] = strdup(id)))
            return err_set(-ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_address(const char *text, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1)
        return config_error(err_set(-EINVAL, "ipv4_address: '%s' is not an IPv4 address",
                                    text));
    if ((ntohl(a.s_addr) >> 16) != 0xa9fe) /* 169.254.0.0/16 */
        return config_error(err_set(-EINVAL, "The MMDS IPv4 address is not link local."));
    *out = a.s_addr;
    return 0;
}

int api_mmds_set_config(struct api_mmds *m, struct json_object *body,
                        const char *const *nic_ids, unsigned nr_nics)
{
    static const struct jf_field fields[] = {
        {"version", JF_STRING, false, false},
        {"network_interfaces", JF_ARRAY, true, false},
        {"ipv4_address", JF_STRING, false, true},
        {"imds_compat", JF_BOOL, false, false},
    };
    int ret = jf_check(body, fields, ARRAY_SIZE(fields), "mmds-config");
    if (ret)
        return ret;
    const char *version = jf_string(body, "version", "V1");
    if (strcmp(version, "V1") && strcmp(version, "V2"))
        return err_set(-EINVAL, "mmds-config: version must be \"V1\" or \"V2\", got '%s'",
                       version);
    uint32_t ip = htonl(MMDS_DEFAULT_IPV4);
    const char *addr = jf_string(body, "ipv4_address", NULL);
    if (addr && (ret = parse_address(addr, &ip)))
        return ret;
    char *ifaces[CONFIG_MAX_NICS] = {0};
    unsigned nr = 0;
    ret = parse_ifaces(jf_get(body, "network_interfaces"), nic_ids, nr_nics, ifaces, &nr);
    if (ret) {
        for (unsigned i = 0; i < nr; i++)
            free(ifaces[i]);
        return ret;
    }
    for (unsigned i = 0; i < m->nr_ifaces; i++)
        free(m->ifaces[i]);
    memcpy(m->ifaces, ifaces, sizeof(ifaces));
    m->nr_ifaces = nr;
    m->ipv4 = ip;
    m->configured = true;
    pthread_mutex_lock(&m->lock);
    m->store.version = strcmp(version, "V2") ? MMDS_V1 : MMDS_V2;
    m->store.imds_compat = jf_bool(body, "imds_compat", false);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

struct json_object *api_mmds_config_json(const struct api_mmds *m)
{
    if (!m->configured)
        return NULL;
    struct json_object *o = json_object_new_object(), *ifaces = json_object_new_array();
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &m->ipv4, addr, sizeof(addr));
    for (unsigned i = 0; i < m->nr_ifaces; i++)
        json_object_array_add(ifaces, json_object_new_string(m->ifaces[i]));
    json_object_object_add(o, "version",
                           json_object_new_string(m->store.version == MMDS_V2 ? "V2" : "V1"));
    json_object_object_add(o, "network_interfaces", ifaces);
    json_object_object_add(o, "ipv4_address", json_object_new_string(addr));
    json_object_object_add(o, "imds_compat", json_object_new_boolean(m->store.imds_compat));
    return o;
}

/* --- the guest-facing service --------------------------------------------- */

static void handle_locked(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct api_mmds *m = ctx;
    pthread_mutex_lock(&m->lock);
    mmds_http_handle(&m->store, req, resp);
    pthread_mutex_unlock(&m->lock);
}

static void on_wake(void *ctx, uint32_t events)
{
    (void)events;
    struct api_mmds *m = ctx;
    evloop_stop(&m->loop);
}

static void *service_thread(void *arg)
{
    struct api_mmds *m = arg;
    seccomp_enter_or_exit(SECCOMP_MAIN); /* before the guest's first request */
    if (evloop_run(&m->loop))
        log_error("metadata service: its event loop failed; the guest gets no answers");
    return NULL;
}

static int service_start(struct api_mmds *m)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(m->dir, sizeof(m->dir), "%s/ember-mmds.XXXXXX",
             tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(m->dir)) {
        int e = errno;
        m->dir[0] = '\0';
        return err_errno(-e, "metadata service: cannot create its socket directory");
    }
    snprintf(m->sock_path, sizeof(m->sock_path), "%s/http.sock", m->dir);
    /* Both removed at the end, under Landlock. */
    int ret = landlock_allow(m->dir, LANDLOCK_FILES);
    if (!ret)
        ret = landlock_allow_dir_of(m->dir, LANDLOCK_RMDIR);
    if (!ret)
        ret = evloop_init(&m->loop);
    m->loop_ready = !ret;
    if (!ret)
        ret = http_server_create(m->sock_path, 0600, MMDS_MAX_REQUEST_BODY, &m->loop,
                                 handle_locked, m, &m->server);
    if (!ret) {
        http_server_set_name(m->server, "metadata service");
        m->wake_fd = eventfd_create();
        ret = m->wake_fd < 0 ? err_errno(m->wake_fd, "metadata service: eventfd")
                             : evloop_add(&m->loop, m->wake_fd, EPOLLIN, on_wake, m);
    }
    if (!ret) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = thread_create(&m->thread, service_thread, m);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        ret = e ? err_errno(-e, "metadata service: cannot start its thread") : 0;
        m->thread_started = !e;
    }
    if (ret)
        service_stop(m);
    return ret;
}

static int start_for(struct api_mmds *m, struct vm_config *cfg)
{
    bool any = false;
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        any |= cfg->nics[i].mmds;
    if (!any)
        return 0;
    cfg->mmds.ipv4 = m->ipv4; /* kept in a snapshot */
    cfg->mmds.v2 = m->store.version == MMDS_V2;
    cfg->mmds.imds_compat = m->store.imds_compat;
    if (m->thread_started) { /* a start that failed before: the service runs */
        snprintf(cfg->mmds.sock_path, sizeof(cfg->mmds.sock_path), "%s", m->sock_path);
        return 0;
    }
    int ret = service_start(m);
    if (!ret) {
        snprintf(cfg->mmds.sock_path, sizeof(cfg->mmds.sock_path), "%s", m->sock_path);
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &m->ipv4, addr, sizeof(addr));
        log_info("metadata service (%s) at %s", m->store.version == MMDS_V2 ? "V2" : "V1",
                 addr);
    }
    return ret;
}

int api_mmds_start(struct api_mmds *m, struct vm_config *cfg)
{
    if (!m->configured)
        return 0;
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        cfg->nics[i].mmds = cfg->nics[i].id &&
                            id_listed(cfg->nics[i].id, (const char *const *)m->ifaces,
                                      m->nr_ifaces);
    return start_for(m, cfg);
}

int api_mmds_start_restored(void *ctx, struct vm_config *cfg)
{
    struct api_mmds *m = ctx;
    m->configured = true;
    m->ipv4 = cfg->mmds.ipv4;
    pthread_mutex_lock(&m->lock);
    m->store.version = cfg->mmds.v2 ? MMDS_V2 : MMDS_V1;
    m->store.imds_compat = cfg->mmds.imds_compat;
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < m->nr_ifaces; i++)
        free(m->ifaces[i]);
    m->nr_ifaces = 0;
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        char id[16];
        snprintf(id, sizeof(id), "eth%u", i);
        if (cfg->nics[i].mmds && !(m->ifaces[m->nr_ifaces++] =
                                       strdup(cfg->nics[i].id ? cfg->nics[i].id : id)))
            return err_set(-ENOMEM, "out of memory");
    }
    int ret = start_for(m, cfg);
    if (!ret)
        log_info("metadata service restored: its store is empty until the host puts data "
                 "(a snapshot does not keep it, as Firecracker's)");
    return ret;
}

int api_mmds_start_from_options(struct api_mmds *m, struct vm_config *cfg)
{
    const struct mmds_config *o = &cfg->mmds;
    bool any = false;
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        any |= cfg->nics[i].mmds;
    if (o->given && !any)
        return err_set(-EINVAL, "--mmds: no interface serves it (add mmds to a --net)");
    if (!any)
        return 0;
    m->configured = true;
    if (o->ipv4)
        m->ipv4 = o->ipv4;
    pthread_mutex_lock(&m->lock);
    m->store.version = o->v2 ? MMDS_V2 : MMDS_V1;
    m->store.imds_compat = o->imds_compat;
    if (o->size_limit)
        m->store.limit = o->size_limit;
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < cfg->nr_nics && m->nr_ifaces < CONFIG_MAX_NICS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "eth%u", i);
        if (cfg->nics[i].mmds && !(m->ifaces[m->nr_ifaces++] =
                                       strdup(cfg->nics[i].id ? cfg->nics[i].id : id)))
            return err_set(-ENOMEM, "out of memory");
    }
    int ret = o->data_path ? api_mmds_put_file(m, o->data_path) : 0;
    if (ret)
        return err_prefix(ret, "--mmds");
    return start_for(m, cfg);
}

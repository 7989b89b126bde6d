/* The control API without a socket or a VM: strict JSON field checking,
 * the resource model and how it becomes a vm_config, and the router's
 * answers before start (api_handle called as the HTTP server calls it). */
#include "fakes.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/api.h"
#include "util/json_fields.h"
#include "api/resources.h"
#include "api/snapshot_requests.h"

static struct json_object *parse_ok(const char *text)
{
    struct json_object *o = NULL;
    assert_int_equal(jf_parse(text, strlen(text), &o), 0);
    return o;
}

static void test_jf_parse(void **state)
{
    (void)state;
    struct json_object *o;
    /* (json-c's strict mode still takes single-quoted strings; harmless.) */
    static const char *const bad[] = {"", "{", "{\"a\": 1} x", "{\"a\": }", "nul", "[1,]",
                                      "{\"a\": 1}{\"b\": 2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(jf_parse(bad[i], strlen(bad[i]), &o), -EINVAL);
        assert_null(o);
    }
    o = parse_ok(" {\"a\": [1, 2]} \n");
    json_object_put(o);
}

static const struct jf_field fields[] = {
    {"name", JF_STRING, true, false},
    {"count", JF_UINT, false, false},
    {"flag", JF_BOOL, false, true},
};

static int check(const char *text)
{
    struct json_object *o = parse_ok(text);
    int ret = jf_check(o, fields, 3, "thing");
    json_object_put(o);
    return ret;
}

static void test_jf_check(void **state)
{
    (void)state;
    assert_int_equal(check("{\"name\": \"x\", \"count\": 3, \"flag\": null}"), 0);
    static const struct { const char *body, *msg; } cases[] = {
        {"[]", "thing: expected a JSON object"},
        {"{}", "thing: missing required field 'name'"},
        {"{\"name\": \"x\", \"extra\": 1}", "thing: unknown field 'extra'"},
        {"{\"name\": 1}", "field 'name' must be a string"},
        {"{\"name\": null}", "field 'name' must be a string, not null"},
        {"{\"name\": \"x\", \"count\": -1}", "field 'count' must be a non-negative integer"},
        {"{\"name\": \"x\", \"count\": 2.0}", "must be a non-negative integer"},
        {"{\"name\": \"x\", \"flag\": 1}", "field 'flag' must be a boolean"},
        {"{\"name\": \"a\\u0000b\"}", "field 'name' contains a NUL character"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(check(cases[i].body), -EINVAL);
        if (!strstr(err_msg(), cases[i].msg))
            fail_msg("%s: got '%s', expected '%s'", cases[i].body, err_msg(), cases[i].msg);
    }
}

static char tmpdir[64];
static char kernel[128], disk_a[128], disk_b[128];

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static int setup_files(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-unit-api-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(kernel, sizeof(kernel), "%s/kernel", tmpdir);
    snprintf(disk_a, sizeof(disk_a), "%s/a.img", tmpdir);
    snprintf(disk_b, sizeof(disk_b), "%s/b.img", tmpdir);
    touch(kernel);
    touch(disk_a);
    touch(disk_b);
    return 0;
}

static int teardown_files(void **state)
{
    (void)state;
    unlink(kernel);
    unlink(disk_a);
    unlink(disk_b);
    rmdir(tmpdir);
    return 0;
}

static int apply(struct api_resources *r, int (*fn)(struct api_resources *, const char *,
                                                    struct json_object *),
                 const char *id, const char *fmt, ...) EMBER_PRINTF(4, 5);
static int apply(struct api_resources *r, int (*fn)(struct api_resources *, const char *,
                                                    struct json_object *),
                 const char *id, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct json_object *o = parse_ok(text);
    int ret = fn(r, id, o);
    json_object_put(o);
    return ret;
}

static void test_build_config(void **state)
{
    (void)state;
    struct api_resources r;
    api_resources_init(&r);
    struct vm_config cfg;
    assert_int_equal(api_build_config(&r, &cfg), -EINVAL);
    assert_non_null(strstr(err_msg(), "without a boot source"));

    struct json_object *boot = json_object_new_object();
    json_object_object_add(boot, "kernel_image_path", json_object_new_string(kernel));
    json_object_object_add(boot, "boot_args",
                           json_object_new_string("console=ttyS0  pci=off reboot=k"));
    assert_int_equal(api_set_boot_source(&r, boot), 0);
    json_object_put(boot);
    /* The non-root drive is added first; the root one must still be vda. */
    assert_int_equal(apply(&r, api_set_drive, "data",
                           "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", "
                           "\"is_root_device\": false, \"is_read_only\": true}", disk_a), 0);
    assert_int_equal(apply(&r, api_set_drive, "root",
                           "{\"drive_id\": \"root\", \"path_on_host\": \"%s\", "
                           "\"is_root_device\": true}", disk_b), 0);
    assert_int_equal(apply(&r, api_set_drive, "other",
                           "{\"drive_id\": \"other\", \"path_on_host\": \"%s\", "
                           "\"is_root_device\": true}", disk_b), -EINVAL);
    assert_non_null(strstr(err_msg(), "'root' is already the root device"));
    assert_int_equal(apply(&r, api_set_nic, "eth0",
                           "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"), 0);
    assert_int_equal(apply(&r, api_set_nic, "eth1",
                           "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}"), -EINVAL);
    assert_non_null(strstr(err_msg(), "TAP device tap0 is already used by 'eth0'"));

    assert_int_equal(api_build_config(&r, &cfg), 0);
    assert_string_equal(cfg.kernel_path, kernel);
    assert_string_equal(cfg.cmdline, "console=ttyS0  pci=off reboot=k root=/dev/vda rw");
    assert_int_equal(cfg.nr_vcpus, 1);
    assert_true(cfg.mem_size == (uint64_t)API_DEFAULT_MEM_MIB << 20);
    assert_false(cfg.rng);
    assert_int_equal(cfg.nr_disks, 2);
    assert_string_equal(cfg.disks[0].id, "root");
    assert_string_equal(cfg.disks[1].id, "data");
    assert_true(cfg.disks[1].read_only);
    assert_int_equal(cfg.nr_nics, 1);
    assert_string_equal(cfg.nics[0].tap_name, "tap0");
    assert_int_equal(cfg.nics[0].mac[0], 0x02); /* generated, locally administered */
    assert_null(cfg.vsock.uds_path);
    api_resources_free(&r);
}

static int set_vsock(struct api_resources *r, const char *id, struct json_object *body)
{
    (void)id;
    return api_set_vsock(r, body);
}

/* mem_backend: File maps the file, Uffd names a page-fault handler's socket. */
static void test_snapshot_load_backends(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int ret;
        bool uffd;
        const char *message;
    } cases[] = {
        {"{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": \"File\", "
         "\"backend_path\": \"m\"}}", 0, false, NULL},
        {"{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
         "\"backend_path\": \"/run/h.sock\"}}", 0, true, NULL},
        {"{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\"}", 0, false, NULL},
        {"{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": \"Tape\", "
         "\"backend_path\": \"m\"}}", -EINVAL, false, "'Tape' is not supported"},
        {"{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
         "\"backend_path\": \"\"}}", -EINVAL, false, "empty backend_path"},
        {"{\"snapshot_path\": \"s\", \"mem_backend\": {\"backend_type\": \"Uffd\"}}",
         -EINVAL, false, "backend_path"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *body = parse_ok(cases[i].body);
        struct snapshot_load_req req;
        assert_int_equal(api_parse_snapshot_load(body, &req), cases[i].ret);
        if (!cases[i].ret) {
            assert_int_equal(req.mem_uffd, cases[i].uffd);
            assert_string_equal(req.mem_path, cases[i].uffd ? "/run/h.sock" : "m");
        } else {
            assert_non_null(strstr(err_msg(), cases[i].message));
        }
        json_object_put(body);
    }
}

static void test_vsock(void **state)
{
    (void)state;
    struct api_resources r;
    api_resources_init(&r);
    static const struct { const char *body, *message; } bad[] = {
        {"{\"guest_cid\": 2, \"uds_path\": \"/tmp/v\"}", "guest_cid must be from 3"},
        {"{\"guest_cid\": 4294967295, \"uds_path\": \"/tmp/v\"}", "got 4294967295"},
        {"{\"guest_cid\": -3, \"uds_path\": \"/tmp/v\"}", "'guest_cid' must be"},
        {"{\"guest_cid\": 3}", "missing required field 'uds_path'"},
        {"{\"uds_path\": \"/tmp/v\"}", "missing required field 'guest_cid'"},
        {"{\"guest_cid\": 3, \"uds_path\": \"\"}", "is empty or longer than 107"},
        {"{\"guest_cid\": 3, \"uds_path\": \"/no/such/dir/v\"}",
         "the directory /no/such/dir does not exist"},
        {"{\"guest_cid\": 3, \"uds_path\": \"/tmp/v\", \"vsock_id\": 5}",
         "'vsock_id' must be"},
        {"{\"guest_cid\": 3, \"uds_path\": \"/tmp/v\", \"x\": 1}", "unknown field 'x'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (apply(&r, set_vsock, NULL, "%s", bad[i].body) >= 0 ||
            !strstr(err_msg(), bad[i].message))
            fail_msg("%s: got '%s'", bad[i].body, err_msg());
        assert_null(r.vsock.uds_path); /* a refused request changes nothing */
    }
    assert_int_equal(apply(&r, set_vsock, NULL,
                           "{\"guest_cid\": 3, \"uds_path\": \"v.sock\"}"), 0);
    assert_int_equal(apply(&r, set_vsock, NULL,
                           "{\"guest_cid\": 9, \"uds_path\": \"/tmp/w.sock\", "
                           "\"vsock_id\": \"vs\"}"), 0);
    struct json_object *boot = json_object_new_object();
    json_object_object_add(boot, "kernel_image_path", json_object_new_string(kernel));
    assert_int_equal(api_set_boot_source(&r, boot), 0);
    json_object_put(boot);
    struct vm_config cfg;
    assert_int_equal(api_build_config(&r, &cfg), 0);
    assert_string_equal(cfg.vsock.uds_path, "/tmp/w.sock");
    assert_string_equal(cfg.vsock.id, "vs");
    assert_int_equal(cfg.vsock.cid, 9);
    struct json_object *o = api_vm_config_json(&r);
    int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "vsock"), flags),
                        "{\"vsock_id\":\"vs\",\"guest_cid\":9,\"uds_path\":\"/tmp/w.sock\"}");
    json_object_put(o);
    api_resources_free(&r);
}

static void test_machine_config(void **state)
{
    (void)state;
    struct api_resources r;
    api_resources_init(&r);
    struct json_object *o = parse_ok("{\"vcpu_count\": 4}");
    assert_int_equal(api_set_machine_config(&r, o, false), -EINVAL);
    assert_int_equal(api_set_machine_config(&r, o, true), 0); /* PATCH: a subset */
    json_object_put(o);
    assert_int_equal(r.vcpus, 4);
    assert_int_equal(r.mem_mib, API_DEFAULT_MEM_MIB);
    o = parse_ok("{\"vcpu_count\": 2, \"mem_size_mib\": 99999999}");
    assert_int_equal(api_set_machine_config(&r, o, false), -EINVAL);
    json_object_put(o);
    assert_int_equal(r.vcpus, 4); /* a refused request changes nothing */
    api_resources_free(&r);
}

static void handle(struct api *api, const char *method, const char *path, const char *body,
                   int status, const char *needle)
{
    struct http_request req = {.method = method, .path = path, .body = body, .body_len = strlen(body)};
    struct http_response resp = {.status = 0};
    api_handle(api, &req, &resp);
    if (resp.status != status || (needle && (!resp.body || !strstr(resp.body, needle))))
        fail_msg("%s %s: got %d %s, expected %d with '%s'", method, path, resp.status,
                 resp.body ? resp.body : "(no body)", status, needle ? needle : "");
    free(resp.body);
}

static void test_router(void **state)
{
    (void)state;
    struct vmm vmm;
    assert_int_equal(vmm_init(&vmm, "unit", false, ACCEL_AUTO), 0);
    struct api api;
    api_init(&api, &vmm);
    handle(&api, "GET", "/", "", 200, "\"state\":\"Not started\"");
    handle(&api, "GET", "/", "", 200, "\"id\":\"unit\"");
    handle(&api, "GET", "/drives", "", 400, "no such resource: GET /drives");
    handle(&api, "GET", "/drives/a/b", "", 400, "no such resource");
    handle(&api, "PUT", "/", "{}", 400, "PUT is not a method of /");
    handle(&api, "PUT", "/drives/a%20b", "{}", 400, "invalid id");
    handle(&api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
           "without a boot source");
    handle(&api, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "once the microVM is running");
    handle(&api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}", 204,
           NULL);
    handle(&api, "GET", "/machine-config", "", 200, "\"vcpu_count\":2");
    /* After start (simulated: the VM's state is all the router looks at). */
    struct vm running = {.state = VM_RUNNING};
    vmm.vm = &running;
    handle(&api, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 400,
           "only allowed before the microVM starts");
    handle(&api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
           "already running");
    vmm.vm = NULL;
    api_destroy(&api);
    vmm_destroy(&vmm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jf_parse),
        cmocka_unit_test(test_jf_check),
        cmocka_unit_test(test_build_config),
        cmocka_unit_test(test_snapshot_load_backends),
        cmocka_unit_test(test_vsock),
        cmocka_unit_test(test_machine_config),
        cmocka_unit_test(test_router),
    };
    return cmocka_run_group_tests_name("api", tests, setup_files, teardown_files);
}

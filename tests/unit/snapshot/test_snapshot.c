/* Snapshot input is untrusted: the state-file container against every
 * truncation and every flipped byte, records with missing, mistyped and
 * out-of-range values, and the machine configuration. */
#include "unit.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <unistd.h>

#include "snapshot/format.h"
#include "snapshot/machine.h"
#include "snapshot/record.h"
#include "util/util.h"

#include <json-c/json.h>

static char dir[] = "/tmp/ember-test-snapshot-XXXXXX";
static char path[256];

static int setup_dir(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/state", dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A container of three sections, as bytes. */
static uint8_t *sample_file(size_t *size)
{
    struct snap_writer w;
    snap_writer_init(&w);
    snap_writer_add(&w, "config", 0, "{\"a\":1}", 7);
    snap_writer_add(&w, "vcpu", 0, "zero", 4);
    snap_writer_add(&w, "vcpu", 1, "one!!!!!!", 9);
    assert_int_equal(snap_writer_finish(&w, path), 0);
    snap_writer_free(&w);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *data = malloc(4096);
    *size = fread(data, 1, 4096, f);
    fclose(f);
    return data;
}

static int parse_copy(const uint8_t *data, size_t size)
{
    struct snap_reader r;
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    int ret = snap_reader_parse(&r, copy, size);
    snap_reader_close(&r); /* the reader owns 'copy' either way */
    return ret;
}

static void test_container_round_trip(void **state)
{
    (void)state;
    size_t size;
    uint8_t *data = sample_file(&size);
    free(data);
    struct snap_reader r;
    assert_int_equal(snap_reader_open(&r, path), 0);
    assert_int_equal(r.nr_sections, 4); /* and "end" */
    const struct snap_section *s = snap_find(&r, "vcpu", 1);
    assert_non_null(s);
    assert_int_equal(s->size, 9);
    assert_memory_equal(s->data, "one!!!!!!", 9);
    assert_int_equal(snap_count(&r, "vcpu"), 2);
    assert_null(snap_find(&r, "vcpu", 2));
    snap_reader_close(&r);
}

static void test_container_truncated_and_flipped(void **state)
{
    (void)state;
    size_t size;
    uint8_t *data = sample_file(&size);
    assert_int_equal(parse_copy(data, size), 0);
    for (size_t len = 0; len < size; len++) {
        assert_int_equal(parse_copy(data, len), -EINVAL);
        assert_non_null(strstr(err_msg(), len < SNAP_HEADER_SIZE ? "shorter than the header"
                                                                  : "truncated"));
    }
    /* Every bit of every byte: header, section headers, payloads, padding. */
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            data[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(parse_copy(data, size), -EINVAL);
            data[i] ^= (uint8_t)(1 << bit);
        }
    free(data);
}

static void test_container_version_and_trailing(void **state)
{
    (void)state;
    size_t size;
    uint8_t *data = sample_file(&size);
    uint8_t *longer = calloc(1, size + 8);
    memcpy(longer, data, size);
    assert_int_equal(parse_copy(longer, size + 8), -EINVAL);
    assert_non_null(strstr(err_msg(), "8 bytes of unexpected data"));
    free(longer);
    le32_store(data + 8, 2);
    assert_int_equal(parse_copy(data, size), -EINVAL);
    assert_non_null(strstr(err_msg(), "format version 2; this ember reads version 1"));
    memcpy(data, "ELF\0\0\0\0\0", 8);
    assert_int_equal(parse_copy(data, size), -EINVAL);
    assert_non_null(strstr(err_msg(), "not an ember snapshot"));
    free(data);
    assert_int_equal(snap_reader_open(&(struct snap_reader){0}, "/nonexistent/state"),
                     -ENOENT);
    assert_non_null(strstr(err_msg(), "/nonexistent/state"));
}

static struct rec parse_rec(const char *text)
{
    struct rec r;
    assert_int_equal(rec_parse(text, strlen(text), &r), 0);
    return r;
}

static void test_record_checks(void **state)
{
    (void)state;
    struct rec r = rec_new();
    rec_put_u64(r, "n", 70000);
    rec_put_bytes(r, "b", "\x01\x02\x03", 3);
    rec_put_str(r, "s", "hello");
    rec_put_bool(rec_put_item(r, "list"), "x", true);
    size_t len;
    const char *text = rec_text(r, &len);
    struct rec back = parse_rec(text);
    uint64_t v;
    uint16_t v16;
    uint8_t b[3];
    char s[6];
    size_t count;
    assert_int_equal(rec_get_u64(back, "n", UINT64_MAX, &v), 0);
    assert_int_equal(v, 70000);
    assert_int_equal(rec_get_u16(back, "n", UINT16_MAX, &v16), -EINVAL); /* range */
    assert_non_null(strstr(err_msg(), "'n'"));
    assert_int_equal(rec_get_u64(back, "missing", UINT64_MAX, &v), -EINVAL);
    assert_int_equal(rec_get_u64(back, "s", UINT64_MAX, &v), -EINVAL); /* type */
    assert_int_equal(rec_get_bytes(back, "b", b, 3), 0);
    assert_memory_equal(b, "\x01\x02\x03", 3);
    assert_int_equal(rec_get_bytes(back, "b", b, 2), -EINVAL); /* length */
    assert_int_equal(rec_get_str(back, "s", s, sizeof(s)), 0);
    assert_string_equal(s, "hello");
    assert_int_equal(rec_get_str(back, "s", s, 5), -EINVAL); /* too long */
    assert_int_equal(rec_get_count(back, "list", 1, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(rec_get_count(back, "list", 0, &count), -EINVAL);
    struct rec item;
    assert_int_equal(rec_get_item(back, "list", 1, &item), -EINVAL);
    rec_free(back);
    rec_free(r);
    struct rec bad;
    assert_int_equal(rec_parse("{\"n\": ", 6, &bad), -EINVAL);
    assert_int_equal(rec_parse("[1]", 3, &bad), -EINVAL); /* not an object */
    /* Negative and fractional numbers are not unsigned values. */
    back = parse_rec("{\"a\": -1, \"b\": 1.5, \"c\": \"12\"}");
    assert_int_equal(rec_get_u64(back, "a", UINT64_MAX, &v), -EINVAL);
    assert_int_equal(rec_get_u64(back, "b", UINT64_MAX, &v), -EINVAL);
    assert_int_equal(rec_get_u64(back, "c", UINT64_MAX, &v), -EINVAL);
    rec_free(back);
}

static void test_machine_round_trip_and_limits(void **state)
{
    (void)state;
    struct vm_config cfg;
    vm_config_defaults(&cfg);
    cfg.nr_vcpus = 2;
    cfg.mem_size = 256ull << 20;
    cfg.nr_disks = 1;
    cfg.disks[0].path = "/data/disk.img";
    cfg.disks[0].id = "data";
    cfg.disks[0].read_only = true;
    cfg.nr_nics = 1;
    cfg.nics[0].kind = NIC_USER;
    cfg.nics[0].nr_hostfwd = 1;
    cfg.nics[0].hostfwd[0] = "tcp::8080-:80";
    cfg.accel = ACCEL_SOFT;
    cfg.transport = TRANSPORT_MMIO; /* resolved before a VM is saved */
    struct rec r = rec_new();
    machine_save(&cfg, r);
    size_t len;
    struct rec back = parse_rec(rec_text(r, &len));
    struct vm_config got;
    struct cpu_template tmpl;
    assert_int_equal(machine_load(back, &got, &tmpl), 0);
    assert_int_equal(got.nr_vcpus, 2);
    assert_null(got.cpu_template);
    assert_int_equal(got.nr_pmem, 0);
    assert_false(rate_limit_active(&got.disks[0].rate_limit));
    assert_int_equal(got.mem_size, 256ull << 20);
    assert_int_equal(got.accel, ACCEL_SOFT);
    assert_int_equal(got.transport, TRANSPORT_MMIO);
    /* The backend: "auto" is no backend; files from before it was saved are KVM's. */
    rec_put_str(back, "accel", "auto");
    assert_int_equal(machine_load(back, &got, &tmpl), -EINVAL);
    assert_non_null(strstr(err_msg(), "'accel' must be kvm or soft"));
    json_object_object_del(back.obj, "accel");
    assert_int_equal(machine_load(back, &got, &tmpl), 0);
    assert_int_equal(got.accel, ACCEL_KVM);
    assert_int_equal(got.nr_disks, 1);
    assert_string_equal(got.disks[0].path, "/data/disk.img");
    assert_true(got.disks[0].read_only);
    assert_int_equal(got.nics[0].nr_hostfwd, 1);
    assert_string_equal(got.nics[0].hostfwd[0], "tcp::8080-:80");
    rec_free(back);

    /* Each field pushed past what the machine allows. */
    static const struct {
        const char *key;
        uint64_t value;
        const char *message;
    } bad[] = {
        {"vcpus", 0, "'vcpus' is 0"},
        {"vcpus", CONFIG_MAX_CPUS + 1, "vcpus"},
        {"mem_size", (256ull << 20) + 1, "not a possible guest size"},
        {"mem_size", 1ull << 50, "mem_size"},
        {"nr_disks", CONFIG_MAX_DISKS + 1, "nr_disks"},
        {"nr_disks", 2, "disk 1"}, /* more than the list holds */
        {"nr_nics", CONFIG_MAX_NICS + 1, "nr_nics"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rec m = parse_rec(rec_text(r, &len));
        rec_put_u64(m, bad[i].key, bad[i].value);
        assert_int_equal(machine_load(m, &got, &tmpl), -EINVAL);
        assert_non_null(strstr(err_msg(), bad[i].message));
        rec_free(m);
    }
    rec_free(r);
}

/* Issue 15: what the API configured beyond the devices themselves — rate
 * limiters (after PATCHes), pmem devices and the CPU template — comes back
 * from a snapshot, and hostile values in them are refused. */
static void test_machine_limits_pmem_template(void **state)
{
    (void)state;
    struct vm_config cfg;
    vm_config_defaults(&cfg);
    cfg.nr_vcpus = 1;
    cfg.mem_size = 128ull << 20;
    cfg.nr_disks = 1;
    cfg.disks[0].path = "/d.img";
    cfg.disks[0].rate_limit.bandwidth = (struct bucket_config){16384, 4096, 1000};
    cfg.nr_nics = 1;
    cfg.nics[0].kind = NIC_USER;
    cfg.nics[0].tx_limit.ops = (struct bucket_config){100, 0, 500};
    cfg.rng = true;
    cfg.rng_limit.bandwidth = (struct bucket_config){64, 0, 1000};
    cfg.accel = ACCEL_KVM;
    cfg.transport = TRANSPORT_PCI; /* both resolved before a VM is saved */
    cfg.nr_pmem = 2;
    cfg.pmem[0] = (struct pmem_config){"p0.img", "pm0", false};
    cfg.pmem[1] = (struct pmem_config){"/p1.img", "pm1", true};
    struct cpu_template t = {.kind = CPU_TEMPLATE_T2, .nr_cpuid = 1, .nr_msr = 1};
    t.cpuid[0] = (struct cpuid_modifier){7, 0, CPUID_EBX, 0xffff0000u, 0x12340000u};
    t.msr[0] = (struct msr_modifier){0x10a, ~0ull, 0x8};
    cfg.cpu_template = &t;
    struct rec r = rec_new();
    machine_save(&cfg, r);
    size_t len;
    const char *text = rec_text(r, &len);
    struct rec back = parse_rec(text);
    struct vm_config got;
    struct cpu_template tmpl;
    if (machine_load(back, &got, &tmpl))
        fail_msg("%s in %s", err_msg(), text);
    assert_int_equal(got.disks[0].rate_limit.bandwidth.size, 16384);
    assert_int_equal(got.disks[0].rate_limit.bandwidth.one_time_burst, 4096);
    assert_int_equal(got.disks[0].rate_limit.bandwidth.refill_time_ms, 1000);
    assert_false(bucket_config_active(&got.disks[0].rate_limit.ops));
    assert_int_equal(got.nics[0].tx_limit.ops.size, 100);
    assert_false(rate_limit_active(&got.nics[0].rx_limit));
    assert_int_equal(got.rng_limit.bandwidth.size, 64);
    assert_int_equal(got.nr_pmem, 2);
    assert_string_equal(got.pmem[1].path, "/p1.img");
    assert_string_equal(got.pmem[1].id, "pm1");
    assert_true(got.pmem[1].read_only);
    assert_ptr_equal(got.cpu_template, &tmpl);
    assert_int_equal(tmpl.kind, CPU_TEMPLATE_T2);
    assert_int_equal(tmpl.nr_cpuid, 1);
    assert_int_equal(tmpl.cpuid[0].reg, CPUID_EBX);
    assert_int_equal(tmpl.cpuid[0].value, 0x12340000u);
    assert_int_equal(tmpl.msr[0].addr, 0x10a);
    assert_int_equal(tmpl.msr[0].value, 0x8);
    rec_free(back);

    /* Hostile values in each new part. */
    static const struct {
        const char *find, *replace, *message;
    } bad[] = {
        {"\"refill_time_ms\":1000", "\"refill_time_ms\":99999999999999", "refill_time_ms"},
        {"\"size\":16384", "\"size\":-1", "size"},
        {"\"register\":1", "\"register\":4", "register"},
        {"\"kind\":\"T2\"", "\"kind\":\"T9\"", "not a CPU template"},
        {"\"p0.img\"", "\"\"", "pmem 0"},
        {"\"pm1\",\"read_only\":true", "\"pm1\",\"read_only\":7", "read_only"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *at = strstr(text, bad[i].find);
        if (!at)
            fail_msg("case %zu: '%s' not in %s", i, bad[i].find, text);
        char *edited = malloc(len + strlen(bad[i].replace) + 1);
        size_t head = (size_t)(at - text);
        memcpy(edited, text, head);
        strcpy(edited + head, bad[i].replace);
        strcat(edited, at + strlen(bad[i].find));
        struct rec m = parse_rec(edited);
        assert_int_equal(machine_load(m, &got, &tmpl), -EINVAL);
        if (!strstr(err_msg(), bad[i].message))
            fail_msg("case %zu: '%s' lacks '%s'", i, err_msg(), bad[i].message);
        rec_free(m);
        free(edited);
    }
    /* More pmem devices than a machine can have. */
    struct rec m = parse_rec(text);
    for (unsigned i = 0; i < CONFIG_MAX_PMEM; i++)
        rec_put_str(rec_put_item(m, "pmem"), "path", "/x");
    assert_int_equal(machine_load(m, &got, &tmpl), -EINVAL);
    rec_free(m);
    rec_free(r);
}

/* Peak resident memory so far, in KiB. */
static long peak_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 20: a 60 MB state file drove ember to 2.1 GiB before it was
 * refused. It is refused now by its size, before a byte is read. */
static void test_state_file_size_limit(void **state)
{
    (void)state;
    size_t size;
    uint8_t *good = sample_file(&size); /* a valid start, then 60 MB */
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, good, size), (ssize_t)size);
    free(good);
    assert_int_equal(ftruncate(fd, 60 << 20), 0);
    close(fd);
    long before = peak_kib();
    struct snap_reader r;
    assert_int_equal(snap_reader_open(&r, path), -EFBIG);
    assert_non_null(strstr(err_msg(), "too large for a state file"));
    assert_non_null(strstr(err_msg(), "refused before reading it"));
    assert_true(peak_kib() - before < 8 << 10);
    /* The largest file the reader takes is the largest the writer writes. */
    struct snap_writer w;
    snap_writer_init(&w);
    uint8_t *big = calloc(1, SNAP_STATE_MAX);
    snap_writer_add(&w, "big", 0, big, SNAP_STATE_MAX);
    assert_int_equal(snap_writer_finish(&w, path), -EFBIG);
    assert_non_null(strstr(err_msg(), "more than ember reads back"));
    snap_writer_free(&w);
    free(big);
}

/* Text that json-c would turn into far more memory than its size, or nest
 * deep, is refused by a scan before json-c sees it; brackets, quotes and
 * escapes inside strings do not count. */
static void test_record_shape_limits(void **state)
{
    (void)state;
    struct rec out;
    /* 8 MiB of "0," inside an object: 4 M values. */
    size_t len = 8u << 20;
    char *text = malloc(len + 16);
    strcpy(text, "{\"a\":[");
    size_t at = strlen(text);
    while (at < len) {
        text[at++] = '0';
        text[at++] = ',';
    }
    strcpy(text + at, "0]}");
    long before = peak_kib();
    assert_int_equal(rec_parse(text, strlen(text), &out), -EINVAL);
    assert_non_null(strstr(err_msg(), "more than 262144 values"));
    assert_null(out.obj);
    assert_true(peak_kib() - before < 8 << 10);
    free(text);
    /* Depth: 16 levels parse, 17 do not. */
    char deep[128] = "{";
    for (int i = 1; i < 16; i++)
        strcat(deep, "\"a\":{");
    for (int i = 0; i < 16; i++)
        strcat(deep, "}");
    assert_int_equal(rec_parse(deep, strlen(deep), &out), 0);
    rec_free(out);
    strcpy(deep, "{");
    for (int i = 1; i < 17; i++)
        strcat(deep, "\"a\":{");
    for (int i = 0; i < 17; i++)
        strcat(deep, "}");
    assert_int_equal(rec_parse(deep, strlen(deep), &out), -EINVAL);
    assert_non_null(strstr(err_msg(), "nested deeper than 16 levels"));
    const char *strings = "{\"s\": \"[[[[[[[[[[[[[[[[[[{{{{\\\"{{{{{{,,,,:::\", \"t\": [1, 2]}";
    assert_int_equal(rec_parse(strings, strlen(strings), &out), 0);
    rec_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_round_trip),
        cmocka_unit_test(test_container_truncated_and_flipped),
        cmocka_unit_test(test_container_version_and_trailing),
        cmocka_unit_test(test_record_checks),
        cmocka_unit_test(test_machine_round_trip_and_limits),
        cmocka_unit_test(test_machine_limits_pmem_template),
        cmocka_unit_test(test_state_file_size_limit),
        cmocka_unit_test(test_record_shape_limits),
    };
    return cmocka_run_group_tests_name("snapshot", tests, setup_dir, teardown_dir);
}

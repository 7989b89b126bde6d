/* Option parsing, sizes, the console's escape filter and the host check. */
#include "fakes.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel/hostcheck.h"
#include "cli/options.h"
#include "util/util.h"
#include "vmm/console.h"

static int parse(struct cli_request *req, const char *line)
{
    static char buf[512]; /* the request points into it */
    static char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return cli_parse(argc, argv, req);
}

static void test_run_defaults(void **state)
{
    (void)state;
    struct cli_request req;
    assert_int_equal(parse(&req, "ember run"), 0);
    assert_int_equal(req.command, CLI_RUN);
    assert_null(req.vm.kernel_path);
    assert_int_equal(req.vm.nr_vcpus, 1);
    assert_true(req.vm.mem_size == MiB(256));
    assert_false(req.vm.skip_host_check);
}

static void test_run_all_options(void **state)
{
    (void)state;
    struct cli_request req;
    assert_int_equal(parse(&req, "ember run --kernel k --initrd i --cmdline c --cpus 4 "
                                 "--mem 2G --skip-host-check -v -v"), 0);
    assert_string_equal(req.vm.kernel_path, "k");
    assert_string_equal(req.vm.initrd_path, "i");
    assert_string_equal(req.vm.cmdline, "c");
    assert_int_equal(req.vm.nr_vcpus, 4);
    assert_true(req.vm.mem_size == GiB(2));
    assert_true(req.vm.skip_host_check);
    assert_int_equal(req.verbosity, 2);
    assert_int_equal(parse(&req, "ember run --mem=512M --cpus=255"), 0);
    assert_true(req.vm.mem_size == MiB(512));
    assert_int_equal(req.vm.nr_vcpus, 255);
}

static void test_commands(void **state)
{
    (void)state;
    struct cli_request req;
    assert_int_equal(parse(&req, "ember --help"), 0);
    assert_int_equal(req.command, CLI_HELP);
    assert_int_equal(parse(&req, "ember -V"), 0);
    assert_int_equal(req.command, CLI_VERSION);
    assert_int_equal(parse(&req, "ember run --help"), 0);
    assert_int_equal(req.command, CLI_HELP);
    assert_int_equal(parse(&req, "ember --api-sock /run/a.sock --id vm_1"), 0);
    assert_int_equal(req.command, CLI_SERVE);
    assert_string_equal(req.api_sock, "/run/a.sock");
    assert_string_equal(req.id, "vm_1");
    assert_int_equal(req.max_body, 51200);
    assert_int_equal(parse(&req, "ember --config-file c.json --no-api"), 0);
    assert_int_equal(req.command, CLI_SERVE);
    assert_true(req.no_api);
    assert_string_equal(req.config_file, "c.json");
    assert_int_equal(parse(&req, "ember --api-sock s --http-api-max-payload-size 4096"), 0);
    assert_int_equal(req.max_body, 4096);
    assert_int_equal(parse(&req, "ember -v --api-sock s"), 0);
    assert_int_equal(req.command, CLI_SERVE);
    assert_int_equal(req.verbosity, 1);
    assert_int_equal(parse(&req, "ember run --api-sock s --cpus 2"), 0);
    assert_int_equal(req.command, CLI_RUN);
    assert_string_equal(req.api_sock, "s");
}

static void test_snapshot_commands(void **state)
{
    (void)state;
    struct cli_request req;
    assert_int_equal(parse(&req, "ember restore --snapshot s --mem m --disk data=d.img "
                                 "--disk vdb=e.img --net eth0=tap1 --paused "
                                 "--track-dirty-pages --api-sock a"), 0);
    assert_int_equal(req.command, CLI_RESTORE);
    assert_string_equal(req.snapshot_path, "s");
    assert_string_equal(req.mem_path, "m");
    assert_int_equal(req.overrides.nr_disks, 2);
    assert_string_equal(req.overrides.disks[1].id, "vdb");
    assert_string_equal(req.overrides.disks[1].value, "e.img");
    assert_string_equal(req.overrides.nics[0].value, "tap1");
    assert_true(req.paused && req.overrides.track_dirty_pages);
    assert_int_equal(parse(&req, "ember snapshot --api-sock a --snapshot s --mem m --diff "
                                 "--keep-paused"), 0);
    assert_int_equal(req.command, CLI_SNAPSHOT);
    assert_true(req.diff && req.keep_paused);
    assert_int_equal(parse(&req, "ember merge-memory --snapshot s --mem d --base b"), 0);
    assert_int_equal(req.command, CLI_MERGE);
    assert_string_equal(req.base_mem_path, "b");
}

static void test_errors(void **state)
{
    (void)state;
    struct cli_request req;
    static const struct { const char *line, *message; } cases[] = {
        {"ember", "no command given"},
        {"ember boot", "unknown command 'boot'"},
        {"ember run --cpus 0", "--cpus: expected a number from 1 to 255, got '0'"},
        {"ember run --cpus 256", "got '256'"},
        {"ember run --cpus 1x", "got '1x'"},
        {"ember run --cpus -2", "got '-2'"},
        {"ember run --mem 1.5G", "--mem: expected a size"},
        {"ember run --mem 8M", "outside 16M-1T"},
        {"ember run --mem 2T", "outside 16M-1T"},
        {"ember run --mem 100000K", "not a whole number of MiB"},
        {"ember run --bogus", "unknown option '--bogus'"},
        {"ember run --kernel", "needs a value"},
        {"ember run extra", "unexpected argument 'extra'"},
        {"ember --no-api", "--no-api needs --config-file"},
        {"ember --id x", "give --api-sock PATH, or --config-file FILE with --no-api"},
        {"ember --api-sock s --no-api --config-file c", "exclude each other"},
        {"ember --api-sock s --id a/b", "--id: expected 1-64 letters"},
        {"ember --api-sock s --http-api-max-payload-size 10", "from 1024 to 16777216"},
        {"ember --api-sock s --cpus 2", "unknown option '--cpus'"},
        {"ember --api-sock", "needs a value"},
        {"ember restore --snapshot s", "--snapshot and --mem are required"},
        {"ember restore --snapshot s --mem m --disk d.img", "expected ID=VALUE"},
        {"ember restore --snapshot s --mem m --cpus 2", "unknown option '--cpus'"},
        {"ember snapshot --snapshot s --mem m", "--api-sock is required"},
        {"ember snapshot --api-sock a --snapshot s --mem m -v", "unknown option"},
        {"ember merge-memory --snapshot s --mem m", "--base is required"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        assert_int_equal(parse(&req, cases[i].line), -EINVAL);
        if (!strstr(err_msg(), cases[i].message))
            fail_msg("'%s': got '%s'", cases[i].line, err_msg());
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(parse_size("256M", &v), 0);
    assert_true(v == MiB(256));
    assert_int_equal(parse_size("2G", &v), 0);
    assert_true(v == GiB(2));
    assert_int_equal(parse_size("2g", &v), 0);
    assert_int_equal(parse_size("512", &v), 0); /* plain numbers are MiB */
    assert_true(v == MiB(512));
    assert_int_equal(parse_size("1024KiB", &v), 0);
    assert_true(v == MiB(1));
    assert_int_equal(parse_size("1GB", &v), 0);
    assert_int_equal(parse_size("", &v), -EINVAL);
    assert_int_equal(parse_size("M", &v), -EINVAL);
    assert_int_equal(parse_size("0M", &v), -EINVAL);
    assert_int_equal(parse_size("-1M", &v), -EINVAL);
    assert_int_equal(parse_size("1Q", &v), -EINVAL);
    assert_int_equal(parse_size("1MM", &v), -EINVAL);
    assert_int_equal(parse_size("99999999999999999999G", &v), -EINVAL);
    assert_int_equal(parse_size("17179869184G", &v), -EINVAL); /* overflows 64 bits */
}

static void test_console_escapes(void **state)
{
    (void)state;
    uint8_t out[32];
    bool esc = false, quit;
    size_t n = console_filter_escapes(&esc, (const uint8_t *)"ls\r", 3, out, &quit);
    assert_int_equal(n, 3);
    assert_false(quit);
    n = console_filter_escapes(&esc, (const uint8_t *)"a\x01x", 3, out, &quit);
    assert_true(quit);
    assert_int_equal(n, 1);
    n = console_filter_escapes(&esc, (const uint8_t *)"\x01\x01", 2, out, &quit);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0x01);
    n = console_filter_escapes(&esc, (const uint8_t *)"\x01q", 2, out, &quit);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x01q", 2);
    /* Split across two reads. */
    n = console_filter_escapes(&esc, (const uint8_t *)"z\x01", 2, out, &quit);
    assert_int_equal(n, 1);
    assert_true(esc);
    n = console_filter_escapes(&esc, (const uint8_t *)"X", 1, out, &quit);
    assert_true(quit);
    assert_int_equal(n, 0);
}

/* A fake /dev, /sys/module and /proc/cpuinfo under a temporary directory. */
struct fake_host {
    char root[64];
    char dev[128], sys[128], cpuinfo[128];
    struct host_paths paths;
};

static void fake_host(struct fake_host *h, bool dev, const char *module, const char *flags)
{
    snprintf(h->root, sizeof(h->root), "/tmp/ember-host-XXXXXX");
    assert_non_null(mkdtemp(h->root));
    snprintf(h->dev, sizeof(h->dev), "%s/kvm", h->root);
    snprintf(h->sys, sizeof(h->sys), "%s/module", h->root);
    snprintf(h->cpuinfo, sizeof(h->cpuinfo), "%s/cpuinfo", h->root);
    mkdir(h->sys, 0755);
    if (dev)
        fclose(fopen(h->dev, "w"));
    if (module) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", h->sys, module);
        mkdir(path, 0755);
    }
    FILE *f = fopen(h->cpuinfo, "w");
    fprintf(f, "processor\t: 0\nflags\t\t: fpu %s sse\n", flags);
    fclose(f);
    h->paths = (struct host_paths){h->dev, h->sys, h->cpuinfo};
}

static void fake_host_free(struct fake_host *h)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", h->root);
    assert_int_equal(system(cmd), 0);
}

static void test_hostcheck(void **state)
{
    (void)state;
    struct fake_host h;
    fake_host(&h, true, "kvm_amd", "svm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_HW_KVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), 0);
    fake_host_free(&h);

    fake_host(&h, true, "kvm_intel", "vmx");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_HW_KVM);
    fake_host_free(&h);

    fake_host(&h, true, "kvm_pvm", "");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_PVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "PVM module"));
    assert_non_null(strstr(err_msg(), "nested harness"));
    fake_host_free(&h);

    fake_host(&h, false, "kvm_amd", "svm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_KVM);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "does not exist"));
    fake_host_free(&h);

    fake_host(&h, true, NULL, "");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_HW_VIRT);
    assert_int_equal(hostcheck_require_hw(&h.paths), -ENODEV);
    assert_non_null(strstr(err_msg(), "no vmx/svm"));
    fake_host_free(&h);

    /* "svm" must be a whole flag, not part of another. */
    fake_host(&h, true, "kvm_amd", "svmx_like nosvm");
    assert_int_equal(hostcheck_classify(&h.paths), HOST_NO_HW_VIRT);
    fake_host_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_defaults),
        cmocka_unit_test(test_run_all_options),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_snapshot_commands),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_console_escapes),
        cmocka_unit_test(test_hostcheck),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}

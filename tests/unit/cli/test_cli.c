/* Option parsing: every command, option and error message. */
#include "fakes.h"

#include <stdio.h>
#include <unistd.h>

#include "cli/options.h"
#include "util/util.h"

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
    assert_null(req.vm.vsock.uds_path);
    assert_int_equal(parse(&req, "ember run --vsock uds=/run/v.sock,cid=4294967294"), 0);
    assert_string_equal(req.vm.vsock.uds_path, "/run/v.sock");
    assert_int_equal(req.vm.vsock.cid, 4294967294u);
}

static void test_smt_and_cpu_template(void **state)
{
    (void)state;
    static struct cli_request req;
    assert_int_equal(parse(&req, "ember run --cpus 4 --smt --cpu-template T2A"), 0);
    assert_true(req.vm.smt);
    assert_ptr_equal(req.vm.cpu_template, &req.cpu_template);
    assert_int_equal(req.cpu_template.kind, CPU_TEMPLATE_T2A);
    assert_true(req.cpu_template.nr_cpuid > 0);
    assert_int_equal(parse(&req, "ember run --cpu-template T2 --cpu-template None"), 0);
    assert_null(req.vm.cpu_template);
    assert_int_equal(parse(&req, "ember run --smt"), 0); /* one vCPU: one thread */
    assert_int_equal(parse(&req, "ember run --cpus 3 --smt"), -EINVAL);
    assert_non_null(strstr(err_msg(), "--smt: the vCPU count must be 1 or even"));
    assert_int_equal(parse(&req, "ember run --cpu-template t2"), -EINVAL);
    assert_non_null(strstr(err_msg(), "--cpu-template: expected None, C3, T2"));
    assert_int_equal(parse(&req, "ember run --cpu-template Custom"), -EINVAL);
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

/* What Firecracker's launchers pass: its jailer's arguments, the logger and
 * metrics flags, --boot-timer, --enable-pci, the snapshot-format queries,
 * and the default socket when --api-sock is absent. */
static void test_firecracker_command_line(void **state)
{
    (void)state;
    struct cli_request req;
    assert_int_equal(parse(&req, "firecracker --id vm-1 --start-time-us 123 "
                                 "--start-time-cpu-us 45 --parent-cpu-time-us 6 "
                                 "--config-file c.json"), 0);
    assert_int_equal(req.command, CLI_SERVE);
    assert_true(req.as_firecracker);
    assert_string_equal(req.api_sock, CLI_DEFAULT_API_SOCK);
    assert_true(req.has_start_time_us && req.start_time_us == 123);
    assert_true(req.has_start_time_cpu_us && req.start_time_cpu_us == 45);
    assert_true(req.parent_cpu_time_us == 6);
    assert_null(req.seccomp_filter);
    assert_int_equal(parse(&req, "firecracker --seccomp-filter /f.json"), 0);
    assert_string_equal(req.seccomp_filter, "/f.json");
    assert_int_equal(parse(&req, "ember run --seccomp-filter f.json"), 0);
    assert_string_equal(req.seccomp_filter, "f.json");
    assert_int_equal(parse(&req, "ember restore --snapshot s --mem m --seccomp-filter g"), 0);
    assert_string_equal(req.seccomp_filter, "g");
    assert_int_equal(parse(&req, "/usr/bin/firecracker"), 0);
    assert_int_equal(req.command, CLI_SERVE);
    assert_string_equal(req.api_sock, CLI_DEFAULT_API_SOCK);
    assert_int_equal(parse(&req, "ember --id x"), 0);
    assert_string_equal(req.api_sock, CLI_DEFAULT_API_SOCK);
    assert_false(req.as_firecracker);
    assert_int_equal(parse(&req, "ember --api-sock s --boot-timer --log-path l.fifo --level Debug "
                                 "--module api --show-level --show-log-origin "
                                 "--metrics-path m.fifo --enable-pci --no-seccomp "
                                 "--mmds-size-limit 4096"), 0);
    assert_true(req.boot_timer && req.vm.boot_timer);
    assert_true(req.logger.set && req.logger.show_level && req.logger.show_origin);
    assert_string_equal(req.logger.path, "l.fifo");
    assert_string_equal(req.logger.level, "Debug");
    assert_string_equal(req.logger.module, "api");
    assert_string_equal(req.metrics_path, "m.fifo");
    assert_int_equal(req.vm.transport, TRANSPORT_PCI);
    assert_int_equal(parse(&req, "ember --api-sock s --transport mmio"), 0);
    assert_int_equal(req.vm.transport, TRANSPORT_MMIO);
    assert_int_equal(parse(&req, "ember run --transport mmio"), 0);
    assert_int_equal(req.vm.transport, TRANSPORT_MMIO);
    assert_int_equal(parse(&req, "firecracker --describe-snapshot vm.state"), 0);
    assert_int_equal(req.command, CLI_DESCRIBE_SNAPSHOT);
    assert_string_equal(req.snapshot_path, "vm.state");
    assert_int_equal(parse(&req, "firecracker --snapshot-version"), 0);
    assert_int_equal(req.command, CLI_SNAPSHOT_VERSION);
    assert_int_equal(parse(&req, "firecracker-v1.16.1-x86_64 --version"), 0);
    assert_int_equal(req.command, CLI_VERSION);
    assert_true(req.as_firecracker);
    assert_int_equal(parse(&req, "ember --version"), 0);
    assert_false(req.as_firecracker);
    /* pci=off picks virtio-mmio unless a transport was chosen. */
    assert_int_equal(transport_resolve(TRANSPORT_AUTO, "console=ttyS0 pci=off"), TRANSPORT_MMIO);
    assert_int_equal(transport_resolve(TRANSPORT_AUTO, "console=ttyS0 xpci=off"), TRANSPORT_PCI);
    assert_int_equal(transport_resolve(TRANSPORT_PCI, "pci=off"), TRANSPORT_PCI);
    assert_int_equal(transport_resolve(TRANSPORT_AUTO, NULL), TRANSPORT_PCI);
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
    assert_null(req.overrides.vsock_uds);
    assert_int_equal(parse(&req, "ember restore --snapshot s --mem m --vsock uds=/tmp/n.sock"), 0);
    assert_string_equal(req.overrides.vsock_uds, "/tmp/n.sock");
    assert_false(req.mem_uffd);
    assert_int_equal(parse(&req, "ember restore --snapshot s --mem-uffd /run/h.sock"), 0);
    assert_true(req.mem_uffd);
    assert_string_equal(req.mem_path, "/run/h.sock");
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
        {"ember run --mmds version=V3", "--mmds: version must be V1 or V2"},
        {"ember run --mmds address=10.0.0.1", "is not a link-local IPv4 address"},
        {"ember run --mmds limit=0", "--mmds: limit must be a positive number"},
        {"ember run --mmds colour=red", "--mmds: unknown setting 'colour=red'"},
        {"ember run --mmds version=V1 --mmds version=V2", "--mmds: given twice"},
        {"ember run --net user,mmds=1", "--net: mmds takes no value"},
        {"ember --api-sock s --seccomp-filter f.json --no-seccomp", "exclude each other"},
        {"ember run --no-seccomp --seccomp-filter f.json", "exclude each other"},
        {"ember run --seccomp-filter", "needs a value"},
        {"ember --api-sock s --start-time-us -5", "--start-time-us: expected a non-negative"},
        {"ember --api-sock s --start-time-cpu-us x", "--start-time-cpu-us: expected"},
        {"ember --api-sock s --parent-cpu-time-us 1.5", "--parent-cpu-time-us: expected"},
        {"ember --api-sock s --mmds-size-limit big", "--mmds-size-limit: expected"},
        {"ember --api-sock s --transport usb", "--transport: expected mmio, pci or auto"},
        {"ember run --transport", "needs a value"},
        {"ember --api-sock s --no-api --config-file c", "exclude each other"},
        {"ember --api-sock s --id a/b", "--id: expected 1-64 letters"},
        {"ember --api-sock s --http-api-max-payload-size 10", "from 1024 to 16777216"},
        {"ember --api-sock s --cpus 2", "unknown option '--cpus'"},
        {"ember --api-sock", "needs a value"},
        {"ember restore --snapshot s", "--snapshot and --mem (or --mem-uffd) are required"},
        {"ember restore --snapshot s --mem m --disk d.img", "expected ID=VALUE"},
        {"ember restore --snapshot s --mem m --mem-uffd h", "one of --mem and --mem-uffd"},
        {"ember restore --snapshot s --mem m --cpus 2", "unknown option '--cpus'"},
        {"ember snapshot --snapshot s --mem m", "--api-sock is required"},
        {"ember snapshot --api-sock a --snapshot s --mem m -v", "unknown option"},
        {"ember merge-memory --snapshot s --mem m", "--base is required"},
        {"ember run --vsock cid=3", "cid=N and uds=PATH are required"},
        {"ember run --vsock uds=/v", "cid=N and uds=PATH are required"},
        {"ember run --vsock cid=2,uds=/v", "cid must be a number from 3 to 4294967294, got '2'"},
        {"ember run --vsock cid=4294967295,uds=/v", "got '4294967295'"},
        {"ember run --vsock cid=-3,uds=/v", "got '-3'"},
        {"ember run --vsock cid=3x,uds=/v", "got '3x'"},
        {"ember run --vsock cid,uds=/v", "got ''"},
        {"ember run --vsock cid=3,uds=", "uds= needs a path"},
        {"ember run --vsock cid=3,uds=/v,mode=x", "unknown setting 'mode=x'"},
        {"ember run --vsock cid=3,uds=/a --vsock cid=4,uds=/b", "given twice"},
        {"ember restore --snapshot s --mem m --vsock cid=3", "expected uds=PATH"},
        {"ember restore --snapshot s --mem m --vsock uds=", "uds= needs a path"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        assert_int_equal(parse(&req, cases[i].line), -EINVAL);
        if (!strstr(err_msg(), cases[i].message))
            fail_msg("'%s': got '%s'", cases[i].line, err_msg());
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_defaults),
        cmocka_unit_test(test_run_all_options),
        cmocka_unit_test(test_smt_and_cpu_template),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_firecracker_command_line),
        cmocka_unit_test(test_snapshot_commands),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}

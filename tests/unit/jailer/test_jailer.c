/* ember-jailer: argument parsing (Firecracker's arguments, good and bad),
 * the interpreter's library listing, an ELF's interpreter, and cgroup
 * settings written into a fake hierarchy. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/args.h"
#include "jailer/cgroup.h"
#include "jailer/libs.h"

static int parse(struct jailer_args *a, const char *line)
{
    static char buf[1024];
    static char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof(buf), "ember-jailer %s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return jailer_parse(argc, argv, a);
}

#define REQUIRED "--id vm-1 --exec-file /usr/bin/ember --uid 123 --gid 100"

static void test_defaults(void **state)
{
    (void)state;
    static struct jailer_args a;
    assert_int_equal(parse(&a, REQUIRED), 0);
    assert_int_equal(a.command, JAILER_RUN);
    assert_string_equal(a.id, "vm-1");
    assert_string_equal(a.exec_file, "/usr/bin/ember");
    assert_int_equal(a.uid, 123);
    assert_int_equal(a.gid, 100);
    assert_string_equal(a.chroot_base, "/srv/jailer");
    assert_null(a.netns);
    assert_false(a.daemonize);
    assert_false(a.new_pid_ns);
    assert_int_equal(a.cgroup_version, 1);
    assert_null(a.parent_cgroup);
    assert_int_equal(a.nr_cgroups, 0);
    assert_false(a.has_fsize);
    assert_int_equal(a.no_file, JAILER_DEFAULT_NO_FILE);
    assert_int_equal(a.nr_extra, 0);
}

static void test_everything(void **state)
{
    (void)state;
    static struct jailer_args a;
    assert_int_equal(parse(&a, "--id 551e7604-e35c-42b3-b825-416853441234 --cgroup cpuset.mems=0 "
                               "--cgroup cpuset.cpus=0-3 --exec-file /usr/bin/ember --uid 0 "
                               "--gid 0 --chroot-base-dir /var/jail --netns /var/run/netns/n "
                               "--daemonize --new-pid-ns --cgroup-version 2 "
                               "--parent-cgroup all/ours --resource-limit fsize=250000000 "
                               "--resource-limit no-file=1024 --node 0 -- --config-file "
                               "/fc.json --no-seccomp"), 0);
    assert_string_equal(a.id, "551e7604-e35c-42b3-b825-416853441234");
    assert_string_equal(a.chroot_base, "/var/jail");
    assert_string_equal(a.netns, "/var/run/netns/n");
    assert_true(a.daemonize && a.new_pid_ns && a.has_node);
    assert_int_equal(a.cgroup_version, 2);
    assert_string_equal(a.parent_cgroup, "all/ours");
    assert_int_equal(a.nr_cgroups, 2);
    assert_string_equal(a.cgroups[0].file, "cpuset.mems");
    assert_string_equal(a.cgroups[0].value, "0");
    assert_string_equal(a.cgroups[1].file, "cpuset.cpus");
    assert_string_equal(a.cgroups[1].value, "0-3");
    assert_true(a.has_fsize && a.fsize == 250000000);
    assert_int_equal(a.no_file, 1024);
    assert_int_equal(a.nr_extra, 3);
    assert_string_equal(a.extra[0], "--config-file");
    assert_string_equal(a.extra[2], "--no-seccomp");
    /* --name=value, an empty "--" tail, the largest id. */
    assert_int_equal(parse(&a, "--id=" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               " --exec-file=e --uid=4294967294 --gid=7 --"), 0);
    assert_int_equal(strlen(a.id), 64);
    assert_int_equal(a.uid, 4294967294u);
    assert_int_equal(a.nr_extra, 0);
    assert_int_equal(parse(&a, "--version"), 0);
    assert_int_equal(a.command, JAILER_VERSION);
    assert_int_equal(parse(&a, "--help"), 0);
    assert_int_equal(a.command, JAILER_HELP);
}

static void test_errors(void **state)
{
    (void)state;
    static struct jailer_args a;
    static const struct {
        const char *line, *message;
    } cases[] = {
        {"", "--id is required"},
        {"--id a --uid 1 --gid 1", "--exec-file is required"},
        {"--id a --exec-file e --gid 1", "--uid is required"},
        {"--id a --exec-file e --uid 1", "--gid is required"},
        {REQUIRED " --id b", "--id given more than once"},
        {REQUIRED " --daemonize --daemonize", "--daemonize given more than once"},
        {REQUIRED " --daemonize=yes", "--daemonize takes no value"},
        {REQUIRED " --frobnicate", "unknown argument '--frobnicate'"},
        {REQUIRED " stray", "unexpected argument 'stray'"},
        {REQUIRED " --netns", "--netns needs a value"},
        {REQUIRED " --netns --daemonize", "--netns needs a value"},
        {"--id a_b --exec-file e --uid 1 --gid 1", "invalid character '_' at position 1"},
        {"--id a/b --exec-file e --uid 1 --gid 1", "invalid character '/'"},
        {"--id .. --exec-file e --uid 1 --gid 1", "invalid character '.'"},
        {"--id= --exec-file e --uid 1 --gid 1", "0 characters"},
        {"--id aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --exec-file e "
         "--uid 1 --gid 1", "65 characters"},
        {"--id a --exec-file e --uid -1 --gid 1", "--uid: expected a number"},
        {"--id a --exec-file e --uid x --gid 1", "--uid: expected a number"},
        {"--id a --exec-file e --uid 4294967295 --gid 1", "--uid: expected a number"},
        {"--id a --exec-file e --uid 1 --gid 1x", "--gid: expected a number"},
        {"--id a --exec-file= --uid 1 --gid 1", "--exec-file: empty path"},
        {REQUIRED " --cgroup-version 3", "expected 1 or 2"},
        {REQUIRED " --cgroup cpu.shares", "expected FILE=VALUE"},
        {REQUIRED " --cgroup =1", "expected FILE=VALUE"},
        {REQUIRED " --cgroup cpu.shares=", "expected FILE=VALUE"},
        {REQUIRED " --cgroup cpu.shares=1=2", "expected FILE=VALUE"},
        {REQUIRED " --cgroup shares=1", "does not name a cgroup file"},
        {REQUIRED " --cgroup ../cpu.shares=1", "does not name a cgroup file"},
        {REQUIRED " --cgroup a/cpu.shares=1", "does not name a cgroup file"},
        {REQUIRED " --parent-cgroup /abs", "must be a relative path"},
        {REQUIRED " --parent-cgroup a/../b", "must be a relative path"},
        {REQUIRED " --parent-cgroup ./a", "must be a relative path"},
        {REQUIRED " --parent-cgroup a//b", "must be a relative path"},
        {REQUIRED " --parent-cgroup a/", "must be a relative path"},
        {REQUIRED " --resource-limit nproc=3", "unknown resource 'nproc'"},
        {REQUIRED " --resource-limit fsize", "expected NAME=VALUE"},
        {REQUIRED " --resource-limit fsize=-1", "expected a number"},
        {REQUIRED " --resource-limit no-file=lots", "expected a number"},
        {REQUIRED " --node x", "--node: expected a number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ret = parse(&a, cases[i].line);
        if (ret != -EINVAL || !strstr(err_msg(), cases[i].message))
            fail_msg("'%s': got %d '%s', wanted '%s'", cases[i].line, ret, err_msg(),
                     cases[i].message);
    }
}

static void test_lib_list(void **state)
{
    (void)state;
    static struct jail_libs libs;
    const char *listing =
        "\tlinux-vdso.so.1 (0x00007ffc3b5f2000)\n"
        "\tlibslirp.so.0 => /lib/x86_64-linux-gnu/libslirp.so.0 (0x00007f2c1c9b2000)\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c1c7d1000)\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c1c7d1000)\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f2c1ca0a000)\n";
    assert_int_equal(jail_parse_lib_list(listing, &libs), 0);
    assert_int_equal(libs.n, 3);
    assert_string_equal(libs.paths[0], "/lib/x86_64-linux-gnu/libslirp.so.0");
    assert_string_equal(libs.paths[1], "/lib/x86_64-linux-gnu/libc.so.6");
    assert_string_equal(libs.paths[2], "/lib64/ld-linux-x86-64.so.2");
    assert_int_equal(jail_parse_lib_list("\tlibgone.so.1 => not found\n", &libs), -ENOENT);
    assert_non_null(strstr(err_msg(), "libgone.so.1"));
    assert_int_equal(jail_parse_lib_list("", &libs), 0);
    assert_int_equal(libs.n, 0);
}

static void test_elf_interp(void **state)
{
    (void)state;
    char interp[4096];
    /* This test program is dynamically linked: it names its loader. */
    assert_int_equal(jail_elf_interp("/proc/self/exe", interp, sizeof(interp)), 0);
    assert_true(interp[0] == '/' && strstr(interp, "ld-"));
    char path[] = "/tmp/jailer-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    assert_int_equal(jail_elf_interp(path, interp, sizeof(interp)), -ENOEXEC);
    unlink(path);
    assert_true(jail_elf_interp("/nonexistent", interp, sizeof(interp)) < 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* cgroup v1 in a directory tree standing in for the hierarchy: the
 * setting written, an empty cpuset filled in from the root, the PID in
 * tasks. */
static void test_cgroup_v1(void **state)
{
    (void)state;
    char dir[] = "/tmp/jailer-cg-XXXXXX", path[512], mounts[512], buf[256];
    assert_non_null(mkdtemp(dir));
    snprintf(mounts, sizeof(mounts), "%s/mounts", dir);
    char text[1024];
    snprintf(text, sizeof(text),
             "proc /proc proc rw 0 0\ncgroup %s/cpuset cgroup rw,relatime,cpuset 0 0\n"
             "cgroup2 %s/unified cgroup2 rw 0 0\n", dir, dir);
    write_file(mounts, text);
    snprintf(path, sizeof(path), "%s/cpuset", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/cpuset/cpuset.cpus", dir);
    write_file(path, "0-7\n");
    snprintf(path, sizeof(path), "%s/cpuset/cpuset.mems", dir);
    write_file(path, "0\n");
    /* The parent cgroup exists with empty settings, as a new one has. */
    snprintf(path, sizeof(path), "%s/cpuset/ember", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/cpuset/ember/cpuset.cpus", dir);
    write_file(path, "");
    snprintf(path, sizeof(path), "%s/cpuset/ember/cpuset.mems", dir);
    write_file(path, "");
    /* A real cgroup directory comes with its files; these stand in. */
    snprintf(path, sizeof(path), "%s/cpuset/ember/vm-1", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    const char *files[] = {"cpuset.cpus", "cpuset.mems", "tasks"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/cpuset/ember/vm-1/%s", dir, files[i]);
        write_file(path, "");
    }
    static struct jailer_args a;
    assert_int_equal(parse(&a, REQUIRED " --cgroup cpuset.cpus=2"), 0);
    a.id = "vm-1";
    assert_int_equal(jail_cgroups(&a, "ember", mounts, 4242), 0);
    snprintf(path, sizeof(path), "%s/cpuset/ember/vm-1/cpuset.cpus", dir);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "2\n");
    snprintf(path, sizeof(path), "%s/cpuset/ember/vm-1/cpuset.mems", dir);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "0\n");
    snprintf(path, sizeof(path), "%s/cpuset/ember/cpuset.mems", dir);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "0\n");
    snprintf(path, sizeof(path), "%s/cpuset/ember/vm-1/tasks", dir);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "4242\n");
    /* A controller no hierarchy has. */
    assert_int_equal(parse(&a, REQUIRED " --cgroup memory.limit_in_bytes=1"), 0);
    assert_int_equal(jail_cgroups(&a, "ember", mounts, 4242), -ENOENT);
    assert_non_null(strstr(err_msg(), "no cgroup v1 hierarchy has the 'memory' controller"));
    /* v2 without settings moves only into an existing parent: none here. */
    assert_int_equal(parse(&a, REQUIRED " --cgroup-version 2 --parent-cgroup nothere"), 0);
    assert_int_equal(jail_cgroups(&a, "nothere", mounts, 4242), 0);
    /* v2 with a controller the hierarchy lacks. */
    snprintf(path, sizeof(path), "%s/unified", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/unified/cgroup.controllers", dir);
    write_file(path, "cpu io\n");
    assert_int_equal(parse(&a, REQUIRED " --cgroup-version 2 --cgroup pids.max=9"), 0);
    assert_int_equal(jail_cgroups(&a, "ember", mounts, 4242), -ENOENT);
    assert_non_null(strstr(err_msg(), "no 'pids' controller"));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_everything),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_lib_list),
        cmocka_unit_test(test_elf_interp), cmocka_unit_test(test_cgroup_v1),
    };
    return cmocka_run_group_tests_name("jailer", tests, NULL, NULL);
}

/* Landlock: the rules ember collects (paths merged, a file's directory),
 * what each class means at each ABI version, and, where the kernel has
 * Landlock, a child process restricted to one directory. */
#include "unit.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/landlock.h"

static void test_collect(void **state)
{
    (void)state;
    landlock_reset();
    assert_int_equal(landlock_allow_dir_of("/srv/vm/disk.img", LANDLOCK_FILES), 0);
    assert_int_equal(landlock_allow_dir_of("/srv/vm/other.img", LANDLOCK_RMDIR), 0);
    assert_int_equal(landlock_allow_dir_of("disk.img", LANDLOCK_FILES), 0);
    assert_int_equal(landlock_allow_dir_of("/root.img", LANDLOCK_READ), 0);
    assert_int_equal(landlock_allow_dir_of("a/b/c", LANDLOCK_READ), 0);
    assert_int_equal(landlock_allow("/dev/kvm", LANDLOCK_DEVICE), 0);
    assert_int_equal(landlock_allow(NULL, LANDLOCK_READ), 0);
    assert_int_equal(landlock_allow_dir_of(NULL, LANDLOCK_READ), 0);
    assert_int_equal(landlock_allow("", LANDLOCK_READ), 0);
    assert_int_equal(landlock_rule_count(), 5);
    assert_string_equal(landlock_rule_path(0), "/srv/vm");
    assert_int_equal(landlock_rule_classes(0), LANDLOCK_FILES | LANDLOCK_RMDIR);
    assert_string_equal(landlock_rule_path(1), ".");
    assert_string_equal(landlock_rule_path(2), "/");
    assert_string_equal(landlock_rule_path(3), "a/b");
    assert_string_equal(landlock_rule_path(4), "/dev/kvm");
    assert_null(landlock_rule_path(5));
    for (int i = 0; i < LANDLOCK_MAX_RULES; i++) {
        char p[32];
        snprintf(p, sizeof(p), "/p%d", i);
        int ret = landlock_allow(p, LANDLOCK_READ);
        assert_int_equal(ret, i + 5 < LANDLOCK_MAX_RULES ? 0 : -E2BIG);
    }
    landlock_reset();
    assert_int_equal(landlock_rule_count(), 0);
}

static void test_access(void **state)
{
    (void)state;
    const uint64_t truncate = 1ULL << 14, refer = 1ULL << 13;
    assert_true(landlock_handled(0) == 0);
    assert_true(landlock_handled(1) == 0x1fff);
    assert_true(landlock_handled(2) == (0x1fff | refer));
    assert_true(landlock_handled(3) == (0x1fff | refer | truncate));
    assert_true(landlock_handled(7) == landlock_handled(3)); /* ember asks for no more */
    /* A directory of files at ABI 1: no refer, no truncate (unknown there). */
    uint64_t files1 = landlock_access(LANDLOCK_FILES, 1, true);
    assert_true(files1 & LANDLOCK_ACCESS_FS_MAKE_REG);
    assert_true(files1 & LANDLOCK_ACCESS_FS_REMOVE_FILE);
    assert_false(files1 & (refer | truncate));
    assert_false(files1 & (LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                           LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                           LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM));
    assert_true(landlock_access(LANDLOCK_FILES, 3, true) & truncate);
    /* A file rule carries only rights that apply to a file. */
    assert_true(landlock_access(LANDLOCK_FILES, 3, false) ==
                (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | truncate));
    assert_true(landlock_access(LANDLOCK_DEVICE, 3, false) ==
                (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE));
    assert_true(landlock_access(LANDLOCK_READ, 3, false) == LANDLOCK_ACCESS_FS_READ_FILE);
    assert_true(landlock_access(LANDLOCK_RMDIR, 3, true) == LANDLOCK_ACCESS_FS_REMOVE_DIR);
    /* A shared directory: everything but executing. */
    assert_true(landlock_access(LANDLOCK_TREE, 3, true) ==
                (landlock_handled(3) & ~(uint64_t)LANDLOCK_ACCESS_FS_EXECUTE));
    assert_true(landlock_access(LANDLOCK_TREE, 0, true) == 0);
}

static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* In a child: allow one directory, seal, then what is inside opens and
 * what is outside does not. */
static void test_restrict(void **state)
{
    (void)state;
    if (!landlock_abi()) {
        fprintf(stderr, "SKIPPED LOUDLY: this kernel has no Landlock (landlock_create_ruleset "
                        "failed): the restriction itself is untested here\n");
        skip();
    }
    char dir[] = "/tmp/landlock-test-XXXXXX", inside[64], outside[64];
    assert_non_null(mkdtemp(dir));
    snprintf(inside, sizeof(inside), "%s/in/file", dir);
    snprintf(outside, sizeof(outside), "%s/out", dir);
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/in", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(try_open(outside, O_CREAT | O_WRONLY), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        landlock_reset();
        int bad = landlock_allow_dir_of(inside, LANDLOCK_FILES) || landlock_seal();
        bad |= try_open(inside, O_CREAT | O_WRONLY) != 0;       /* inside: created */
        bad |= (try_open(outside, O_RDONLY) != -EACCES) << 1;   /* outside: refused */
        bad |= (try_open("/etc/passwd", O_RDONLY) != -EACCES) << 2;
        bad |= (unlink(inside) != 0) << 3;                      /* removable inside */
        bad |= (landlock_explain(-EACCES) != -EACCES) << 4;
        _exit(bad);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        fail_msg("restricted child: status %d", status);
    unlink(outside);
    rmdir(sub);
    rmdir(dir);
}

/* Disabled (--no-landlock) or unsealed, nothing changes. */
static void test_disabled(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        landlock_reset();
        landlock_configure(false);
        int bad = landlock_allow("/nonexistent-dir", LANDLOCK_FILES) || landlock_seal();
        bad |= (try_open("/etc/passwd", O_RDONLY) != 0) << 1;
        bad |= (landlock_explain(-EACCES) != -EACCES) << 2;
        _exit(bad);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_restrict),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests_name("landlock", tests, NULL, NULL);
}

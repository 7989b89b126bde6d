#include "util/landlock.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

/* Newer than Debian's headers (ABI 3, Linux 6.2). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif

/* Rights that apply to a file (not only to a directory's entries). */
#define FILE_RIGHTS                                                                         \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                           \
     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)

struct rule {
    char path[PATH_MAX];
    unsigned classes;
};

static bool enabled = true;
static bool sealed;
static bool active; /* a ruleset restricts ember */
static struct rule rules[LANDLOCK_MAX_RULES];
static unsigned nr_rules;

void landlock_configure(bool on)
{
    enabled = on;
}

bool landlock_enabled(void)
{
    return enabled;
}

bool landlock_sealed(void)
{
    return sealed;
}

int landlock_allow(const char *path, unsigned classes)
{
    if (!path || !*path)
        return 0;
    for (unsigned i = 0; i < nr_rules; i++)
        if (!strcmp(rules[i].path, path)) {
            rules[i].classes |= classes;
            return 0;
        }
    if (nr_rules == LANDLOCK_MAX_RULES)
        return err_set(-E2BIG, "Landlock: more than %d paths", LANDLOCK_MAX_RULES);
    if (strlen(path) >= PATH_MAX)
        return err_set(-ENAMETOOLONG, "Landlock: path too long");
    if (sealed)
        log_warn("Landlock: %s comes after the restriction and stays out of reach", path);
    snprintf(rules[nr_rules].path, PATH_MAX, "%s", path);
    rules[nr_rules++].classes = classes;
    return 0;
}

int landlock_allow_dir_of(const char *file, unsigned classes)
{
    if (!file || !*file)
        return 0;
    char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof(dir), "%s", file) >= sizeof(dir))
        return err_set(-ENAMETOOLONG, "Landlock: path too long");
    char *slash = strrchr(dir, '/');
    if (!slash)
        return landlock_allow(".", classes);
    if (slash == dir)
        slash[1] = '\0'; /* "/name": the root */
    else
        *slash = '\0';
    return landlock_allow(dir, classes);
}

unsigned landlock_rule_count(void)
{
    return nr_rules;
}

const char *landlock_rule_path(unsigned i)
{
    return i < nr_rules ? rules[i].path : NULL;
}

unsigned landlock_rule_classes(unsigned i)
{
    return i < nr_rules ? rules[i].classes : 0;
}

void landlock_reset(void)
{
    nr_rules = 0;
    sealed = active = false;
    enabled = true;
}

int landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v > 0 ? (int)v : 0;
}

uint64_t landlock_handled(int abi)
{
    if (abi < 1)
        return 0;
    uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0-12 */
    if (abi >= 2)
        all |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        all |= LANDLOCK_ACCESS_FS_TRUNCATE;
    return all;
}

uint64_t landlock_access(unsigned classes, int abi, bool is_dir)
{
    uint64_t a = 0;
    if (classes & LANDLOCK_READ)
        a |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    if (classes & LANDLOCK_DEVICE)
        a |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
    if (classes & LANDLOCK_FILES)
        a |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
             LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_TRUNCATE |
             LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE |
             LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
             LANDLOCK_ACCESS_FS_REFER;
    if (classes & LANDLOCK_RMDIR)
        a |= LANDLOCK_ACCESS_FS_REMOVE_DIR;
    if (classes & LANDLOCK_TREE)
        a |= landlock_handled(abi) & ~(uint64_t)LANDLOCK_ACCESS_FS_EXECUTE;
    a &= landlock_handled(abi);
    return is_dir ? a : a & FILE_RIGHTS;
}

static int add_rule(int ruleset, const struct rule *r, int abi)
{
    int fd = open(r->path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        log_debug("Landlock: %s does not exist (no rule)", r->path);
        return 0;
    }
    struct stat st;
    int ret = fstat(fd, &st) < 0 ? -errno : 0;
    struct landlock_path_beneath_attr attr = {
        .allowed_access = landlock_access(r->classes, abi, S_ISDIR(st.st_mode)),
        .parent_fd = fd,
    };
    if (!ret && attr.allowed_access &&
        syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0)
        ret = -errno;
    close(fd);
    return ret ? err_errno(ret, "Landlock: cannot add a rule for %s", r->path) : 0;
}

int landlock_seal(void)
{
    if (sealed || !enabled)
        return 0;
    sealed = true;
    int abi = landlock_abi();
    if (!abi) {
        log_info("Landlock: this kernel has none; file access is not restricted");
        return 0;
    }
    struct landlock_ruleset_attr attr = {.handled_access_fs = landlock_handled(abi)};
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0)
        return err_errno(-errno, "Landlock: cannot create a ruleset");
    int ret = 0;
    for (unsigned i = 0; !ret && i < nr_rules; i++)
        ret = add_rule(ruleset, &rules[i], abi);
    if (!ret && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        ret = err_errno(-errno, "Landlock: cannot set no_new_privs");
    if (!ret && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
        ret = err_errno(-errno, "Landlock: cannot restrict ember");
    close(ruleset);
    if (!ret)
        log_info("Landlock (ABI %d): file access limited to %u paths", abi, nr_rules);
    active = !ret;
    return ret;
}

int landlock_explain(int ret)
{
    if (ret != -EACCES || !active)
        return ret;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", err_msg());
    return err_set(ret, "%s (Landlock: once the VM runs, ember reaches only the directories "
                        "of the files it was configured with; --no-landlock lifts that)", msg);
}

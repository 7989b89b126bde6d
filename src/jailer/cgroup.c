#include "jailer/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

/* The mount point of a cgroup hierarchy: v2's unified one (controller
 * NULL), or v1's that carries controller among its options. */
static int find_hierarchy(const char *mounts, unsigned version, const char *controller,
                          char *dir, size_t size)
{
    FILE *f = fopen(mounts, "re");
    if (!f)
        return err_errno(-errno, "cgroup: cannot read %s", mounts);
    char line[4096];
    int ret = -ENOENT;
    while (ret && fgets(line, sizeof(line), f)) {
        char *save = NULL, *src = strtok_r(line, " ", &save);
        char *mnt = strtok_r(NULL, " ", &save), *type = strtok_r(NULL, " ", &save);
        char *opts = strtok_r(NULL, " ", &save);
        if (!src || !mnt || !type || !opts)
            continue;
        if (version == 2 ? strcmp(type, "cgroup2") : strcmp(type, "cgroup"))
            continue;
        bool match = version == 2;
        for (char *o = strtok_r(opts, ",", &save); !match && o; o = strtok_r(NULL, ",", &save))
            match = !strcmp(o, controller);
        if (match && (size_t)snprintf(dir, size, "%s", mnt) < size)
            ret = 0;
    }
    fclose(f);
    if (ret && version == 2)
        return err_set(-ENOENT, "cgroup: no cgroup v2 hierarchy is mounted (%s)", mounts);
    if (ret)
        return err_set(-ENOENT, "cgroup: no cgroup v1 hierarchy has the '%s' controller (%s)",
                       controller, mounts);
    return 0;
}

static int write_line(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return err_errno(-errno, "cgroup: cannot open %s", path);
    char buf[4200];
    int n = snprintf(buf, sizeof(buf), "%s\n", value);
    int ret = n < (int)sizeof(buf) ? write_all(fd, buf, (size_t)n) : -E2BIG;
    close(fd);
    return ret ? err_errno(ret, "cgroup: cannot write '%s' to %s", value, path) : 0;
}

/* The first line of path, newline removed; "" for an empty file. */
static int read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return err_errno(-errno, "cgroup: cannot read %s", path);
    if (!fgets(buf, (int)size, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >= sizeof(tmp))
        return err_set(-ENAMETOOLONG, "cgroup: path too long");
    for (char *p = tmp + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return err_errno(-errno, "cgroup: cannot create %s", tmp);
        if (!saved)
            return 0;
        *p = saved;
    }
}

/* v1: a new cgroup's cpuset.cpus and cpuset.mems start empty, and a task
 * cannot join it then; they are copied down from the nearest ancestor (up
 * to the hierarchy's root) that has them. */
static int inherit_v1(const char *root, const char *dir, const char *file)
{
    char path[PATH_MAX], value[4096] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (read_line(path, value, sizeof(value)) || value[0])
        return 0; /* nothing to copy down (or a file the value sets anyway) */
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s", dir);
    for (;;) {
        char *slash = strrchr(up, '/');
        if (!slash || strlen(up) <= strlen(root))
            return 0;
        *slash = '\0';
        snprintf(path, sizeof(path), "%s/%s", up, file);
        if (!read_line(path, value, sizeof(value)) && value[0])
            break;
    }
    /* Each level between gets it too, top down, or the kernel refuses. */
    size_t top = strlen(up);
    char walk[PATH_MAX];
    snprintf(walk, sizeof(walk), "%s", dir);
    for (char *p = walk + top + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char saved = *p;
        *p = '\0';
        snprintf(path, sizeof(path), "%s/%s", walk, file);
        int ret = write_line(path, value);
        if (ret)
            return ret;
        if (!saved)
            return 0;
        *p = saved;
    }
}

static void pid_text(pid_t pid, char *buf, size_t size)
{
    snprintf(buf, size, "%ld", (long)pid);
}

static int apply_v1(const struct jailer_args *a, const char *parent, const char *mounts,
                    pid_t pid)
{
    char pidbuf[24];
    pid_text(pid, pidbuf, sizeof(pidbuf));
    for (unsigned i = 0; i < a->nr_cgroups; i++) {
        const struct jailer_cgroup *c = &a->cgroups[i];
        char controller[64], root[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
        snprintf(controller, sizeof(controller), "%.*s", (int)strcspn(c->file, "."), c->file);
        int ret = find_hierarchy(mounts, 1, controller, root, sizeof(root));
        if (ret)
            return ret;
        if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%s", root, parent, a->id) >= sizeof(dir))
            return err_set(-ENAMETOOLONG, "cgroup: path too long");
        if ((ret = mkdir_p(dir)))
            return ret;
        if (!strcmp(controller, "cpuset")) {
            if ((ret = inherit_v1(root, dir, "cpuset.cpus")) ||
                (ret = inherit_v1(root, dir, "cpuset.mems")))
                return ret;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, c->file);
        if ((ret = write_line(path, c->value)))
            return ret;
        snprintf(path, sizeof(path), "%s/tasks", dir);
        if ((ret = write_line(path, pidbuf)))
            return ret;
    }
    return 0;
}

/* "+controller" in the subtree_control of every directory from the
 * hierarchy's root down to dir (those that have one). */
static int enable_v2_controller(const char *root, const char *dir, const char *controller)
{
    char walk[PATH_MAX], path[PATH_MAX], plus[80];
    snprintf(walk, sizeof(walk), "%s", dir);
    snprintf(plus, sizeof(plus), "+%s", controller);
    size_t top = strlen(root);
    for (char *p = walk + top;; p++) {
        if (*p && *p != '/')
            continue;
        char saved = *p;
        *p = '\0';
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", walk);
        struct stat st;
        if (stat(path, &st) == 0) {
            int ret = write_line(path, plus);
            if (ret)
                return ret;
        }
        if (!saved)
            return 0;
        *p = saved;
    }
}

static bool v2_has_controller(const char *root, const char *controller)
{
    char path[PATH_MAX], list[4096];
    snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
    if (read_line(path, list, sizeof(list)))
        return false;
    char *save = NULL;
    for (char *c = strtok_r(list, " ", &save); c; c = strtok_r(NULL, " ", &save))
        if (!strcmp(c, controller))
            return true;
    return false;
}

static int apply_v2(const struct jailer_args *a, const char *parent, const char *mounts,
                    pid_t pid)
{
    char root[PATH_MAX], dir[PATH_MAX], path[PATH_MAX], pidbuf[24];
    pid_text(pid, pidbuf, sizeof(pidbuf));
    int ret = find_hierarchy(mounts, 2, NULL, root, sizeof(root));
    if (ret)
        return ret;
    if (!a->nr_cgroups) {
        /* Only a move into a cgroup made beforehand, if there is one. */
        snprintf(dir, sizeof(dir), "%s/%s", root, parent);
        struct stat st;
        if (stat(dir, &st) < 0)
            return 0;
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        ret = write_line(path, pidbuf);
        return ret ? err_prefix(ret, "cannot move the process into %s (to create a cgroup "
                                     "under it, pass --cgroup settings)", dir)
                   : 0;
    }
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%s", root, parent, a->id) >= sizeof(dir))
        return err_set(-ENAMETOOLONG, "cgroup: path too long");
    if ((ret = mkdir_p(dir)))
        return ret;
    for (unsigned i = 0; i < a->nr_cgroups; i++) {
        const struct jailer_cgroup *c = &a->cgroups[i];
        char controller[64];
        snprintf(controller, sizeof(controller), "%.*s", (int)strcspn(c->file, "."), c->file);
        if (!v2_has_controller(root, controller))
            return err_set(-ENOENT, "cgroup: the v2 hierarchy at %s has no '%s' controller",
                           root, controller);
        char up[PATH_MAX];
        snprintf(up, sizeof(up), "%s", dir);
        *strrchr(up, '/') = '\0';
        if ((ret = enable_v2_controller(root, up, controller)))
            return ret;
        snprintf(path, sizeof(path), "%s/%s", dir, c->file);
        if ((ret = write_line(path, c->value)))
            return ret;
    }
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    return write_line(path, pidbuf);
}

int jail_cgroups(const struct jailer_args *a, const char *parent, const char *mounts, pid_t pid)
{
    if (a->cgroup_version == 2)
        return apply_v2(a, parent, mounts, pid);
    return a->nr_cgroups ? apply_v1(a, parent, mounts, pid) : 0;
}

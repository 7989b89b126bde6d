#include "jailer/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "jailer/cgroup.h"
#include "jailer/libs.h"
#include "util/fileio.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

uint64_t jail_clock_us(int clock)
{
    struct timespec ts;
    clock_gettime((clockid_t)clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void jail_sanitize_process(void)
{
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_UNSHARE) < 0)
        for (int fd = 3; fd < 65536; fd++)
            close(fd);
    clearenv();
}

/* /proc/misc names userfaultfd's minor when the kernel has the device. */
static int userfaultfd_minor(void)
{
    FILE *f = fopen("/proc/misc", "re");
    if (!f)
        return -1;
    int minor = -1, m;
    char name[64];
    while (fscanf(f, "%d %63s", &m, name) == 2)
        if (!strcmp(name, "userfaultfd"))
            minor = m;
    fclose(f);
    return minor;
}

int jail_prepare(struct jail *j, const struct jailer_args *a)
{
    memset(j, 0, sizeof(*j));
    j->args = a;
    j->start_us = jail_clock_us(CLOCK_MONOTONIC);
    j->start_cpu_us = jail_clock_us(CLOCK_PROCESS_CPUTIME_ID);
    struct stat st;
    if (!realpath(a->exec_file, j->exec_path))
        return err_errno(-errno, "--exec-file: %s", a->exec_file);
    if (stat(j->exec_path, &st) < 0 || !S_ISREG(st.st_mode))
        return err_set(-EINVAL, "--exec-file: %s is not a file", j->exec_path);
    j->exec_name = strrchr(j->exec_path, '/') + 1;
    char base[PATH_MAX];
    if (!realpath(a->chroot_base, base))
        return err_errno(-errno, "--chroot-base-dir: %s", a->chroot_base);
    if (stat(base, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(-ENOTDIR, "--chroot-base-dir: %s is not a directory", base);
    if ((size_t)snprintf(j->chroot_dir, sizeof(j->chroot_dir), "%s/%s/%s/root",
                         strcmp(base, "/") ? base : "", j->exec_name, a->id) >=
        sizeof(j->chroot_dir))
        return err_set(-ENAMETOOLONG, "the jail's path is too long");
    j->uffd_minor = userfaultfd_minor();
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return err_errno(-errno, "cannot create %s", tmp);
        if (!saved)
            return 0;
        *p = saved;
    }
}

/* The program, copied so no two jails share its pages or can change it for
 * another, owned by the jail's user. */
static int copy_program(struct jail *j)
{
    char dst[PATH_MAX];
    struct stat st;
    snprintf(dst, sizeof(dst), "%s/%s", j->chroot_dir, j->exec_name);
    if (stat(j->exec_path, &st) < 0)
        return err_errno(-errno, "cannot stat %s", j->exec_path);
    int ret = jail_copy_file(j->exec_path, dst, st.st_mode & 07777);
    if (!ret && chown(dst, j->args->uid, j->args->gid) < 0)
        ret = err_errno(-errno, "cannot change the owner of %s", dst);
    return ret ? ret : jail_copy_libraries(j->exec_path, j->chroot_dir);
}

static int join_netns(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "--netns: cannot open %s", path);
    int ret = setns(fd, CLONE_NEWNET) < 0 ? err_errno(-errno, "--netns: cannot join %s", path)
                                          : 0;
    close(fd);
    return ret;
}

static int set_limits(const struct jailer_args *a)
{
    struct rlimit nofile = {a->no_file, a->no_file};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return err_errno(-errno, "--resource-limit no-file=%llu",
                         (unsigned long long)a->no_file);
    struct rlimit fsize = {a->fsize, a->fsize};
    if (a->has_fsize && setrlimit(RLIMIT_FSIZE, &fsize) < 0)
        return err_errno(-errno, "--resource-limit fsize=%llu", (unsigned long long)a->fsize);
    return 0;
}

/* A mount namespace of its own whose root is the jail: the host's mounts
 * stop propagating in (slave), the jail is bound onto itself (so it is a
 * mount point, with whatever was mounted inside it), becomes the root, and
 * the old root is detached. */
static int enter_jail(const char *dir)
{
    if (unshare(CLONE_NEWNS) < 0)
        return err_errno(-errno, "cannot make a mount namespace");
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return err_errno(-errno, "cannot make / a slave mount");
    if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
        return err_errno(-errno, "cannot bind %s onto itself", dir);
    if (chdir(dir) < 0)
        return err_errno(-errno, "cannot enter %s", dir);
    if (mkdir("old_root", 0600) < 0)
        return err_errno(-errno, "cannot create %s/old_root", dir);
    if (syscall(SYS_pivot_root, ".", "old_root") < 0)
        return err_errno(-errno, "pivot_root to %s", dir);
    if (chdir("/") < 0 || umount2("old_root", MNT_DETACH) < 0)
        return err_errno(-errno, "cannot detach the old root");
    if (rmdir("old_root") < 0)
        return err_errno(-errno, "cannot remove /old_root");
    return 0;
}

static int own(const char *path, const struct jailer_args *a)
{
    if (chown(path, a->uid, a->gid) < 0)
        return err_errno(-errno, "cannot change the owner of %s", path);
    return 0;
}

/* Inside the jail: its directories (its user's alone) and device nodes.
 * /tmp is ember's addition to Firecracker's list: the metadata service's
 * socket directory and --rootfs's control directory are made there. */
static int populate_jail(const struct jail *j)
{
    static const char *const dirs[] = {"/", "/dev", "/dev/net", "/run", "/tmp"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        int ret = mkdir_p(dirs[i], 0700);
        if (!ret && chmod(dirs[i], 0700) < 0)
            ret = err_errno(-errno, "cannot chmod %s", dirs[i]);
        if (ret || (ret = own(dirs[i], j->args)))
            return ret;
    }
    struct node {
        const char *path;
        unsigned major, minor;
        bool optional;
    } nodes[] = {
        {"/dev/net/tun", 10, 200, false},
        {"/dev/kvm", 10, 232, false},
        {"/dev/urandom", 1, 9, true},
        {"/dev/userfaultfd", 10, (unsigned)j->uffd_minor, false},
    };
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        const struct node *n = &nodes[i];
        if (n->major == 10 && n->minor == (unsigned)-1)
            continue; /* no userfaultfd device on this kernel */
        if (mknod(n->path, S_IFCHR | S_IRUSR | S_IWUSR, makedev(n->major, n->minor)) < 0) {
            int ret = err_errno(-errno, "cannot create %s", n->path);
            if (n->optional) {
                fprintf(stderr, "ember-jailer: warning: %s\n", err_msg());
                continue;
            }
            return ret;
        }
        int ret = own(n->path, j->args);
        if (ret)
            return ret;
    }
    return 0;
}

/* --daemonize: in a new session, a grandchild of the jailer (so it can
 * never get a controlling terminal again), with /dev/null for stdio. */
static int daemonize(int dev_null)
{
    pid_t pid = fork();
    if (pid < 0)
        return err_errno(-errno, "--daemonize: fork");
    if (pid)
        _exit(0);
    if (setsid() < 0)
        return err_errno(-errno, "--daemonize: setsid");
    if ((pid = fork()) < 0)
        return err_errno(-errno, "--daemonize: fork");
    if (pid)
        _exit(0);
    for (int fd = 0; fd < 3; fd++)
        if (dup2(dev_null, fd) < 0)
            return err_errno(-errno, "--daemonize: dup2");
    close(dev_null);
    return 0;
}

/* <exec name>.pid beside the program, so whoever started the jail can find
 * the process whatever forks happened. With --daemonize the jailer has
 * returned before this runs, and its caller polls for the file: it appears
 * whole (written under another name, then renamed), never empty. */
static int write_pid_file(const struct jail *j, pid_t pid)
{
    char path[PATH_MAX], tmp[PATH_MAX], text[24];
    snprintf(path, sizeof(path), "/%s.pid", j->exec_name);
    snprintf(tmp, sizeof(tmp), "/.%s.pid.new", j->exec_name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_errno(-errno, "cannot create %s", tmp);
    int n = snprintf(text, sizeof(text), "%ld", (long)pid);
    int ret = write_all(fd, text, (size_t)n);
    close(fd);
    if (ret) {
        unlink(tmp);
        return err_errno(ret, "cannot write %s", tmp);
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
        ret = -errno;
        unlink(tmp);
        return err_errno(ret, "cannot create %s", path);
    }
    return 0;
}

static int drop_privileges(const struct jailer_args *a)
{
    if (setgroups(0, NULL) < 0)
        return err_errno(-errno, "setgroups");
    if (setresgid(a->gid, a->gid, a->gid) < 0)
        return err_errno(-errno, "cannot switch to group %u", (unsigned)a->gid);
    if (setresuid(a->uid, a->uid, a->uid) < 0)
        return err_errno(-errno, "cannot switch to user %u", (unsigned)a->uid);
    return 0;
}

/* /<exec name> --id ID --start-time-us T --start-time-cpu-us C
 * --parent-cpu-time-us P, then the arguments after "--". */
static int exec_program(const struct jail *j, uint64_t jailer_cpu_us)
{
    const struct jailer_args *a = j->args;
    int ret = drop_privileges(a);
    if (ret)
        return ret;
    char path[PATH_MAX], start[24], start_cpu[24], parent_cpu[24];
    snprintf(path, sizeof(path), "/%s", j->exec_name);
    snprintf(start, sizeof(start), "%llu", (unsigned long long)j->start_us);
    snprintf(start_cpu, sizeof(start_cpu), "%llu",
             (unsigned long long)jail_clock_us(CLOCK_PROCESS_CPUTIME_ID));
    snprintf(parent_cpu, sizeof(parent_cpu), "%llu", (unsigned long long)jailer_cpu_us);
    char *fixed[] = {path, "--id", (char *)a->id, "--start-time-us", start,
                     "--start-time-cpu-us", start_cpu, "--parent-cpu-time-us", parent_cpu};
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    char **argv = calloc(nfixed + (size_t)a->nr_extra + 1, sizeof(char *));
    if (!argv)
        return err_set(-ENOMEM, "out of memory");
    memcpy(argv, fixed, sizeof(fixed));
    for (int i = 0; i < a->nr_extra; i++)
        argv[nfixed + (size_t)i] = a->extra[i];
    char *envp[] = {NULL};
    execve(path, argv, envp);
    ret = err_errno(-errno, "cannot run %s in the jail", path);
    free(argv);
    return ret;
}

/* --new-pid-ns: the program runs as init of a new PID namespace; the
 * jailer notes its PID and leaves. */
static int exec_in_new_pid_ns(const struct jail *j, uint64_t jailer_cpu_us)
{
    /* A session leader's child starts its own session, as the leader
     * would have been (the jailer's exit must not orphan its terminal). */
    bool leader = !j->args->daemonize && getsid(0) == getpid();
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid < 0)
        return err_errno(-errno, "--new-pid-ns: clone");
    if (pid == 0) {
        if (leader && setsid() < 0)
            return err_errno(-errno, "setsid");
        return exec_program(j, jailer_cpu_us);
    }
    int ret = write_pid_file(j, pid);
    if (ret)
        return ret;
    _exit(0);
}

int jail_run(struct jail *j)
{
    const struct jailer_args *a = j->args;
    int ret = mkdir_p(j->chroot_dir, 0755);
    if (ret || (ret = copy_program(j)))
        return ret;
    if (a->netns && (ret = join_netns(a->netns)))
        return ret;
    if ((ret = set_limits(a)) ||
        (ret = jail_cgroups(a, a->parent_cgroup ? a->parent_cgroup : j->exec_name,
                            "/proc/mounts", getpid())))
        return ret;
    int dev_null = -1;
    if (a->daemonize && (dev_null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        return err_errno(-errno, "cannot open /dev/null");
    if ((ret = enter_jail(j->chroot_dir)) || (ret = populate_jail(j)))
        return ret;
    uint64_t jailer_cpu_us = jail_clock_us(CLOCK_PROCESS_CPUTIME_ID) - j->start_cpu_us;
    if (a->daemonize && (ret = daemonize(dev_null)))
        return ret;
    if (a->new_pid_ns)
        return exec_in_new_pid_ns(j, jailer_cpu_us);
    if ((ret = write_pid_file(j, getpid())))
        return ret;
    return exec_program(j, jailer_cpu_us);
}

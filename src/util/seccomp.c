#include "util/seccomp.h"
#include "util/seccomp_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* --- the allow-lists ---------------------------------------------------------
 * Found by running guests under strace, not by guessing: 'strace -f -ff -o
 * trace ember run --no-seccomp ...' with disks, user networking, vsock, rng,
 * the API and a snapshot, then counting each trace file's calls (one file per
 * thread; its first lines or /proc/PID/task/TID/comm say which). A call a
 * device makes only on some path must be here too: a trap ends ember. Names,
 * not numbers, so the lists read as what they are; a name this libseccomp
 * does not know is skipped (a newer call an older glibc never makes). */

/* Every thread: the C library's own needs (memory, locks, signals, time,
 * threads ending) and plain I/O on descriptors it already holds. */
static const char *const common_calls[] = {
    "read", "write", "readv", "writev", "close", "lseek", "fstat", "newfstatat",
    "poll", "ppoll", "futex", "mmap", "munmap", "mprotect", "madvise", "mremap", "brk",
    "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "sched_yield",
    "getpid", "gettid", "tgkill", "getrandom", "set_robust_list", "rseq",
    "exit", "exit_group",
};

/* A vCPU handles port and MMIO exits synchronously: device registers, and
 * through them queue work and backends (a notification written without an
 * ioeventfd is handled right there), MSI-X vectors bound to new irqfds when
 * the guest enables them, and kicks of other vCPUs. Never a new file,
 * socket, thread or program. */
static const char *const vcpu_calls[] = {
    "ioctl", "epoll_ctl", "io_uring_enter", "sendmsg", "recvmsg", "sendto", "recvfrom",
    "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "fsync", "fdatasync",
    "fallocate", "fcntl", "timerfd_settime", "timerfd_gettime", "eventfd2",
};

/* libslirp: its poll loop, and the host sockets of the guest's connections
 * (made here or, for a guest's first packet, on the loop); it reads
 * /etc/resolv.conf when the guest first asks for DNS (read-only, below). */
static const char *const slirp_calls[] = {
    "socket", "connect", "bind", "listen", "accept", "accept4", "setsockopt", "getsockopt",
    "getsockname", "getpeername", "shutdown", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "fcntl", "ioctl", "epoll_wait", "epoll_pwait", "uname",
};

/* The event loop: everything the API can ask for at run time (snapshots
 * written through temporary files, drives and logger/metrics files opened,
 * sockets, TAP and vsock I/O, disk completions), the vCPU threads it starts
 * (clone) and whatever they may do (filters stack), and tearing it all
 * down. Not execve, ptrace, mount, namespaces, module loading, bpf... */
static const char *const main_calls[] = {
    "openat", "open", "socket", "connect", "bind", "listen", "accept", "accept4",
    "setsockopt", "getsockopt", "getsockname", "getpeername", "shutdown", "socketpair",
    "epoll_create1", "epoll_wait", "epoll_pwait", "epoll_ctl", "eventfd2", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "signalfd4", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "clone", "clone3", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "ftruncate", "fallocate", "fsync", "fdatasync", "flock", "fcntl", "dup",
    "dup2", "dup3", "pipe2", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
    "umask", "chmod", "fchmod", "fchmodat", "getdents64", "statfs", "fstatfs", "statx",
    "prlimit64", "getrlimit", "setrlimit", "sched_getaffinity", "uname", "getuid", "geteuid",
    "getgid", "getegid", "getcwd", "sysinfo", "clock_getres", "getrusage", "times",
    "rt_sigaction", "ioctl", "sendmsg", "recvmsg", "sendto", "recvfrom", "pread64",
    "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    /* a restore from a page-fault handler (Uffd): the userfaultfd, the
     * handler's process, and the watcher's progress reads (filters stack) */
    "userfaultfd", "pidfd_open", "mincore",
};

/* A virtio-fs worker: the FUSE server's file operations, on descriptors
 * beneath the share (openat2 with RESOLVE_BENEATH; reopening its own O_PATH
 * descriptors through /proc/self/fd). Not socket, connect, execve, clone. */
static const char *const fs_calls[] = {
    "openat", "openat2", "mkdirat", "mknodat", "symlinkat", "linkat", "unlinkat", "renameat", "renameat2",
    "readlinkat", "fchownat", "fchown", "fchmodat", "fchmodat2", "fchmod", "utimensat", "ftruncate",
    "fallocate", "fsync", "fdatasync", "getdents64", "fstatfs", "statx", "pread64", "pwrite64",
    "preadv", "pwritev", "preadv2", "pwritev2", "copy_file_range", "fgetxattr", "fsetxattr",
    "flistxattr", "fremovexattr", "fcntl",
};

/* The Uffd backend's watcher: polls the handler's pidfd and socket, reads
 * and drops what the handler writes, counts resident guest pages, and on a
 * dead handler restores the terminal (ioctl) before ending ember. */
static const char *const uffd_calls[] = {"mincore", "ioctl"};

struct thread_kind {
    const char *name;
    const char *const *calls;
    size_t nr_calls;
    bool read_only_open; /* openat allowed for O_RDONLY only */
};


static const struct thread_kind kinds[SECCOMP_NR_THREADS] = {
    [SECCOMP_MAIN] = {"main", main_calls, ARRAY_SIZE(main_calls), false},
    [SECCOMP_VCPU] = {"vcpu", vcpu_calls, ARRAY_SIZE(vcpu_calls), false},
    [SECCOMP_CONSOLE] = {"console", NULL, 0, false},
    [SECCOMP_SLIRP] = {"slirp", slirp_calls, ARRAY_SIZE(slirp_calls), true},
    [SECCOMP_TIMER] = {"timer", NULL, 0, false},
    [SECCOMP_FS] = {"fs", fs_calls, ARRAY_SIZE(fs_calls), false},
    [SECCOMP_UFFD] = {"uffd", uffd_calls, ARRAY_SIZE(uffd_calls), false},
};

/* --- state ----------------------------------------------------------------- */

static bool enabled;
static int selftest = -1; /* the thread kind that tries a forbidden call */
static void (*before_exit_fn)(void);
/* Which filter this thread has, for the SIGSYS handler (-1: none of its
 * own; it runs under its creator's). */
static _Thread_local int thread_kind = -1;

const char *seccomp_thread_name(enum seccomp_thread kind)
{
    return (unsigned)kind < SECCOMP_NR_THREADS ? kinds[kind].name : NULL;
}

bool seccomp_enabled(void)
{
    return enabled;
}

/* --- the SIGSYS handler (async-signal-safe: no stdio, no malloc) ------------ */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at < cap)
        buf[at++] = digits[--n];
    return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)uctx;
    char line[256];
    const size_t cap = sizeof(line) - 1;
    int kind = thread_kind;
    /* libseccomp's name table is static data: a lookup, no allocation. */
    const char *name = seccomp_syscall_resolve_num_arch(si->si_arch, si->si_syscall);
    size_t at = put_str(line, 0, cap, "\r\nember: seccomp: the ");
    at = put_str(line, at, cap, kind >= 0 ? kinds[kind].name : "main");
    at = put_str(line, at, cap, " thread made a forbidden system call: ");
    at = put_str(line, at, cap, name ? name : "unknown");
    at = put_str(line, at, cap, " (");
    at = put_uint(line, at, cap, (unsigned long)(unsigned)si->si_syscall);
    at = put_str(line, at, cap, "); stopping with exit status ");
    at = put_uint(line, at, cap, SECCOMP_EXIT_STATUS);
    at = put_str(line, at, cap, "\r\n");
    if (before_exit_fn)
        before_exit_fn();
    ssize_t ignored = write(STDERR_FILENO, line, at);
    (void)ignored;
    _exit(SECCOMP_EXIT_STATUS);
}

/* --- setup ------------------------------------------------------------------ */

int seccomp_setup(bool on, const char *selftest_kind, void (*before_exit)(void))
{
    before_exit_fn = before_exit;
    selftest = -1;
    for (int k = 0; selftest_kind && k < SECCOMP_NR_THREADS; k++)
        if (!strcmp(selftest_kind, kinds[k].name))
            selftest = k;
    if (selftest_kind && selftest < 0)
        return err_set(-EINVAL, "--seccomp-selftest: unknown thread kind '%s'", selftest_kind);
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer stops the threads at exit with ptrace from a clone of
     * the exiting thread: it cannot run under these filters. */
    if (on)
        log_info("seccomp: no filters in a sanitizer build");
    on = false;
#endif
    enabled = on;
    if (!on)
        return 0;
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 || seccomp_api_get() < 1)
        return err_set(-ENOSYS, "seccomp: this kernel cannot filter system calls "
                                "(--no-seccomp runs without filters)");
    /* glibc reads the time zone file on its first time conversion (the RTC
     * model's gmtime_r, on a vCPU): read it now, while files may be opened. */
    tzset();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return err_errno(-errno, "seccomp: cannot install the SIGSYS handler");
    return 0;
}

static int add_calls(scmp_filter_ctx ctx, const char *const *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(calls[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* unknown to this libseccomp: nobody makes it */
        int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (ret < 0)
            return err_set(ret, "seccomp: cannot allow %s: %s", calls[i], strerror(-ret));
    }
    return 0;
}

/* SCMP_A0() and friends leave fields to the compiler: spelled out. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
                                   scmp_datum_t b)
{
    return (struct scmp_arg_cmp){.arg = arg, .op = op, .datum_a = a, .datum_b = b};
}

/* The main thread installs every other thread's filter from beneath its
 * own: it may set no_new_privs and load a program (both only narrow). */
static int allow_filter_install(scmp_filter_ctx ctx, uint32_t action)
{
    static const int prctl_ops[] = {PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_GET_SECCOMP};
    int ret = 0;
    for (size_t i = 0; !ret && i < ARRAY_SIZE(prctl_ops); i++)
        ret = seccomp_rule_add(ctx, action, SCMP_SYS(prctl), 1,
                               arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)prctl_ops[i], 0));
    if (!ret)
        ret = seccomp_rule_add(ctx, action, SCMP_SYS(seccomp), 0);
    return ret == -EEXIST ? 0 : ret; /* a file's own rule already allows it */
}

/* What the SIGSYS handler needs to report a trap and end ember, whatever a
 * file's filter says: a write to stderr, exit_group. */
static int allow_trap_report(scmp_filter_ctx ctx)
{
    int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                               arg_cmp(0, SCMP_CMP_EQ, STDERR_FILENO, 0));
    if (!ret || ret == -EEXIST)
        ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
    return ret == -EEXIST ? 0 : ret;
}

/* A filter from --seccomp-filter's file, as written, plus (unless its
 * default allows everything) the trap report's calls and, for the main
 * thread, the filter-install calls above. */
static int build_custom(scmp_filter_ctx *out, enum seccomp_thread kind)
{
    const struct seccomp_custom *c = &seccomp_custom[kind];
    scmp_filter_ctx ctx = seccomp_init(c->default_action);
    if (!ctx)
        return err_set(-ENOMEM, "seccomp: out of memory");
    int ret = 0;
    for (size_t i = 0; !ret && i < c->nr_rules; i++) {
        const struct seccomp_rule *r = &c->rules[i];
        ret = seccomp_rule_add_array(ctx, c->filter_action, r->nr, r->nr_args, r->args);
        if (ret) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
            err_set(ret, "seccomp: --seccomp-filter's %s rule %zu (%s): %s",
                    kinds[kind].name, i, name ? name : "?", strerror(-ret));
            free(name);
        }
    }
    if (!ret && c->default_action != SCMP_ACT_ALLOW && (ret = allow_trap_report(ctx)))
        err_set(ret, "seccomp: cannot allow the trap report's calls: %s", strerror(-ret));
    if (!ret && kind == SECCOMP_MAIN && c->default_action != SCMP_ACT_ALLOW &&
        (ret = allow_filter_install(ctx, SCMP_ACT_ALLOW)))
        err_set(ret, "seccomp: cannot allow the filter-install calls: %s", strerror(-ret));
    if (ret)
        seccomp_release(ctx);
    else
        *out = ctx;
    return ret;
}

static int build_and_load(enum seccomp_thread kind)
{
    if (seccomp_custom[kind].set) {
        scmp_filter_ctx ctx = NULL;
        int ret = build_custom(&ctx, kind);
        if (ret)
            return ret;
        if ((ret = seccomp_load(ctx)) < 0)
            err_set(ret, "seccomp: cannot install the %s thread's filter from "
                         "--seccomp-filter: %s", kinds[kind].name, strerror(-ret));
        seccomp_release(ctx);
        return ret;
    }
    const struct thread_kind *k = &kinds[kind];
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return err_set(-ENOMEM, "seccomp: out of memory");
    int ret = add_calls(ctx, common_calls, ARRAY_SIZE(common_calls));
    if (!ret)
        ret = add_calls(ctx, k->calls, k->nr_calls);
    /* The main thread's filter stays under every thread it creates, and
     * those add their own: it must allow what any of them does. */
    for (int other = 0; !ret && kind == SECCOMP_MAIN && other < SECCOMP_NR_THREADS; other++)
        ret = add_calls(ctx, kinds[other].calls, kinds[other].nr_calls);
    /* A thread the main thread starts installs its own filter under the
     * main one: libseccomp sets no_new_privs, then loads the program. Both
     * calls only ever narrow what a thread may do. */
    if (!ret && kind == SECCOMP_MAIN && (ret = allow_filter_install(ctx, SCMP_ACT_ALLOW)))
        err_set(ret, "seccomp: cannot allow the filter-install calls: %s", strerror(-ret));
    if (!ret && k->read_only_open &&
        (ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                                arg_cmp(2, SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDONLY))) < 0)
        err_set(ret, "seccomp: cannot allow read-only openat: %s", strerror(-ret));
    if (!ret && (ret = seccomp_load(ctx)) < 0)
        err_set(ret, "seccomp: cannot install the %s thread's filter: %s", k->name,
                strerror(-ret));
    seccomp_release(ctx);
    /* libseccomp's build peaks at some 350 KiB, all freed now: give the
     * pages back rather than keep them for the VM's life. Only under
     * ember's own lists, which allow what the trim calls (brk, madvise);
     * an operator's --seccomp-filter need not. */
    if (!ret)
        malloc_trim(0);
    return ret;
}

int seccomp_enter(enum seccomp_thread kind)
{
    if (!enabled || thread_kind == (int)kind)
        return 0;
    if ((unsigned)kind >= SECCOMP_NR_THREADS)
        return err_set(-EINVAL, "seccomp: no thread kind %d", (int)kind);
    /* A trap is a signal: one blocked in this thread (libslirp's, the
     * timer's threads start with signals blocked) would kill ember without
     * a word. */
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
    /* Named before loading: a trap while loading (the calls libseccomp
     * makes, under an inherited filter) is this thread's. */
    int before = thread_kind;
    thread_kind = kind;
    int ret = build_and_load(kind);
    if (ret) {
        thread_kind = before;
        return ret;
    }
    if (selftest == (int)kind) /* harmless if it ran: it only asks */
        syscall(SYS_personality, 0xffffffffUL);
    return 0;
}

void seccomp_enter_or_exit(enum seccomp_thread kind)
{
    if (seccomp_enter(kind)) {
        log_error("%s", err_msg());
        if (before_exit_fn)
            before_exit_fn();
        _exit(1);
    }
}

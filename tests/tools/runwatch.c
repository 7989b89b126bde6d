/* runwatch: run a command with its output relayed, and act on what it prints.
 *
 *   runwatch [--pty] [--when PATTERN --send BYTES | --when PATTERN --signal SIG]...
 *            [--stamp PATTERN]... [--timeout SEC] -- COMMAND [ARG]...
 *
 * --pty       the command runs on a new pseudo-terminal (its controlling tty);
 *             afterwards runwatch reports whether the terminal's settings are
 *             what they were before ("runwatch: terminal restored").
 * --when/--send    when PATTERN first appears in the output, write BYTES
 *                  (C escapes: \n \r \xNN) to the command's input.
 * --when/--signal  ... or send it signal SIG (TERM, INT, HUP, KILL, number).
 * --stamp     print "runwatch: stamp <ms> PATTERN" when PATTERN first appears,
 *             ms counted from just before the command was started.
 * --guest-mem MIB  every 250 ms, find the process (the command or a child of it)
 *             with a mapping of about MIB (guest RAM) and record its resident
 *             set without that mapping: the VMM's own memory. At the end:
 *             "runwatch: memory overhead <KiB> guest <KiB> samples <N>" (the
 *             largest overhead seen, and the guest RAM resident then).
 * At the end: "runwatch: exited <ms> status <N> maxrss <KiB>" (the command's
 * peak resident set size, from wait4).
 * Exit status: the command's (128+N if killed by signal N).
 * A test tool for ember's integration tests and benchmark; not part of ember. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Reading a VMM's smaps costs CPU the guest would use: not too often. */
#define SAMPLE_MS 250
#define MAX_RULES 16
#define WINDOW 4096

struct rule {
    const char *pattern;
    char bytes[256];
    size_t nbytes;
    int signal; /* 0: send bytes */
    bool stamp;
    bool done;
};

static struct rule rules[MAX_RULES];
static int nrules;
static char window[WINDOW * 2];
static size_t window_len;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t unescape(const char *in, char *out, size_t max)
{
    size_t n = 0;
    for (; *in && n < max; in++) {
        if (*in != '\\' || !in[1]) {
            out[n++] = *in;
            continue;
        }
        in++;
        switch (*in) {
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'x': {
            char hex[3] = {in[1], in[1] ? in[2] : 0, 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            in += 2;
            break;
        }
        default: out[n++] = *in; break;
        }
    }
    return n;
}

static int parse_signal(const char *name)
{
    static const struct { const char *name; int sig; } sigs[] = {
        {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"KILL", SIGKILL},
        {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (!strcmp(name, sigs[i].name))
            return sigs[i].sig;
    return atoi(name);
}

/* --- the VMM's own memory, sampled from /proc --- */

static long guest_kib;          /* 0: not sampling */
static long overhead_max = -1, guest_at_max;
static int samples;

/* Resident KiB of the whole process and of its guest-RAM mapping (-1 if it
 * has none). */
static void sample_process(pid_t pid, long *total, long *guest)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(path, "r");
    *total = 0;
    *guest = -1;
    if (!f)
        return;
    bool in_guest = false;
    long size;
    while (fgets(line, sizeof(line), f)) {
        long kib;
        if (sscanf(line, "Size: %ld kB", &size) == 1)
            in_guest = size >= guest_kib && size <= guest_kib + 8192;
        else if (sscanf(line, "Rss: %ld kB", &kib) == 1) {
            *total += kib;
            if (in_guest && kib > *guest)
                *guest = kib;
        }
    }
    fclose(f);
}

static bool is_child_of(pid_t pid, pid_t parent)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    int ppid = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "PPid: %d", &ppid) == 1)
            break;
    if (f)
        fclose(f);
    return ppid == parent;
}

static void sample_memory(pid_t child)
{
    pid_t pids[64];
    int n = 0;
    pids[n++] = child;
    DIR *proc = opendir("/proc");
    for (struct dirent *d; proc && (d = readdir(proc)) && n < 64;) {
        pid_t pid = (pid_t)atoi(d->d_name);
        if (pid > 0 && pid != child && is_child_of(pid, child))
            pids[n++] = pid;
    }
    if (proc)
        closedir(proc);
    for (int i = 0; i < n; i++) {
        long total, guest;
        sample_process(pids[i], &total, &guest);
        if (guest < 0)
            continue;
        samples++;
        if (total - guest > overhead_max) {
            overhead_max = total - guest;
            guest_at_max = guest;
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: runwatch [--pty] [--when PAT (--send BYTES|--signal SIG)]... "
                    "[--stamp PAT]... [--timeout SEC] [--guest-mem MIB] -- COMMAND [ARG]...\n");
    exit(2);
}

static void check_rules(int in_fd, pid_t child, double t0)
{
    for (int i = 0; i < nrules; i++) {
        struct rule *r = &rules[i];
        if (r->done || !memmem(window, window_len, r->pattern, strlen(r->pattern)))
            continue;
        r->done = true;
        if (r->stamp) {
            fprintf(stderr, "runwatch: stamp %.1f %s\n", now_ms() - t0, r->pattern);
        } else if (r->signal) {
            kill(child, r->signal);
        } else if (write(in_fd, r->bytes, r->nbytes) < 0) {
            perror("runwatch: write");
        }
    }
}

/* The output so far, at least its last WINDOW bytes before 'buf': a
 * pattern split between two reads is still found. (A full read used to
 * replace the window, and a pattern it cut in two was never seen: the
 * stamps missed the guest's init line in some fast engine boots.) */
static void window_add(const char *buf, size_t n)
{
    if (n > WINDOW) {
        fprintf(stderr, "runwatch: read of %zu bytes, more than the window\n", n);
        exit(2);
    }
    if (window_len + n > sizeof(window)) {
        size_t keep = sizeof(window) - n; /* at least WINDOW */
        memmove(window, window + window_len - keep, keep);
        window_len = keep;
    }
    memcpy(window + window_len, buf, n);
    window_len += n;
}

int main(int argc, char **argv)
{
    bool use_pty = false;
    int timeout = 0;
    int i = 1;
    const char *pending_when = NULL;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--pty")) {
            use_pty = true;
        } else if (!strcmp(argv[i], "--guest-mem") && i + 1 < argc) {
            guest_kib = atol(argv[++i]) * 1024;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--when") && i + 1 < argc) {
            pending_when = argv[++i];
        } else if ((!strcmp(argv[i], "--send") || !strcmp(argv[i], "--signal")) &&
                   i + 1 < argc && pending_when && nrules < MAX_RULES) {
            struct rule *r = &rules[nrules++];
            r->pattern = pending_when;
            pending_when = NULL;
            if (!strcmp(argv[i], "--send"))
                r->nbytes = unescape(argv[++i], r->bytes, sizeof(r->bytes));
            else
                r->signal = parse_signal(argv[++i]);
        } else if (!strcmp(argv[i], "--stamp") && i + 1 < argc && nrules < MAX_RULES) {
            rules[nrules].pattern = argv[++i];
            rules[nrules++].stamp = true;
        } else {
            usage();
        }
    }
    if (i + 1 >= argc || pending_when)
        usage();
    char **cmd = &argv[i + 1];

    int master = -1, slave = -1, in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    struct termios before;
    if (use_pty) {
        if (openpty(&master, &slave, NULL, NULL, NULL) < 0 || tcgetattr(slave, &before) < 0) {
            perror("runwatch: openpty");
            return 2;
        }
    } else if (pipe(in_pipe) < 0 || pipe(out_pipe) < 0) {
        perror("runwatch: pipe");
        return 2;
    }
    double t0 = now_ms();
    /* the stamps' zero on CLOCK_MONOTONIC, to line them up with a trace */
    fprintf(stderr, "runwatch: t0 monotonic %.3f\n", t0);
    pid_t child = fork();
    if (child == 0) {
        if (use_pty) {
            setsid();
            ioctl(slave, TIOCSCTTY, 0);
            dup2(slave, 0);
            dup2(slave, 1);
            dup2(slave, 2);
            close(master);
        } else {
            dup2(in_pipe[0], 0);
            dup2(out_pipe[1], 1);
            dup2(out_pipe[1], 2);
            close(in_pipe[1]);
            close(out_pipe[0]);
        }
        execvp(cmd[0], cmd);
        perror("runwatch: exec");
        _exit(127);
    }
    int out_fd = use_pty ? master : out_pipe[0];
    int in_fd = use_pty ? master : in_pipe[1];
    if (!use_pty) {
        close(in_pipe[0]);
        close(out_pipe[1]);
    }
    int status = 0;
    bool exited = false;
    double exit_ms = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof(usage));
    double last_sample = 0;
    for (;;) {
        if (guest_kib && !exited && now_ms() - last_sample >= SAMPLE_MS) {
            sample_memory(child);
            last_sample = now_ms();
        }
        struct pollfd pfd = {.fd = out_fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 100);
        if (ready > 0) {
            char buf[WINDOW];
            ssize_t n = read(out_fd, buf, sizeof(buf));
            if (n > 0) {
                fwrite(buf, 1, (size_t)n, stdout);
                fflush(stdout);
                window_add(buf, (size_t)n);
                check_rules(in_fd, child, t0);
                continue;
            }
            if (exited || !use_pty)
                break; /* EOF (pipe) or nothing left after the child exited */
        }
        if (!exited && wait4(child, &status, WNOHANG, &usage) == child) {
            exited = true;
            exit_ms = now_ms() - t0;
        }
        else if (exited && ready <= 0)
            break;
        if (timeout && now_ms() - t0 > timeout * 1000.0 && !exited) {
            fprintf(stderr, "runwatch: timeout, killing the command\n");
            kill(child, SIGKILL);
        }
    }
    if (!exited) {
        wait4(child, &status, 0, &usage);
        exit_ms = now_ms() - t0;
    }
    if (guest_kib)
        fprintf(stderr, "runwatch: memory overhead %ld guest %ld samples %d\n", overhead_max,
                guest_at_max, samples);
    fprintf(stderr, "runwatch: exited %.1f status %d maxrss %ld\n", exit_ms,
            WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status),
            usage.ru_maxrss);
    if (use_pty) {
        struct termios after;
        if (tcgetattr(slave, &after) == 0 && after.c_lflag == before.c_lflag &&
            after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag &&
            after.c_cflag == before.c_cflag)
            fprintf(stderr, "runwatch: terminal restored\n");
        else
            fprintf(stderr, "runwatch: terminal NOT restored (lflag %#x -> %#x)\n",
                    before.c_lflag, after.c_lflag);
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* ember: parse the command line, set up the VMM (and its control API), run
 * the VM, and turn how it ended into an exit status. Errors are reported
 * here, once. */
#include <execinfo.h>
#include <json-c/json.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/client.h"
#include "cli/options.h"
#include "snapshot/format.h"
#include "util/landlock.h"
#include "util/log.h"
#include "util/seccomp.h"
#include "util/timeline.h"
#include "cli/rootfs.h"
#include "vmm/exit_codes.h"
#include "vmm/vmm.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "unknown"
#endif

static char default_kernel[PATH_MAX];
static char default_initrd[PATH_MAX];

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The default guest lives in $EMBER_GUEST_DIR, or beside the binary in
 * guest/ (build tree) or ../share/ember/guest/ (installed). */
static int find_default_guest(struct vm_config *cfg)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *env = getenv("EMBER_GUEST_DIR");
    char dirs[3][PATH_MAX];
    snprintf(dirs[0], PATH_MAX, "%s", env ? env : "");
    snprintf(dirs[1], PATH_MAX, "%s/guest", exe);
    snprintf(dirs[2], PATH_MAX, "%s/../share/ember/guest", exe);
    for (int i = 0; i < 3; i++) {
        if (!dirs[i][0])
            continue;
        snprintf(default_kernel, PATH_MAX, "%s/vmlinuz", dirs[i]);
        snprintf(default_initrd, PATH_MAX, "%s/initramfs.cpio", dirs[i]);
        if (file_exists(default_kernel)) {
            cfg->kernel_path = default_kernel;
            if (!cfg->initrd_path && file_exists(default_initrd))
                cfg->initrd_path = default_initrd;
            return 0;
        }
    }
    return err_set(-ENOENT, "no --kernel given and the default guest is not built "
                            "(run 'make guest'); looked in %s%s%s and %s",
                   env ? env : "", env ? ", " : "", dirs[1], dirs[2]);
}

/* A crash says where it happened: the frames as binary+offset, for
 * addr2line -e ember (backtrace() was called once at start-up, so it does
 * not load libgcc here). */
static void crash_handler(int sig)
{
    console_restore_terminal();
    static const char head[] = "\nember: fatal signal; backtrace (addr2line -e ember):\n";
    if (write(STDERR_FILENO, head, sizeof(head) - 1) > 0) {
        void *frames[32];
        backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
    }
    raise(sig); /* SA_RESETHAND: the default action now applies */
}

/* glibc's backtrace() loads libgcc_s on its first call: that first call is
 * made now, before Landlock and the seccomp filters could refuse the file.
 * It takes a thread of its own: loading the library is a good part of the
 * set-up before the guest's kernel can start being copied, and no other
 * thread is busy yet. Neither restriction reaches a thread started before
 * it (both apply to the calling thread and its later children), so the
 * load never races them. A crash meanwhile waits on the loader's lock. */
static void *backtrace_warm_up(void *arg)
{
    void *frame[1];
    backtrace(frame, 1);
    return arg;
}

static void warm_up_backtrace(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10); /* dlopen's needs, with room */
    if (pthread_create(&t, &attr, backtrace_warm_up, NULL))
        backtrace_warm_up(NULL); /* no thread to be had: here, then */
    pthread_attr_destroy(&attr);
}

static void install_process_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = crash_handler;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        sigaction(fatal[i], &sa, NULL);
    /* Delivered through the event loop's signalfd; blocked in every thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR2); /* the state dump, read by the VMM's signalfd */
    sigaddset(&set, ACCEL_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    warm_up_backtrace(); /* with those signals blocked, as in every thread */
    atexit(console_restore_terminal);
}

/* Process-wide setup shared by both ways of running. */
static int prepare_process(const struct cli_request *req)
{
    install_process_signals();
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer reads /proc/self/maps and stops threads at exit: it
     * cannot run under the restriction (as under seccomp's filters). */
    landlock_configure(false);
#else
    /* With an API, requests may name files anywhere at run time (a drive
     * swapped for a client's image, a snapshot in the client's directory),
     * as Firecracker allows: the restriction is then the operator's choice. */
    bool api_serves = req->api_sock && !req->no_api;
    landlock_configure(!req->no_landlock && (req->landlock || !api_serves));
#endif
    /* The socket file is removed at the end; snapshots are often written
     * beside it. */
    int err = landlock_allow_dir_of(req->api_sock, LANDLOCK_FILES);
    if (err)
        return err;
    int ret = seccomp_setup(!req->no_seccomp, req->seccomp_selftest, console_restore_terminal);
    return ret ? ret : vcpu_signals_init();
}

static uint64_t clock_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Firecracker's process start-up metrics, from the times its jailer passes
 * (--start-time-us on CLOCK_MONOTONIC, --start-time-cpu-us of this process,
 * --parent-cpu-time-us of the jailer). */
static void report_startup_time(struct vmm *vmm, const struct cli_request *req)
{
    if (req->has_start_time_us)
        metrics_store(&vmm->metrics, "api_server", "process_startup_time_us",
                      clock_us(CLOCK_MONOTONIC) - req->start_time_us);
    if (req->has_start_time_cpu_us)
        metrics_store(&vmm->metrics, "api_server", "process_startup_time_cpu_us",
                      clock_us(CLOCK_PROCESS_CPUTIME_ID) - req->start_time_cpu_us +
                          req->parent_cpu_time_us);
}

/* Firecracker's command-line logger and metrics, applied as its API would
 * apply them (so GET /vm/config shows them), and what the API's VM inherits
 * from the command line (--boot-timer, --enable-pci, --transport). */
static int apply_firecracker_options(struct vmm *vmm, struct api *api,
                                     const struct cli_request *req)
{
    api->res.boot_timer = req->boot_timer;
    api->res.transport = req->vm.transport;
    int ret = 0;
    if (req->logger.set) {
        struct json_object *body = json_object_new_object();
        if (req->logger.path)
            json_object_object_add(body, "log_path", json_object_new_string(req->logger.path));
        if (req->logger.level)
            json_object_object_add(body, "level", json_object_new_string(req->logger.level));
        if (req->logger.module)
            json_object_object_add(body, "module", json_object_new_string(req->logger.module));
        json_object_object_add(body, "show_level",
                               json_object_new_boolean(req->logger.show_level));
        json_object_object_add(body, "show_log_origin",
                               json_object_new_boolean(req->logger.show_origin));
        ret = api_set_logger(&api->res, body);
        json_object_put(body);
        if (ret)
            return err_prefix(ret, "--log-path/--level/--module");
    }
    if (req->metrics_path) {
        char *copy = strdup(req->metrics_path);
        ret = copy ? vmm_set_metrics_path(vmm, copy) : err_set(-ENOMEM, "out of memory");
        if (ret) {
            free(copy);
            return err_prefix(ret, "--metrics-path");
        }
        api->res.metrics_path = copy;
    }
    /* Firecracker's default store limit is the API's payload limit. */
    api_mmds_set_limit(&api->res.mmds, req->has_mmds_size_limit ? req->mmds_size_limit
                                       : req->max_body ? req->max_body
                                                       : HTTP_DEFAULT_MAX_BODY);
    if (req->metadata_path && (ret = api_mmds_put_file(&api->res.mmds, req->metadata_path)))
        return err_prefix(ret, "--metadata");
    return 0;
}

static int serve_api(struct vmm *vmm, struct api *api, const struct cli_request *req)
{
    int ret = apply_firecracker_options(vmm, api, req);
    if (ret || !req->api_sock)
        return ret;
    ret = api_listen(api, req->api_sock, req->api_sock_mode, req->max_body);
    if (!ret)
        log_info("control API on %s", req->api_sock);
    report_startup_time(vmm, req);
    return ret;
}

/* What a command does once the VMM (and its API, if asked for) exists:
 * boot, restore or wait for the API. */
typedef int (*bring_up_fn)(struct vmm *vmm, struct api *api, struct cli_request *req,
                           enum vmm_fault *fault);

static int run_vmm(struct cli_request *req, bring_up_fn bring_up)
{
    if (req->seccomp_filter && seccomp_load_filter_file(req->seccomp_filter)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    if (prepare_process(req)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_VMM_ERROR;
    }
    timeline_mark("seccomp");
    struct vmm vmm;
    struct api api;
    api_init(&api, &vmm);
    int code;
    enum vmm_fault fault = VMM_FAULT_RUNTIME;
    if (vmm_init(&vmm, req->id, req->vm.skip_host_check, req->vm.accel) ||
        (fault = VMM_FAULT_SETUP, serve_api(&vmm, &api, req)) ||
        bring_up(&vmm, &api, req, &fault)) {
        log_error("%s", err_msg());
        code = vmm_exit_code_for_fault(fault);
    } else {
        code = vmm_run(&vmm);
    }
    api_stop(&api); /* the VM's configuration points into the API's resources */
    vmm_destroy(&vmm);
    api_destroy(&api);
    return code;
}

static int boot_from_options(struct vmm *vmm, struct api *api, struct cli_request *req,
                             enum vmm_fault *fault)
{
    int ret = api_mmds_start_from_options(&api->res.mmds, &req->vm);
    if (!ret)
        ret = vmm_start(vmm, &req->vm, fault);
    return ret ? ret : api_adopt_config(api, &vmm->cfg);
}

/* A VM brought back from a snapshot, optionally with an API to drive it. */
static int restore_snapshot(struct vmm *vmm, struct api *api, struct cli_request *req,
                            enum vmm_fault *fault)
{
    req->overrides.start_mmds = api_mmds_start_restored;
    req->overrides.mmds_ctx = &api->res.mmds;
    int ret = vmm_restore(vmm, req->snapshot_path, req->mem_path, req->mem_uffd, &req->overrides,
                          !req->paused, fault);
    if (!ret)
        ret = api_adopt_config(api, &vmm->cfg);
    if (ret)
        return ret;
    log_info("restored %s%s", req->snapshot_path, req->paused ? " (paused)" : "");
    return 0;
}

/* Firecracker's way: the VM comes from the API or a config file. */
static int boot_from_api(struct vmm *vmm, struct api *api, struct cli_request *req,
                         enum vmm_fault *fault)
{
    (void)vmm;
    return req->config_file ? api_boot_from_file(api, req->config_file, fault) : 0;
}

static int cmd_run(struct cli_request *req)
{
    struct vm_config *cfg = &req->vm;
    if (!cfg->kernel_path && find_default_guest(cfg)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    struct rootfs_run rootfs = {0};
    if (req->rootfs && rootfs_prepare(req, &rootfs)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    if (!cfg->cmdline)
        cfg->cmdline = CONFIG_DEFAULT_CMDLINE;
    int code = run_vmm(req, boot_from_options);
    return req->rootfs ? rootfs_finish(&rootfs, code) : code;
}

/* Under Firecracker's name, the first line is Firecracker's ("Firecracker
 * vX.Y.Z", the API level ember implements), which launchers such as Kata
 * Containers parse; the next says what is really running. As "ember", the
 * first line is ember's own version. */
static void print_version(const struct cli_request *req)
{
    if (req->as_firecracker)
        printf("Firecracker v%s\n\nember %s, a VMM implementing Firecracker's API %s\n",
               API_FIRECRACKER_VERSION, EMBER_VERSION, API_FIRECRACKER_VERSION);
    else
        printf("ember %s\nFirecracker API %s (run as 'firecracker' for a drop-in)\n",
               EMBER_VERSION, API_FIRECRACKER_VERSION);
}

int main(int argc, char **argv)
{
    timeline_mark("main");
    /* One malloc arena for every thread. A thread's first allocation would
     * otherwise make it an arena of its own (each vCPU's seccomp filter
     * build, the backtrace warm-up's dlopen), 50-60 KiB resident each for
     * the life of the VM; no thread of ember allocates often enough for a
     * shared arena's lock to matter, and small blocks come from each
     * thread's cache anyway. */
    mallopt(M_ARENA_MAX, 1);
    signal(SIGPIPE, SIG_IGN); /* a peer that goes away is an error, not a death */
    struct cli_request req;
    if (cli_parse(argc, argv, &req)) {
        fprintf(stderr, "ember: %s\nTry 'ember --help'.\n", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    log_set_level(req.verbosity >= 2 ? LOG_DEBUG : req.verbosity == 1 ? LOG_INFO : LOG_WARN);
    switch (req.command) {
    case CLI_HELP:
        cli_print_usage(stdout);
        return EMBER_EXIT_OK;
    case CLI_VERSION:
        print_version(&req);
        return EMBER_EXIT_OK;
    case CLI_SNAPSHOT_VERSION:
        printf("v%u.0.0\n", SNAP_FORMAT_VERSION);
        return EMBER_EXIT_OK;
    case CLI_DESCRIBE_SNAPSHOT: {
        uint32_t version;
        if (snap_file_version(req.snapshot_path, &version)) {
            log_error("%s", err_msg());
            return EMBER_EXIT_SETUP_ERROR;
        }
        printf("v%u.0.0\n", version);
        return EMBER_EXIT_OK;
    }
    case CLI_SERVE:
        return run_vmm(&req, boot_from_api);
    case CLI_RESTORE:
        return run_vmm(&req, restore_snapshot);
    case CLI_SNAPSHOT: {
        struct snapshot_command snap = {req.api_sock, req.snapshot_path, req.mem_path,
                                        req.diff, req.keep_paused};
        if (api_client_snapshot(&snap)) {
            log_error("%s", err_msg());
            return EMBER_EXIT_VMM_ERROR;
        }
        return EMBER_EXIT_OK;
    }
    case CLI_MERGE:
        if (snapshot_merge_memory(req.snapshot_path, req.mem_path, req.base_mem_path)) {
            log_error("%s", err_msg());
            return EMBER_EXIT_SETUP_ERROR;
        }
        return EMBER_EXIT_OK;
    case CLI_RUN:
    default:
        return cmd_run(&req);
    }
}

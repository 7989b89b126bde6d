/* ember: parse the command line, check files and host, run the VM, and turn
 * how it ended into an exit status. Errors are reported here, once. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel/hostcheck.h"
#include "cli/options.h"
#include "util/log.h"
#include "vmm/exit_codes.h"
#include "vmm/vm.h"

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

static void crash_handler(int sig)
{
    console_restore_terminal();
    raise(sig); /* SA_RESETHAND: the default action now applies */
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
    signal(SIGPIPE, SIG_IGN);
    /* Delivered through the event loop's signalfd; blocked in every thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, ACCEL_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    atexit(console_restore_terminal);
}

static int exit_code_for(const struct vm *vm, enum vm_stop_reason reason)
{
    switch (reason) {
    case VM_STOP_POWER_OFF:
        return EMBER_EXIT_OK;
    case VM_STOP_REBOOT:
    case VM_STOP_USER_QUIT:
        log_info("%s", vm->stop_detail);
        return EMBER_EXIT_OK;
    case VM_STOP_PANIC:
        log_error("%s", vm->stop_detail);
        return EMBER_EXIT_GUEST_PANIC;
    case VM_STOP_TRIPLE_FAULT:
        log_error("%s", vm->stop_detail);
        return EMBER_EXIT_TRIPLE_FAULT;
    case VM_STOP_SIGNAL:
        log_warn("%s", vm->stop_detail);
        return EMBER_EXIT_SIGNAL_BASE + vm->stop_signal;
    case VM_STOP_ERROR:
    case VM_STOP_NONE:
    default:
        log_error("%s", vm->stop_detail[0] ? vm->stop_detail : "the VM stopped unexpectedly");
        return EMBER_EXIT_VMM_ERROR;
    }
}

static int cmd_run(struct cli_request *req)
{
    struct vm_config *cfg = &req->vm;
    bool default_guest = cfg->kernel_path == NULL;
    if (default_guest && find_default_guest(cfg)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    if (!cfg->cmdline)
        cfg->cmdline = CONFIG_DEFAULT_CMDLINE;
    struct vm_boot_files files;
    if (vm_boot_files_open(cfg, &files)) {
        log_error("%s", err_msg());
        return EMBER_EXIT_SETUP_ERROR;
    }
    if (!cfg->skip_host_check && hostcheck_require_hw(&host_default_paths)) {
        log_error("%s", err_msg());
        vm_boot_files_close(&files);
        return EMBER_EXIT_HOST_UNSUITABLE;
    }
    install_process_signals();
    if (vcpu_signals_init()) {
        log_error("%s", err_msg());
        vm_boot_files_close(&files);
        return EMBER_EXIT_VMM_ERROR;
    }
    int code;
    struct vm vm;
    if (vm_create(&vm, cfg, &files)) {
        log_error("cannot create the VM: %s", err_msg());
        code = EMBER_EXIT_VMM_ERROR;
    } else {
        code = exit_code_for(&vm, vm_run(&vm));
    }
    vm_destroy(&vm);
    vm_boot_files_close(&files);
    return code;
}

int main(int argc, char **argv)
{
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
        printf("ember %s\n", EMBER_VERSION);
        return EMBER_EXIT_OK;
    case CLI_RUN:
    default:
        return cmd_run(&req);
    }
}

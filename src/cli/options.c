#include "cli/options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

enum {
    OPT_KERNEL = 0x100,
    OPT_INITRD,
    OPT_CMDLINE,
    OPT_CPUS,
    OPT_MEM,
    OPT_SKIP_HOST_CHECK,
    OPT_RNG,
    OPT_NO_RNG,
    OPT_DISK,
    OPT_CONSOLE,
};

static const struct option run_options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"mem", required_argument, NULL, OPT_MEM},
    {"skip-host-check", no_argument, NULL, OPT_SKIP_HOST_CHECK},
    {"rng", no_argument, NULL, OPT_RNG},
    {"disk", required_argument, NULL, OPT_DISK},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"no-rng", no_argument, NULL, OPT_NO_RNG},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void cli_print_usage(FILE *out)
{
    fputs("Usage: ember run [OPTIONS]\n"
          "       ember --help | --version\n"
          "\n"
          "Boot a Linux guest under KVM with its serial console on this terminal.\n"
          "\n"
          "Options for 'run':\n"
          "  --kernel PATH       bzImage or ELF vmlinux (default: the project's guest)\n"
          "  --initrd PATH       initramfs (default with the default kernel: its initramfs)\n"
          "  --cmdline STR       kernel command line\n"
          "                      (default: \"" CONFIG_DEFAULT_CMDLINE "\")\n"
          "  --cpus N            number of vCPUs, 1-255 (default 1)\n"
          "  --mem SIZE          guest memory, e.g. 256M or 2G (default 256M)\n"
          "  --disk path=FILE[,ro][,id=NAME][,cache=none]\n"
          "                      a raw image as virtio-blk (repeatable: vda, vdb, ...)\n"
          "  --rng, --no-rng     virtio-rng fed from the host's getrandom() (default on)\n"
          "  --console serial|virtio\n"
          "                      where stdin goes: COM1 (default) or virtio-console (hvc0)\n"
          "  --skip-host-check   run even where /dev/kvm is not hardware KVM\n"
          "  -v, --verbose       more log output (repeat for debug)\n"
          "\n"
          "Console: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.\n"
          "Exit status: 0 guest powered off or rebooted, 1 ember failed while\n"
          "running, 2 bad option or file, 3 guest panicked, 4 triple fault,\n"
          "5 no hardware KVM on this host, 128+N stopped by signal N.\n",
          out);
}

static int parse_cpus(const char *text, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || n < 1 || n > CONFIG_MAX_CPUS)
        return err_set(-EINVAL, "--cpus: expected a number from 1 to %d, got '%s'",
                       CONFIG_MAX_CPUS, text);
    *out = (unsigned)n;
    return 0;
}

static int parse_mem(const char *text, uint64_t *out)
{
    uint64_t bytes;
    if (parse_size(text, &bytes))
        return err_set(-EINVAL, "--mem: expected a size such as 256M or 2G, got '%s'", text);
    if (bytes < CONFIG_MIN_MEM || bytes > CONFIG_MAX_MEM)
        return err_set(-EINVAL, "--mem: %s is outside 16M-1T", text);
    if (!is_aligned(bytes, MiB(1)))
        return err_set(-EINVAL, "--mem: %s is not a whole number of MiB", text);
    *out = bytes;
    return 0;
}

/* path=FILE[,ro][,id=NAME][,cache=none]; getsubopt splits 'arg' in place. */
static int parse_disk(char *arg, struct vm_config *vm)
{
    if (vm->nr_disks == CONFIG_MAX_DISKS)
        return err_set(-EINVAL, "--disk: at most %d disks", CONFIG_MAX_DISKS);
    struct disk_config d = {0};
    enum { KEY_PATH, KEY_RO, KEY_ID, KEY_CACHE };
    char *const keys[] = {"path", "ro", "id", "cache", NULL};
    char *value;
    while (*arg) {
        char *item = arg;
        int key = getsubopt(&arg, keys, &value);
        switch (key) {
        case KEY_PATH: d.path = value; break;
        case KEY_RO: d.read_only = true; break;
        case KEY_ID: d.id = value; break;
        case KEY_CACHE:
            if (value && !strcmp(value, "none"))
                d.cache_none = true;
            else if (!value || strcmp(value, "writeback"))
                return err_set(-EINVAL, "--disk: cache must be none or writeback, got '%s'",
                               value ? value : "");
            break;
        default:
            return err_set(-EINVAL, "--disk: unknown setting '%s' (expected path=, ro, id=, "
                                    "cache=)", item);
        }
        if ((key == KEY_PATH || key == KEY_ID) && (!value || !*value))
            return err_set(-EINVAL, "--disk: %s= needs a value", keys[key]);
    }
    if (!d.path)
        return err_set(-EINVAL, "--disk: path=FILE is required");
    if (d.id && strlen(d.id) > 20)
        return err_set(-EINVAL, "--disk: id '%s' is longer than 20 characters", d.id);
    vm->disks[vm->nr_disks++] = d;
    return 0;
}

static int parse_console(const char *arg, struct vm_config *vm)
{
    if (!strcmp(arg, "serial"))
        vm->console = CONSOLE_SERIAL;
    else if (!strcmp(arg, "virtio"))
        vm->console = CONSOLE_VIRTIO;
    else
        return err_set(-EINVAL, "--console: expected serial or virtio, got '%s'", arg);
    return 0;
}

static int parse_run_option(int opt, char *arg, struct cli_request *req)
{
    struct vm_config *vm = &req->vm;
    switch (opt) {
    case OPT_KERNEL: vm->kernel_path = arg; return 0;
    case OPT_INITRD: vm->initrd_path = arg; return 0;
    case OPT_CMDLINE: vm->cmdline = arg; return 0;
    case OPT_CPUS: return parse_cpus(arg, &vm->nr_vcpus);
    case OPT_MEM: return parse_mem(arg, &vm->mem_size);
    case OPT_SKIP_HOST_CHECK: vm->skip_host_check = true; return 0;
    case OPT_RNG: vm->rng = true; return 0;
    case OPT_DISK: return parse_disk(arg, vm);
    case OPT_CONSOLE: return parse_console(arg, vm);
    case OPT_NO_RNG: vm->rng = false; return 0;
    case 'v': req->verbosity++; return 0;
    case 'h': req->command = CLI_HELP; return 0;
    default: return err_set(-EINVAL, "unknown option");
    }
}

static int parse_run(int argc, char **argv, struct cli_request *req)
{
    req->command = CLI_RUN;
    optind = 0; /* full re-initialisation, so parsing can run more than once */
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, ":vh", run_options, NULL);
        if (opt == -1)
            break;
        if (opt == '?')
            return err_set(-EINVAL, "run: unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return err_set(-EINVAL, "run: option '%s' needs a value", argv[optind - 1]);
        int ret = parse_run_option(opt, optarg, req);
        if (ret)
            return ret;
    }
    if (optind < argc)
        return err_set(-EINVAL, "run: unexpected argument '%s'", argv[optind]);
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_request *req)
{
    memset(req, 0, sizeof(*req));
    vm_config_defaults(&req->vm);
    if (argc < 2)
        return err_set(-EINVAL, "no command given");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        req->command = CLI_HELP;
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        req->command = CLI_VERSION;
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return parse_run(argc - 1, argv + 1, req);
    return err_set(-EINVAL, "unknown command '%s'", cmd);
}

#include "cli/options.h"

#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
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
    OPT_NET,
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
    {"net", required_argument, NULL, OPT_NET},
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
          "  --net tap=NAME[,mac=M] | user[,hostfwd=tcp::HOSTPORT-:GUESTPORT]...[,mac=M]\n"
          "                      virtio-net on a TAP device or user-mode networking\n"
          "                      (libslirp: NAT, DHCP, DNS; no privileges); repeatable\n"
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

static int parse_mac(const char *text, uint8_t mac[6])
{
    unsigned b[6];
    char end;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
               &end) != 6)
        return err_set(-EINVAL, "--net: mac '%s' is not six hex pairs like 02:00:00:00:00:01",
                       text);
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    if (mac[0] & 1)
        return err_set(-EINVAL, "--net: mac '%s' is a multicast address", text);
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
        return err_set(-EINVAL, "--net: mac 00:00:00:00:00:00 is not usable");
    return 0;
}

/* A stable, locally administered unicast MAC from the backend and position:
 * the same command line gives the guest the same address every time. */
static void generate_mac(const struct nic_config *n, unsigned index, uint8_t mac[6])
{
    char seed[64];
    snprintf(seed, sizeof(seed), "%s#%u", n->kind == NIC_TAP ? n->tap_name : "user", index);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = seed; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x02;
    mac[1] = 0xe6;
    le32_store(mac + 2, h);
}

/* tap=NAME[,mac=M] or user[,hostfwd=RULE]...[,mac=M] */
static int parse_net(char *arg, struct vm_config *vm)
{
    if (vm->nr_nics == CONFIG_MAX_NICS)
        return err_set(-EINVAL, "--net: at most %d interfaces", CONFIG_MAX_NICS);
    struct nic_config n = {0};
    bool have_kind = false, have_mac = false;
    enum { KEY_TAP, KEY_USER, KEY_HOSTFWD, KEY_MAC };
    char *const keys[] = {"tap", "user", "hostfwd", "mac", NULL};
    char *value;
    while (*arg) {
        char *item = arg;
        int key = getsubopt(&arg, keys, &value);
        if ((key == KEY_TAP || key == KEY_HOSTFWD || key == KEY_MAC) && (!value || !*value))
            return err_set(-EINVAL, "--net: %s= needs a value", keys[key]);
        switch (key) {
        case KEY_TAP:
        case KEY_USER:
            if (have_kind)
                return err_set(-EINVAL, "--net: give either tap=NAME or user, once");
            have_kind = true;
            n.kind = key == KEY_TAP ? NIC_TAP : NIC_USER;
            n.tap_name = value;
            break;
        case KEY_HOSTFWD:
            if (n.nr_hostfwd == CONFIG_MAX_HOSTFWD)
                return err_set(-EINVAL, "--net: at most %d hostfwd rules", CONFIG_MAX_HOSTFWD);
            n.hostfwd[n.nr_hostfwd++] = value;
            break;
        case KEY_MAC:
            if (parse_mac(value, n.mac))
                return -EINVAL;
            have_mac = true;
            break;
        default:
            return err_set(-EINVAL, "--net: unknown backend or setting '%s' (expected tap=NAME "
                                    "or user, then mac=, hostfwd=)", item);
        }
    }
    if (!have_kind)
        return err_set(-EINVAL, "--net: tap=NAME or user is required");
    if (n.kind == NIC_TAP && n.nr_hostfwd)
        return err_set(-EINVAL, "--net: hostfwd applies to user networking only");
    if (!have_mac)
        generate_mac(&n, vm->nr_nics, n.mac);
    vm->nics[vm->nr_nics++] = n;
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
    case OPT_NET: return parse_net(arg, vm);
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

#include "cli/options.h"

#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "arch/x86_64/cpu_template.h"
#include "util/seccomp.h"
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
    OPT_API_SOCK,
    OPT_ID,
    OPT_CONFIG_FILE,
    OPT_NO_API,
    OPT_MAX_PAYLOAD,
    OPT_SNAPSHOT,
    OPT_MEM_FILE,
    OPT_MEM_UFFD,
    OPT_BASE,
    OPT_PAUSED,
    OPT_DIFF,
    OPT_KEEP_PAUSED,
    OPT_TRACK_DIRTY,
    OPT_HUGE_PAGES,
    OPT_KSM,
    OPT_ACCEL,
    OPT_VSOCK,
    OPT_BALLOON,
    OPT_SHARE,
    OPT_ROOTFS,
    OPT_MMDS,
    OPT_BOOT_TIMER,
    OPT_LOG_PATH,
    OPT_LEVEL,
    OPT_MODULE,
    OPT_SHOW_LEVEL,
    OPT_SHOW_ORIGIN,
    OPT_METRICS_PATH,
    OPT_START_TIME_US,
    OPT_START_TIME_CPU_US,
    OPT_PARENT_CPU_TIME_US,
    OPT_DESCRIBE_SNAPSHOT,
    OPT_SNAPSHOT_VERSION,
    OPT_ENABLE_PCI,
    OPT_METADATA,
    OPT_MMDS_SIZE_LIMIT,
    OPT_SECCOMP_FILTER,
    OPT_NO_SECCOMP,
    OPT_NO_LANDLOCK,
    OPT_LANDLOCK,
    OPT_API_SOCK_MODE,
    OPT_SECCOMP_SELFTEST,
    OPT_VERSION,
    OPT_TRANSPORT,
    OPT_CLOCK_REALTIME,
    OPT_SMT,
    OPT_CPU_TEMPLATE,
    OPT_GDB,
    OPT_GDB_WAIT,
};

static const struct option run_options[] = {
    {"gdb", required_argument, NULL, OPT_GDB},
    {"gdb-wait", no_argument, NULL, OPT_GDB_WAIT},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"smt", no_argument, NULL, OPT_SMT},
    {"cpu-template", required_argument, NULL, OPT_CPU_TEMPLATE},
    {"mem", required_argument, NULL, OPT_MEM},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"skip-host-check", no_argument, NULL, OPT_SKIP_HOST_CHECK},
    {"rng", no_argument, NULL, OPT_RNG},
    {"disk", required_argument, NULL, OPT_DISK},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"net", required_argument, NULL, OPT_NET},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"balloon", required_argument, NULL, OPT_BALLOON},
    {"huge-pages", required_argument, NULL, OPT_HUGE_PAGES},
    {"ksm", no_argument, NULL, OPT_KSM},
    {"share", required_argument, NULL, OPT_SHARE},
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"mmds", required_argument, NULL, OPT_MMDS},
    {"no-rng", no_argument, NULL, OPT_NO_RNG},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"api-sock-mode", required_argument, NULL, OPT_API_SOCK_MODE},
    {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
    {"no-landlock", no_argument, NULL, OPT_NO_LANDLOCK},
    {"landlock", no_argument, NULL, OPT_LANDLOCK},
    {"seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER},
    {"seccomp-selftest", required_argument, NULL, OPT_SECCOMP_SELFTEST}, /* tests only */
    {"id", required_argument, NULL, OPT_ID},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option restore_options[] = {
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"gdb", required_argument, NULL, OPT_GDB},
    {"gdb-wait", no_argument, NULL, OPT_GDB_WAIT},
    {"mem", required_argument, NULL, OPT_MEM_FILE},
    {"mem-uffd", required_argument, NULL, OPT_MEM_UFFD},
    {"disk", required_argument, NULL, OPT_DISK},
    {"net", required_argument, NULL, OPT_NET},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"paused", no_argument, NULL, OPT_PAUSED},
    {"track-dirty-pages", no_argument, NULL, OPT_TRACK_DIRTY},
    {"clock-realtime", no_argument, NULL, OPT_CLOCK_REALTIME},
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"api-sock-mode", required_argument, NULL, OPT_API_SOCK_MODE},
    {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
    {"no-landlock", no_argument, NULL, OPT_NO_LANDLOCK},
    {"landlock", no_argument, NULL, OPT_LANDLOCK},
    {"seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER},
    {"seccomp-selftest", required_argument, NULL, OPT_SECCOMP_SELFTEST}, /* tests only */
    {"id", required_argument, NULL, OPT_ID},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"skip-host-check", no_argument, NULL, OPT_SKIP_HOST_CHECK},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option merge_options[] = {
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"mem", required_argument, NULL, OPT_MEM_FILE},
    {"base", required_argument, NULL, OPT_BASE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option snapshot_options[] = {
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"mem", required_argument, NULL, OPT_MEM_FILE},
    {"diff", no_argument, NULL, OPT_DIFF},
    {"keep-paused", no_argument, NULL, OPT_KEEP_PAUSED},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Firecracker's own command line (its arguments, those its jailer appends,
 * and ember's --accel, --transport, --skip-host-check, -v). */
static const struct option serve_options[] = {
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"api-sock-mode", required_argument, NULL, OPT_API_SOCK_MODE},
    {"id", required_argument, NULL, OPT_ID},
    {"config-file", required_argument, NULL, OPT_CONFIG_FILE},
    {"no-api", no_argument, NULL, OPT_NO_API},
    {"http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
    {"log-path", required_argument, NULL, OPT_LOG_PATH},
    {"level", required_argument, NULL, OPT_LEVEL},
    {"module", required_argument, NULL, OPT_MODULE},
    {"show-level", no_argument, NULL, OPT_SHOW_LEVEL},
    {"show-log-origin", no_argument, NULL, OPT_SHOW_ORIGIN},
    {"metrics-path", required_argument, NULL, OPT_METRICS_PATH},
    {"start-time-us", required_argument, NULL, OPT_START_TIME_US},
    {"start-time-cpu-us", required_argument, NULL, OPT_START_TIME_CPU_US},
    {"parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU_TIME_US},
    {"describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT},
    {"snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION},
    {"enable-pci", no_argument, NULL, OPT_ENABLE_PCI},
    {"metadata", required_argument, NULL, OPT_METADATA},
    {"mmds-size-limit", required_argument, NULL, OPT_MMDS_SIZE_LIMIT},
    {"seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER},
    {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
    {"no-landlock", no_argument, NULL, OPT_NO_LANDLOCK},
    {"landlock", no_argument, NULL, OPT_LANDLOCK},
    {"seccomp-selftest", required_argument, NULL, OPT_SECCOMP_SELFTEST}, /* tests only */
    {"version", no_argument, NULL, OPT_VERSION},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"skip-host-check", no_argument, NULL, OPT_SKIP_HOST_CHECK},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

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

/* tap=NAME[,mac=M] or user[,hostfwd=RULE]...[,mac=M] */
static int parse_net(char *arg, struct vm_config *vm)
{
    if (vm->nr_nics == CONFIG_MAX_NICS)
        return err_set(-EINVAL, "--net: at most %d interfaces", CONFIG_MAX_NICS);
    struct nic_config n = {0};
    bool have_kind = false, have_mac = false;
    enum { KEY_TAP, KEY_USER, KEY_HOSTFWD, KEY_MAC, KEY_MMDS };
    char *const keys[] = {"tap", "user", "hostfwd", "mac", "mmds", NULL};
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
        case KEY_MMDS:
            if (value)
                return err_set(-EINVAL, "--net: mmds takes no value");
            n.mmds = true;
            break;
        default:
            return err_set(-EINVAL, "--net: unknown backend or setting '%s' (expected tap=NAME "
                                    "or user, then mac=, hostfwd=, mmds)", item);
        }
    }
    if (!have_kind)
        return err_set(-EINVAL, "--net: tap=NAME or user is required");
    if (n.kind == NIC_TAP && n.nr_hostfwd)
        return err_set(-EINVAL, "--net: hostfwd applies to user networking only");
    if (!have_mac)
        config_generate_mac(&n, vm->nr_nics, n.mac);
    vm->nics[vm->nr_nics++] = n;
    return 0;
}

static int parse_vsock_path(const char *value, const char **out)
{
    if (!value || !*value)
        return err_set(-EINVAL, "--vsock: uds= needs a path");
    if (strlen(value) >= VSOCK_UDS_PATH_LIMIT)
        return err_set(-EINVAL, "--vsock: uds path '%s' is longer than %d bytes", value,
                       VSOCK_UDS_PATH_LIMIT - 1);
    *out = value;
    return 0;
}

/* cid=N,uds=PATH */
static int parse_vsock(char *arg, struct vm_config *vm)
{
    if (vm->vsock.uds_path)
        return err_set(-EINVAL, "--vsock: given twice (a VM has one vsock device)");
    struct vsock_config v = {0};
    bool have_cid = false;
    enum { KEY_CID, KEY_UDS };
    char *const keys[] = {"cid", "uds", NULL};
    char *value;
    while (*arg) {
        char *item = arg;
        int key = getsubopt(&arg, keys, &value);
        if (key == KEY_CID) {
            char *end;
            errno = 0;
            unsigned long long n = value ? strtoull(value, &end, 10) : 0;
            if (!value || errno || end == value || *end || value[0] == '-' ||
                n < CONFIG_VSOCK_MIN_CID || n > CONFIG_VSOCK_MAX_CID)
                return err_set(-EINVAL, "--vsock: cid must be a number from %u to %u, got '%s'",
                               CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID, value ? value : "");
            v.cid = (uint32_t)n;
            have_cid = true;
        } else if (key == KEY_UDS) {
            if (parse_vsock_path(value, &v.uds_path))
                return -EINVAL;
        } else {
            return err_set(-EINVAL, "--vsock: unknown setting '%s' (expected cid=, uds=)", item);
        }
    }
    if (!have_cid || !v.uds_path)
        return err_set(-EINVAL, "--vsock: cid=N and uds=PATH are required");
    vm->vsock = v;
    return 0;
}

/* restore: uds=PATH */
static int parse_vsock_override(char *arg, struct vm_overrides *o)
{
    if (strncmp(arg, "uds=", 4))
        return err_set(-EINVAL, "--vsock: expected uds=PATH (a restored VM keeps its CID), "
                                "got '%s'", arg);
    return parse_vsock_path(arg + 4, &o->vsock_uds);
}

static int parse_cpu_template(const char *arg, struct cli_request *req)
{
    enum cpu_template_kind kind;
    if (!cpu_template_parse_name(arg, &kind))
        return err_set(-EINVAL, "--cpu-template: expected None, C3, T2, T2S, T2CL or T2A, "
                                "got '%s'", arg);
    req->vm.cpu_template = NULL;
    if (kind == CPU_TEMPLATE_NONE)
        return 0;
    int ret = cpu_template_static(kind, &req->cpu_template);
    if (!ret)
        req->vm.cpu_template = &req->cpu_template;
    return ret;
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

static int parse_accel(const char *arg, struct vm_config *vm)
{
    if (!accel_kind_parse(arg, &vm->accel))
        return err_set(-EINVAL, "--accel: expected kvm, soft or auto, got '%s'", arg);
    return 0;
}

static int parse_transport(const char *arg, struct vm_config *vm)
{
    if (!transport_parse(arg, &vm->transport))
        return err_set(-EINVAL, "--transport: expected mmio, pci or auto, got '%s'", arg);
    return 0;
}

static int parse_id(const char *arg, struct cli_request *req)
{
    size_t n = strlen(arg);
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = arg[i] == '-' || arg[i] == '_' || (arg[i] >= '0' && arg[i] <= '9') ||
             (arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= 'A' && arg[i] <= 'Z');
    if (!ok)
        return err_set(-EINVAL, "--id: expected 1-64 letters, digits, '-' or '_', got '%s'", arg);
    req->id = arg;
    return 0;
}

static int parse_payload_size(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || n < 1024 || n > (16u << 20))
        return err_set(-EINVAL, "--http-api-max-payload-size: expected a number of bytes from "
                                "1024 to 16777216, got '%s'", text);
    *out = (size_t)n;
    return 0;
}

/* Tests only: a thread kind of util/seccomp.h. */
static int parse_seccomp_selftest(const char *arg, struct cli_request *req)
{
    for (int k = 0; k < SECCOMP_NR_THREADS; k++)
        if (!strcmp(arg, seccomp_thread_name((enum seccomp_thread)k))) {
            req->seccomp_selftest = arg;
            return 0;
        }
    return err_set(-EINVAL, "--seccomp-selftest: unknown thread kind '%s'", arg);
}

/* An octal file mode for the API socket, e.g. 600 or 0660. */
static int parse_sock_mode(const char *text, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(text, &end, 8);
    if (errno || end == text || *end || text[0] == '-' || m > 0777)
        return err_set(-EINVAL, "--api-sock-mode: expected an octal mode such as 0600, got '%s'",
                       text);
    if (!(m & 0600))
        return err_set(-EINVAL, "--api-sock-mode %s: the owner could not use the socket", text);
    *out = (unsigned)m;
    return 0;
}

static int parse_share(char *arg, struct vm_config *vm)
{
    if (vm->nr_shares == CONFIG_MAX_SHARES)
        return err_set(-EINVAL, "--share: at most %d shared directories", CONFIG_MAX_SHARES);
    struct fs_config *c = &vm->shares[vm->nr_shares];
    int ret = fs_config_parse(arg, c);
    if (!ret)
        ret = fs_config_check(c, vm->shares, vm->nr_shares);
    struct stat st;
    if (!ret && stat(c->path, &st) < 0)
        ret = err_errno(-errno, "--share: shared directory %s", c->path);
    if (!ret && !S_ISDIR(st.st_mode))
        ret = err_set(-ENOTDIR, "--share: %s: Not a directory", c->path);
    if (!ret)
        vm->nr_shares++;
    return ret;
}

/* --rootfs DIR[,ro] */
static int parse_rootfs(char *arg, struct cli_request *req)
{
    if (req->rootfs)
        return err_set(-EINVAL, "--rootfs: given twice");
    char *comma = strchr(arg, ',');
    if (comma) {
        if (strcmp(comma, ",ro"))
            return err_set(-EINVAL, "--rootfs: expected DIR or DIR,ro, got '%s'", arg);
        *comma = 0;
        req->rootfs_ro = true;
    }
    struct stat st;
    if (stat(arg, &st) < 0)
        return err_errno(-errno, "--rootfs: %s", arg);
    if (!S_ISDIR(st.st_mode))
        return err_set(-ENOTDIR, "--rootfs: %s: Not a directory", arg);
    req->rootfs = arg;
    return 0;
}

static int parse_run_option(int opt, char *arg, struct cli_request *req)
{
    struct vm_config *vm = &req->vm;
    switch (opt) {
    case OPT_KERNEL: vm->kernel_path = arg; return 0;
    case OPT_GDB: vm->gdb_address = arg; return 0;
    case OPT_GDB_WAIT: vm->gdb_wait = true; return 0;
    case OPT_INITRD: vm->initrd_path = arg; return 0;
    case OPT_CMDLINE: vm->cmdline = arg; return 0;
    case OPT_CPUS: return parse_cpus(arg, &vm->nr_vcpus);
    case OPT_SMT: vm->smt = true; return 0;
    case OPT_CPU_TEMPLATE: return parse_cpu_template(arg, req);
    case OPT_MEM: return parse_mem(arg, &vm->mem_size);
    case OPT_SKIP_HOST_CHECK: vm->skip_host_check = true; return 0;
    case OPT_ACCEL: return parse_accel(arg, vm);
    case OPT_RNG: vm->rng = true; return 0;
    case OPT_DISK: return parse_disk(arg, vm);
    case OPT_CONSOLE: return parse_console(arg, vm);
    case OPT_TRANSPORT: return parse_transport(arg, vm);
    case OPT_BOOT_TIMER: vm->boot_timer = true; return 0;
    case OPT_NET: return parse_net(arg, vm);
    case OPT_VSOCK: return parse_vsock(arg, vm);
    case OPT_MMDS: return mmds_config_parse(arg, &vm->mmds);
    case OPT_BALLOON:
        if (vm->balloon.enabled)
            return err_set(-EINVAL, "--balloon: given twice (a VM has one balloon)");
        return balloon_config_parse(arg, &vm->balloon);
    case OPT_HUGE_PAGES:
        if (!guest_pages_parse(arg, &vm->pages))
            return err_set(-EINVAL, "--huge-pages: '%s' is not thp, none or 2M", arg);
        return 0;
    case OPT_KSM: vm->ksm = true; return 0;
    case OPT_SHARE: return parse_share(arg, vm);
    case OPT_ROOTFS: return parse_rootfs(arg, req);
    case OPT_NO_RNG: vm->rng = false; return 0;
    case OPT_API_SOCK: req->api_sock = arg; return 0;
    case OPT_API_SOCK_MODE: return parse_sock_mode(arg, &req->api_sock_mode);
    case OPT_NO_SECCOMP: req->no_seccomp = true; return 0;
    case OPT_NO_LANDLOCK: req->no_landlock = true; return 0;
    case OPT_LANDLOCK: req->landlock = true; return 0;
    case OPT_SECCOMP_FILTER: req->seccomp_filter = arg; return 0;
    case OPT_SECCOMP_SELFTEST: return parse_seccomp_selftest(arg, req);
    case OPT_ID: return parse_id(arg, req);
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
    if (req->vm.smt && req->vm.nr_vcpus > 1 && req->vm.nr_vcpus % 2)
        return err_set(-EINVAL, "--smt: the vCPU count must be 1 or even (two threads per "
                                "core), got %u", req->vm.nr_vcpus);
    if (req->vm.gdb_wait && !req->vm.gdb_address)
        return err_set(-EINVAL, "--gdb-wait: needs --gdb");
    /* With --rootfs, what follows "--" is the guest's command. */
    if (req->rootfs && optind < argc && !strcmp(argv[optind - 1], "--")) {
        req->rootfs_argv = argv + optind;
        req->rootfs_argc = argc - optind;
        return 0;
    }
    if (optind < argc)
        return err_set(-EINVAL, "run: unexpected argument '%s'%s", argv[optind],
                       req->rootfs ? " (the guest's command goes after '--')" : "");
    return 0;
}

static int parse_u64(const char *opt, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-')
        return err_set(-EINVAL, "%s: expected a non-negative integer, got '%s'", opt, text);
    *out = n;
    return 0;
}

static int parse_serve_option(int opt, char *arg, struct cli_request *req)
{
    switch (opt) {
    case OPT_API_SOCK: req->api_sock = arg; return 0;
    case OPT_API_SOCK_MODE: return parse_sock_mode(arg, &req->api_sock_mode);
    case OPT_ID: return parse_id(arg, req);
    case OPT_CONFIG_FILE: req->config_file = arg; return 0;
    case OPT_NO_API: req->no_api = true; return 0;
    case OPT_MAX_PAYLOAD: return parse_payload_size(arg, &req->max_body);
    case OPT_SKIP_HOST_CHECK: req->vm.skip_host_check = true; return 0;
    case OPT_ACCEL: return parse_accel(arg, &req->vm);
    case OPT_TRANSPORT: return parse_transport(arg, &req->vm);
    case OPT_ENABLE_PCI: req->vm.transport = TRANSPORT_PCI; return 0;
    case OPT_BOOT_TIMER: req->boot_timer = req->vm.boot_timer = true; return 0;
    case OPT_LOG_PATH: req->logger.set = true; req->logger.path = arg; return 0;
    case OPT_LEVEL: req->logger.set = true; req->logger.level = arg; return 0;
    case OPT_MODULE: req->logger.set = true; req->logger.module = arg; return 0;
    case OPT_SHOW_LEVEL: req->logger.set = req->logger.show_level = true; return 0;
    case OPT_SHOW_ORIGIN: req->logger.set = req->logger.show_origin = true; return 0;
    case OPT_METRICS_PATH: req->metrics_path = arg; return 0;
    case OPT_START_TIME_US:
        req->has_start_time_us = true;
        return parse_u64("--start-time-us", arg, &req->start_time_us);
    case OPT_START_TIME_CPU_US:
        req->has_start_time_cpu_us = true;
        return parse_u64("--start-time-cpu-us", arg, &req->start_time_cpu_us);
    case OPT_PARENT_CPU_TIME_US:
        return parse_u64("--parent-cpu-time-us", arg, &req->parent_cpu_time_us);
    case OPT_MMDS_SIZE_LIMIT:
        req->has_mmds_size_limit = true;
        return parse_u64("--mmds-size-limit", arg, &req->mmds_size_limit);
    case OPT_METADATA: req->metadata_path = arg; return 0;
    case OPT_NO_SECCOMP: req->no_seccomp = true; return 0;
    case OPT_NO_LANDLOCK: req->no_landlock = true; return 0;
    case OPT_LANDLOCK: req->landlock = true; return 0;
    case OPT_SECCOMP_FILTER: req->seccomp_filter = arg; return 0;
    case OPT_SECCOMP_SELFTEST: return parse_seccomp_selftest(arg, req);
    case OPT_DESCRIBE_SNAPSHOT:
        req->command = CLI_DESCRIBE_SNAPSHOT;
        req->snapshot_path = arg;
        return 0;
    case OPT_SNAPSHOT_VERSION: req->command = CLI_SNAPSHOT_VERSION; return 0;
    case OPT_VERSION: req->command = CLI_VERSION; return 0;
    case 'v': req->verbosity++; return 0;
    case 'h': req->command = CLI_HELP; return 0;
    default: return err_set(-EINVAL, "unknown option");
    }
}

static int parse_serve(int argc, char **argv, struct cli_request *req)
{
    req->command = CLI_SERVE;
    optind = 0;
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, ":vh", serve_options, NULL);
        if (opt == -1)
            break;
        if (opt == '?')
            return err_set(-EINVAL, "unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return err_set(-EINVAL, "option '%s' needs a value", argv[optind - 1]);
        int ret = parse_serve_option(opt, optarg, req);
        if (ret)
            return ret;
    }
    if (req->command != CLI_SERVE) /* --help, --version, --snapshot-version ... */
        return 0;
    if (optind < argc)
        return err_set(-EINVAL, "unexpected argument '%s'", argv[optind]);
    if (req->no_api && req->api_sock)
        return err_set(-EINVAL, "--no-api and --api-sock exclude each other");
    if (req->no_api && !req->config_file)
        return err_set(-EINVAL, "--no-api needs --config-file (nothing could start the VM)");
    if (!req->no_api && !req->api_sock)
        req->api_sock = CLI_DEFAULT_API_SOCK; /* as Firecracker */
    return 0;
}

static int parse_override(const char *opt, char *arg, struct vm_override *list,
                          unsigned *n, unsigned max)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return err_set(-EINVAL, "%s: expected ID=VALUE, got '%s'", opt, arg);
    if (*n == max)
        return err_set(-EINVAL, "%s: at most %u", opt, max);
    *eq = '\0';
    list[(*n)++] = (struct vm_override){arg, eq + 1};
    return 0;
}

static int parse_restore_option(int opt, char *arg, struct cli_request *req)
{
    struct vm_overrides *o = &req->overrides;
    switch (opt) {
    case OPT_SNAPSHOT: req->snapshot_path = arg; return 0;
    case OPT_MEM_FILE:
    case OPT_MEM_UFFD:
        if (req->mem_path)
            return err_set(-EINVAL, "restore: give one of --mem and --mem-uffd, once");
        req->mem_path = arg;
        req->mem_uffd = opt == OPT_MEM_UFFD;
        return 0;
    case OPT_BASE: req->base_mem_path = arg; return 0;
    case OPT_DISK: return parse_override("--disk", arg, o->disks, &o->nr_disks, CONFIG_MAX_DISKS);
    case OPT_NET: return parse_override("--net", arg, o->nics, &o->nr_nics, CONFIG_MAX_NICS);
    case OPT_VSOCK: return parse_vsock_override(arg, o);
    case OPT_PAUSED: req->paused = true; return 0;
    case OPT_DIFF: req->diff = true; return 0;
    case OPT_KEEP_PAUSED: req->keep_paused = true; return 0;
    case OPT_TRACK_DIRTY: o->track_dirty_pages = true; return 0;
    case OPT_CLOCK_REALTIME: o->clock_realtime = true; return 0;
    case OPT_GDB: o->gdb_address = arg; return 0;
    case OPT_GDB_WAIT: o->gdb_wait = true; return 0;
    case OPT_API_SOCK: req->api_sock = arg; return 0;
    case OPT_API_SOCK_MODE: return parse_sock_mode(arg, &req->api_sock_mode);
    case OPT_NO_SECCOMP: req->no_seccomp = true; return 0;
    case OPT_NO_LANDLOCK: req->no_landlock = true; return 0;
    case OPT_LANDLOCK: req->landlock = true; return 0;
    case OPT_SECCOMP_FILTER: req->seccomp_filter = arg; return 0;
    case OPT_SECCOMP_SELFTEST: return parse_seccomp_selftest(arg, req);
    case OPT_ID: return parse_id(arg, req);
    case OPT_SKIP_HOST_CHECK: req->vm.skip_host_check = true; return 0;
    case OPT_ACCEL: return parse_accel(arg, &req->vm);
    case 'v': req->verbosity++; return 0;
    case 'h': req->command = CLI_HELP; return 0;
    default: return err_set(-EINVAL, "unknown option");
    }
}

static int parse_snapshot_command(int argc, char **argv, struct cli_request *req,
                                  enum cli_command cmd)
{
    const char *name = cmd == CLI_RESTORE    ? "restore"
                       : cmd == CLI_SNAPSHOT ? "snapshot"
                                             : "merge-memory";
    const struct option *options = cmd == CLI_RESTORE    ? restore_options
                                   : cmd == CLI_SNAPSHOT ? snapshot_options
                                                         : merge_options;
    req->command = cmd;
    optind = 0;
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, cmd == CLI_RESTORE ? ":vh" : ":h", options, NULL);
        if (opt == -1)
            break;
        if (opt == '?')
            return err_set(-EINVAL, "%s: unknown option '%s'", name, argv[optind - 1]);
        if (opt == ':')
            return err_set(-EINVAL, "%s: option '%s' needs a value", name, argv[optind - 1]);
        int ret = parse_restore_option(opt, optarg, req);
        if (ret)
            return ret;
        if (req->command == CLI_HELP)
            return 0;
    }
    if (optind < argc)
        return err_set(-EINVAL, "%s: unexpected argument '%s'", name, argv[optind]);
    if (!req->snapshot_path || !req->mem_path)
        return err_set(-EINVAL, "%s: --snapshot and --mem%s are required", name,
                       cmd == CLI_RESTORE ? " (or --mem-uffd)" : "");
    if (cmd == CLI_SNAPSHOT && !req->api_sock)
        return err_set(-EINVAL, "snapshot: --api-sock is required");
    if (cmd == CLI_MERGE && !req->base_mem_path)
        return err_set(-EINVAL, "merge-memory: --base is required");
    return 0;
}

/* A drop-in install runs ember as "firecracker" (or a release's
 * "firecracker-v1.x.y-x86_64"). */
static bool invoked_as_firecracker(const char *argv0)
{
    if (!argv0)
        return false;
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    return !strncmp(base, "firecracker", 11);
}

/* As Firecracker: filters from a file, or none, not both. */
static int check_seccomp_options(int ret, const struct cli_request *req)
{
    if (!ret && req->no_seccomp && req->seccomp_filter)
        return err_set(-EINVAL, "--no-seccomp and --seccomp-filter exclude each other");
    return ret;
}

int cli_parse(int argc, char **argv, struct cli_request *req)
{
    memset(req, 0, sizeof(*req));
    vm_config_defaults(&req->vm);
    req->max_body = 51200;
    req->api_sock_mode = CLI_DEFAULT_API_SOCK_MODE;
    req->as_firecracker = argc > 0 && invoked_as_firecracker(argv[0]);
    if (argc < 2 && req->as_firecracker)
        return parse_serve(argc, argv, req); /* serves CLI_DEFAULT_API_SOCK */
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
        return check_seccomp_options(parse_run(argc - 1, argv + 1, req), req);
    if (!strcmp(cmd, "restore"))
        return check_seccomp_options(parse_snapshot_command(argc - 1, argv + 1, req, CLI_RESTORE),
                                     req);
    if (!strcmp(cmd, "snapshot"))
        return parse_snapshot_command(argc - 1, argv + 1, req, CLI_SNAPSHOT);
    if (!strcmp(cmd, "merge-memory"))
        return parse_snapshot_command(argc - 1, argv + 1, req, CLI_MERGE);
    if (cmd[0] == '-')
        return check_seccomp_options(parse_serve(argc, argv, req), req);
    return err_set(-EINVAL, "unknown command '%s'", cmd);
}

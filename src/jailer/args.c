#include "jailer/args.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Firecracker's jailer reads "--name value" pairs; "--name=value" is taken
 * too. Every argument may be given once, --cgroup and --resource-limit as
 * often as needed; "--" ends the jailer's own and starts the program's. */
enum arg_kind { FLAG, VALUE, REPEATED };

struct arg_spec {
    const char *name;
    enum arg_kind kind;
};

enum {
    A_ID, A_EXEC_FILE, A_UID, A_GID, A_CHROOT_BASE, A_NETNS, A_DAEMONIZE, A_NEW_PID_NS,
    A_CGROUP_VERSION, A_CGROUP, A_PARENT_CGROUP, A_RESOURCE_LIMIT, A_NODE, A_VERSION, A_HELP,
    A_COUNT,
};

static const struct arg_spec specs[A_COUNT] = {
    [A_ID] = {"id", VALUE},
    [A_EXEC_FILE] = {"exec-file", VALUE},
    [A_UID] = {"uid", VALUE},
    [A_GID] = {"gid", VALUE},
    [A_CHROOT_BASE] = {"chroot-base-dir", VALUE},
    [A_NETNS] = {"netns", VALUE},
    [A_DAEMONIZE] = {"daemonize", FLAG},
    [A_NEW_PID_NS] = {"new-pid-ns", FLAG},
    [A_CGROUP_VERSION] = {"cgroup-version", VALUE},
    [A_CGROUP] = {"cgroup", REPEATED},
    [A_PARENT_CGROUP] = {"parent-cgroup", VALUE},
    [A_RESOURCE_LIMIT] = {"resource-limit", REPEATED},
    [A_NODE] = {"node", VALUE},
    [A_VERSION] = {"version", FLAG},
    [A_HELP] = {"help", FLAG},
};

int jailer_check_id(const char *id)
{
    size_t len = strlen(id);
    if (len < 1 || len > JAILER_MAX_ID_LEN)
        return err_set(-EINVAL, "--id: %zu characters; it must have 1 to %d", len,
                       JAILER_MAX_ID_LEN);
    for (size_t i = 0; i < len; i++)
        if (!isascii((unsigned char)id[i]) ||
            !(isalnum((unsigned char)id[i]) || id[i] == '-'))
            return err_set(-EINVAL, "--id: invalid character '%c' at position %zu (letters, "
                                    "digits and '-' only)", id[i], i);
    return 0;
}

static int parse_number(const char *name, const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || end == text || *end || !isdigit((unsigned char)text[0]) || n > max)
        return err_set(-EINVAL, "--%s: expected a number from 0 to %llu, got '%s'", name,
                       (unsigned long long)max, text);
    *out = n;
    return 0;
}

/* A path inside a hierarchy that cannot leave it: relative, no "." or ".."
 * component, no empty one. */
static bool is_contained_path(const char *p)
{
    if (!*p || *p == '/')
        return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n;
        if (*c == '/')
            c++;
        if (!*c && c[-1] == '/')
            return false;
    }
    return true;
}

static int add_cgroup(char *arg, struct jailer_args *a)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1] || strchr(eq + 1, '='))
        return err_set(-EINVAL, "--cgroup: expected FILE=VALUE (e.g. cpuset.cpus=0), got '%s'",
                       arg);
    *eq = '\0';
    /* The file's name says its controller: "cpuset.cpus", "memory.max". */
    const char *dot = strchr(arg, '.');
    if (!is_contained_path(arg) || strchr(arg, '/') || !dot || dot == arg || !dot[1]) {
        *eq = '=';
        return err_set(-EINVAL, "--cgroup: '%s' does not name a cgroup file (CONTROLLER.NAME)",
                       arg);
    }
    if (a->nr_cgroups == JAILER_MAX_CGROUPS)
        return err_set(-EINVAL, "--cgroup: at most %d", JAILER_MAX_CGROUPS);
    a->cgroups[a->nr_cgroups++] = (struct jailer_cgroup){arg, eq + 1};
    return 0;
}

static int add_resource_limit(const char *arg, struct jailer_args *a)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return err_set(-EINVAL, "--resource-limit: expected NAME=VALUE (fsize or no-file), "
                                "got '%s'", arg);
    size_t n = (size_t)(eq - arg);
    uint64_t v;
    if (n == 5 && !strncmp(arg, "fsize", 5)) {
        if (parse_number("resource-limit fsize", eq + 1, UINT64_MAX, &v))
            return -EINVAL;
        a->has_fsize = true;
        a->fsize = v;
        return 0;
    }
    if (n == 7 && !strncmp(arg, "no-file", 7)) {
        if (parse_number("resource-limit no-file", eq + 1, UINT64_MAX, &v))
            return -EINVAL;
        a->no_file = v;
        return 0;
    }
    return err_set(-EINVAL, "--resource-limit: unknown resource '%.*s' (fsize or no-file)",
                   (int)n, arg);
}

static int apply(int which, char *value, struct jailer_args *a)
{
    uint64_t n;
    switch (which) {
    case A_ID: a->id = value; return jailer_check_id(value);
    case A_EXEC_FILE: a->exec_file = value; return 0;
    case A_UID:
        if (parse_number("uid", value, UINT32_MAX - 1, &n))
            return -EINVAL;
        a->uid = (uid_t)n;
        return 0;
    case A_GID:
        if (parse_number("gid", value, UINT32_MAX - 1, &n))
            return -EINVAL;
        a->gid = (gid_t)n;
        return 0;
    case A_CHROOT_BASE: a->chroot_base = value; return 0;
    case A_NETNS: a->netns = value; return 0;
    case A_DAEMONIZE: a->daemonize = true; return 0;
    case A_NEW_PID_NS: a->new_pid_ns = true; return 0;
    case A_CGROUP_VERSION:
        if (strcmp(value, "1") && strcmp(value, "2"))
            return err_set(-EINVAL, "--cgroup-version: expected 1 or 2, got '%s'", value);
        a->cgroup_version = (unsigned)(value[0] - '0');
        return 0;
    case A_CGROUP: return add_cgroup(value, a);
    case A_PARENT_CGROUP:
        if (!is_contained_path(value))
            return err_set(-EINVAL, "--parent-cgroup: '%s' must be a relative path without "
                                    "'.' or '..'", value);
        a->parent_cgroup = value;
        return 0;
    case A_RESOURCE_LIMIT: return add_resource_limit(value, a);
    case A_NODE:
        a->has_node = true;
        return parse_number("node", value, 4095, &n);
    case A_VERSION: a->command = JAILER_VERSION; return 0;
    case A_HELP: a->command = JAILER_HELP; return 0;
    default: return err_set(-EINVAL, "unknown argument");
    }
}

static int find_spec(const char *name, size_t len)
{
    for (int i = 0; i < A_COUNT; i++)
        if (strlen(specs[i].name) == len && !strncmp(specs[i].name, name, len))
            return i;
    return -1;
}

static int parse_one(int argc, char **argv, int *i, bool seen[A_COUNT], struct jailer_args *a)
{
    char *arg = argv[*i];
    if (strncmp(arg, "--", 2) || !arg[2])
        return err_set(-EINVAL, "unexpected argument '%s' (the program's own arguments go "
                                "after '--')", arg);
    char *name = arg + 2, *eq = strchr(name, '=');
    int which = find_spec(name, eq ? (size_t)(eq - name) : strlen(name));
    if (which < 0)
        return err_set(-EINVAL, "unknown argument '%s'", arg);
    const struct arg_spec *s = &specs[which];
    if (s->kind != REPEATED && seen[which])
        return err_set(-EINVAL, "--%s given more than once", s->name);
    seen[which] = true;
    if (s->kind == FLAG) {
        if (eq)
            return err_set(-EINVAL, "--%s takes no value", s->name);
        return apply(which, NULL, a);
    }
    char *value = eq ? eq + 1 : NULL;
    if (!value) {
        if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
            return err_set(-EINVAL, "--%s needs a value", s->name);
        value = argv[++*i];
    }
    return apply(which, value, a);
}

int jailer_parse(int argc, char **argv, struct jailer_args *a)
{
    memset(a, 0, sizeof(*a));
    a->chroot_base = JAILER_DEFAULT_CHROOT_BASE;
    a->cgroup_version = 1;
    a->no_file = JAILER_DEFAULT_NO_FILE;
    bool seen[A_COUNT] = {false};
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        int ret = parse_one(argc, argv, &i, seen, a);
        if (ret)
            return ret;
    }
    a->extra = argv + i;
    a->nr_extra = argc > i ? argc - i : 0;
    if (a->command != JAILER_RUN)
        return 0;
    static const int required[] = {A_ID, A_EXEC_FILE, A_UID, A_GID};
    for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++)
        if (!seen[required[r]])
            return err_set(-EINVAL, "--%s is required", specs[required[r]].name);
    if (!*a->exec_file || !*a->chroot_base)
        return err_set(-EINVAL, "--%s: empty path", !*a->exec_file ? "exec-file"
                                                                   : "chroot-base-dir");
    return 0;
}

void jailer_print_usage(void)
{
    printf("usage: ember-jailer --id ID --exec-file FILE --uid UID --gid GID\n"
           "                    [--chroot-base-dir DIR] [--netns PATH] [--daemonize]\n"
           "                    [--new-pid-ns] [--cgroup-version 1|2] [--cgroup FILE=VALUE]...\n"
           "                    [--parent-cgroup PATH] [--resource-limit fsize=N|no-file=N]...\n"
           "                    [-- ARGUMENTS FOR THE PROGRAM]\n"
           "\n"
           "Builds a jail at DIR/<exec file name>/ID/root (DIR: %s), copies FILE and\n"
           "the libraries it loads into it, creates /dev/kvm, /dev/net/tun, /dev/urandom\n"
           "(and /dev/userfaultfd) there, applies cgroup settings and resource limits,\n"
           "enters a new mount namespace rooted at the jail (and NETNS), drops to UID/GID\n"
           "and runs '/<exec file name> --id ID --start-time-us T --start-time-cpu-us C\n"
           "--parent-cpu-time-us P ARGUMENTS', as Firecracker's jailer does.\n",
           JAILER_DEFAULT_CHROOT_BASE);
}

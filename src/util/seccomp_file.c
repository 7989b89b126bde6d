/* --seccomp-filter FILE: per-thread filters in the JSON that Firecracker's
 * seccompiler takes as input (docs/seccompiler.md there), keyed by ember's
 * thread kinds instead of Firecracker's. A compiled seccompiler file is
 * bitcode of BPF for Firecracker's own threads and calls, so ember reads
 * the source form and builds the BPF itself with libseccomp. */
#include "util/seccomp_rules.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/json_fields.h"

/* Far above any real filter (Firecracker's three are 40 KB together). */
#define SECCOMP_FILE_MAX (1u << 20)
#define SECCOMP_MAX_RULES 4096

struct seccomp_custom seccomp_custom[SECCOMP_NR_THREADS];

void seccomp_clear_filters(void)
{
    for (int k = 0; k < SECCOMP_NR_THREADS; k++)
        free(seccomp_custom[k].rules);
    memset(seccomp_custom, 0, sizeof(seccomp_custom));
}

/* "allow", "trap", "log", "kill_thread", "kill_process", {"errno": N},
 * {"trace": N}. */
static int parse_action(struct json_object *v, const char *where, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t action;
    } plain[] = {{"allow", SCMP_ACT_ALLOW},
                 {"trap", SCMP_ACT_TRAP},
                 {"log", SCMP_ACT_LOG},
                 {"kill_thread", SCMP_ACT_KILL_THREAD},
                 {"kill_process", SCMP_ACT_KILL_PROCESS}};
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
            if (!strcmp(s, plain[i].name)) {
                *out = plain[i].action;
                return 0;
            }
    } else if (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 1) {
        struct json_object *n;
        bool is_errno = json_object_object_get_ex(v, "errno", &n);
        if ((is_errno || json_object_object_get_ex(v, "trace", &n)) &&
            json_object_is_type(n, json_type_int) && json_object_get_int64(n) >= 0 &&
            json_object_get_int64(n) <= (is_errno ? 4095 : 65535)) {
            uint32_t data = (uint32_t)json_object_get_int64(n);
            *out = is_errno ? SCMP_ACT_ERRNO(data) : SCMP_ACT_TRACE(data);
            return 0;
        }
    }
    return err_set(-EINVAL, "%s: expected \"allow\", \"trap\", \"log\", \"kill_thread\", "
                            "\"kill_process\", {\"errno\": 0..4095} or {\"trace\": 0..65535}",
                   where);
}

/* {"index": 0..5, "type": "dword"|"qword", "op": OP, "val": N}, OP being
 * "eq", "ne", "lt", "le", "gt", "ge" or {"masked_eq": MASK}. A dword is
 * the argument's low 32 bits (Firecracker's "eq" on a dword compares only
 * those: a C library may leave garbage in the high half of an int). */
static int parse_condition(struct json_object *c, const char *where, struct scmp_arg_cmp *out)
{
    static const struct jf_field fields[] = {
        {"index", JF_UINT, true, false},     {"type", JF_STRING, true, false},
        {"val", JF_UINT, true, false},       {"comment", JF_STRING, false, false},
        {"op", JF_STRING, true, false}, /* last: left out when it is an object */
    };
    struct json_object *op = jf_get(c, "op");
    bool masked = op && json_object_is_type(op, json_type_object);
    uint64_t mask = 0;
    if (masked) {
        struct json_object *m;
        if (json_object_object_length(op) != 1 ||
            !json_object_object_get_ex(op, "masked_eq", &m) ||
            !json_object_is_type(m, json_type_int) ||
            (json_object_get_int64(m) < 0 && json_object_get_uint64(m) <= INT64_MAX))
            return err_set(-EINVAL, "%s.op: an object op must be {\"masked_eq\": MASK}", where);
        mask = json_object_get_uint64(m);
        json_object_object_del(c, "op"); /* checked: the rest goes through jf_check */
    }
    int ret = jf_check(c, fields, sizeof(fields) / sizeof(fields[0]) - masked, where);
    if (ret)
        return ret;
    uint64_t index = jf_uint(c, "index", 0), val = jf_uint(c, "val", 0);
    const char *type = jf_string(c, "type", "");
    if (index >= SECCOMP_MAX_ARGS)
        return err_set(-EINVAL, "%s.index: %llu; a system call has arguments 0 to 5", where,
                       (unsigned long long)index);
    bool dword = !strcmp(type, "dword");
    if (!dword && strcmp(type, "qword"))
        return err_set(-EINVAL, "%s.type: '%s'; expected \"dword\" or \"qword\"", where, type);
    if (dword && (val > UINT32_MAX || mask > UINT32_MAX))
        return err_set(-EINVAL, "%s.val: a dword value or mask above 0xffffffff", where);
    *out = (struct scmp_arg_cmp){.arg = (unsigned)index, .datum_a = val};
    if (masked) {
        *out = (struct scmp_arg_cmp){(unsigned)index, SCMP_CMP_MASKED_EQ, mask, val};
        return 0;
    }
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {{"eq", SCMP_CMP_EQ}, {"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT},
               {"le", SCMP_CMP_LE}, {"gt", SCMP_CMP_GT}, {"ge", SCMP_CMP_GE}};
    const char *name = jf_string(c, "op", "");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(name, ops[i].name))
            continue;
        out->op = ops[i].op;
        if (ops[i].op == SCMP_CMP_EQ && dword)
            *out = (struct scmp_arg_cmp){(unsigned)index, SCMP_CMP_MASKED_EQ, 0xffffffffu, val};
        return 0;
    }
    return err_set(-EINVAL, "%s.op: '%s'; expected eq, ne, lt, le, gt, ge or "
                            "{\"masked_eq\": MASK}", where, name);
}

static int parse_rule(struct json_object *r, const char *where, struct seccomp_rule *out)
{
    static const struct jf_field fields[] = {
        {"syscall", JF_STRING, true, false},
        {"args", JF_ARRAY, false, false},
        {"comment", JF_STRING, false, false},
    };
    if (!json_object_is_type(r, json_type_object))
        return err_set(-EINVAL, "%s: expected an object", where);
    int ret = jf_check(r, fields, sizeof(fields) / sizeof(fields[0]), where);
    if (ret)
        return ret;
    const char *name = jf_string(r, "syscall", "");
    out->nr = seccomp_syscall_resolve_name(name);
    if (out->nr == __NR_SCMP_ERROR)
        return err_set(-EINVAL, "%s.syscall: '%s' is not a system call on this architecture",
                       where, name);
    struct json_object *args = jf_get(r, "args");
    size_t n = args ? json_object_array_length(args) : 0;
    if (n > SECCOMP_MAX_ARGS)
        return err_set(-EINVAL, "%s.args: %zu conditions; at most %d", where, n,
                       SECCOMP_MAX_ARGS);
    out->nr_args = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        char at[160];
        snprintf(at, sizeof(at), "%s.args[%zu]", where, i);
        struct json_object *c = json_object_array_get_idx(args, i);
        if (!json_object_is_type(c, json_type_object))
            return err_set(-EINVAL, "%s: expected an object", at);
        if ((ret = parse_condition(c, at, &out->args[i])))
            return ret;
    }
    return 0;
}

static int parse_thread(struct json_object *f, const char *kind, struct seccomp_custom *out)
{
    char where[96];
    snprintf(where, sizeof(where), "\"%s\"", kind);
    if (!json_object_is_type(f, json_type_object))
        return err_set(-EINVAL, "%s: expected an object with default_action, filter_action "
                                "and filter", where);
    /* The actions are strings or objects: checked by parse_action. */
    static const char *const names[] = {"default_action", "filter_action", "filter"};
    json_object_object_foreach(f, key, val) {
        (void)val;
        bool known = false;
        for (size_t i = 0; i < 3; i++)
            known |= !strcmp(key, names[i]);
        if (!known)
            return err_set(-EINVAL, "%s: unknown field '%s'", where, key);
    }
    for (size_t i = 0; i < 3; i++)
        if (!jf_get(f, names[i]))
            return err_set(-EINVAL, "%s: '%s' is missing", where, names[i]);
    char at[128];
    snprintf(at, sizeof(at), "%s.default_action", where);
    int ret = parse_action(jf_get(f, "default_action"), at, &out->default_action);
    snprintf(at, sizeof(at), "%s.filter_action", where);
    if (ret || (ret = parse_action(jf_get(f, "filter_action"), at, &out->filter_action)))
        return ret;
    if (out->default_action == out->filter_action)
        return err_set(-EINVAL, "%s: filter_action is default_action: the rules would change "
                                "nothing", where);
    struct json_object *rules = jf_get(f, "filter");
    if (!json_object_is_type(rules, json_type_array))
        return err_set(-EINVAL, "%s.filter: expected an array of rules", where);
    size_t n = json_object_array_length(rules);
    if (n > SECCOMP_MAX_RULES)
        return err_set(-EINVAL, "%s.filter: %zu rules; at most %d", where, n, SECCOMP_MAX_RULES);
    out->rules = calloc(n ? n : 1, sizeof(*out->rules));
    if (!out->rules)
        return err_set(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        snprintf(at, sizeof(at), "%s.filter[%zu]", where, i);
        if ((ret = parse_rule(json_object_array_get_idx(rules, i), at, &out->rules[i])))
            return ret;
        out->nr_rules = i + 1;
    }
    out->set = true;
    return 0;
}

static int parse_filters(struct json_object *top)
{
    if (!json_object_is_type(top, json_type_object))
        return err_set(-EINVAL, "expected an object of thread kinds (main, vcpu, console, "
                                "slirp, timer, fs, uffd) to filters");
    json_object_object_foreach(top, kind, filter) {
        int k = 0;
        while (k < SECCOMP_NR_THREADS && strcmp(kind, seccomp_thread_name(k)))
            k++;
        if (k == SECCOMP_NR_THREADS)
            return err_set(-EINVAL, "\"%s\" is not one of ember's thread kinds (main, vcpu, "
                                    "console, slirp, timer, fs, uffd)%s", kind,
                           !strcmp(kind, "vmm") || !strcmp(kind, "api")
                               ? "; Firecracker's vmm and api threads are ember's main"
                               : "");
        int ret = parse_thread(filter, kind, &seccomp_custom[k]);
        if (ret)
            return ret;
    }
    return 0;
}

int seccomp_parse_filters(const char *text, size_t len)
{
    seccomp_clear_filters();
    if (!len)
        return err_set(-EINVAL, "empty (expected a JSON object of thread kinds to filters)");
    struct json_object *top;
    int ret = jf_parse(text, len, &top);
    if (ret)
        return ret;
    ret = parse_filters(top);
    json_object_put(top);
    if (ret)
        seccomp_clear_filters();
    return ret;
}

int seccomp_load_filter_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "--seccomp-filter: cannot open %s", path);
    struct stat st;
    char *text = NULL;
    int ret = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "--seccomp-filter: %s is not a file", path);
    else if (st.st_size > SECCOMP_FILE_MAX)
        ret = err_set(-EFBIG, "--seccomp-filter: %s is larger than %u bytes", path,
                      SECCOMP_FILE_MAX);
    else if (!(text = malloc((size_t)st.st_size + 1)))
        ret = err_set(-ENOMEM, "out of memory");
    else if (read(fd, text, (size_t)st.st_size) != st.st_size)
        ret = err_errno(-EIO, "--seccomp-filter: cannot read %s", path);
    close(fd);
    if (!ret && (ret = seccomp_parse_filters(text, (size_t)st.st_size)))
        err_prefix(ret, "--seccomp-filter %s", path);
    free(text);
    return ret;
}

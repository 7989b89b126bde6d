/* --mmds [version=V1|V2][,address=IP][,data=FILE][,limit=BYTES][,imds_compat] */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/err.h"

int mmds_config_parse(char *arg, struct mmds_config *m)
{
    if (m->given)
        return err_set(-EINVAL, "--mmds: given twice (a VM has one metadata service)");
    m->given = true;
    enum { KEY_VERSION, KEY_ADDRESS, KEY_DATA, KEY_LIMIT, KEY_COMPAT };
    char *const keys[] = {"version", "address", "data", "limit", "imds_compat", NULL};
    char *value, *end;
    struct in_addr a;
    while (*arg) {
        char *item = arg;
        int key = getsubopt(&arg, keys, &value);
        if (key >= 0 && key != KEY_COMPAT && (!value || !*value))
            return err_set(-EINVAL, "--mmds: %s= needs a value", keys[key]);
        switch (key) {
        case KEY_VERSION:
            if (strcmp(value, "V1") && strcmp(value, "V2"))
                return err_set(-EINVAL, "--mmds: version must be V1 or V2, got '%s'", value);
            m->v2 = !strcmp(value, "V2");
            break;
        case KEY_ADDRESS:
            if (inet_pton(AF_INET, value, &a) != 1 || (ntohl(a.s_addr) >> 16) != 0xa9fe)
                return err_set(-EINVAL, "--mmds: address '%s' is not a link-local IPv4 "
                                        "address (169.254.0.0/16)", value);
            m->ipv4 = a.s_addr;
            break;
        case KEY_DATA: m->data_path = value; break;
        case KEY_LIMIT:
            errno = 0;
            m->size_limit = strtoull(value, &end, 10);
            if (errno || *end || !m->size_limit || value[0] == '-')
                return err_set(-EINVAL, "--mmds: limit must be a positive number of bytes, "
                                        "got '%s'", value);
            break;
        case KEY_COMPAT: m->imds_compat = true; break;
        default:
            return err_set(-EINVAL, "--mmds: unknown setting '%s' (expected version=, "
                                    "address=, data=, limit=, imds_compat)", item);
        }
    }
    return 0;
}


#include "virtio/backends/slirp_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "util/err.h"

static struct slirp_lib lib;
static char load_error[256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void *symbol(void *handle, const char *name)
{
    void *fn = dlsym(handle, name);
    if (!fn && !load_error[0])
        snprintf(load_error, sizeof(load_error), "%s has no %s", EMBER_LIBSLIRP_SONAME, name);
    return fn;
}

static void load(void)
{
    /* RTLD_LOCAL: GLib's symbols stay out of ember's namespace */
    void *h = dlopen(EMBER_LIBSLIRP_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_error, sizeof(load_error),
                 "cannot load %s, which user networking and the metadata service need "
                 "(Debian package libslirp0): %s", EMBER_LIBSLIRP_SONAME, why ? why : "?");
        return;
    }
    lib.new_stack = (__typeof__(lib.new_stack))symbol(h, "slirp_new");
    lib.cleanup = (__typeof__(lib.cleanup))symbol(h, "slirp_cleanup");
    lib.input = (__typeof__(lib.input))symbol(h, "slirp_input");
    lib.pollfds_fill = (__typeof__(lib.pollfds_fill))symbol(h, "slirp_pollfds_fill");
    lib.pollfds_poll = (__typeof__(lib.pollfds_poll))symbol(h, "slirp_pollfds_poll");
    lib.add_hostfwd = (__typeof__(lib.add_hostfwd))symbol(h, "slirp_add_hostfwd");
    lib.add_unix = (__typeof__(lib.add_unix))symbol(h, "slirp_add_unix");
    /* the handle stays open: the stacks' threads run its code until exit */
}

const struct slirp_lib *slirp_lib_get(void)
{
    pthread_once(&load_once, load);
    if (load_error[0]) {
        err_set(-ENOENT, "%s", load_error);
        return NULL;
    }
    return &lib;
}

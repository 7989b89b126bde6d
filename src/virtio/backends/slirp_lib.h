/* libslirp, loaded when a VM first asks for user networking or the
 * metadata service: the library and GLib under it cost ~1 MiB resident in
 * every ember that links them, and most VMs use neither. */
#ifndef EMBER_VIRTIO_BACKENDS_SLIRP_LIB_H
#define EMBER_VIRTIO_BACKENDS_SLIRP_LIB_H

#include <slirp/libslirp.h>

#include "util/dlopen_libs.h"

struct slirp_lib {
    __typeof__(slirp_new) *new_stack;
    __typeof__(slirp_cleanup) *cleanup;
    __typeof__(slirp_input) *input;
    __typeof__(slirp_pollfds_fill) *pollfds_fill;
    __typeof__(slirp_pollfds_poll) *pollfds_poll;
    __typeof__(slirp_add_hostfwd) *add_hostfwd;
    __typeof__(slirp_add_unix) *add_unix;
};

/* The loaded library, or NULL with the error set (not installed, or a
 * version without one of the functions). Loaded once per process. */
const struct slirp_lib *slirp_lib_get(void);

#endif

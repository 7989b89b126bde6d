/* Libraries ember loads with dlopen() only when a VM needs them, by soname.
 * The jailer reads this list too: a jailed ember finds them in its chroot. */
#ifndef EMBER_UTIL_DLOPEN_LIBS_H
#define EMBER_UTIL_DLOPEN_LIBS_H

#define EMBER_LIBSLIRP_SONAME "libslirp.so.0"

#define EMBER_DLOPEN_SONAMES {EMBER_LIBSLIRP_SONAME}

#endif

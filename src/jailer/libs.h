/* The shared libraries a dynamically linked program needs, placed in its
 * jail. ember links Debian's shared libraries (Debian ships no static
 * archives of libslirp and GLib), so the jailer copies the program's
 * interpreter (its PT_INTERP) and every library the interpreter resolves
 * for it (what 'ldd' lists: 'INTERP --list PROGRAM', run with an empty
 * environment), plus the libraries ember loads with dlopen() when a VM
 * needs them (util/dlopen_libs.h) and theirs, to the same absolute paths
 * under the jail's root, read-only and owned by root. A static program
 * needs none. */
#ifndef EMBER_JAILER_LIBS_H
#define EMBER_JAILER_LIBS_H

#include <stddef.h>

#include "util/err.h"

#define JAIL_MAX_LIBS 64
#define JAIL_LIB_PATH_MAX 512

struct jail_libs {
    char paths[JAIL_MAX_LIBS][JAIL_LIB_PATH_MAX];
    unsigned n;
};

/* The interpreter's path from an ELF file's PT_INTERP into interp ("" for a
 * static program). */
int jail_elf_interp(const char *exec_path, char *interp, size_t size) EMBER_MUST_CHECK;
/* Parse the interpreter's '--list' output (one library a line, "name =>
 * /path (0x...)" or "/path (0x...)"); a library it could not find is an
 * error. The vDSO (no path) is skipped. */
int jail_parse_lib_list(const char *text, struct jail_libs *libs) EMBER_MUST_CHECK;
/* Everything together: list exec_path's libraries and copy them (and the
 * interpreter) under root. */
int jail_copy_libraries(const char *exec_path, const char *root) EMBER_MUST_CHECK;
/* Copy src to dst (created with mode, not following a link at dst). */
int jail_copy_file(const char *src, const char *dst, unsigned mode) EMBER_MUST_CHECK;

#endif

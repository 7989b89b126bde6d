/* Landlock: ember limits its own file-system reach to the files it was
 * configured with. Paths are collected while the VM is set up (the layers
 * that know them call landlock_allow*), then landlock_seal() turns them
 * into a ruleset and restricts the calling thread, before the VM's threads
 * start (they inherit it). Opens already done are unaffected; what is
 * checked is every open, create, unlink or rename after that. Where the
 * kernel has no Landlock, sealing logs it once and changes nothing.
 *
 * What each class allows, beneath a directory (or on a file):
 *   LANDLOCK_READ    read files, list directories
 *   LANDLOCK_DEVICE  read and write a device node (a file rule)
 *   LANDLOCK_FILES   read, write, truncate, create and remove files,
 *                    sockets and FIFOs, list, rename within (not directories)
 *   LANDLOCK_RMDIR   remove an (empty) directory
 *   LANDLOCK_TREE    everything but executing (a shared directory) */
#ifndef EMBER_UTIL_LANDLOCK_H
#define EMBER_UTIL_LANDLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

enum landlock_class {
    LANDLOCK_READ = 1 << 0,
    LANDLOCK_DEVICE = 1 << 1,
    LANDLOCK_FILES = 1 << 2,
    LANDLOCK_RMDIR = 1 << 3,
    LANDLOCK_TREE = 1 << 4,
};

#define LANDLOCK_MAX_RULES 96

/* --no-landlock: nothing is restricted (collecting still works). */
void landlock_configure(bool enabled);
bool landlock_enabled(void);
/* path (a directory: beneath it; a file: it) gets the classes. Relative
 * paths are taken from the current directory when sealing. */
int landlock_allow(const char *path, unsigned classes) EMBER_MUST_CHECK;
/* The directory a file is in (the current directory for a bare name). */
int landlock_allow_dir_of(const char *file, unsigned classes) EMBER_MUST_CHECK;
/* Landlock's ABI version on this kernel; 0 without Landlock. */
int landlock_abi(void);
/* The access rights the classes mean at an ABI version, for a directory or
 * a file rule (file rules carry only rights that apply to files). */
uint64_t landlock_access(unsigned classes, int abi, bool is_dir);
/* Every right ember's rulesets handle at an ABI version. */
uint64_t landlock_handled(int abi);
/* Build the ruleset from what was collected and restrict this thread (and
 * the threads it starts). Paths that do not exist are skipped (logged).
 * Once per process; later calls do nothing. */
int landlock_seal(void) EMBER_MUST_CHECK;
bool landlock_sealed(void);
/* ret unchanged; when it is -EACCES under Landlock, the message says why. */
int landlock_explain(int ret);
/* For tests: the collected rules. */
unsigned landlock_rule_count(void);
const char *landlock_rule_path(unsigned i);
unsigned landlock_rule_classes(unsigned i);
void landlock_reset(void);

#endif

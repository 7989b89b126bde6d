/* Per-thread seccomp-bpf filters (libseccomp): each kind of thread ember
 * runs installs, in itself, an allow-list of the system calls that kind
 * makes, before the guest runs its first instruction. Anything else traps
 * (SECCOMP_RET_TRAP): the SIGSYS handler writes one line naming the thread
 * kind and the call, restores the terminal and ends ember with status
 * SECCOMP_EXIT_STATUS. A guest that takes over a device model can then
 * neither start programs, nor open files, nor make sockets from a vCPU.
 *
 * Filters are inherited by threads created later and stack (the strictest
 * verdict wins): the main thread's list is therefore a superset of the
 * vCPU list, since vCPU threads are created after it has its filter. */
#ifndef EMBER_UTIL_SECCOMP_H
#define EMBER_UTIL_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Firecracker's status for a forbidden system call, so launchers that know
 * it recognise ember's. */
#define SECCOMP_EXIT_STATUS 148

enum seccomp_thread {
    SECCOMP_MAIN,    /* the event loop: API, devices' queues, backends, VM lifecycle */
    SECCOMP_VCPU,    /* a vCPU: runs the guest, handles its port and MMIO exits */
    SECCOMP_CONSOLE, /* writes the guest's console output to stdout */
    SECCOMP_SLIRP,   /* libslirp's user-mode network stack */
    SECCOMP_TIMER,   /* the soft backend's timer (PIT, local APIC timers) */
    SECCOMP_FS,      /* a virtio-fs worker: file operations beneath a shared directory */
    SECCOMP_UFFD,    /* watches a Uffd restore's page-fault handler */
    SECCOMP_NR_THREADS,
};

/* Once per process, before any thread that installs a filter starts:
 * whether filters are installed at all (--no-seccomp), a thread kind that
 * is to try a forbidden call right after installing its filter (a test
 * hook; NULL for none), and what to do in the SIGSYS handler before exiting
 * (async-signal-safe; may be NULL). Refuses a kernel without seccomp. */
int seccomp_setup(bool enabled, const char *selftest_kind, void (*before_exit)(void))
    EMBER_MUST_CHECK;
/* Install the calling thread's filter (once per thread; nothing when
 * disabled). */
int seccomp_enter(enum seccomp_thread kind) EMBER_MUST_CHECK;
/* The same for a helper thread that cannot report an error to anyone: it
 * logs and ends ember (status 1) rather than run unfiltered. */
void seccomp_enter_or_exit(enum seccomp_thread kind);
bool seccomp_enabled(void);
/* --seccomp-filter FILE: filters for the thread kinds the file names, in
 * place of ember's own lists (the format is in README "Defence in depth").
 * Before the first seccomp_enter; -EINVAL with the place and the fault for
 * a malformed file. */
int seccomp_load_filter_file(const char *path) EMBER_MUST_CHECK;
/* The same from text (tests, fuzzing); replaces what was loaded before. */
int seccomp_parse_filters(const char *text, size_t len) EMBER_MUST_CHECK;
void seccomp_clear_filters(void);
/* "vcpu", "main" ...; NULL for a bad index. */
const char *seccomp_thread_name(enum seccomp_thread kind);

#endif

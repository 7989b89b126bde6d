/* The userfaultfd snapshot-memory backend (Firecracker's "Uffd"): guest RAM
 * is anonymous memory registered with a userfaultfd, and a page-fault
 * handler process fills it on demand. ember speaks Firecracker's handshake
 * exactly, so handlers written for Firecracker serve ember:
 *
 *   1. guest RAM is mapped (anonymous) and a userfaultfd created (close-on-
 *      exec, non-blocking, kernel faults included) with UFFD_FEATURE_EVENT_
 *      REMOVE, every RAM region registered in MISSING mode;
 *   2. ember connects to the handler's Unix stream socket and sends, in one
 *      sendmsg, a JSON array of the regions (uffd_regions_json) with the
 *      userfaultfd as SCM_RIGHTS;
 *   3. only then are the vCPUs created and the VM started; the socket stays
 *      open for the VM's life.
 *
 * Pages the balloon gives back are dropped with madvise(MADV_DONTNEED),
 * which the handler sees as UFFD_EVENT_REMOVE (it must then serve zeroes
 * there, or unregister the range).
 *
 * ember's side of a handler that fails: a watcher thread (uffd_backend_start)
 * ends ember with a message when the handler is gone — its connection closed
 * and its process (SO_PEERCRED's pid, watched through a pidfd) exited, or
 * without a pid, its connection closed — or
 * when faults wait (read or not: the userfaultfd's fdinfo 'total') and no
 * page arrives for UFFD_STALL_SECONDS. A
 * thread waiting for a page that will never come cannot be woken without
 * handing it memory that is not the guest's, so ember does not try: it ends. */
#ifndef EMBER_VMM_UFFD_H
#define EMBER_VMM_UFFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mem/guest_mem.h"
#include "util/err.h"

#define UFFD_STALL_SECONDS 10

struct uffd_backend {
    int uffd;      /* ember's copy of the userfaultfd (-1: none) */
    int sock;      /* the connection to the handler (-1: none) */
    int pidfd;     /* the handler process (-1: unknown) */
    int quit_fd;   /* eventfd telling the watcher to end */
    int fdinfo_fd; /* /proc/self/fdinfo/<uffd>: how many faults wait (-1: none) */
    pid_t pid;     /* the handler's pid from SO_PEERCRED (0: unknown) */
    char path[108];
    const struct guest_mem *mem;
    pthread_t watcher;
    bool watching;
};

/* Firecracker's message: a JSON array with one object per RAM region,
 * {"base_host_virt_addr", "size", "offset" (in the memory file: the sum
 * of the earlier regions' sizes), "page_size", "page_size_kib" (the same
 * value, in bytes despite its name: Firecracker's deprecated field)}.
 * *out is malloc'ed. */
int uffd_regions_json(const struct guest_mem *mem, uint64_t page_size, char **out)
    EMBER_MUST_CHECK;

/* Steps 1 and 2 on 'mem' (its RAM regions), then the watcher thread. */
int uffd_backend_start(struct uffd_backend *u, const char *socket_path,
                       const struct guest_mem *mem, uint64_t page_size) EMBER_MUST_CHECK;
/* End the watcher and close everything (idempotent; a zeroed or never
 * started backend is fine once uffd_backend_init ran). */
void uffd_backend_init(struct uffd_backend *u);
void uffd_backend_stop(struct uffd_backend *u);

#endif

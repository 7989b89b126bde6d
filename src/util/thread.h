/* ember's threads (vCPUs, the console's writer, the kernel copy, device
 * workers): pthread_create with a stack sized for what ember uses. glibc
 * reserves 8 MiB per thread and writes its thread descriptor at the top
 * before the thread runs; on a host whose THP mode is "always" (Linux
 * before 6.7 does not exempt stacks) that first write faults in a whole
 * 2 MiB page when the mapping ends on a 2 MiB boundary, and khugepaged
 * collapses any 2 MiB-aligned block of a stack later: measured in the
 * nested harness as 2 MiB of the VMM's own memory per such thread, where
 * the thread touches tens of KiB. A stack mapping under 2 MiB cannot hold
 * a huge page. (Marking the stack MADV_NOHUGEPAGE after pthread_create
 * would need pthread_getattr_np, and with it sched_getaffinity, a system
 * call an operator's --seccomp-filter for the main thread need not allow.) */
#ifndef EMBER_UTIL_THREAD_H
#define EMBER_UTIL_THREAD_H

#include <pthread.h>

/* Far above what ember's deepest path uses (the engine's vCPU, virtio-fs
 * requests, under AddressSanitizer too), and below 2 MiB with the guard. */
#define THREAD_STACK_SIZE (1024u * 1024u)

/* pthread_create's contract (0 or a positive error number): a joinable
 * thread with a THREAD_STACK_SIZE stack. */
int thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif

/* The kernel and initrd copied into a fresh guest's memory on a thread of
 * their own while the main thread builds the rest of the machine
 * (KVM_CREATE_VM, devices, ACPI, vCPUs). The copy is most of ember's
 * start-up: it is the first touch of fresh guest memory, which the host
 * must fault in and zero. */
#ifndef EMBER_VMM_IMAGE_COPY_H
#define EMBER_VMM_IMAGE_COPY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86_64/boot.h"
#include "mem/guest_mem.h"

/* One thread. Tried in the nested harness (2 CPUs), neither a second
 * thread from the start nor the main thread taking 2 MiB chunks while it
 * waits shortened the wait: the host's faulting-in of fresh memory did not
 * go faster, and KVM_CREATE_VM beside two copies went slower. */
struct image_copy {
    struct boot_copy copy;
    pthread_t thread;
    bool threaded; /* a thread runs it; else it ran in the caller */
    bool running;  /* started and not yet finished */
    double copy_ms; /* how long the copy itself took, once finished */
    uint64_t bytes; /* copied or zeroed */
    pthread_mutex_t lock;
    pthread_cond_t open_cond;
    bool closed;   /* vCPUs wait (from the start until image_copy_open) */
};

void image_copy_init(struct image_copy *c);
void image_copy_destroy(struct image_copy *c);

/* Check every destination, then copy (on a thread when one can be had,
 * else at once). An error leaves nothing started. */
int image_copy_start(struct image_copy *c, const struct boot_config *cfg,
                     const struct boot_layout *layout, const struct guest_mem *gm)
    EMBER_MUST_CHECK;
/* Wait for the copy and tell the memory's observers; nothing if none is
 * running. Before the images are unmapped; from the thread that started it. */
void image_copy_finish(struct image_copy *c, const struct guest_mem *gm);
/* After image_copy_finish: let the waiters go. */
void image_copy_open(struct image_copy *c);
/* Both, when the VM goes before it ran (nothing may write into its memory
 * after, nothing may wait for a copy that will not come). */
void image_copy_end(struct image_copy *c, const struct guest_mem *gm);
/* From any other thread (a vCPU before its first entry): return once
 * image_copy_open has run, or at once if no copy was started. */
void image_copy_wait(struct image_copy *c);

#endif

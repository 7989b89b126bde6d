/* Guest-virtual to guest-physical translation for a debugger: a read-only
 * walk of the guest's page tables (4-level, or 5-level with CR4.LA57;
 * 1 GiB and 2 MiB pages), every entry read through the checked accessor.
 * Accessed and dirty bits are left alone; permissions are not checked (a
 * debugger may read what the guest could not). */
#ifndef EMBER_ARCH_X86_64_PAGEWALK_H
#define EMBER_ARCH_X86_64_PAGEWALK_H

#include <stdint.h>

#include "arch/x86_64/cpu_state.h"
#include "mem/guest_mem.h"

/* The control registers the walk needs (from struct x86_sregs). */
struct pagewalk_ctx {
    uint64_t cr0, cr3, cr4, efer;
};

/* Translate 'va'. *gpa is the physical address, *contiguous how many bytes
 * from there lie in the same page. Returns 0, -EFAULT when va is not mapped
 * (or a table lies outside RAM), -EINVAL for a non-canonical address or a
 * paging mode other than long mode (paging off translates 1:1). */
int pagewalk_translate(const struct guest_mem *mem, const struct pagewalk_ctx *ctx,
                       uint64_t va, uint64_t *gpa, uint64_t *contiguous);

#endif

/* Putting a kernel, initrd and command line into guest memory and describing
 * the boot vCPU's entry state. boot_prepare() decides everything from the
 * files and the memory size alone, so every error is found before a VM is
 * created; boot_load() then only copies. */
#ifndef EMBER_ARCH_X86_64_BOOT_H
#define EMBER_ARCH_X86_64_BOOT_H

#include "arch/x86_64/cpu_state.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/kernel_image.h"
#include "mem/guest_mem.h"

struct boot_config {
    struct boot_file kernel;
    struct boot_file initrd; /* data NULL when there is none */
    const char *cmdline;
    uint64_t ram_size;
    /* The vCPU starts in long mode only (ember's CPU engine): an ELF is
     * entered at its 64-bit entry even where it has a PVH note. */
    bool long_mode_entry;
};

struct boot_layout {
    struct kernel_image kernel;
    struct e820_map e820;
    uint64_t initrd_gpa;
    uint64_t initrd_size;
    size_t cmdline_len;
};

int boot_prepare(const struct boot_config *cfg, struct boot_layout *layout) EMBER_MUST_CHECK;
/* Another command line for a prepared boot (devices add their words once
 * the board exists); checked against the kernel's limit. */
int boot_set_cmdline(struct boot_config *cfg, struct boot_layout *layout, const char *cmdline)
    EMBER_MUST_CHECK;
/* Copy everything into guest memory (which must be zeroed) and fill in the
 * boot vCPU's registers. */
int boot_load(const struct boot_config *cfg, const struct boot_layout *layout,
              const struct guest_mem *gm, struct x86_regs *regs,
              struct x86_sregs *sregs) EMBER_MUST_CHECK;

/* boot_load in two parts, so that the copy of the kernel and initrd (most
 * of a boot's set-up: the first touch of fresh guest memory) can run on a
 * thread of its own while the rest of the machine is built. The plan
 * checks every destination; the run cannot fail and writes nothing but
 * those ranges; "written" then tells the memory's observers (the dirty
 * bitmap, the CPU engine) once the run is over. */
struct boot_copy_part {
    uint8_t *dst;
    const uint8_t *src;
    uint64_t gpa, len, mem_size; /* mem_size >= len: the rest is zeroed */
};
struct boot_copy {
    struct boot_copy_part parts[KERNEL_MAX_SEGMENTS + 1]; /* the segments, then the initrd */
    unsigned nr;
};
int boot_copy_plan(const struct boot_config *cfg, const struct boot_layout *layout,
                   const struct guest_mem *gm, struct boot_copy *copy) EMBER_MUST_CHECK;
void boot_copy_run(const struct boot_copy *copy);
void boot_copy_written(const struct boot_copy *copy, const struct guest_mem *gm);
/* Everything but the copy: the command line, boot_params or the PVH start
 * info, and the boot vCPU's registers. */
int boot_load_rest(const struct boot_config *cfg, const struct boot_layout *layout,
                   const struct guest_mem *gm, struct x86_regs *regs,
                   struct x86_sregs *sregs) EMBER_MUST_CHECK;

/* Pieces exposed for unit tests. */
int boot_write_zero_page(const struct boot_layout *layout, uint8_t zero_page[4096]);
int boot_write_pvh_info(const struct boot_layout *layout, const struct guest_mem *gm)
    EMBER_MUST_CHECK;

/* Entry state for each protocol; writes the GDT and (long mode) the identity
 * page tables into guest memory. */
int cpu_boot_long_mode(const struct guest_mem *gm, uint64_t entry, uint64_t rsi,
                       struct x86_regs *regs, struct x86_sregs *sregs) EMBER_MUST_CHECK;
/* An AP woken through the ACPI multiprocessor wakeup mailbox, as the spec's
 * firmware leaves it: 64-bit mode at 'vector', interrupts off, flat
 * segments, paging on an identity map of the first 512 GiB (1 GiB pages,
 * written at LAYOUT_AP_PML4/PDPT in the reserved BIOS area); no GDT or IDT
 * (the OS's code loads its own first). */
int cpu_boot_ap_long_mode(const struct guest_mem *gm, uint64_t vector, struct x86_regs *regs,
                          struct x86_sregs *sregs) EMBER_MUST_CHECK;
int cpu_boot_protected_mode(const struct guest_mem *gm, uint64_t entry, uint64_t rbx,
                            uint64_t rsi, struct x86_regs *regs, struct x86_sregs *sregs)
    EMBER_MUST_CHECK;

#endif

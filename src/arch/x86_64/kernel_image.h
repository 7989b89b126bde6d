/* Kernel images ember can boot: a bzImage (Linux boot protocol >= 2.06) or an
 * ELF vmlinux (PVH entry if it has the note, else its 64-bit entry).
 * Probing validates the whole image against the file's size; it reads the
 * file only, so a malformed image is rejected before a VM exists. */
#ifndef EMBER_ARCH_X86_64_KERNEL_IMAGE_H
#define EMBER_ARCH_X86_64_KERNEL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct boot_file {
    const char *path;
    const uint8_t *data;
    size_t size;
};

enum kernel_format { KERNEL_BZIMAGE, KERNEL_ELF };

enum boot_entry {
    ENTRY_LINUX64, /* 64-bit boot protocol: long mode, RSI = boot_params */
    ENTRY_LINUX32, /* 32-bit boot protocol: protected mode, ESI = boot_params */
    ENTRY_PVH,     /* PVH: protected mode, EBX = hvm_start_info */
};

#define KERNEL_MAX_SEGMENTS 16

struct kernel_segment {
    uint64_t gpa;
    const uint8_t *src;  /* inside the file */
    uint64_t file_size;
    uint64_t mem_size;   /* >= file_size; the rest is zeroed */
};

struct kernel_image {
    enum kernel_format format;
    enum boot_entry entry;
    uint64_t entry_addr;
    uint64_t elf_entry64; /* ELF only: its 64-bit entry (e_entry), PVH note or not */
    struct kernel_segment segs[KERNEL_MAX_SEGMENTS];
    unsigned nr_segs;
    uint64_t mem_start;  /* lowest byte the kernel occupies */
    uint64_t mem_end;    /* first byte above everything it occupies at boot */
    size_t cmdline_max;  /* longest command line it accepts, without NUL */
    uint64_t initrd_addr_max; /* highest address the initrd may end at */
    /* bzImage only: the setup header to copy into boot_params. */
    const uint8_t *setup_header;
    size_t setup_header_len;
    uint16_t protocol;
};

int kernel_probe(const struct boot_file *file, struct kernel_image *img) EMBER_MUST_CHECK;
int bzimage_probe(const struct boot_file *file, struct kernel_image *img) EMBER_MUST_CHECK;
int elf_kernel_probe(const struct boot_file *file, struct kernel_image *img) EMBER_MUST_CHECK;

#endif

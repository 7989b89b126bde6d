/* bzImage parsing (Documentation/arch/x86/boot.rst). */
#include "arch/x86_64/kernel_image.h"

#include <string.h>

#include "arch/x86_64/layout.h"
#include "util/util.h"

#define SETUP_HEADER_OFFSET 0x1f1
#define SETUP_HEADER_END_MAX 0x290 /* end of boot_params.hdr */
#define OFF_SETUP_SECTS 0x1f1
#define OFF_SYSSIZE 0x1f4
#define OFF_BOOT_FLAG 0x1fe
#define OFF_JUMP 0x200
#define OFF_HEADER 0x202
#define OFF_VERSION 0x206
#define OFF_LOADFLAGS 0x211
#define OFF_CODE32_START 0x214
#define OFF_INITRD_ADDR_MAX 0x22c
#define OFF_KERNEL_ALIGNMENT 0x230
#define OFF_RELOCATABLE 0x234
#define OFF_XLOADFLAGS 0x236
#define OFF_CMDLINE_SIZE 0x238
#define OFF_PREF_ADDRESS 0x258
#define OFF_INIT_SIZE 0x260

#define LOADFLAG_LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01

int bzimage_probe(const struct boot_file *f, struct kernel_image *img)
{
    const uint8_t *d = f->data;
    memset(img, 0, sizeof(*img));
    if (f->size < 1024)
        return err_set(-EINVAL, "%s: too short for a bzImage (%zu bytes)", f->path, f->size);
    if (le16_load(d + OFF_BOOT_FLAG) != 0xaa55 || memcmp(d + OFF_HEADER, "HdrS", 4))
        return err_set(-EINVAL, "%s: not a Linux kernel image (no boot signature)", f->path);
    uint16_t version = le16_load(d + OFF_VERSION);
    if (version < 0x206)
        return err_set(-EINVAL,
                       "%s: Linux boot protocol %u.%02u is older than 2.06, "
                       "which ember needs", f->path, version >> 8, version & 0xff);
    if (!(d[OFF_LOADFLAGS] & LOADFLAG_LOADED_HIGH))
        return err_set(-EINVAL, "%s: a zImage (loaded low) is not supported", f->path);

    unsigned setup_sects = d[OFF_SETUP_SECTS] ? d[OFF_SETUP_SECTS] : 4;
    size_t code_offset = (size_t)(setup_sects + 1) * 512;
    uint64_t syssize = (uint64_t)le32_load(d + OFF_SYSSIZE) * 16;
    if (code_offset >= f->size)
        return err_set(-EINVAL, "%s: truncated: setup code claims %zu bytes, file has %zu",
                       f->path, code_offset, f->size);
    size_t code_size = f->size - code_offset;
    if (syssize > code_size)
        return err_set(-EINVAL,
                       "%s: truncated: header says %llu bytes of kernel, file has %zu",
                       f->path, (unsigned long long)syssize, code_size);

    size_t header_end = OFF_JUMP + 2 + d[OFF_JUMP + 1];
    header_end = MIN(header_end, (size_t)SETUP_HEADER_END_MAX);
    img->setup_header = d + SETUP_HEADER_OFFSET;
    img->setup_header_len = header_end - SETUP_HEADER_OFFSET;
    img->protocol = version;
    img->format = KERNEL_BZIMAGE;
    img->cmdline_max = le32_load(d + OFF_CMDLINE_SIZE);
    img->initrd_addr_max = le32_load(d + OFF_INITRD_ADDR_MAX);

    uint64_t load = LAYOUT_KERNEL_32BIT_LOAD;
    uint64_t mem_size = code_size;
    if (version >= 0x20a) {
        uint64_t pref = le64_load(d + OFF_PREF_ADDRESS);
        uint32_t align = le32_load(d + OFF_KERNEL_ALIGNMENT);
        bool relocatable = d[OFF_RELOCATABLE] != 0;
        if (pref >= LAYOUT_HIGH_RAM && (!relocatable || align == 0 || is_aligned(pref, align)))
            load = pref;
        mem_size = MAX(mem_size, (uint64_t)le32_load(d + OFF_INIT_SIZE));
    } else {
        load = le32_load(d + OFF_CODE32_START);
    }
    if (load < LAYOUT_HIGH_RAM || load >= LAYOUT_PCI_HOLE_START)
        return err_set(-EINVAL, "%s: load address %#llx is not usable", f->path,
                       (unsigned long long)load);

    if (version >= 0x20c && (le16_load(d + OFF_XLOADFLAGS) & XLF_KERNEL_64)) {
        img->entry = ENTRY_LINUX64;
        img->entry_addr = load + 0x200;
    } else {
        img->entry = ENTRY_LINUX32;
        img->entry_addr = load;
    }
    img->segs[0] = (struct kernel_segment){load, d + code_offset, code_size, mem_size};
    img->nr_segs = 1;
    img->mem_start = load;
    img->mem_end = load + mem_size;
    return 0;
}

int kernel_probe(const struct boot_file *f, struct kernel_image *img)
{
    if (f->size >= 4 && !memcmp(f->data, "\x7f" "ELF", 4))
        return elf_kernel_probe(f, img);
    return bzimage_probe(f, img);
}

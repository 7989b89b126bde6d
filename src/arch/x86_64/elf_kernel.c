/* ELF vmlinux parsing: PT_LOAD segments at their physical addresses, entry
 * through the PVH note (XEN_ELFNOTE_PHYS32_ENTRY) when present. */
#include "arch/x86_64/kernel_image.h"

#include <elf.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "util/util.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ELF_CMDLINE_MAX 2047 /* Linux's COMMAND_LINE_SIZE - 1 on x86 */

static bool range_in_file(const struct boot_file *f, uint64_t off, uint64_t len)
{
    return off <= f->size && len <= f->size - off;
}

/* Looks for the PVH entry note; 0 if absent, -EINVAL if the notes are bad. */
static int elf_find_pvh_entry(const struct boot_file *f, const Elf64_Phdr *ph,
                              uint64_t *entry)
{
    uint64_t off = ph->p_offset, end = ph->p_offset + ph->p_filesz;
    while (end - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, f->data + off, sizeof(nh));
        uint64_t name_len = align_up(nh.n_namesz, 4);
        uint64_t desc_len = align_up(nh.n_descsz, 4);
        uint64_t name_off = off + sizeof(nh);
        if (name_len > end - name_off || desc_len > end - name_off - name_len)
            return err_set(-EINVAL, "%s: malformed ELF note", f->path);
        uint64_t desc_off = name_off + name_len;
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
            !memcmp(f->data + name_off, "Xen", 4)) {
            if (nh.n_descsz == 4)
                *entry = le32_load(f->data + desc_off);
            else if (nh.n_descsz == 8)
                *entry = le64_load(f->data + desc_off);
            else
                return err_set(-EINVAL, "%s: PVH entry note has %u bytes", f->path,
                               nh.n_descsz);
            return 1;
        }
        off = desc_off + desc_len;
    }
    return 0;
}

static int elf_check_header(const struct boot_file *f, const Elf64_Ehdr *eh)
{
    if (f->size < sizeof(*eh))
        return err_set(-EINVAL, "%s: truncated ELF header", f->path);
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return err_set(-EINVAL, "%s: not a 64-bit little-endian ELF kernel", f->path);
    if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
        return err_set(-EINVAL, "%s: not an x86-64 ELF executable", f->path);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
        !range_in_file(f, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
        return err_set(-EINVAL, "%s: truncated or malformed ELF program headers", f->path);
    return 0;
}

static int elf_add_load(const struct boot_file *f, const Elf64_Phdr *ph,
                        struct kernel_image *img)
{
    if (ph->p_memsz == 0)
        return 0;
    if (!range_in_file(f, ph->p_offset, ph->p_filesz))
        return err_set(-EINVAL, "%s: truncated: a segment lies past the end of the file",
                       f->path);
    if (ph->p_filesz > ph->p_memsz || ph->p_paddr < LAYOUT_HIGH_RAM ||
        ph->p_paddr + ph->p_memsz < ph->p_paddr ||
        ph->p_paddr + ph->p_memsz > LAYOUT_PCI_HOLE_START)
        return err_set(-EINVAL, "%s: segment at %#llx+%#llx is not loadable", f->path,
                       (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
    if (img->nr_segs == KERNEL_MAX_SEGMENTS)
        return err_set(-EINVAL, "%s: too many loadable segments", f->path);
    img->segs[img->nr_segs++] = (struct kernel_segment){
        ph->p_paddr, f->data + ph->p_offset, ph->p_filesz, ph->p_memsz};
    if (img->nr_segs == 1 || ph->p_paddr < img->mem_start)
        img->mem_start = ph->p_paddr;
    img->mem_end = MAX(img->mem_end, ph->p_paddr + ph->p_memsz);
    return 0;
}

static bool entry_in_segments(const struct kernel_image *img, uint64_t entry)
{
    for (unsigned i = 0; i < img->nr_segs; i++)
        if (entry >= img->segs[i].gpa && entry - img->segs[i].gpa < img->segs[i].mem_size)
            return true;
    return false;
}

int elf_kernel_probe(const struct boot_file *f, struct kernel_image *img)
{
    memset(img, 0, sizeof(*img));
    Elf64_Ehdr eh;
    if (f->size >= sizeof(eh))
        memcpy(&eh, f->data, sizeof(eh));
    int ret = elf_check_header(f, &eh);
    if (ret)
        return ret;
    bool have_pvh = false;
    uint64_t pvh_entry = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, f->data + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD) {
            ret = elf_add_load(f, &ph, img);
        } else if (ph.p_type == PT_NOTE && !have_pvh) {
            if (!range_in_file(f, ph.p_offset, ph.p_filesz))
                return err_set(-EINVAL, "%s: truncated: notes past the end of the file",
                               f->path);
            ret = elf_find_pvh_entry(f, &ph, &pvh_entry);
            have_pvh = ret == 1;
            ret = ret < 0 ? ret : 0;
        }
        if (ret)
            return ret;
    }
    if (img->nr_segs == 0)
        return err_set(-EINVAL, "%s: ELF file has nothing to load", f->path);
    img->format = KERNEL_ELF;
    img->entry = have_pvh ? ENTRY_PVH : ENTRY_LINUX64;
    img->entry_addr = have_pvh ? pvh_entry : eh.e_entry;
    img->elf_entry64 = eh.e_entry;
    if (!entry_in_segments(img, img->entry_addr))
        return err_set(-EINVAL, "%s: entry point %#llx is outside the loaded segments",
                       f->path, (unsigned long long)img->entry_addr);
    img->cmdline_max = ELF_CMDLINE_MAX;
    img->initrd_addr_max = LAYOUT_PCI_HOLE_START - 1;
    return 0;
}

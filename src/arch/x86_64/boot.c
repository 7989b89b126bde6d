#include "arch/x86_64/boot.h"

#include <string.h>

#include "arch/x86_64/layout.h"
#include "util/util.h"

/* boot_params (the "zero page") field offsets. */
#define ZP_ACPI_RSDP_ADDR 0x070
#define ZP_E820_ENTRIES 0x1e8
#define ZP_HDR 0x1f1
#define ZP_BOOT_FLAG 0x1fe
#define ZP_HEADER 0x202
#define ZP_VERSION 0x206
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_LOADFLAGS 0x211
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_HEAP_END_PTR 0x224
#define ZP_CMD_LINE_PTR 0x228
#define ZP_KERNEL_ALIGNMENT 0x230
#define ZP_CMDLINE_SIZE 0x238
#define ZP_E820_TABLE 0x2d0
#define E820_ENTRY_SIZE 20

#define LOADFLAG_CAN_USE_HEAP 0x80
#define LOADER_UNDEFINED 0xff

/* hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
#define PVH_MAGIC 0x336ec578u
#define PVH_MEMMAP_ENTRY_SIZE 24

static uint64_t ram_top_below_hole(const struct boot_config *cfg)
{
    return e820_low_ram_end(cfg->ram_size);
}

static int boot_place_initrd(const struct boot_config *cfg, struct boot_layout *l)
{
    l->initrd_size = cfg->initrd.size;
    if (!cfg->initrd.data)
        return 0;
    if (cfg->initrd.size == 0)
        return err_set(-EINVAL, "%s: initrd is empty", cfg->initrd.path);
    uint64_t ceiling = ram_top_below_hole(cfg);
    /* initrd_addr_max is the address of the last byte it may occupy. */
    if (l->kernel.initrd_addr_max && l->kernel.initrd_addr_max < ceiling - 1)
        ceiling = l->kernel.initrd_addr_max + 1;
    uint64_t floor = align_up(l->kernel.mem_end, 4096);
    if (cfg->initrd.size > ceiling || align_down(ceiling - cfg->initrd.size, 4096) < floor)
        return err_set(-E2BIG,
                       "%s: initrd of %llu MiB does not fit between the kernel (ends "
                       "at %llu MiB) and %llu MiB; give the guest more memory "
                       "with --mem", cfg->initrd.path,
                       (unsigned long long)(cfg->initrd.size >> 20),
                       (unsigned long long)(floor >> 20),
                       (unsigned long long)(ceiling >> 20));
    l->initrd_gpa = align_down(ceiling - cfg->initrd.size, 4096);
    return 0;
}

static int check_cmdline(struct boot_layout *l, const char *cmdline)
{
    size_t len = strlen(cmdline ? cmdline : "");
    size_t max = MIN(l->kernel.cmdline_max, (size_t)LAYOUT_CMDLINE_MAX - 1);
    if (len > max)
        return err_set(-E2BIG, "command line is %zu bytes, the kernel accepts at most %zu",
                       len, max);
    l->cmdline_len = len;
    return 0;
}

int boot_prepare(const struct boot_config *cfg, struct boot_layout *l)
{
    memset(l, 0, sizeof(*l));
    int ret = kernel_probe(&cfg->kernel, &l->kernel);
    if (ret)
        return ret;
    if (cfg->long_mode_entry && l->kernel.format == KERNEL_ELF && l->kernel.entry == ENTRY_PVH) {
        l->kernel.entry = ENTRY_LINUX64;
        l->kernel.entry_addr = l->kernel.elf_entry64;
    }
    ret = e820_build(cfg->ram_size, &l->e820);
    if (ret)
        return ret;
    uint64_t top = ram_top_below_hole(cfg);
    if (l->kernel.mem_end > top)
        return err_set(-E2BIG,
                       "%s: kernel needs guest memory up to %llu MiB, the guest has "
                       "%llu MiB; use a larger --mem", cfg->kernel.path,
                       (unsigned long long)((l->kernel.mem_end + MiB(1) - 1) >> 20),
                       (unsigned long long)(cfg->ram_size >> 20));
    ret = check_cmdline(l, cfg->cmdline);
    return ret ? ret : boot_place_initrd(cfg, l);
}

int boot_set_cmdline(struct boot_config *cfg, struct boot_layout *l, const char *cmdline)
{
    int ret = check_cmdline(l, cmdline);
    if (!ret)
        cfg->cmdline = cmdline;
    return ret;
}

static void zp_put_e820(uint8_t *zp, const struct e820_map *map)
{
    zp[ZP_E820_ENTRIES] = (uint8_t)map->nr;
    for (unsigned i = 0; i < map->nr; i++) {
        uint8_t *e = zp + ZP_E820_TABLE + i * E820_ENTRY_SIZE;
        le64_store(e, map->entries[i].addr);
        le64_store(e + 8, map->entries[i].size);
        le32_store(e + 16, map->entries[i].type);
    }
}

int boot_write_zero_page(const struct boot_layout *l, uint8_t zp[4096])
{
    memset(zp, 0, 4096);
    if (l->kernel.format == KERNEL_BZIMAGE) {
        memcpy(zp + ZP_HDR, l->kernel.setup_header, l->kernel.setup_header_len);
    } else {
        /* A vmlinux entered at its 64-bit entry has no setup header of its
         * own; describe a loader-supplied one. */
        le16_store(zp + ZP_BOOT_FLAG, 0xaa55);
        memcpy(zp + ZP_HEADER, "HdrS", 4);
        le16_store(zp + ZP_VERSION, 0x020f);
        le32_store(zp + ZP_KERNEL_ALIGNMENT, 0x1000000);
        le32_store(zp + ZP_CMDLINE_SIZE, (uint32_t)l->kernel.cmdline_max);
    }
    zp[ZP_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    zp[ZP_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
    le16_store(zp + ZP_HEAP_END_PTR, 0xfe00);
    le32_store(zp + ZP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
    le32_store(zp + ZP_RAMDISK_IMAGE, (uint32_t)l->initrd_gpa);
    le32_store(zp + ZP_RAMDISK_SIZE, (uint32_t)l->initrd_size);
    le64_store(zp + ZP_ACPI_RSDP_ADDR, LAYOUT_ACPI);
    zp_put_e820(zp, &l->e820);
    return 0;
}

int boot_write_pvh_info(const struct boot_layout *l, const struct guest_mem *gm)
{
    uint8_t info[56] = {0};
    le32_store(info + 0, PVH_MAGIC);
    le32_store(info + 4, 1); /* version: has the memory map */
    le32_store(info + 12, l->initrd_size ? 1 : 0);
    le64_store(info + 16, l->initrd_size ? LAYOUT_PVH_MODLIST : 0);
    le64_store(info + 24, LAYOUT_CMDLINE);
    le64_store(info + 32, LAYOUT_ACPI);
    le64_store(info + 40, LAYOUT_PVH_MEMMAP);
    le32_store(info + 48, l->e820.nr);
    int ret = gm_write(gm, LAYOUT_PVH_START_INFO, info, sizeof(info));
    if (!ret && l->initrd_size) {
        uint8_t mod[32] = {0};
        le64_store(mod, l->initrd_gpa);
        le64_store(mod + 8, l->initrd_size);
        ret = gm_write(gm, LAYOUT_PVH_MODLIST, mod, sizeof(mod));
    }
    for (unsigned i = 0; !ret && i < l->e820.nr; i++) {
        uint8_t e[PVH_MEMMAP_ENTRY_SIZE] = {0};
        le64_store(e, l->e820.entries[i].addr);
        le64_store(e + 8, l->e820.entries[i].size);
        le32_store(e + 16, l->e820.entries[i].type);
        ret = gm_write(gm, LAYOUT_PVH_MEMMAP + i * PVH_MEMMAP_ENTRY_SIZE, e, sizeof(e));
    }
    return ret ? err_set(ret, "PVH start info does not fit in guest memory") : 0;
}

int boot_copy_plan(const struct boot_config *cfg, const struct boot_layout *l,
                   const struct guest_mem *gm, struct boot_copy *c)
{
    c->nr = 0;
    for (unsigned i = 0; i < l->kernel.nr_segs; i++) {
        const struct kernel_segment *s = &l->kernel.segs[i];
        uint8_t *dst = gm_ptr(gm, s->gpa, s->mem_size);
        if (!dst)
            return err_set(-E2BIG, "%s: segment at %#llx+%#llx is outside guest memory",
                           cfg->kernel.path, (unsigned long long)s->gpa,
                           (unsigned long long)s->mem_size);
        c->parts[c->nr++] = (struct boot_copy_part){dst, s->src, s->gpa, s->file_size,
                                                    s->mem_size};
    }
    if (l->initrd_size) {
        uint8_t *dst = gm_ptr(gm, l->initrd_gpa, l->initrd_size);
        if (!dst)
            return err_set(-E2BIG, "%s: initrd does not fit in guest memory", cfg->initrd.path);
        c->parts[c->nr++] = (struct boot_copy_part){dst, cfg->initrd.data, l->initrd_gpa,
                                                    l->initrd_size, l->initrd_size};
    }
    return 0;
}

void boot_copy_run(const struct boot_copy *c)
{
    for (unsigned i = 0; i < c->nr; i++) {
        const struct boot_copy_part *p = &c->parts[i];
        memcpy(p->dst, p->src, p->len);
        memset(p->dst + p->len, 0, p->mem_size - p->len);
    }
}

void boot_copy_written(const struct boot_copy *c, const struct guest_mem *gm)
{
    for (unsigned i = 0; i < c->nr; i++)
        gm_ptr_for_write(gm, c->parts[i].gpa, c->parts[i].mem_size);
}

int boot_load(const struct boot_config *cfg, const struct boot_layout *l,
              const struct guest_mem *gm, struct x86_regs *regs, struct x86_sregs *sregs)
{
    struct boot_copy c;
    int ret = boot_copy_plan(cfg, l, gm, &c);
    if (ret)
        return ret;
    boot_copy_run(&c);
    boot_copy_written(&c, gm);
    return boot_load_rest(cfg, l, gm, regs, sregs);
}

int boot_load_rest(const struct boot_config *cfg, const struct boot_layout *l,
                   const struct guest_mem *gm, struct x86_regs *regs, struct x86_sregs *sregs)
{
    int ret;
    const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
    if (gm_write(gm, LAYOUT_CMDLINE, cmdline, l->cmdline_len + 1))
        return err_set(-E2BIG, "command line does not fit in guest memory");

    if (l->kernel.entry == ENTRY_PVH) {
        ret = boot_write_pvh_info(l, gm);
        if (!ret)
            ret = cpu_boot_protected_mode(gm, l->kernel.entry_addr, LAYOUT_PVH_START_INFO,
                                          0, regs, sregs);
        return ret;
    }
    uint8_t zp[4096];
    boot_write_zero_page(l, zp);
    if (gm_write(gm, LAYOUT_ZERO_PAGE, zp, sizeof(zp)))
        return err_set(-E2BIG, "boot_params do not fit in guest memory");
    if (l->kernel.entry == ENTRY_LINUX64)
        return cpu_boot_long_mode(gm, l->kernel.entry_addr, LAYOUT_ZERO_PAGE, regs, sregs);
    return cpu_boot_protected_mode(gm, l->kernel.entry_addr, 0, LAYOUT_ZERO_PAGE, regs,
                                   sregs);
}

/* Kernel image probing, boot_params construction, e820, initrd placement,
 * PVH start info and the boot vCPU's entry state, against synthetic images. */
#include "fakes.h"

#include <elf.h>

#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"
#include "util/util.h"

#define IMG_SETUP_SECTS 4
#define IMG_CODE_SIZE (64 * 1024)

/* A minimal bzImage: setup sectors then IMG_CODE_SIZE bytes of "kernel". */
static uint8_t *make_bzimage(size_t *size, uint16_t version)
{
    *size = (IMG_SETUP_SECTS + 1) * 512 + IMG_CODE_SIZE;
    uint8_t *d = calloc(1, *size);
    d[0x1f1] = IMG_SETUP_SECTS;
    le32_store(d + 0x1f4, IMG_CODE_SIZE / 16);    /* syssize */
    le16_store(d + 0x1fe, 0xaa55);
    d[0x200] = 0xeb;                              /* jmp */
    d[0x201] = 0x66;                              /* header ends at 0x268 */
    memcpy(d + 0x202, "HdrS", 4);
    le16_store(d + 0x206, version);
    d[0x211] = 0x01;                              /* LOADED_HIGH */
    le32_store(d + 0x214, 0x100000);              /* code32_start */
    le32_store(d + 0x22c, 0x37ffffff);            /* initrd_addr_max */
    le32_store(d + 0x230, 0x200000);              /* kernel_alignment */
    d[0x234] = 1;                                 /* relocatable */
    le16_store(d + 0x236, 0x1);                   /* XLF_KERNEL_64 */
    le32_store(d + 0x238, 2047);                  /* cmdline_size */
    le64_store(d + 0x258, 0x1000000);             /* pref_address */
    le32_store(d + 0x260, 0x800000);              /* init_size */
    return d;
}

static void test_e820_small_guest(void **state)
{
    (void)state;
    struct e820_map map;
    assert_int_equal(e820_build(MiB(256), &map), 0);
    assert_int_equal(map.nr, 4);
    assert_true(map.entries[0].addr == 0 && map.entries[0].size == 0x9fc00);
    assert_int_equal(map.entries[0].type, E820_RAM);
    assert_true(map.entries[1].addr == 0x9fc00 && map.entries[1].type == E820_RESERVED);
    assert_true(map.entries[2].addr == 0xe0000 && map.entries[2].size == 0x20000);
    assert_int_equal(map.entries[2].type, E820_RESERVED);
    assert_true(map.entries[3].addr == MiB(1) && map.entries[3].size == MiB(255));
}

static void test_e820_crossing_pci_hole(void **state)
{
    (void)state;
    struct e820_map map;
    assert_int_equal(e820_build(GiB(4), &map), 0);
    assert_int_equal(map.nr, 5);
    assert_true(map.entries[3].addr == MiB(1));
    assert_true(map.entries[3].addr + map.entries[3].size == LAYOUT_PCI_HOLE_START);
    assert_true(map.entries[4].addr == GiB(4) && map.entries[4].size == GiB(1));
    assert_int_equal(map.entries[4].type, E820_RAM);
    assert_int_equal(e820_build(GiB(3), &map), 0);
    assert_int_equal(map.nr, 4); /* exactly up to the hole: nothing above 4 GiB */
    assert_int_equal(e820_build(MiB(1), &map), -EINVAL);
}

static void test_bzimage_probe(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    struct boot_file f = {"bz", d, size};
    struct kernel_image k;
    assert_int_equal(kernel_probe(&f, &k), 0);
    assert_int_equal(k.format, KERNEL_BZIMAGE);
    assert_int_equal(k.entry, ENTRY_LINUX64);
    assert_true(k.entry_addr == 0x1000200);   /* pref_address + 0x200 */
    assert_true(k.mem_start == 0x1000000);
    assert_true(k.mem_end == 0x1000000 + 0x800000); /* init_size */
    assert_int_equal(k.nr_segs, 1);
    assert_ptr_equal(k.segs[0].src, d + (IMG_SETUP_SECTS + 1) * 512);
    assert_int_equal(k.setup_header_len, 0x268 - 0x1f1);
    free(d);
}

static void test_bzimage_32bit_entry_without_xlf(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20a);  /* 2.10: no xloadflags */
    struct boot_file f = {"bz", d, size};
    struct kernel_image k;
    assert_int_equal(kernel_probe(&f, &k), 0);
    assert_int_equal(k.entry, ENTRY_LINUX32);
    assert_true(k.entry_addr == 0x1000000);
    free(d);
}

static void test_bzimage_rejections(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    struct boot_file f = {"bz", d, size};
    struct kernel_image k;

    le16_store(d + 0x206, 0x205);
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    assert_non_null(strstr(err_msg(), "older than 2.06"));
    le16_store(d + 0x206, 0x20f);

    f.size = size - 1; /* one byte short of syssize */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    assert_non_null(strstr(err_msg(), "truncated"));
    f.size = (IMG_SETUP_SECTS + 1) * 512; /* setup only */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    f.size = size;

    d[0x1fe] = 0;
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    assert_non_null(strstr(err_msg(), "no boot signature"));
    d[0x1fe] = 0x55;

    d[0x211] = 0; /* zImage */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    d[0x211] = 1;

    d[0x1f1] = 255; /* setup larger than the file */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    free(d);
}

static void test_zero_page(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    uint8_t initrd[8192] = {1};
    struct boot_config cfg = {
        .kernel = {"bz", d, size},
        .initrd = {"initrd", initrd, sizeof(initrd)},
        .cmdline = "console=ttyS0",
        .ram_size = MiB(256),
    };
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    uint8_t zp[4096];
    boot_write_zero_page(&l, zp);
    /* The image's setup header, copied where boot_params.hdr lives. */
    assert_memory_equal(zp + 0x202, "HdrS", 4);
    assert_int_equal(le16_load(zp + 0x1fe), 0xaa55);
    assert_int_equal(le32_load(zp + 0x238), 2047);
    assert_int_equal(zp[0x210], 0xff);                 /* type_of_loader */
    assert_int_equal(zp[0x211] & 0x80, 0x80);          /* CAN_USE_HEAP */
    assert_int_equal(le32_load(zp + 0x228), LAYOUT_CMDLINE);
    assert_int_equal(le32_load(zp + 0x218), l.initrd_gpa);
    assert_int_equal(le32_load(zp + 0x21c), sizeof(initrd));
    assert_true(le64_load(zp + 0x070) == LAYOUT_ACPI); /* acpi_rsdp_addr */
    assert_int_equal(zp[0x1e8], 4);                    /* e820 entries */
    assert_true(le64_load(zp + 0x2d0 + 3 * 20) == MiB(1));
    assert_true(le64_load(zp + 0x2d0 + 3 * 20 + 8) == MiB(255));
    assert_int_equal(le32_load(zp + 0x2d0 + 3 * 20 + 16), E820_RAM);
    assert_int_equal(zp[0x1ef], 0); /* sentinel: must stay 0 */
    free(d);
}

static void test_initrd_placement(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    static uint8_t initrd[3 * 4096 + 5];
    struct boot_config cfg = {
        .kernel = {"bz", d, size}, .initrd = {"initrd", initrd, sizeof(initrd)},
        .ram_size = MiB(256),
    };
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    /* As high as possible, page-aligned, ending at or below the top of RAM. */
    assert_true(is_aligned(l.initrd_gpa, 4096));
    assert_true(l.initrd_gpa + sizeof(initrd) <= MiB(256));
    assert_true(l.initrd_gpa + sizeof(initrd) > MiB(256) - 4096);

    /* initrd_addr_max caps it below the top of a bigger guest. */
    le32_store(d + 0x22c, 0x07ffffff);
    cfg.ram_size = GiB(1);
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    assert_true(l.initrd_gpa + sizeof(initrd) <= 0x08000000);
    assert_true(l.initrd_gpa >= 0x08000000 - 2 * sizeof(initrd));

    /* No room between the kernel's end and the cap. */
    le32_store(d + 0x22c, 0x01000fff);
    assert_int_equal(boot_prepare(&cfg, &l), -E2BIG);
    assert_non_null(strstr(err_msg(), "does not fit"));
    free(d);
}

static void test_kernel_must_fit(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    struct boot_config cfg = {.kernel = {"bz", d, size}, .ram_size = MiB(24)};
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0); /* ends at exactly 24 MiB */
    cfg.ram_size = MiB(23);
    assert_int_equal(boot_prepare(&cfg, &l), -E2BIG);
    assert_non_null(strstr(err_msg(), "kernel needs guest memory up to 24 MiB"));
    free(d);
}

static void test_cmdline_limit(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    le32_store(d + 0x238, 16);
    struct boot_config cfg = {.kernel = {"bz", d, size}, .ram_size = MiB(64),
                              .cmdline = "0123456789abcdef"};
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    cfg.cmdline = "0123456789abcdefg";
    assert_int_equal(boot_prepare(&cfg, &l), -E2BIG);
    free(d);
}

/* A minimal ELF64 kernel: one PT_LOAD at 16 MiB and optionally a PVH note. */
struct elf_image {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    struct {
        Elf64_Nhdr nh;
        char name[4];
        uint64_t entry;
    } note;
    uint8_t code[256];
};

static struct elf_image make_elf(bool pvh)
{
    struct elf_image e;
    memset(&e, 0, sizeof(e));
    memcpy(e.eh.e_ident, ELFMAG, SELFMAG);
    e.eh.e_ident[EI_CLASS] = ELFCLASS64;
    e.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    e.eh.e_type = ET_EXEC;
    e.eh.e_machine = EM_X86_64;
    e.eh.e_entry = 0x1000000;
    e.eh.e_phoff = offsetof(struct elf_image, ph);
    e.eh.e_phentsize = sizeof(Elf64_Phdr);
    e.eh.e_phnum = pvh ? 2 : 1;
    e.ph[0] = (Elf64_Phdr){.p_type = PT_LOAD, .p_offset = offsetof(struct elf_image, code),
                           .p_paddr = 0x1000000, .p_filesz = 256, .p_memsz = 0x2000};
    e.ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = offsetof(struct elf_image, note),
                           .p_filesz = sizeof(e.note)};
    e.note.nh = (Elf64_Nhdr){.n_namesz = 4, .n_descsz = 8, .n_type = 18};
    memcpy(e.note.name, "Xen", 4);
    e.note.entry = 0x1000040;
    memset(e.code, 0x90, sizeof(e.code));
    return e;
}

static void test_elf_pvh_and_64bit_entry(void **state)
{
    (void)state;
    struct elf_image e = make_elf(true);
    struct boot_file f = {"vmlinux", (const uint8_t *)&e, sizeof(e)};
    struct kernel_image k;
    assert_int_equal(kernel_probe(&f, &k), 0);
    assert_int_equal(k.format, KERNEL_ELF);
    assert_int_equal(k.entry, ENTRY_PVH);
    assert_true(k.entry_addr == 0x1000040);
    assert_true(k.mem_start == 0x1000000 && k.mem_end == 0x1002000);

    e = make_elf(false);
    assert_int_equal(kernel_probe(&f, &k), 0);
    assert_int_equal(k.entry, ENTRY_LINUX64);
    assert_true(k.entry_addr == 0x1000000);
}

static void test_elf_rejections(void **state)
{
    (void)state;
    struct elf_image e = make_elf(true);
    struct boot_file f = {"vmlinux", (const uint8_t *)&e, sizeof(e)};
    struct kernel_image k;

    e.ph[0].p_filesz = sizeof(e) + 1; /* data past the end of the file */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.ph[0].p_paddr = 0x1000;         /* would overwrite boot structures */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.ph[0].p_paddr = UINT64_MAX - 0x100; /* wraps */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.ph[0].p_filesz = 0x3000;        /* filesz > memsz */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.note.nh.n_descsz = 0x7fffffff;  /* note runs past its segment */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.note.entry = 0x5000000;         /* entry outside every segment */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.eh.e_phnum = 0xffff;            /* headers past the end */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    e.eh.e_machine = EM_AARCH64;
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
    e = make_elf(true);
    f.size = 40; /* truncated ELF header */
    assert_int_equal(kernel_probe(&f, &k), -EINVAL);
}

static void test_load_long_mode(void **state)
{
    (void)state;
    size_t size;
    uint8_t *d = make_bzimage(&size, 0x20f);
    static uint8_t initrd[4096] = {0x42};
    struct boot_config cfg = {
        .kernel = {"bz", d, size}, .initrd = {"initrd", initrd, sizeof(initrd)},
        .cmdline = "hello", .ram_size = MiB(64),
    };
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    struct guest_mem gm;
    fake_mem_init(&gm, 0, MiB(64));
    struct x86_regs regs;
    struct x86_sregs sregs;
    assert_int_equal(boot_load(&cfg, &l, &gm, &regs, &sregs), 0);
    uint8_t *mem = gm.regions[0].hva;
    assert_memory_equal(mem + 0x1000000, d + (IMG_SETUP_SECTS + 1) * 512, IMG_CODE_SIZE);
    assert_string_equal((char *)mem + LAYOUT_CMDLINE, "hello");
    assert_int_equal(mem[l.initrd_gpa], 0x42);
    assert_memory_equal(mem + LAYOUT_ZERO_PAGE + 0x202, "HdrS", 4);
    /* Long mode at the 64-bit entry with RSI = boot_params. */
    assert_true(regs.rip == 0x1000200 && regs.rsi == LAYOUT_ZERO_PAGE);
    assert_true(sregs.cr0 & 0x80000001ull);
    assert_true(sregs.cr4 & 0x20);
    assert_true(sregs.efer == 0x500);
    assert_true(sregs.cr3 == LAYOUT_PML4);
    assert_true(sregs.cs.l && !sregs.cs.db && sregs.cs.selector == 0x10);
    assert_true(sregs.ds.selector == 0x18 && sregs.ds.db);
    /* Identity map: the PD entry for 3 GiB + 2 MiB maps itself. */
    uint64_t pdpte = le64_load(mem + LAYOUT_PDPT + 3 * 8);
    uint64_t pde = le64_load(mem + (pdpte & ~0xfffull) + 1 * 8);
    assert_true((pde & ~0xfffull) == GiB(3) + MiB(2));
    assert_true((pde & 0x83) == 0x83);
    /* GDT: the 64-bit code descriptor at 0x10. */
    assert_true(le64_load(mem + LAYOUT_GDT + 0x10) == 0x00af9b000000ffffull);
    fake_mem_free(&gm);
    free(d);
}

static void test_load_pvh(void **state)
{
    (void)state;
    struct elf_image e = make_elf(true);
    static uint8_t initrd[4096] = {0x42};
    struct boot_config cfg = {
        .kernel = {"vmlinux", (const uint8_t *)&e, sizeof(e)},
        .initrd = {"initrd", initrd, sizeof(initrd)}, .cmdline = "pvh", .ram_size = MiB(64),
    };
    struct boot_layout l;
    assert_int_equal(boot_prepare(&cfg, &l), 0);
    struct guest_mem gm;
    fake_mem_init(&gm, 0, MiB(64));
    memset(gm.regions[0].hva + 0x1000100, 0xee, 0x100); /* bss must be zeroed */
    struct x86_regs regs;
    struct x86_sregs sregs;
    assert_int_equal(boot_load(&cfg, &l, &gm, &regs, &sregs), 0);
    uint8_t *mem = gm.regions[0].hva;
    assert_int_equal(mem[0x1000100], 0);
    uint8_t *info = mem + LAYOUT_PVH_START_INFO;
    assert_int_equal(le32_load(info), 0x336ec578);
    assert_int_equal(le32_load(info + 4), 1);
    assert_int_equal(le32_load(info + 12), 1);                  /* one module */
    assert_true(le64_load(info + 24) == LAYOUT_CMDLINE);
    assert_true(le64_load(info + 32) == LAYOUT_ACPI);
    assert_int_equal(le32_load(info + 48), l.e820.nr);
    uint8_t *mod = mem + le64_load(info + 16);
    assert_true(le64_load(mod) == l.initrd_gpa && le64_load(mod + 8) == sizeof(initrd));
    /* 32-bit protected mode, paging off, EBX = start info. */
    assert_true(regs.rip == 0x1000040 && regs.rbx == LAYOUT_PVH_START_INFO);
    assert_true(sregs.cr0 == 0x11 && sregs.efer == 0);
    assert_true(sregs.cs.db && !sregs.cs.l && sregs.cs.limit == 0xffffffff);
    assert_true(sregs.tr.type == 0xb && sregs.tr.limit == 0x67);
    fake_mem_free(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e820_small_guest),
        cmocka_unit_test(test_e820_crossing_pci_hole),
        cmocka_unit_test(test_bzimage_probe),
        cmocka_unit_test(test_bzimage_32bit_entry_without_xlf),
        cmocka_unit_test(test_bzimage_rejections),
        cmocka_unit_test(test_zero_page),
        cmocka_unit_test(test_initrd_placement),
        cmocka_unit_test(test_kernel_must_fit),
        cmocka_unit_test(test_cmdline_limit),
        cmocka_unit_test(test_elf_pvh_and_64bit_entry),
        cmocka_unit_test(test_elf_rejections),
        cmocka_unit_test(test_load_long_mode),
        cmocka_unit_test(test_load_pvh),
    };
    return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}

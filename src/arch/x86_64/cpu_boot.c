/* The boot vCPU's state at the kernel's entry: flat segments from a GDT in
 * guest memory, and for long mode an identity map of the first 4 GiB. */
#include "arch/x86_64/boot.h"

#include "arch/x86_64/layout.h"
#include "util/util.h"

#define SEL_CODE32 0x08
#define SEL_CODE64 0x10 /* Linux's __BOOT_CS */
#define SEL_DATA 0x18   /* Linux's __BOOT_DS */
#define SEL_TSS 0x20
#define GDT_ENTRIES 5

/* Access (low byte) and flags (high nibble) of each descriptor. */
#define DESC_CODE32 0xc09b
#define DESC_CODE64 0xa09b
#define DESC_DATA 0xc093
#define DESC_TSS 0x008b

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_LARGE 0x80ull

static uint64_t gdt_descriptor(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
           ((uint64_t)(limit & 0xf0000u) << 32) | ((uint64_t)(base & 0xffffffu) << 16) |
           (limit & 0xffffu);
}

static struct x86_segment segment_from(uint16_t flags, uint16_t selector, uint32_t limit)
{
    bool g = (flags >> 15) & 1;
    return (struct x86_segment){
        .base = 0,
        .limit = g ? (limit << 12) | 0xfff : limit,
        .selector = selector,
        .type = flags & 0xf,
        .s = (flags >> 4) & 1,
        .dpl = (flags >> 5) & 3,
        .present = (flags >> 7) & 1,
        .avl = (flags >> 12) & 1,
        .l = (flags >> 13) & 1,
        .db = (flags >> 14) & 1,
        .g = g,
    };
}

static int write_gdt(const struct guest_mem *gm, struct x86_sregs *sregs)
{
    uint64_t gdt[GDT_ENTRIES] = {
        0,
        gdt_descriptor(DESC_CODE32, 0, 0xfffff),
        gdt_descriptor(DESC_CODE64, 0, 0xfffff),
        gdt_descriptor(DESC_DATA, 0, 0xfffff),
        gdt_descriptor(DESC_TSS, 0, 0x67),
    };
    for (unsigned i = 0; i < GDT_ENTRIES; i++)
        if (gm_write_u64(gm, LAYOUT_GDT + i * 8, gdt[i]))
            return err_set(-EFAULT, "GDT does not fit in guest memory");
    sregs->gdt = (struct x86_dtable){LAYOUT_GDT, GDT_ENTRIES * 8 - 1};
    sregs->idt = (struct x86_dtable){LAYOUT_IDT, 0};
    struct x86_segment data = segment_from(DESC_DATA, SEL_DATA, 0xfffff);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->tr = segment_from(DESC_TSS, SEL_TSS, 0x67);
    sregs->ldt = (struct x86_segment){.type = 2, .present = true, .limit = 0xffff};
    return 0;
}

static int write_identity_page_tables(const struct guest_mem *gm)
{
    int ret = gm_write_u64(gm, LAYOUT_PML4, LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE);
    for (uint64_t gib = 0; !ret && gib < 4; gib++) {
        uint64_t pd = LAYOUT_PD + gib * 4096;
        ret = gm_write_u64(gm, LAYOUT_PDPT + gib * 8, pd | PTE_PRESENT | PTE_WRITE);
        for (uint64_t i = 0; !ret && i < 512; i++) {
            uint64_t addr = gib * GiB(1) + i * MiB(2);
            ret = gm_write_u64(gm, pd + i * 8, addr | PTE_PRESENT | PTE_WRITE | PTE_LARGE);
        }
    }
    return ret ? err_set(-EFAULT, "boot page tables do not fit in guest memory") : 0;
}

int cpu_boot_ap_long_mode(const struct guest_mem *gm, uint64_t vector, struct x86_regs *regs,
                          struct x86_sregs *sregs)
{
    int ret = gm_write_u64(gm, LAYOUT_AP_PML4, LAYOUT_AP_PDPT | PTE_PRESENT | PTE_WRITE);
    for (uint64_t gib = 0; !ret && gib < 512; gib++)
        ret = gm_write_u64(gm, LAYOUT_AP_PDPT + gib * 8,
                           GiB(gib) | PTE_PRESENT | PTE_WRITE | PTE_LARGE);
    if (ret)
        return err_set(-EFAULT, "the APs' page tables do not fit in guest memory");
    struct x86_segment data = segment_from(DESC_DATA, SEL_DATA, 0xfffff);
    *sregs = (struct x86_sregs){
        .cs = segment_from(DESC_CODE64, SEL_CODE64, 0xfffff),
        .ds = data, .es = data, .fs = data, .gs = data, .ss = data,
        .tr = segment_from(DESC_TSS, SEL_TSS, 0x67),
        .ldt = (struct x86_segment){.type = 2, .present = true, .limit = 0xffff},
        .cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG,
        .cr3 = LAYOUT_AP_PML4,
        .cr4 = CR4_PAE,
        .efer = EFER_LME | EFER_LMA,
    };
    *regs = (struct x86_regs){.rip = vector, .rflags = 0x2};
    return 0;
}

int cpu_boot_long_mode(const struct guest_mem *gm, uint64_t entry, uint64_t rsi,
                       struct x86_regs *regs, struct x86_sregs *sregs)
{
    *sregs = (struct x86_sregs){0};
    int ret = write_gdt(gm, sregs);
    if (!ret)
        ret = write_identity_page_tables(gm);
    if (ret)
        return ret;
    sregs->cs = segment_from(DESC_CODE64, SEL_CODE64, 0xfffff);
    sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
    sregs->cr3 = LAYOUT_PML4;
    sregs->cr4 = CR4_PAE;
    sregs->efer = EFER_LME | EFER_LMA;
    sregs->apic_base = LAYOUT_LAPIC | (1u << 8) | (1u << 11); /* BSP, enabled */
    *regs = (struct x86_regs){.rip = entry, .rsi = rsi, .rsp = LAYOUT_BOOT_STACK,
                              .rflags = 0x2};
    return 0;
}

int cpu_boot_protected_mode(const struct guest_mem *gm, uint64_t entry, uint64_t rbx,
                            uint64_t rsi, struct x86_regs *regs, struct x86_sregs *sregs)
{
    *sregs = (struct x86_sregs){0};
    int ret = write_gdt(gm, sregs);
    if (ret)
        return ret;
    sregs->cs = segment_from(DESC_CODE32, SEL_CODE32, 0xfffff);
    sregs->cr0 = CR0_PE | CR0_ET;
    sregs->apic_base = LAYOUT_LAPIC | (1u << 8) | (1u << 11);
    *regs = (struct x86_regs){.rip = entry, .rbx = rbx, .rsi = rsi,
                              .rsp = LAYOUT_BOOT_STACK, .rflags = 0x2};
    return 0;
}

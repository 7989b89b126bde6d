#include "arch/x86_64/pagewalk.h"

#include <errno.h>

#define PTE_P (1ull << 0)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define CR0_PG_BIT (1ull << 31)
#define CR4_PAE_BIT (1ull << 5)
#define CR4_LA57_BIT (1ull << 12)
#define EFER_LMA_BIT (1ull << 10)

static bool canonical(uint64_t va, unsigned bits)
{
    int64_t s = (int64_t)(va << (64 - bits)) >> (64 - bits);
    return (uint64_t)s == va;
}

int pagewalk_translate(const struct guest_mem *mem, const struct pagewalk_ctx *ctx,
                       uint64_t va, uint64_t *gpa, uint64_t *contiguous)
{
    if (!(ctx->cr0 & CR0_PG_BIT)) {
        *gpa = va;
        *contiguous = 4096 - (va & 4095);
        return 0;
    }
    if (!(ctx->efer & EFER_LMA_BIT) || !(ctx->cr4 & CR4_PAE_BIT))
        return -EINVAL;
    unsigned levels = (ctx->cr4 & CR4_LA57_BIT) ? 5 : 4;
    if (!canonical(va, 12 + 9 * levels))
        return -EINVAL;
    uint64_t table = ctx->cr3 & PTE_ADDR;
    for (unsigned level = levels; level >= 1; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t pte;
        if (gm_read_u64(mem, table + ((va >> shift) & 511) * 8, &pte))
            return -EFAULT;
        if (!(pte & PTE_P))
            return -EFAULT;
        /* a large page: 1 GiB at level 3, 2 MiB at level 2 */
        if (level == 1 || ((level == 2 || level == 3) && (pte & PTE_PS))) {
            uint64_t size = 1ull << shift;
            uint64_t base = pte & PTE_ADDR & ~(size - 1);
            *gpa = base | (va & (size - 1));
            *contiguous = size - (va & (size - 1));
            return 0;
        }
        table = pte & PTE_ADDR;
    }
    return -EFAULT;
}

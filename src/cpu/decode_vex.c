/* VEX prefixes (C4, C5) and what the engine runs under them: the
 * general-register instructions of BMI1 and BMI2. Every other VEX
 * instruction (AVX, AVX2, FMA, ...) decodes to #UD, as on a CPU whose
 * CPUID offers none of them. */
#include "cpu/internal.h"

bool vex_present(const uint8_t *b, unsigned p, unsigned max, bool mode32)
{
    if (b[p] != 0xc4 && b[p] != 0xc5)
        return false;
    if (!mode32)
        return true;
    /* 32-bit code: LES/LDS unless the next byte would be a register ModRM */
    return p + 1 < max && (b[p + 1] & 0xc0) == 0xc0;
}

int vex_prefix(const uint8_t *b, unsigned *pp, unsigned max, struct dec *d)
{
    unsigned p = *pp, n = b[p] == 0xc4 ? 3 : 2;
    if (p + n > max)
        return p + n > 15 ? DEC_GP : DEC_SHORT;
    /* a legacy 66/F2/F3/LOCK or a REX before VEX: #UD */
    bool bad_prefix = d->p66 || d->rep || d->lock || d->rex;
    uint8_t b1 = b[p + 1], last = b1;
    unsigned r = !(b1 & 0x80), x = 0, base = 0, w = 0, map = 1;
    if (n == 3) {
        x = !(b1 & 0x40);
        base = !(b1 & 0x20);
        map = b1 & 0x1f;
        last = b[p + 2];
        w = last >> 7;
    }
    d->vex = true;
    d->vvvv = (uint8_t)(~last >> 3 & 15);
    d->vex_l = (last >> 2) & 1;
    d->mand = last & 3; /* pp: none, 66, F3, F2, as mand counts them */
    d->map = (uint8_t)map;
    if (!d->mode32) /* (32-bit code: R, X, B and W have no meaning) */
        d->rex = (uint8_t)(0x40 | w << 3 | r << 2 | x << 1 | base);
    *pp = p + n;
    return bad_prefix || map < 1 || map > 3 ? DEC_UD : DEC_OK;
}

uint32_t vex_layout(unsigned map, uint8_t op)
{
    if (map == 1 && op == 0x77)
        return 0; /* VZEROUPPER/VZEROALL: no ModRM */
    return D_M | (map == 3 ? D_IB : 0);
}

unsigned vex_op(const struct dec *d)
{
    if (d->vex_l)
        return 0; /* every BMI instruction is L0 */
    unsigned reg = d->reg & 7;
    if (d->map == 2) {
        switch (d->op) {
        case 0xf2: return d->mand == 0 ? OP_ANDN : 0;
        case 0xf3: return d->mand == 0 && reg >= 1 && reg <= 3 ? OP_BLS : 0;
        case 0xf5: return d->mand == 0 ? OP_BZHI : d->mand == 2 ? OP_PEXT
                          : d->mand == 3 ? OP_PDEP : 0;
        case 0xf6: return d->mand == 3 ? OP_MULX : 0;
        case 0xf7: return d->mand == 0 ? OP_BEXTR : OP_SHIFTX;
        default: return 0;
        }
    }
    if (d->map == 3 && d->op == 0xf0 && d->mand == 3)
        return d->vvvv == 0 ? OP_RORX : 0; /* vvvv unused: must be 1111b */
    return 0;
}

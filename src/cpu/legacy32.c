/* What only 32-bit code has besides its stack forms (stack32.c): decimal
 * arithmetic on AL/AH (DAA DAS AAA AAS AAM AAD), INTO, BOUND, ARPL and
 * SALC. The flags the
 * manuals leave undefined follow this engine's CPU, AMD, as difftest's
 * 32-bit cases measured them against an AMD host. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

enum { BCD_DAA, BCD_DAS, BCD_AAA, BCD_AAS, BCD_AAM, BCD_AAD };

static uint32_t szp8(uint8_t v)
{
    uint32_t f = __builtin_parity(v) ? 0 : F_PF;
    if (!v)
        f |= F_ZF;
    if (v & 0x80)
        f |= F_SF;
    return f;
}

/* The flags of an 8-bit ADD or SUB: what AMD leaves in the flags DAA, DAS
 * and AAD define only in part. */
static uint32_t add8_flags(uint8_t a, uint8_t b, bool sub)
{
    uint8_t r = (uint8_t)(sub ? a - b : a + b);
    uint32_t f = szp8(r);
    if (sub ? a < b : r < a)
        f |= F_CF;
    if ((a ^ b ^ r) & 0x10)
        f |= F_AF;
    if (sub ? ((a ^ b) & (a ^ r) & 0x80) : (~(a ^ b) & (a ^ r) & 0x80))
        f |= F_OF;
    return f;
}

static void daa_das(struct cpu *c, bool sub)
{
    uint32_t f = cc_flags(c);
    uint8_t al = (uint8_t)c->r[0], old = al;
    bool cf = f & F_CF, af = f & F_AF;
    uint32_t nf = 0;
    if ((al & 0xf) > 9 || af) {
        nf = add8_flags(al, 6, sub);
        al = (uint8_t)(sub ? al - 6 : al + 6);
        cf = cf || (nf & F_CF);
        af = true;
    }
    if (old > 0x99 || (f & F_CF)) {
        nf = add8_flags(al, 0x60, sub);
        al = (uint8_t)(sub ? al - 0x60 : al + 0x60);
        cf = true;
    }
    *(uint8_t *)&c->r[0] = al;
    cc_set_eager(c, szp8(al) | (nf & F_OF) | (cf ? F_CF : 0) | (af ? F_AF : 0));
}

static void aaa_aas(struct cpu *c, bool sub)
{
    uint32_t f = cc_flags(c);
    uint16_t ax = (uint16_t)c->r[0];
    uint32_t nf = szp8((uint8_t)ax) | (f & F_OF);
    if ((ax & 0xf) > 9 || (f & F_AF)) {
        nf = add8_flags((uint8_t)ax, 6, sub);
        /* the carry or borrow of AL's +/-6 reaches AH, as current CPUs do */
        ax = (uint16_t)(sub ? ax - 0x106 : ax + 0x106);
        nf = (nf & ~(F_CF | F_AF)) | F_CF | F_AF;
    } else {
        nf &= ~(F_CF | F_AF);
    }
    SET16(0, ax & 0xff0f);
    cc_set_eager(c, nf);
}

static HANDLER(bcd)
{
    uint8_t al = (uint8_t)c->r[0], ah = (uint8_t)(c->r[0] >> 8), base = (uint8_t)i->imm;
    switch (i->aux) {
    case BCD_DAA: daa_das(c, false); break;
    case BCD_DAS: daa_das(c, true); break;
    case BCD_AAA: aaa_aas(c, false); break;
    case BCD_AAS: aaa_aas(c, true); break;
    case BCD_AAM:
        if (!base)
            raise_exc(c, i, EXC_DE, NO_ERR);
        SET16(0, (uint16_t)((al / base) << 8 | (al % base)));
        cc_set_eager(c, szp8((uint8_t)(al % base)));
        break;
    default: { /* AAD */
        uint8_t prod = (uint8_t)(ah * base);
        SET16(0, (uint8_t)(al + prod));
        cc_set_eager(c, add8_flags(al, prod, false));
        break;
    }
    }
    NEXT;
}

static HANDLER(into)
{
    if (cc_flags(c) & F_OF)
        raise_trap(c, i, EXC_OF, 2);
    NEXT;
}

/* BOUND r, m: the signed index within the pair of bounds at m, or #BR (a
 * fault). aux: lg. */
static HANDLER(bound)
{
    unsigned lg = i->aux, n = 1u << lg;
    uint64_t va = ea(c, i);
    int64_t lo = sext(ldn(c, i, va, lg), lg), hi = sext(ldn(c, i, (uint32_t)(va + n), lg), lg);
    int64_t idx = sext(c->r[i->reg], lg);
    if (idx < lo || idx > hi)
        raise_exc(c, i, EXC_BR, NO_ERR);
    NEXT;
}

/* ARPL r/m16, r16: the destination selector's RPL raised to the source's
 * (ZF set) or left (ZF clear); the other flags stay. */
static HANDLER(arpl)
{
    bool reg = mf_regform(i);
    uint64_t va = reg ? 0 : ea(c, i);
    uint16_t dst = reg ? (uint16_t)c->r[i->base] : (uint16_t)mem_rmw_read_slow(c, i, va, 2, 0);
    uint16_t src = (uint16_t)c->r[i->reg];
    uint32_t f = cc_flags(c) & ~F_ZF;
    if ((dst & 3) < (src & 3)) {
        dst = (uint16_t)((dst & ~3u) | (src & 3));
        if (reg)
            SET16(i->base, dst);
        else
            st16(c, i, va, dst);
        f |= F_ZF;
    }
    cc_set_eager(c, f);
    NEXT;
}

/* SALC: AL = CF ? 0xff : 0, the flags kept */
static HANDLER(salc)
{
    *(uint8_t *)&c->r[0] = cc_cf(c) ? 0xff : 0;
    NEXT;
}

const insn_fn h_bcd = bcd, h_into = into, h_bound = bound, h_arpl = arpl, h_salc = salc;

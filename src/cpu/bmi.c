/* BMI1 and BMI2: ANDN, BEXTR, BLSR/BLSMSK/BLSI, TZCNT, BZHI, PDEP, PEXT,
 * MULX, SHLX/SARX/SHRX, RORX. Computed here, not on host instructions, so
 * the engine offers them on any host. The flags the SDM leaves undefined
 * are AMD's (the CPU the engine presents), measured on an AMD EPYC host:
 * AF clear and PF the result's parity for ANDN, BLS* and BZHI; BEXTR sets
 * AF, clears SF and CF/OF, PF the parity; TZCNT clears SF, AF and PF and
 * keeps OF.
 *
 * Records: reg = ModRM.reg, base = the r/m register (or the memory
 * operand's base), imm = VEX.vvvv (RORX: its count), aux = lg (bits 0-1)
 * and the BMI_* operation (bits 2-6). */
#include "cpu/internal.h"
#include "cpu/handlers.h"

static uint32_t parity_flag(uint64_t v)
{
    return __builtin_parity((unsigned)(v & 0xff)) ? 0 : F_PF;
}

static uint32_t zs_flags(uint64_t r, unsigned lg)
{
    return (r == 0 ? F_ZF : 0) | ((r >> ((8u << lg) - 1)) & 1 ? F_SF : 0) | parity_flag(r);
}

/* PDEP (deposit): the low bits of src go, in order, to mask's set bits.
 * PEXT (extract): mask's set bits of src are gathered into the low bits. */
static uint64_t bit_scatter(uint64_t src, uint64_t mask, bool deposit)
{
    uint64_t r = 0;
    for (uint64_t low_bit = 1; mask; low_bit <<= 1) {
        uint64_t mask_bit = mask & -mask;
        if (src & (deposit ? low_bit : mask_bit))
            r |= deposit ? mask_bit : low_bit;
        mask &= mask - 1;
    }
    return r;
}

static uint64_t bextr(uint64_t s, uint64_t ctl, unsigned bits)
{
    unsigned start = ctl & 0xff, len = (ctl >> 8) & 0xff;
    if (start >= bits)
        return 0;
    s >>= start;
    return len >= 64 ? s : s & ((1ull << len) - 1);
}

/* The flag-writing operations: the result, with the flags in *f. */
static uint64_t bmi_flagged(struct cpu *c, unsigned op, unsigned lg, uint64_t s, uint64_t v,
                            uint32_t *f)
{
    unsigned bits = 8u << lg;
    uint64_t m = sz_mask(lg), r;
    switch (op) {
    case BMI_ANDN:
        r = ~v & s & m;
        *f = zs_flags(r, lg);
        return r;
    case BMI_BEXTR:
        r = bextr(s, v, bits) & m;
        *f = (r == 0 ? F_ZF : 0) | F_AF | parity_flag(r);
        return r;
    case BMI_BLSR:
    case BMI_BLSMSK:
        r = (op == BMI_BLSR ? (s - 1) & s : (s - 1) ^ s) & m;
        *f = zs_flags(r, lg) | (s == 0 ? F_CF : 0);
        return r;
    case BMI_BLSI:
        r = -s & s & m;
        *f = zs_flags(r, lg) | (s != 0 ? F_CF : 0);
        return r;
    case BMI_BZHI: {
        unsigned n = v & 0xff;
        r = n < bits ? s & ((1ull << n) - 1) : s;
        *f = zs_flags(r, lg) | (n >= bits ? F_CF : 0);
        return r;
    }
    default: /* BMI_TZCNT */
        r = s ? (uint64_t)__builtin_ctzll(s) : bits;
        *f = (r == 0 ? F_ZF : 0) | (s == 0 ? F_CF : 0) | (cc_flags(c) & F_OF);
        return r;
    }
}

static void bmi_any(struct cpu *c, const struct insn *i, uint64_t s)
{
    unsigned lg = i->aux & 3, op = i->aux >> 2, bits = 8u << lg;
    uint64_t m = sz_mask(lg), v = c->r[i->imm & 15] & m;
    s &= m;
    switch (op) {
    case BMI_PDEP: setr(c, i->reg, bit_scatter(v, s, true), lg); return;
    case BMI_PEXT: setr(c, i->reg, bit_scatter(v, s, false), lg); return;
    case BMI_SHLX: setr(c, i->reg, (s << (v & (bits - 1))) & m, lg); return;
    case BMI_SHRX: setr(c, i->reg, s >> (v & (bits - 1)), lg); return;
    case BMI_SARX:
        setr(c, i->reg, (uint64_t)(sext(s, lg) >> (v & (bits - 1))) & m, lg);
        return;
    case BMI_RORX: {
        unsigned n = i->imm & (bits - 1);
        setr(c, i->reg, n ? ((s >> n) | (s << (bits - n))) & m : s, lg);
        return;
    }
    case BMI_MULX: {
        unsigned __int128 p = (unsigned __int128)(c->r[2] & m) * s;
        uint64_t lo = lg == 3 ? (uint64_t)p : (uint64_t)p & m;
        uint64_t hi = lg == 3 ? (uint64_t)(p >> 64) : (uint64_t)(p >> 32);
        setr(c, i->imm & 15, lo, lg); /* the same register for both: the high half */
        setr(c, i->reg, hi, lg);
        return;
    }
    default: {
        uint32_t f;
        uint64_t r = bmi_flagged(c, op, lg, s, v, &f);
        /* BLS*: the destination is vvvv, the source r/m */
        setr(c, (op == BMI_BLSR || op == BMI_BLSMSK || op == BMI_BLSI) ? i->imm & 15 : i->reg,
             r, lg);
        cc_set_eager(c, f);
        return;
    }
    }
}

static HANDLER(bmi_r)
{
    bmi_any(c, i, c->r[i->base]);
    NEXT;
}
static HANDLER(bmi_m)
{
    bmi_any(c, i, ldn(c, i, ea(c, i), i->aux & 3));
    NEXT;
}
const insn_fn h_bmi[2] = {bmi_r, bmi_m};
